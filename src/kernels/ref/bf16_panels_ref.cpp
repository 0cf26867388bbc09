// Plain loops of the bf16 panel product: each pair of bf16 products summed
// in fp32 (both are exact there), pairs added in order, then the epilogue.
#include <algorithm>
#include <vector>

#include "kernels/bf16_panels.h"
#include "kernels/gelu_kernels.h"
#include "roformer/dtype.h"

namespace roformer::kernels {
namespace {

float widen(uint32_t half) { return bf16_to_f32(bf16{static_cast<uint16_t>(half & 0xffffu)}); }

void activate(Activation act, float* v, int64_t n) {
  switch (act) {
    case Activation::Gelu: gelu_forward_ref(GeluForm::Erf, v, n); break;
    case Activation::GeluNew: gelu_forward_ref(GeluForm::Tanh, v, n); break;
    case Activation::Relu:
      for (int64_t i = 0; i < n; ++i) v[i] = std::max(v[i], 0.0f);
      break;
  }
}

}  // namespace

void bf16_panel_product_ref(const Bf16PanelProduct& p, int64_t panel_begin, int64_t panel_end) {
  const int64_t pairs = p.in / 2, W = kBf16PanelWidth;
  std::vector<float> tile(static_cast<std::size_t>(W));
  for (int64_t r = 0; r < p.rows; ++r) {
    const uint16_t* xr = p.x + r * p.in;
    for (int64_t panel = panel_begin; panel < panel_end; ++panel) {
      const int64_t n0 = panel * W, width = std::min(W, p.out - n0);
      const uint32_t* b = p.panels + panel * pairs * W;
      for (int64_t c = 0; c < width; ++c) {
        float acc = 0.0f;
        for (int64_t k = 0; k < pairs; ++k) {
          const uint32_t w = b[k * W + c];
          acc += widen(xr[2 * k]) * widen(w) + widen(xr[2 * k + 1]) * widen(w >> 16);
        }
        tile[static_cast<std::size_t>(c)] = acc + (p.bias != nullptr ? p.bias[n0 + c] : 0.0f);
      }
      if (p.epilogue.activation) activate(*p.epilogue.activation, tile.data(), width);
      for (int64_t c = 0; c < width; ++c) {
        float v = tile[static_cast<std::size_t>(c)];
        if (p.epilogue.residual != nullptr) v += p.epilogue.residual[r * p.out + n0 + c];
        if (p.y32 != nullptr) p.y32[r * p.out + n0 + c] = v;
        else p.y16[r * p.out + n0 + c] = f32_to_bf16(v).bits;
      }
    }
  }
}

}  // namespace roformer::kernels
