#include "nn/linear.h"

#include "kernels/elementwise.h"
#include "kernels/gemm.h"

namespace roformer::nn {

void Linear::forward(const float* x, int64_t rows, float* y, const ExecContext& ctx) const {
  const int64_t in = in_features(), out = out_features();
  kernels::gemm(false, true, rows, out, in, 1.0f, x, in, weight.data<float>(), in, 0.0f, y, out, ctx);
  if (bias.defined() && bias.numel() > 0) kernels::add_bias_rows(y, bias.data<float>(), rows, out);
}

void LayerNorm::forward(const float* x, float* y, int64_t rows, const ExecContext& ctx) const {
  kernels::layer_norm_forward(x, y, weight.data<float>(), bias.data<float>(), rows, features(), eps, ctx);
}

}  // namespace roformer::nn
