#include "nn/linear.h"

#include "kernels/elementwise.h"
#include "kernels/elementwise_backward.h"
#include "kernels/gemm.h"
#include "kernels/gemm_bf16.h"
#include "roformer/error.h"

namespace roformer::nn {

bool uses_packed(const kernels::PackedMatmul* packed, const ExecContext& ctx) {
  if (packed == nullptr) return false;
  // fp32 packed by oneDNN runs where oneDNN is the context's library; in our
  // own panels, under either library (the panels replace both).
  return packed->precision() != kernels::MatmulPrecision::F32 ||
         (ctx.isa != Isa::Scalar && (ctx.gemm == GemmBackend::OneDnn || packed->uses_f32_panels()));
}

const kernels::PackedMatmul* Linear::packed_for(const ExecContext& ctx) const {
  return uses_packed(packed.get(), ctx) ? packed.get() : nullptr;
}

void Linear::forward(const float* x, int64_t rows, float* y, const ExecContext& ctx,
                     const kernels::Epilogue& epilogue) const {
  const int64_t in = in_features(), out = out_features();
  const float* b = bias_or_null();
  if (uses_packed(packed.get(), ctx)) {
    packed->forward(x, rows, b, y, ctx, epilogue);
    return;
  }
  kernels::gemm_bias(false, true, rows, out, in, x, in, weight.data<float>(), in, b, y, out, ctx);
  kernels::apply_epilogue(y, rows, out, epilogue, ctx);
}

void forward_same_input(const float* x, int64_t rows, std::initializer_list<Projection> projections,
                        const ExecContext& ctx, const kernels::PackedInput* prepared) {
  const kernels::PackedMatmul* first = projections.size() > 0 ? projections.begin()->layer.packed_for(ctx) : nullptr;
  bool shared = first != nullptr;
  for (const Projection& p : projections) {
    const kernels::PackedMatmul* m = p.layer.packed_for(ctx);
    shared = shared && m != nullptr && m->precision() == first->precision() && m->emulated() == first->emulated() &&
             m->in_features() == first->in_features();
  }
  if (!shared) {
    for (const Projection& p : projections) p.layer.forward(x, rows, p.y, ctx);
    return;
  }
  thread_local kernels::PackedInput input;
  if (prepared == nullptr) {
    first->prepare(x, rows, input, ctx);
    prepared = &input;
  }
  ROFORMER_CHECK(prepared->rows() == rows, "projections: the prepared input has another row count");
  ROFORMER_CHECK(projections.size() <= 8, "projections: at most 8 share an input");
  kernels::PackedMatmul::Target targets[8];
  std::size_t n = 0;
  for (const Projection& p : projections) targets[n++] = {p.layer.packed_for(ctx), p.layer.bias_or_null(), p.y};
  kernels::PackedMatmul::forward_together(*prepared, std::span(targets, n), ctx);
}

void feed_forward(const Linear& up, const Linear& down, kernels::Activation act, const float* x, int64_t rows,
                  float* hidden, float* y, const float* residual, const ExecContext& ctx,
                  const kernels::PackedInput* prepared) {
  const kernels::PackedMatmul* pu = up.packed_for(ctx);
  const kernels::PackedMatmul* pd = down.packed_for(ctx);
  if (pu == nullptr || pd == nullptr || !pu->feeds(*pd)) {
    up.forward(x, rows, hidden, ctx, {act});
    down.forward(hidden, rows, y, ctx, {std::nullopt, residual});
    return;
  }
  thread_local kernels::PackedInput input, between;
  if (prepared == nullptr) {
    pu->prepare(x, rows, input, ctx);
    prepared = &input;
  }
  ROFORMER_CHECK(prepared->rows() == rows, "feed-forward: the prepared input has another row count");
  pu->forward(*prepared, up.bias_or_null(), between, ctx, {act});
  pd->forward(between, down.bias_or_null(), y, ctx, {std::nullopt, residual});
}

void LayerNorm::forward(const float* x, float* y, int64_t rows, const ExecContext& ctx, uint16_t* y_bf16) const {
  kernels::layer_norm_forward(x, y, weight.data<float>(), bias.data<float>(), rows, features(), eps, ctx, y_bf16);
}

void Linear::backward(const float* x, const float* dy, int64_t rows, float* dx, bool accumulate_dx, const Linear& grad,
                      const ExecContext& ctx) const {
  const int64_t in = in_features(), out = out_features();
  // With bf16 products, dy enters both products: rounded once for the two.
  thread_local kernels::RoundedOperands dy_rounded;
  const bool shared = dx != nullptr && kernels::gemm_bf16_pays_off(rows, in, out) &&
                      kernels::gemm_bf16_pays_off(out, in, rows);
  const ExecContext run = shared ? kernels::rounding_once(dy, rows, out, dy_rounded, ctx) : ctx;
  if (dx != nullptr) {
    kernels::gemm(false, false, rows, in, out, 1.0f, dy, out, weight.data<float>(), in, accumulate_dx ? 1.0f : 0.0f, dx,
                  in, run);
  }
  kernels::gemm(true, false, out, in, rows, 1.0f, dy, out, x, in, 1.0f, grad.weight.data<float>(), in, run);
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
