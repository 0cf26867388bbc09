#include "nn/self_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "roformer/error.h"

namespace roformer::nn {

void LayerKvCache::reserve_more(int64_t batch_size, int64_t hidden_size, int64_t extra) {
  if (length == 0 && capacity == 0) {
    batch = batch_size;
    hidden = hidden_size;
  }
  check(batch == batch_size && hidden == hidden_size, "kv cache: batch size or hidden size changed between steps");
  if (length + extra <= capacity) return;
  const int64_t new_cap = std::max(length + extra, 2 * capacity);
  std::vector<float> k(static_cast<std::size_t>(batch * new_cap * hidden));
  std::vector<float> v(k.size());
  for (int64_t b = 0; b < batch; ++b) {
    const std::size_t n = static_cast<std::size_t>(length * hidden);
    if (n == 0) continue;
    std::memcpy(k.data() + b * new_cap * hidden, keys.data() + b * capacity * hidden, n * sizeof(float));
    std::memcpy(v.data() + b * new_cap * hidden, values.data() + b * capacity * hidden, n * sizeof(float));
  }
  keys.swap(k);
  values.swap(v);
  capacity = new_cap;
}

void SelfAttention::forward(const float* x, int64_t B, int64_t T, const Tensor& positions, RopeTable& rope,
                            const AttentionMask& mask, LayerKvCache* cache, float* out, float* probs,
                            const ExecContext& ctx) const {
  const int64_t H = hidden(), NH = heads, D = head_dim();
  const int64_t rows = B * T;
  std::vector<float> q(static_cast<std::size_t>(rows * H)), k(q.size()), v(q.size());
  query.forward(x, rows, q.data(), ctx);
  key.forward(x, rows, k.data(), ctx);
  value.forward(x, rows, v.data(), ctx);

  // Rotate per head by each token's absolute position (HF: after bias, before scores).
  auto rotate = [&](std::vector<float>& t) {
    Tensor view = Tensor::view(t.data(), {B, T, NH, D}, DType::F32);
    rope_apply(rope, view, view, positions, QkvLayout::BSHD, RopeDirection::Forward, ctx);
  };
  rotate(q);
  rotate(k);
  if (rotary_value) rotate(v);

  // Keys/values seen by the queries: the cache (past + new) or the new ones alone.
  const float* keys = k.data();
  const float* vals = v.data();
  int64_t past = 0, Tk = T, kv_row_stride = T * H;  // floats between batch rows
  if (cache != nullptr) {
    past = cache->length;
    cache->reserve_more(B, H, T);
    for (int64_t b = 0; b < B; ++b) {
      const std::size_t off = static_cast<std::size_t>((b * cache->capacity + past) * H);
      std::memcpy(cache->keys.data() + off, k.data() + b * T * H, static_cast<std::size_t>(T * H) * sizeof(float));
      std::memcpy(cache->values.data() + off, v.data() + b * T * H, static_cast<std::size_t>(T * H) * sizeof(float));
    }
    cache->length = past + T;
    keys = cache->keys.data();
    vals = cache->values.data();
    Tk = past + T;
    kv_row_stride = cache->capacity * H;
  }
  check(mask.key_valid == nullptr || mask.key_len == Tk,
        "attention: the mask covers " + std::to_string(mask.key_len) + " keys but there are " + std::to_string(Tk));

  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  // HF adds (1 - m) * finfo(float32).min to masked scores; the same value here
  // keeps padded queries' outputs identical to HF's.
  const float masked = std::numeric_limits<float>::lowest();
  const int64_t tasks = B * NH;
  const bool parallel = ctx.threads > 1 && tasks > 1;
#pragma omp parallel num_threads(ctx.threads) if (parallel)
  {
    std::vector<float> scores(static_cast<std::size_t>(T * Tk));
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t b = task / NH, h = task % NH;
      const float* qb = q.data() + b * T * H + h * D;
      const float* kb = keys + b * kv_row_stride + h * D;
      const float* vb = vals + b * kv_row_stride + h * D;
      kernels::gemm(false, true, T, Tk, D, scale, qb, H, kb, H, 0.0f, scores.data(), Tk, ctx);
      const uint8_t* valid = mask.key_valid ? mask.key_valid + b * Tk : nullptr;
      for (int64_t i = 0; i < T; ++i) {
        float* row = scores.data() + i * Tk;
        for (int64_t j = 0; j < Tk; ++j) {
          const bool visible = (valid == nullptr || valid[j] != 0) && (!mask.causal || j <= past + i);
          if (!visible) row[j] += masked;
        }
      }
      kernels::softmax_rows(scores.data(), T, Tk, Tk);
      if (probs != nullptr) {
        std::memcpy(probs + task * T * Tk, scores.data(), static_cast<std::size_t>(T * Tk) * sizeof(float));
      }
      kernels::gemm(false, false, T, D, Tk, 1.0f, scores.data(), Tk, vb, H, 0.0f, out + b * T * H + h * D, H, ctx);
    }
  }
}

}  // namespace roformer::nn
