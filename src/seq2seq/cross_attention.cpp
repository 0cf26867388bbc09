#include "seq2seq/cross_attention.h"

#include <cmath>
#include <limits>

#include <omp.h>

#include "kernels/elementwise.h"
#include "kernels/elementwise_backward.h"
#include "kernels/gemm.h"

namespace roformer::seq2seq {

namespace {

// softmax(scale * q k^T + mask) for one (row, head): probs (T, S).
void scores(const float* q, const float* k, int64_t T, int64_t S, int64_t D, int64_t ld, const uint8_t* valid,
            float* probs, const ExecContext& ctx) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  kernels::gemm(false, true, T, S, D, scale, q, ld, k, ld, 0.0f, probs, S, ctx);
  if (valid != nullptr) {
    // The same masking value as the self-attention layer: exp() of it is exactly 0.
    const float masked = std::numeric_limits<float>::lowest();
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j < S; ++j)
        if (valid[j] == 0) probs[i * S + j] += masked;
  }
  kernels::softmax_rows(probs, T, S, S);
}

}  // namespace

void CrossAttention::project_memory(const float* memory, int64_t B, int64_t S, float* k, float* v,
                                    const ExecContext& ctx) const {
  key.forward(memory, B * S, k, ctx);
  value.forward(memory, B * S, v, ctx);
}

void CrossAttention::attend(const float* x, int64_t B, int64_t T, const float* k, const float* v, int64_t S,
                            const uint8_t* mem_valid, float* out, std::vector<float>& q,
                            const ExecContext& ctx) const {
  const int64_t C = width(), NH = heads, D = C / NH;
  q.resize(static_cast<std::size_t>(B * T * C));
  query.forward(x, B * T, q.data(), ctx);
  const int64_t tasks = B * NH;
  const bool parallel = ctx.threads > 1 && tasks > 1;
#pragma omp parallel num_threads(ctx.threads) if (parallel)
  {
    std::vector<float> p(static_cast<std::size_t>(T * S));
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t b = task / NH, h = task % NH;
      scores(q.data() + b * T * C + h * D, k + b * S * C + h * D, T, S, D, C, mem_valid ? mem_valid + b * S : nullptr,
             p.data(), ctx);
      kernels::gemm(false, false, T, D, S, 1.0f, p.data(), S, v + b * S * C + h * D, C, 0.0f, out + b * T * C + h * D,
                    C, ctx);
    }
  }
}

void CrossAttention::forward_train(const float* x, int64_t B, int64_t T, const float* memory, int64_t S,
                                   const uint8_t* mem_valid, CrossAttentionSaved& s, float* out,
                                   const ExecContext& ctx) const {
  const int64_t C = width(), NH = heads, D = C / NH;
  s.q.resize(static_cast<std::size_t>(B * T * C));
  s.k.resize(static_cast<std::size_t>(B * S * C));
  s.v.resize(s.k.size());
  s.probs.resize(static_cast<std::size_t>(B * NH * T * S));
  query.forward(x, B * T, s.q.data(), ctx);
  project_memory(memory, B, S, s.k.data(), s.v.data(), ctx);
  const int64_t tasks = B * NH;
#pragma omp parallel for num_threads(ctx.threads) if (ctx.threads > 1 && tasks > 1) schedule(static)
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t b = task / NH, h = task % NH;
    float* p = s.probs.data() + task * T * S;
    scores(s.q.data() + b * T * C + h * D, s.k.data() + b * S * C + h * D, T, S, D, C,
           mem_valid ? mem_valid + b * S : nullptr, p, ctx);
    kernels::gemm(false, false, T, D, S, 1.0f, p, S, s.v.data() + b * S * C + h * D, C, 0.0f, out + b * T * C + h * D,
                  C, ctx);
  }
}

void CrossAttention::backward(const float* x, const float* memory, CrossAttentionSaved& s, const float* dout,
                              int64_t B, int64_t T, int64_t S, float* dx, float* dmemory, const CrossAttention& grad,
                              const ExecContext& ctx) const {
  const int64_t C = width(), NH = heads, D = C / NH;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  s.dq.resize(s.q.size());
  s.dk.resize(s.k.size());
  s.dv.resize(s.v.size());
  const int64_t tasks = B * NH;
  const bool parallel = ctx.threads > 1 && tasks > 1;
  s.dp.resize(static_cast<std::size_t>((parallel ? ctx.threads : 1) * T * S));
#pragma omp parallel num_threads(ctx.threads) if (parallel)
  {
    float* dp = s.dp.data() + (parallel ? omp_get_thread_num() : 0) * T * S;
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t b = task / NH, h = task % NH;
      const int64_t qo = b * T * C + h * D, ko = b * S * C + h * D;
      const float* p = s.probs.data() + task * T * S;
      // dP = dO V^T, dV = P^T dO, dS = softmax'(dP), dQ = dS K s, dK = dS^T Q s
      kernels::gemm(false, true, T, S, D, 1.0f, dout + qo, C, s.v.data() + ko, C, 0.0f, dp, S, ctx);
      kernels::gemm(true, false, S, D, T, 1.0f, p, S, dout + qo, C, 0.0f, s.dv.data() + ko, C, ctx);
      kernels::softmax_backward_rows(p, dp, dp, T, S);
      kernels::gemm(false, false, T, D, S, scale, dp, S, s.k.data() + ko, C, 0.0f, s.dq.data() + qo, C, ctx);
      kernels::gemm(true, false, S, D, T, scale, dp, S, s.q.data() + qo, C, 0.0f, s.dk.data() + ko, C, ctx);
    }
  }
  query.backward(x, s.dq.data(), B * T, dx, true, grad.query, ctx);
  key.backward(memory, s.dk.data(), B * S, dmemory, true, grad.key, ctx);
  value.backward(memory, s.dv.data(), B * S, dmemory, true, grad.value, ctx);
}

}  // namespace roformer::seq2seq
