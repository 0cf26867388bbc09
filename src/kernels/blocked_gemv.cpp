// The plain blocked-layout loops (the reference), the packers the tests use,
// and the threaded product.
#include "kernels/blocked_gemv.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "kernels/parallel_chunks.h"
#include "roformer/dtype.h"
#include "roformer/error.h"

namespace roformer::kernels {

namespace {

int64_t padded(int64_t in, BlockedLayout layout) {
  const int64_t block = blocked_k_block(layout);
  return (in + block - 1) / block * block;
}

int64_t panels_of(int64_t out) { return (out + kGemvPanel - 1) / kGemvPanel; }

}  // namespace

int64_t blocked_k_block(BlockedLayout layout) {
  switch (layout) {
    case BlockedLayout::F32x16x64: return 16;
    case BlockedLayout::Bf16x32x64: return 32;
    case BlockedLayout::S8x64x64: return 64;
  }
  throw Error("blocked product: unknown layout");
}

int64_t blocked_offset(const BlockedWeights& w, int64_t k, int64_t n) {
  const int64_t panel = (n / kGemvPanel) * w.padded_in * kGemvPanel, col = n % kGemvPanel;
  if (w.layout == BlockedLayout::F32x16x64) return panel + k * kGemvPanel + col;
  if (w.layout == BlockedLayout::Bf16x32x64) return panel + (k / 2) * 2 * kGemvPanel + col * 2 + k % 2;
  return panel + (k / 4) * 4 * kGemvPanel + col * 4 + k % 4;
}

namespace {

// weight (out, in) row-major into `layout`, each value through convert.
template <class Packed, class Value, class Convert>
std::vector<Packed> pack_blocked(BlockedLayout layout, const Value* weight, int64_t out, int64_t in, Convert convert) {
  const BlockedWeights w{layout, nullptr, in, out, padded(in, layout)};
  std::vector<Packed> packed(static_cast<std::size_t>(panels_of(out) * kGemvPanel * w.padded_in), Packed{0});
  for (int64_t n = 0; n < out; ++n)
    for (int64_t k = 0; k < in; ++k)
      packed[static_cast<std::size_t>(blocked_offset(w, k, n))] = convert(weight[n * in + k]);
  return packed;
}

}  // namespace

std::vector<float> pack_blocked_f32(const float* weight, int64_t out, int64_t in) {
  return pack_blocked<float>(BlockedLayout::F32x16x64, weight, out, in, [](float v) { return v; });
}

std::vector<uint16_t> pack_blocked_bf16(const float* weight, int64_t out, int64_t in) {
  return pack_blocked<uint16_t>(BlockedLayout::Bf16x32x64, weight, out, in,
                                [](float v) { return f32_to_bf16(v).bits; });
}

std::vector<int8_t> pack_blocked_s8(const int8_t* weight, int64_t out, int64_t in) {
  return pack_blocked<int8_t>(BlockedLayout::S8x64x64, weight, out, in, [](int8_t v) { return v; });
}

void blocked_gemv_ref(const BlockedWeights& w, const void* x, int64_t rows, const float* bias, float* y, int64_t p0,
                      int64_t p1) {
  const bool f32 = w.layout == BlockedLayout::F32x16x64;
  auto weight = [&](int64_t k, int64_t n) {
    const int64_t at = blocked_offset(w, k, n);
    return f32 ? static_cast<const float*>(w.data)[at] : bf16_to_f32(bf16{static_cast<const uint16_t*>(w.data)[at]});
  };
  auto input = [&](int64_t r, int64_t k) {
    return f32 ? static_cast<const float*>(x)[r * w.in + k]
               : bf16_to_f32(bf16{static_cast<const uint16_t*>(x)[r * w.in + k]});
  };
  for (int64_t n = p0 * kGemvPanel; n < std::min(w.out, p1 * kGemvPanel); ++n)
    for (int64_t r = 0; r < rows; ++r) {
      // bf16 products are exact in fp32, so each step is one rounding, as in a fused multiply-add.
      float acc = 0.0f;
      for (int64_t k = 0; k < w.in; ++k) acc = std::fma(input(r, k), weight(k, n), acc);
      y[r * w.out + n] = bias != nullptr ? acc + bias[n] : acc;
    }
}

void blocked_sums_ref(const BlockedWeights& w, const uint8_t* x, int64_t rows, int32_t* sums, int64_t p0, int64_t p1) {
  const int8_t* weights = static_cast<const int8_t*>(w.data);
  for (int64_t n = p0 * kGemvPanel; n < std::min(w.out, p1 * kGemvPanel); ++n)
    for (int64_t r = 0; r < rows; ++r) {
      int32_t acc = 0;
      for (int64_t k = 0; k < w.in; ++k)
        acc += static_cast<int32_t>(x[r * w.in + k]) * static_cast<int32_t>(weights[blocked_offset(w, k, n)]);
      sums[r * w.out + n] = acc;
    }
}

BlockedSumsKernel blocked_sums_kernel(Isa isa) {
  ROFORMER_CHECK(isa_supported(isa),
                 "blocked product: instruction set " + std::string(isa_name(isa)) + " is not supported by this CPU");
  return isa == Isa::Avx512 && cpu_has_avx512_vnni() ? blocked_sums_s8_avx512vnni : blocked_sums_ref;
}

BlockedGemvKernel blocked_gemv_kernel(BlockedLayout layout, Isa isa) {
  ROFORMER_CHECK(isa_supported(isa),
                 "blocked product: instruction set " + std::string(isa_name(isa)) + " is not supported by this CPU");
  ROFORMER_CHECK(layout != BlockedLayout::S8x64x64, "blocked product: int8 weights take blocked_sums_kernel");
  if (isa != Isa::Avx512) return blocked_gemv_ref;
  if (layout == BlockedLayout::F32x16x64) return blocked_gemv_f32_avx512;
  return cpu_has_avx512_bf16() ? blocked_gemv_bf16_avx512bf16 : blocked_gemv_ref;
}

bool blocked_loop_is_vector(BlockedLayout layout, Isa isa) {
  if (layout == BlockedLayout::S8x64x64) return blocked_sums_kernel(isa) != blocked_sums_ref;
  return blocked_gemv_kernel(layout, isa) != blocked_gemv_ref;
}

void blocked_gemv(const BlockedWeights& w, const void* x, int64_t rows, const float* bias, float* y,
                  const ExecContext& ctx) {
  ROFORMER_CHECK(rows >= 1 && rows <= kGemvMaxRows, "blocked product: takes 1 to " + std::to_string(kGemvMaxRows) +
                                                        " rows, not " + std::to_string(rows));
  const BlockedGemvKernel kernel = blocked_gemv_kernel(w.layout, ctx.isa);
  for_each_chunk(panels_of(w.out), kGemvPanelsPerTask, ctx,
                 [&](int64_t p0, int64_t p1) { kernel(w, x, rows, bias, y, p0, p1); });
}

}  // namespace roformer::kernels
