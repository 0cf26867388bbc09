// The plain panel loop (the reference the AVX2 one is tested against), the
// packing, the dispatch and the threaded product.
#include "kernels/f32_panels.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "kernels/parallel_chunks.h"
#include "roformer/dtype.h"
#include "roformer/error.h"

namespace roformer::kernels {

namespace {

int64_t offset(int64_t in, int64_t padded_out, int64_t o, int64_t k) {
  const int64_t block = k / kF32PanelDepth;
  const int64_t depth = std::min(kF32PanelDepth, in - block * kF32PanelDepth);
  return block * kF32PanelDepth * padded_out + (o / kF32PanelWidth) * depth * kF32PanelWidth +
         (k % kF32PanelDepth) * kF32PanelWidth + o % kF32PanelWidth;
}

template <class W, class Widen>
void product_ref(const float* x, int64_t rows, int64_t in, const W* w, int64_t out, const float* bias, float* y,
                 int64_t p0, int64_t p1, Widen widen) {
  const int64_t padded_out = f32_panels_padded_out(out);
  const int64_t o1 = std::min(out, p1 * kF32PanelWidth);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = p0 * kF32PanelWidth; o < o1; ++o) {
      float sum = bias != nullptr ? bias[o] : 0.0f;
      for (int64_t k = 0; k < in; ++k) sum = std::fma(x[r * in + k], widen(w[offset(in, padded_out, o, k)]), sum);
      y[r * out + o] = sum;
    }
}

template <class W, class Product>
void forward(const float* x, int64_t rows, int64_t in, const W* w, int64_t out, const float* bias, float* y,
             const ExecContext& ctx, Product product) {
  if (rows <= 0) return;
  const int64_t panels = f32_panels_padded_out(out) / kF32PanelWidth;
  for_each_thread_run(panels, ctx, [&](int64_t p0, int64_t p1) { product(x, rows, in, w, out, bias, y, p0, p1); });
}

// Function objects rather than functions: a function pointer as the
// template argument left an indirect call per value in the packing loop.
constexpr auto as_is = [](float v) { return v; };
constexpr auto widened = [](uint16_t v) { return bf16_to_f32(bf16{v}); };
constexpr auto rounded = [](float v) { return f32_to_bf16(v).bits; };

template <class W, class Convert>
HugePageVector<W> pack(const float* weight, int64_t out, int64_t in, Convert convert) {
  const int64_t padded_out = f32_panels_padded_out(out);
  HugePageVector<W> packed(static_cast<std::size_t>(padded_out * in), W{0});
  // In the layout's own order (block, panel, input, column), so the writes
  // are sequential and the reads 16 rows side by side: a third of the time
  // of placing each value through offset().
  W* dst = packed.data();
  for (int64_t k0 = 0; k0 < in; k0 += kF32PanelDepth) {
    const int64_t k1 = std::min(in, k0 + kF32PanelDepth);
    for (int64_t o0 = 0; o0 < padded_out; o0 += kF32PanelWidth) {
      const int64_t columns = std::min(kF32PanelWidth, out - o0);
      for (int64_t k = k0; k < k1; ++k, dst += kF32PanelWidth)
        for (int64_t c = 0; c < columns; ++c) dst[c] = convert(weight[(o0 + c) * in + k]);
    }
  }
  return packed;
}

template <class W, class Widen>
void unpack(const W* w, int64_t out, int64_t in, float* weight, Widen widen) {
  const int64_t padded_out = f32_panels_padded_out(out);
  for (int64_t o = 0; o < out; ++o)
    for (int64_t k = 0; k < in; ++k) weight[o * in + k] = widen(w[offset(in, padded_out, o, k)]);
}

}  // namespace

int64_t f32_panels_padded_out(int64_t out) { return (out + kF32PanelWidth - 1) / kF32PanelWidth * kF32PanelWidth; }

HugePageVector<float> pack_f32_panels(const float* weight, int64_t out, int64_t in) {
  return pack<float>(weight, out, in, as_is);
}

void unpack_f32_panels(const float* w, int64_t out, int64_t in, float* weight) { unpack(w, out, in, weight, as_is); }

void f32_panels_product_ref(const float* x, int64_t rows, int64_t in, const float* w, int64_t out, const float* bias,
                            float* y, int64_t p0, int64_t p1) {
  product_ref(x, rows, in, w, out, bias, y, p0, p1, as_is);
}

F32PanelsProduct f32_panels_kernel(Isa isa) {
  ROFORMER_CHECK(isa_supported(isa),
                 "f32 panels: instruction set " + std::string(isa_name(isa)) + " is not supported by this CPU");
  return isa == Isa::Scalar ? f32_panels_product_ref : f32_panels_product_avx2;
}

void f32_panels_forward(const float* x, int64_t rows, int64_t in, const float* w, int64_t out, const float* bias,
                        float* y, const ExecContext& ctx) {
  forward(x, rows, in, w, out, bias, y, ctx, f32_panels_kernel(ctx.isa));
}

HugePageVector<uint16_t> pack_bf16_weight_panels(const float* weight, int64_t out, int64_t in) {
  return pack<uint16_t>(weight, out, in, rounded);
}

void unpack_bf16_weight_panels(const uint16_t* w, int64_t out, int64_t in, float* weight) {
  unpack(w, out, in, weight, widened);
}

void bf16_weight_panels_product_ref(const float* x, int64_t rows, int64_t in, const uint16_t* w, int64_t out,
                                    const float* bias, float* y, int64_t p0, int64_t p1) {
  product_ref(x, rows, in, w, out, bias, y, p0, p1, widened);
}

Bf16WeightPanelsProduct bf16_weight_panels_kernel(Isa isa) {
  ROFORMER_CHECK(isa_supported(isa), "bf16 weight panels: instruction set " + std::string(isa_name(isa)) +
                                         " is not supported by this CPU");
  return isa == Isa::Scalar ? bf16_weight_panels_product_ref : bf16_weight_panels_product_avx2;
}

void bf16_weight_panels_forward(const float* x, int64_t rows, int64_t in, const uint16_t* w, int64_t out,
                                const float* bias, float* y, const ExecContext& ctx) {
  forward(x, rows, in, w, out, bias, y, ctx, bf16_weight_panels_kernel(ctx.isa));
}

}  // namespace roformer::kernels
