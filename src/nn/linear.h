#pragma once
// Linear and LayerNorm layers as torch defines them: weight [out, in],
// y = x W^T + b; LayerNorm over the last dimension with biased variance.
#include <cstdint>
#include <memory>

#include "kernels/gemm_bf16.h"
#include "roformer/cpu.h"
#include "roformer/tensor.h"

namespace roformer::nn {

struct Linear {
  Tensor weight;  // (out, in) F32 contiguous
  Tensor bias;    // (out) F32, or undefined for no bias
  // Set (inference only): forward multiplies in bf16 with these rounded
  // weights instead of `weight`; backward is unaffected (it needs fp32).
  std::shared_ptr<const kernels::Bf16Matmul> bf16;

  int64_t in_features() const { return weight.size(1); }
  int64_t out_features() const { return weight.size(0); }
  // y (rows, out) = x (rows, in) W^T + b
  void forward(const float* x, int64_t rows, float* y, const ExecContext& ctx) const;
  // Rounds the weights to bf16 for forward (see `bf16`).
  void use_bf16() { bf16 = std::make_shared<const kernels::Bf16Matmul>(weight.data<float>(), out_features(), in_features()); }
  // From dy (rows, out): dx (rows, in) overwritten, or added to when
  // accumulate_dx, or skipped when null; grad.weight / grad.bias accumulate.
  void backward(const float* x, const float* dy, int64_t rows, float* dx, bool accumulate_dx, const Linear& grad,
                const ExecContext& ctx) const;
};

struct LayerNorm {
  Tensor weight;  // (n)
  Tensor bias;    // (n)
  float eps = 1e-12f;

  int64_t features() const { return weight.size(0); }
  // y (rows, n) = LN(x); y may alias x.
  void forward(const float* x, float* y, int64_t rows, const ExecContext& ctx) const;
  // Training forward: also saves per-row mean and 1/sigma for backward.
  void forward_train(const float* x, float* y, int64_t rows, float* mean, float* rstd, const ExecContext& ctx) const;
  // dx overwritten; grad.weight / grad.bias accumulate.
  void backward(const float* x, const float* dy, const float* mean, const float* rstd, int64_t rows, float* dx,
                const LayerNorm& grad, const ExecContext& ctx) const;
};

}  // namespace roformer::nn
