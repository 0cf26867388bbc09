// The int8 panels' packing, their plain loop (the reference the AVX2 one is
// tested against) and the dispatch.
#include "kernels/int8_panels.h"

#include <algorithm>
#include <string>

#include "kernels/parallel_chunks.h"
#include "roformer/error.h"

namespace roformer::kernels {

namespace {

int64_t code_offset(int64_t padded_in, int64_t padded_out, int64_t o, int64_t k) {
  const int64_t block = k / kInt8PanelDepth;
  const int64_t depth = std::min(kInt8PanelDepth, padded_in - block * kInt8PanelDepth);
  return block * kInt8PanelDepth * padded_out + (o / kInt8PanelWidth) * depth * kInt8PanelWidth +
         (k % kInt8PanelDepth) / 2 * (2 * kInt8PanelWidth) + (o % kInt8PanelWidth) * 2 + k % 2;
}

}  // namespace

static_assert(kInt8PanelDepth % 2 == 0, "blocks hold whole pairs of inputs");

int64_t int8_panels_padded_out(int64_t out) {
  return (out + kInt8PanelWidth - 1) / kInt8PanelWidth * kInt8PanelWidth;
}

int64_t int8_panels_padded_in(int64_t in) { return (in + 1) / 2 * 2; }

HugePageVector<int8_t> pack_int8_panels(const int8_t* q, int64_t out, int64_t in) {
  const int64_t padded_out = int8_panels_padded_out(out), padded_in = int8_panels_padded_in(in);
  HugePageVector<int8_t> packed(static_cast<std::size_t>(padded_out * padded_in), int8_t{0});
  // In the layout's own order (block, panel, pair of inputs, column), so the
  // writes are sequential; the odd input past the end stays zero.
  int8_t* dst = packed.data();
  for (int64_t k0 = 0; k0 < padded_in; k0 += kInt8PanelDepth) {
    const int64_t k1 = std::min(padded_in, k0 + kInt8PanelDepth);
    for (int64_t o0 = 0; o0 < padded_out; o0 += kInt8PanelWidth) {
      const int64_t columns = std::min(kInt8PanelWidth, out - o0);
      for (int64_t k = k0; k < k1; k += 2, dst += 2 * kInt8PanelWidth)
        for (int64_t c = 0; c < columns; ++c) {
          const int8_t* row = q + (o0 + c) * in;
          dst[2 * c] = row[k];
          if (k + 1 < in) dst[2 * c + 1] = row[k + 1];
        }
    }
  }
  return packed;
}

void unpack_int8_panels(const int8_t* w, int64_t out, int64_t in, int8_t* q) {
  const int64_t padded_out = int8_panels_padded_out(out), padded_in = int8_panels_padded_in(in);
  for (int64_t o = 0; o < out; ++o)
    for (int64_t k = 0; k < in; ++k) q[o * in + k] = w[code_offset(padded_in, padded_out, o, k)];
}

void int8_panels_sums_ref(const uint8_t* x, int64_t rows, int64_t in, const int8_t* w, int64_t out, int32_t* sums,
                          int64_t p0, int64_t p1) {
  const int64_t padded_out = int8_panels_padded_out(out), padded_in = int8_panels_padded_in(in);
  const int64_t o1 = std::min(out, p1 * kInt8PanelWidth);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = p0 * kInt8PanelWidth; o < o1; ++o) {
      int32_t sum = 0;
      for (int64_t k = 0; k < in; ++k)
        sum += int32_t{x[r * in + k]} * int32_t{w[code_offset(padded_in, padded_out, o, k)]};
      sums[r * out + o] = sum;
    }
}

Int8PanelsSums int8_panels_kernel(Isa isa) {
  ROFORMER_CHECK(isa_supported(isa),
                 "int8 panels: instruction set " + std::string(isa_name(isa)) + " is not supported by this CPU");
  return isa == Isa::Scalar ? int8_panels_sums_ref : int8_panels_sums_avx2;
}

void int8_panels_sums(const uint8_t* x, int64_t rows, int64_t in, const int8_t* w, int64_t out, int32_t* sums,
                      const ExecContext& ctx) {
  if (rows <= 0) return;
  const Int8PanelsSums kernel = int8_panels_kernel(ctx.isa);
  const int64_t panels = int8_panels_padded_out(out) / kInt8PanelWidth;
  // Each thread widens the activations once for its run of panels.
  for_each_thread_run(panels, ctx, [&](int64_t p0, int64_t p1) { kernel(x, rows, in, w, out, sums, p0, p1); });
}

}  // namespace roformer::kernels
