#include "kernels/bf16_panels.h"

#include <algorithm>
#include <string>

#include "kernels/parallel_chunks.h"
#include "roformer/dtype.h"
#include "roformer/error.h"

namespace roformer::kernels {

Bf16Panels::Bf16Panels(const float* weight, int64_t out, int64_t in) : out_(out), in_(in) {
  ROFORMER_CHECK(out > 0 && in > 0, "bf16 panels: empty weight matrix");
  ROFORMER_CHECK(in % 2 == 0, "bf16 panels: the input width must be even, not " + std::to_string(in));
  const int64_t panels = (out + kBf16PanelWidth - 1) / kBf16PanelWidth, pairs = in / 2;
  words_.assign(static_cast<std::size_t>(panels * pairs * kBf16PanelWidth), 0u);  // columns past out stay zero
  for (int64_t n = 0; n < out; ++n) {
    uint32_t* col = words_.data() + (n / kBf16PanelWidth) * pairs * kBf16PanelWidth + n % kBf16PanelWidth;
    const float* row = weight + n * in;
    for (int64_t k = 0; k < pairs; ++k) {
      const uint32_t even = f32_to_bf16(row[2 * k]).bits, odd = f32_to_bf16(row[2 * k + 1]).bits;
      col[k * kBf16PanelWidth] = even | (odd << 16);  // the lower half is the even feature
    }
  }
}

void Bf16Panels::unpack(float* weight) const {
  const int64_t pairs = in_ / 2;
  for (int64_t n = 0; n < out_; ++n) {
    const uint32_t* col = words_.data() + (n / kBf16PanelWidth) * pairs * kBf16PanelWidth + n % kBf16PanelWidth;
    for (int64_t k = 0; k < pairs; ++k) {
      const uint32_t w = col[k * kBf16PanelWidth];
      weight[n * in_ + 2 * k] = bf16_to_f32(bf16{static_cast<uint16_t>(w & 0xffffu)});
      weight[n * in_ + 2 * k + 1] = bf16_to_f32(bf16{static_cast<uint16_t>(w >> 16)});
    }
  }
}

void Bf16Panels::forward(const uint16_t* x, int64_t rows, const float* bias, const Epilogue& epilogue, float* y32,
                         uint16_t* y16, const ExecContext& ctx) const {
  ROFORMER_CHECK(rows >= 0, "bf16 panels: negative row count");
  ROFORMER_CHECK((y32 == nullptr) != (y16 == nullptr), "bf16 panels: exactly one output, fp32 or bf16");
  if (rows == 0) return;
  const Bf16PanelProduct p{x, rows, in_, out_, words_.data(), bias, epilogue, y32, y16};
  const Bf16PanelKernel kernel = ctx.isa == Isa::Scalar ? bf16_panel_product_ref : bf16_panel_product_avx512bf16;
  ROFORMER_CHECK(kernel == bf16_panel_product_ref || cpu_has_avx512_bf16(),
                 "bf16 panels: this CPU has no AVX512-BF16 dot products");
  // Each thread takes a run of whole panels for every row, so its weights
  // stay in its own cache; an output value is summed by one thread in the
  // same order whatever the count.
  const int64_t panels = (out_ + kBf16PanelWidth - 1) / kBf16PanelWidth;
  for_each_thread_run(panels, ctx, [&](int64_t begin, int64_t end) { kernel(p, begin, end); });
}

}  // namespace roformer::kernels
