#pragma once
// Linear and LayerNorm layers as torch defines them: weight [out, in],
// y = x W^T + b; LayerNorm over the last dimension with biased variance.
#include <cstdint>

#include "roformer/cpu.h"
#include "roformer/tensor.h"

namespace roformer::nn {

struct Linear {
  Tensor weight;  // (out, in) F32 contiguous
  Tensor bias;    // (out) F32, or undefined for no bias

  int64_t in_features() const { return weight.size(1); }
  int64_t out_features() const { return weight.size(0); }
  // y (rows, out) = x (rows, in) W^T + b
  void forward(const float* x, int64_t rows, float* y, const ExecContext& ctx) const;
};

struct LayerNorm {
  Tensor weight;  // (n)
  Tensor bias;    // (n)
  float eps = 1e-12f;

  int64_t features() const { return weight.size(0); }
  // y (rows, n) = LN(x); y may alias x.
  void forward(const float* x, float* y, int64_t rows, const ExecContext& ctx) const;
};

}  // namespace roformer::nn
