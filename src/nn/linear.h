#pragma once
// Linear and LayerNorm layers as torch defines them: weight [out, in],
// y = x W^T + b; LayerNorm over the last dimension with biased variance.
#include <cstdint>
#include <initializer_list>
#include <memory>

#include "kernels/packed_matmul.h"
#include "roformer/cpu.h"
#include "roformer/tensor.h"

namespace roformer::nn {

struct Linear {
  Tensor weight;  // (out, in) F32 contiguous
  Tensor bias;    // (out) F32, or undefined for no bias
  // Set (inference only): forward multiplies with these packed weights
  // instead of `weight` (always when bf16 or int8; fp32 when ctx.gemm is oneDNN and
  // ctx.isa is not the scalar reference). Backward reads `weight`.
  std::shared_ptr<const kernels::PackedMatmul> packed;

  int64_t in_features() const { return weight.size(1); }
  int64_t out_features() const { return weight.size(0); }
  // y (rows, out) = epilogue(x (rows, in) W^T + b)
  void forward(const float* x, int64_t rows, float* y, const ExecContext& ctx,
               const kernels::Epilogue& epilogue = {}) const;
  // The packed product forward() multiplies by under ctx, or null.
  const kernels::PackedMatmul* packed_for(const ExecContext& ctx) const;
  const float* bias_or_null() const { return bias.defined() && bias.numel() > 0 ? bias.data<float>() : nullptr; }
  // Packs the weights for forward (see `packed`).
  void pack(kernels::MatmulPrecision precision, kernels::Bf16Kernel bf16_kernel = kernels::Bf16Kernel::Auto) {
    packed = std::make_shared<const kernels::PackedMatmul>(weight.data<float>(), out_features(), in_features(), precision,
                                                           false, bf16_kernel);
  }
  // From dy (rows, out): dx (rows, in) overwritten, or added to when
  // accumulate_dx, or skipped when null; grad.weight / grad.bias accumulate.
  void backward(const float* x, const float* dy, int64_t rows, float* dx, bool accumulate_dx, const Linear& grad,
                const ExecContext& ctx) const;
};

// Whether a forward under ctx multiplies by `packed` instead of the fp32
// weights: bf16 and int8 packs always; fp32 packs when oneDNN runs the products and
// the scalar reference is not asked for.
bool uses_packed(const kernels::PackedMatmul* packed, const ExecContext& ctx);

// Several layers applied to the same x (rows, in), as attention's query, key
// and value projections: when they all multiply by packs of one kind, x is
// converted to bf16 or quantized once for all of them instead of once each.
// `prepared`, if given, is x already prepared for the first layer's pack
// (PackedMatmul::bf16_destination); it is used where the packs share it.
// Products that stream their weights (a decoding step's few rows) then run
// in one parallel region (PackedMatmul::forward_together).
struct Projection {
  const Linear& layer;
  float* y;  // (rows, layer.out_features())
};
void forward_same_input(const float* x, int64_t rows, std::initializer_list<Projection> projections,
                        const ExecContext& ctx, const kernels::PackedInput* prepared = nullptr);

// y = down(act(up(x))) + residual, the transformer's feed-forward block
// (residual may be null). When up feeds down (native bf16 or int8 packs) the
// first product stores the hidden activations already converted or quantized
// for the second, with no fp32 copy and no pass of their own; otherwise they
// pass through `hidden` (rows, up.out_features()). `prepared`, if given, is x
// already prepared for up's pack, used on that path.
void feed_forward(const Linear& up, const Linear& down, kernels::Activation act, const float* x, int64_t rows,
                  float* hidden, float* y, const float* residual, const ExecContext& ctx,
                  const kernels::PackedInput* prepared = nullptr);

struct LayerNorm {
  Tensor weight;  // (n)
  Tensor bias;    // (n)
  float eps = 1e-12f;

  int64_t features() const { return weight.size(0); }
  // y (rows, n) = LN(x); y may alias x. y_bf16, if not null, also receives
  // y rounded to bf16 (see kernels::layer_norm_forward).
  void forward(const float* x, float* y, int64_t rows, const ExecContext& ctx, uint16_t* y_bf16 = nullptr) const;
  // Training forward: also saves per-row mean and 1/sigma for backward.
  void forward_train(const float* x, float* y, int64_t rows, float* mean, float* rstd, const ExecContext& ctx) const;
  // dx overwritten; grad.weight / grad.bias accumulate.
  void backward(const float* x, const float* dy, const float* mean, const float* rstd, int64_t rows, float* dx,
                const LayerNorm& grad, const ExecContext& ctx) const;
};

}  // namespace roformer::nn
