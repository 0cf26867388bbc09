#pragma once
// bf16 weights laid out for AVX512-BF16 dot products, and the product of
// bf16 activations with them: y = epilogue(x · W^T + b), summed in fp32.
//
// vdpbf16ps multiplies 16 lanes of bf16 pairs and adds both products to an
// fp32 lane. The weights are stored once as panels of kBf16PanelWidth output
// columns: for each pair of input features (2k, 2k + 1), the 64 columns'
// pairs side by side, so one k step loads four registers of B and multiplies
// them by one broadcast 32-bit word of each activation row (the row's bf16
// values at 2k and 2k + 1, read in place). Each output tile of 6 rows x 64
// columns is summed over the whole depth in registers, then the bias,
// activation and residual run on it while it is in cache.
//
// On a Zen 5 core at the base model's shapes it runs at 77-92 % of the
// dot-product rate, as oneDNN 2.6's bf16 matmul does (bench/bench_matmul.cpp);
// whole forwards ran at 0.93-1.05x oneDNN's speed (docs/bench_infer.md).
// PackedMatmul takes it when asked (Bf16Kernel::Panels).
#include <cstdint>
#include <vector>

#include "kernels/epilogue.h"
#include "roformer/cpu.h"

namespace roformer::kernels {

inline constexpr int64_t kBf16PanelWidth = 64;  // output columns per panel
inline constexpr int64_t kBf16PanelRows = 6;    // rows of an output tile

// One call's operands; out y32 (fp32, rows x out) or y16 (bf16 bits), not both.
struct Bf16PanelProduct {
  const uint16_t* x = nullptr;  // (rows, in) bf16 bits, in even
  int64_t rows = 0, in = 0, out = 0;
  const uint32_t* panels = nullptr;  // ceil(out / 64) panels of (in / 2, 64) words
  const float* bias = nullptr;       // (out) or null
  Epilogue epilogue;
  float* y32 = nullptr;
  uint16_t* y16 = nullptr;
};

// Output panels [panel_begin, panel_end) of the product, every row: one
// thread's share. The plain reference sums each pair in fp32, pairs in order;
// the AVX512-BF16 kernel may round differently inside a pair (vdpbf16ps) and
// flushes denormal inputs to zero.
using Bf16PanelKernel = void (*)(const Bf16PanelProduct& p, int64_t panel_begin, int64_t panel_end);
void bf16_panel_product_ref(const Bf16PanelProduct& p, int64_t panel_begin, int64_t panel_end);
void bf16_panel_product_avx512bf16(const Bf16PanelProduct& p, int64_t panel_begin, int64_t panel_end);

class Bf16Panels {
 public:
  // weight (out, in) fp32 row-major, rounded to bf16 (nearest even); in must be even.
  Bf16Panels(const float* weight, int64_t out, int64_t in);

  int64_t out() const { return out_; }
  int64_t in() const { return in_; }
  // The weights as bf16 values widened back to fp32, (out, in).
  void unpack(float* weight) const;
  // y = epilogue(x W^T + bias) for x (rows, in) bf16 bits, into y32 or y16.
  // The output panels are split over ctx.threads; ctx.isa Scalar takes the
  // plain loops, any other the AVX512-BF16 kernel (which this CPU must have).
  void forward(const uint16_t* x, int64_t rows, const float* bias, const Epilogue& epilogue, float* y32,
               uint16_t* y16, const ExecContext& ctx) const;

 private:
  int64_t out_, in_;
  std::vector<uint32_t> words_;
};

}  // namespace roformer::kernels
