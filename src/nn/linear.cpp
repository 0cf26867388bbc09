#include "nn/linear.h"

#include "kernels/elementwise.h"
#include "kernels/elementwise_backward.h"
#include "kernels/gemm.h"

namespace roformer::nn {

bool uses_packed(const kernels::PackedMatmul* packed, const ExecContext& ctx) {
  if (packed == nullptr) return false;
  return packed->precision() != kernels::MatmulPrecision::F32 ||
         (ctx.gemm == GemmBackend::OneDnn && ctx.isa != Isa::Scalar);
}

void Linear::forward(const float* x, int64_t rows, float* y, const ExecContext& ctx,
                     const kernels::Epilogue& epilogue) const {
  const int64_t in = in_features(), out = out_features();
  const float* b = bias.defined() && bias.numel() > 0 ? bias.data<float>() : nullptr;
  if (uses_packed(packed.get(), ctx)) {
    packed->forward(x, rows, b, y, ctx, epilogue);
    return;
  }
  kernels::gemm_bias(false, true, rows, out, in, x, in, weight.data<float>(), in, b, y, out, ctx);
  kernels::apply_epilogue(y, rows, out, epilogue, ctx);
}

void LayerNorm::forward(const float* x, float* y, int64_t rows, const ExecContext& ctx) const {
  kernels::layer_norm_forward(x, y, weight.data<float>(), bias.data<float>(), rows, features(), eps, ctx);
}

void Linear::backward(const float* x, const float* dy, int64_t rows, float* dx, bool accumulate_dx, const Linear& grad,
                      const ExecContext& ctx) const {
  const int64_t in = in_features(), out = out_features();
  if (dx != nullptr) {
    kernels::gemm(false, false, rows, in, out, 1.0f, dy, out, weight.data<float>(), in, accumulate_dx ? 1.0f : 0.0f, dx,
                  in, ctx);
  }
  kernels::gemm(true, false, out, in, rows, 1.0f, dy, out, x, in, 1.0f, grad.weight.data<float>(), in, ctx);
  if (bias.defined() && bias.numel() > 0) kernels::bias_backward(dy, rows, out, grad.bias.data<float>(), ctx);
}

void LayerNorm::forward_train(const float* x, float* y, int64_t rows, float* mean, float* rstd,
                              const ExecContext& ctx) const {
  kernels::layer_norm_forward_train(x, y, weight.data<float>(), bias.data<float>(), rows, features(), eps, mean, rstd,
                                    ctx);
}

void LayerNorm::backward(const float* x, const float* dy, const float* mean, const float* rstd, int64_t rows, float* dx,
                         const LayerNorm& grad, const ExecContext& ctx) const {
  kernels::layer_norm_backward(x, dy, weight.data<float>(), mean, rstd, rows, features(), dx, grad.weight.data<float>(),
                               grad.bias.data<float>(), ctx);
}

}  // namespace roformer::nn
