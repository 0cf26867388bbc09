#include "nn/self_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include <omp.h>

#include "core/grow_buffer.h"
#include "kernels/attention_fused.h"
#include "kernels/bf16_convert.h"
#include "kernels/elementwise.h"
#include "kernels/elementwise_backward.h"
#include "kernels/gemm.h"
#include "roformer/data_rng.h"
#include "roformer/error.h"

namespace roformer::nn {

namespace {

// Rotates the heads of a contiguous (B, T, heads, head_dim) buffer in place.
// positions: I64 [T] (shared by the batch) or [B, T].
void rotate_heads(float* t, int64_t size, int64_t B, int64_t T, int64_t NH, const Tensor& positions, RopeTable& rope,
                  RopeDirection dir, const ExecContext& ctx) {
  const bool per_row = positions.dim() == 2;
  ROFORMER_CHECK((positions.dim() == 1 || per_row) && positions.dtype() == DType::I64 && positions.numel() == (per_row ? B * T : T) &&
                     positions.strides().back() == 1 && (!per_row || positions.strides()[0] == T),
                 "attention: positions must be contiguous int64 of shape [T] or [B, T]");
  ROFORMER_CHECK(size >= B * T * NH * rope.spec().head_dim, "attention: rotary buffer smaller than (B, T, heads, head_dim)");
  rope_apply_inplace(rope, t, B, T, NH, positions.data<int64_t>(), per_row, dir, ctx);
}

void rotate_heads(std::vector<float>& t, int64_t B, int64_t T, int64_t NH, const Tensor& positions, RopeTable& rope,
                  RopeDirection dir, const ExecContext& ctx) {
  rotate_heads(t.data(), static_cast<int64_t>(t.size()), B, T, NH, positions, rope, dir, ctx);
}

// The fused kernel's view of (B, T, hidden) queries against keys/values
// holding Tk positions, batch rows kv_batch floats apart.
kernels::FusedAttention fused_shape(int64_t B, int64_t T, int64_t NH, int64_t D, int64_t Tk, int64_t past,
                                    int64_t kv_batch, const uint8_t* key_valid, bool causal) {
  kernels::FusedAttention fa;
  fa.batch = B;
  fa.heads = NH;
  fa.q_len = T;
  fa.kv_len = Tk;
  fa.head_dim = D;
  fa.past = past;
  fa.q_row = NH * D;
  fa.q_batch = T * NH * D;
  fa.kv_row = NH * D;
  fa.kv_batch = kv_batch;
  fa.key_valid = key_valid;
  fa.causal = causal;
  return fa;
}

}  // namespace

// The fused path runs unless the reference kernels are forced.
bool attention_runs_fused(const ExecContext& ctx) { return ctx.isa != Isa::Scalar; }

namespace {

// The first `keep` positions of every batch row into a buffer of new_cap positions.
template <class E>
void regrow(std::vector<E>& buf, int64_t batch, int64_t cap, int64_t new_cap, int64_t hidden, int64_t keep) {
  std::vector<E> grown(static_cast<std::size_t>(batch * new_cap * hidden));
  const auto n = static_cast<std::size_t>(keep * hidden);
  if (n > 0) {
    for (int64_t b = 0; b < batch; ++b)
      std::memcpy(grown.data() + b * new_cap * hidden, buf.data() + b * cap * hidden, n * sizeof(E));
  }
  buf.swap(grown);
}

// Row r of buf <- row from[r]; `spare` ends up with the old rows.
template <class E>
void gather(std::vector<E>& buf, std::vector<E>& spare, const std::vector<int64_t>& from, int64_t row, int64_t used) {
  spare.resize(buf.size());
  for (std::size_t r = 0; r < from.size(); ++r)
    std::memcpy(spare.data() + static_cast<int64_t>(r) * row, buf.data() + from[r] * row,
                static_cast<std::size_t>(used) * sizeof(E));
  buf.swap(spare);
}

}  // namespace

void LayerKvCache::reserve_more(int64_t batch_size, int64_t hidden_size, int64_t extra, bool as_bf16) {
  if (length == 0 && (batch != batch_size || hidden != hidden_size || bf16_storage != as_bf16)) {
    // fresh, or cleared for other shapes or another storage
    keys.clear();
    values.clear();
    keys16.clear();
    values16.clear();
    capacity = 0;
    batch = batch_size;
    hidden = hidden_size;
    bf16_storage = as_bf16;
  }
  ROFORMER_CHECK(batch == batch_size && hidden == hidden_size, "kv cache: batch size or hidden size changed between steps");
  if (length + extra <= capacity && min_capacity <= capacity) return;
  const int64_t new_cap = min_capacity > capacity ? std::max(length + extra, min_capacity)
                                                  : std::max(length + extra, 2 * capacity);
  if (bf16_storage) {
    regrow(keys16, batch, capacity, new_cap, hidden, length);
    regrow(values16, batch, capacity, new_cap, hidden, length);
  } else {
    regrow(keys, batch, capacity, new_cap, hidden, length);
    regrow(values, batch, capacity, new_cap, hidden, length);
  }
  capacity = new_cap;
}

void LayerKvCache::store(int64_t b, const float* k, const float* v, int64_t n, const ExecContext& ctx) {
  ROFORMER_CHECK(b >= 0 && b < batch && n >= 0 && length + n <= capacity, "kv cache: no room for the new positions");
  const int64_t off = (b * capacity + length) * hidden;
  if (bf16_storage) {
    kernels::convert_to_bf16(k, n * hidden, keys16.data() + off, ctx);
    kernels::convert_to_bf16(v, n * hidden, values16.data() + off, ctx);
  } else {
    std::memcpy(keys.data() + off, k, static_cast<std::size_t>(n * hidden) * sizeof(float));
    std::memcpy(values.data() + off, v, static_cast<std::size_t>(n * hidden) * sizeof(float));
  }
}

void LayerKvCache::to_floats(std::vector<float>& k, std::vector<float>& v) const {
  const int64_t n = length * hidden;
  auto at = [this](const std::vector<float>& f, const std::vector<uint16_t>& h, int64_t i) {
    return bf16_storage ? bf16_to_f32(roformer::bf16{h[static_cast<std::size_t>(i)]}) : f[static_cast<std::size_t>(i)];
  };
  k.resize(static_cast<std::size_t>(batch * n));
  v.resize(k.size());
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < n; ++i) {
      k[static_cast<std::size_t>(b * n + i)] = at(keys, keys16, b * capacity * hidden + i);
      v[static_cast<std::size_t>(b * n + i)] = at(values, values16, b * capacity * hidden + i);
    }
}

void LayerKvCache::gather_rows(const std::vector<int64_t>& from) {
  ROFORMER_CHECK(static_cast<int64_t>(from.size()) == batch, "kv cache: gather needs one source row per row");
  for (int64_t f : from) ROFORMER_CHECK(f >= 0 && f < batch, "kv cache: gather from a row it does not have");
  if (length == 0) return;
  const int64_t row = capacity * hidden, used = length * hidden;
  if (bf16_storage) {
    gather(keys16, spare16, from, row, used);
    gather(values16, spare16, from, row, used);
  } else {
    gather(keys, spare, from, row, used);
    gather(values, spare, from, row, used);
  }
}

bool SelfAttention::forward(const float* x, int64_t B, int64_t T, const Tensor& positions, RopeTable& rope,
                            const AttentionMask& mask, LayerKvCache* cache, float* out, float* probs,
                            const ExecContext& ctx, float* workspace, const kernels::PackedInput* x_prepared,
                            uint16_t* out_bf16) const {
  const int64_t H = hidden(), NH = heads, D = head_dim();
  const int64_t rows = B * T;
  std::vector<float> owned;
  if (workspace == nullptr) {
    owned.resize(static_cast<std::size_t>(3 * rows * H));
    workspace = owned.data();
  }
  // Views named like the vectors they replace (q.data() reads as before).
  struct Span {
    float* p;
    float* data() const { return p; }
  };
  const Span q{workspace}, k{workspace + rows * H}, v{workspace + 2 * rows * H};
  forward_same_input(x, rows, {{query, q.data()}, {key, k.data()}, {value, v.data()}}, ctx, x_prepared);
  if (linear) {
    ROFORMER_CHECK(cache == nullptr, "linear attention: incremental decoding with a KV cache is not supported; run the full sequence");
    ROFORMER_CHECK(probs == nullptr, "linear attention has no attention probabilities to return");
    ROFORMER_CHECK(mask.causal == linear->config().causal, "linear attention: built for a different causal setting");
    ROFORMER_CHECK(mask.key_valid == nullptr || mask.key_len == T, "attention: mask length differs from the sequence length");
    linear->forward(q.data(), k.data(), v.data(), B, T, positions.data<int64_t>(), mask.key_valid, out, nullptr, ctx);
    return false;
  }

  // Rotate per head by each token's absolute position (HF: after bias, before scores).
  // The fused path keeps this separate pass rather than rotating Q/K tiles as
  // it loads them: bench_attention (12 heads x 64, T = 2048, 1 thread, Zen 4)
  // measures the pass over Q and K at 0.41 ms against 78 ms for the fused
  // forward (0.5%), so fusing could save at most that, while rotating on load
  // would redo each key tile's rotation for every query tile (T/64 times) and
  // need a packed copy of K, which the kernel now reads in place.
  auto rotate = [&](const Span& t) {
    rotate_heads(t.data(), rows * H, B, T, NH, positions, rope, RopeDirection::Forward, ctx);
  };
  if (use_rope) {
    rotate(q);
    rotate(k);
    if (rotary_value) rotate(v);
  }

  // Keys/values seen by the queries: the cache (past + new) or the new ones alone.
  const float* keys = k.data();
  const float* vals = v.data();
  int64_t past = 0, Tk = T, kv_row_stride = T * H;  // floats between batch rows
  // A layer whose products run in bf16 or int8 runs its attention products
  // in bf16 (where the CPU has AVX512-BF16): their rounding is far below
  // int8's, and at T = 512 they make an int8 forward about 17 % faster.
  const bool bf16_products = query.packed != nullptr && query.packed->precision() != kernels::MatmulPrecision::F32;
  const bool fused = probs == nullptr && attention_runs_fused(ctx);
  if (cache != nullptr) past = cache->length;
  kernels::FusedAttention want = fused_shape(B, T, NH, D, past + T, past, 0, nullptr, false);
  want.bf16_products = bf16_products;
  // Without bf16 attention products on this CPU, a reduced-precision layer
  // rounds K and V to bf16 values itself: what its bf16 KV cache holds, so a
  // prompt through the cache gives what it gives without one.
  if (fused && kernels::bf16_kv_rounded_by_caller(want, ctx)) {
    kernels::round_to_bf16_values(k.data(), rows * H, k.data(), ctx);
    kernels::round_to_bf16_values(v.data(), rows * H, v.data(), ctx);
  }
  // The fused kernel's scratch, reused by the next forward on this thread:
  // inference allocates nothing once warm.
  thread_local std::vector<float> scratch;
  if (mask.sequence_starts != nullptr) {
    ROFORMER_CHECK(B == 1 && cache == nullptr && mask.key_valid == nullptr && fused,
                   "attention: packed sequences need one row of them, no cache, no padding mask and the fused kernel");
    const int64_t* starts = mask.sequence_starts;
    ROFORMER_CHECK(mask.sequences >= 1 && starts[0] == 0 && starts[mask.sequences] == T,
                   "attention: packed sequences must cover the rows");
    // One call per sequence, each with its rows alone: the kernel's threads
    // split its heads and query tiles.
    for (int64_t s = 0; s < mask.sequences; ++s) {
      const int64_t first = starts[s], len = starts[s + 1] - starts[s];
      ROFORMER_CHECK(len >= 0, "attention: packed sequence starts must not decrease");
      if (len == 0) continue;
      kernels::FusedAttention fa = fused_shape(1, len, NH, D, len, 0, len * H, nullptr, mask.causal);
      fa.bf16_products = bf16_products;
      grow_to(scratch, kernels::attention_forward_scratch(fa, ctx));
      const int64_t at = first * H;
      kernels::attention_forward_fused(fa, q.data() + at, k.data() + at, v.data() + at, out + at, nullptr,
                                       scratch.data(), ctx, out_bf16 != nullptr ? out_bf16 + at : nullptr);
    }
    return out_bf16 != nullptr;
  }

  // A bf16 cache as floats: for the materialised path, and for a prompt
  // whose queries the bf16 K and V would send down the decoding path.
  thread_local std::vector<float> cached_k, cached_v;
  bool bf16_kv = false;
  if (cache != nullptr) {
    cache->reserve_more(B, H, T, kernels::bf16_kv_cache_pays(want, ctx));
    for (int64_t b = 0; b < B; ++b) cache->store(b, k.data() + b * T * H, v.data() + b * T * H, T, ctx);
    cache->length = past + T;
    Tk = past + T;
    kv_row_stride = cache->capacity * H;
    if (!cache->bf16_storage) {
      keys = cache->keys.data();
      vals = cache->values.data();
    } else if (!fused || kernels::bf16_kv_wants_floats(want, ctx)) {
      cache->to_floats(cached_k, cached_v);
      keys = cached_k.data();
      vals = cached_v.data();
      kv_row_stride = Tk * H;
    } else {
      bf16_kv = true;
    }
  }
  ROFORMER_CHECK(mask.key_valid == nullptr || mask.key_len == Tk,
        "attention: the mask covers " + std::to_string(mask.key_len) + " keys but there are " + std::to_string(Tk));

  if (fused) {
    kernels::FusedAttention fa = fused_shape(B, T, NH, D, Tk, past, kv_row_stride, mask.key_valid, mask.causal);
    fa.bf16_products = bf16_products;
    grow_to(scratch, bf16_kv ? kernels::attention_forward_scratch_bf16_kv(fa, ctx)
                             : kernels::attention_forward_scratch(fa, ctx));
    if (bf16_kv) {
      kernels::attention_forward_fused_bf16_kv(fa, q.data(), cache->keys16.data(), cache->values16.data(), out,
                                               nullptr, scratch.data(), ctx, out_bf16);
    } else {
      kernels::attention_forward_fused(fa, q.data(), keys, vals, out, nullptr, scratch.data(), ctx, out_bf16);
    }
    return out_bf16 != nullptr;
  }

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
  return false;
}

namespace {

// The independent attention problems of a training pass: the batch rows of
// a padded batch (T rows each, with their padding mask), or the sequences
// packed into one row (each its own rows, no mask).
struct TrainSegments {
  int64_t count = 0;
  int64_t T = 0;
  const int64_t* starts = nullptr;  // packed: count + 1 row offsets
  int64_t first(int64_t s) const { return starts != nullptr ? starts[s] : s * T; }
  int64_t len(int64_t s) const { return starts != nullptr ? starts[s + 1] - starts[s] : T; }
  int64_t longest() const {
    int64_t n = 0;
    for (int64_t s = 0; s < count; ++s) n = std::max(n, len(s));
    return n;
  }
};

TrainSegments train_segments(int64_t B, int64_t T, const int64_t* starts, int64_t sequences) {
  return TrainSegments{starts != nullptr ? sequences : B, T, starts};
}

// Where each segment's (heads, len, len) probabilities start, and the total.
void probability_offsets(const TrainSegments& seg, int64_t NH, std::vector<int64_t>& at) {
  at.assign(static_cast<std::size_t>(seg.count + 1), 0);
  for (int64_t s = 0; s < seg.count; ++s) at[s + 1] = at[s] + NH * seg.len(s) * seg.len(s);
}

// Runs call(fa, first_row) for each fused-kernel call of a training pass:
// one for a padded batch, one per non-empty packed sequence.
template <class Call>
void for_each_fused_call(const TrainSegments& seg, int64_t NH, int64_t D, const uint8_t* key_valid, bool causal,
                         bool bf16_products, Call&& call) {
  const int64_t H = NH * D;
  if (seg.starts == nullptr) {
    kernels::FusedAttention fa = fused_shape(seg.count, seg.T, NH, D, seg.T, 0, seg.T * H, key_valid, causal);
    fa.bf16_products = bf16_products;
    call(fa, int64_t{0});
    return;
  }
  for (int64_t s = 0; s < seg.count; ++s) {
    const int64_t n = seg.len(s);
    if (n == 0) continue;
    kernels::FusedAttention fa = fused_shape(1, n, NH, D, n, 0, n * H, nullptr, causal);
    fa.bf16_products = bf16_products;
    call(fa, seg.first(s));
  }
}

}  // namespace

void SelfAttention::forward_train(const float* x, int64_t B, int64_t T, const Tensor& positions, RopeTable& rope,
                                  const AttentionMask& mask, AttentionSaved& saved, float* out,
                                  const ExecContext& ctx, const AttentionDropout& dropout) const {
  const int64_t H = hidden(), NH = heads, D = head_dim(), rows = B * T;
  const bool packed = mask.sequence_starts != nullptr;
  if (packed) {
    const int64_t* starts = mask.sequence_starts;
    ROFORMER_CHECK(B == 1 && mask.key_valid == nullptr && linear == nullptr,
                   "attention: packed training sequences need one row of them, no padding mask and softmax attention");
    ROFORMER_CHECK(mask.sequences >= 1 && starts[0] == 0 && starts[mask.sequences] == T,
                   "attention: packed sequences must cover the rows");
    for (int64_t s = 0; s < mask.sequences; ++s)
      ROFORMER_CHECK(starts[s + 1] >= starts[s], "attention: packed sequence starts must not decrease");
    saved.sequence_starts.assign(starts, starts + mask.sequences + 1);
  } else {
    saved.sequence_starts.clear();
  }
  grow_to(saved.q, rows * H);
  grow_to(saved.k, rows * H);
  grow_to(saved.v, rows * H);
  query.forward(x, rows, saved.q.data(), ctx);
  key.forward(x, rows, saved.k.data(), ctx);
  value.forward(x, rows, saved.v.data(), ctx);
  if (linear) {
    ROFORMER_CHECK(mask.causal == linear->config().causal, "linear attention: built for a different causal setting");
    ROFORMER_CHECK(mask.key_valid == nullptr || mask.key_len == T, "attention: mask length differs from the sequence length");
    linear->forward(saved.q.data(), saved.k.data(), saved.v.data(), B, T, positions.data<int64_t>(), mask.key_valid,
                    out, &saved.linear, ctx);
    saved.key_valid.assign(mask.key_valid, mask.key_valid ? mask.key_valid + B * T : mask.key_valid);
    return;
  }
  saved.dropout = dropout.p;
  saved.fused = dropout.p == 0.0f && attention_runs_fused(ctx);
  if (use_rope) {
    rotate_heads(saved.q, B, T, NH, positions, rope, RopeDirection::Forward, ctx);
    rotate_heads(saved.k, B, T, NH, positions, rope, RopeDirection::Forward, ctx);
    if (rotary_value) rotate_heads(saved.v, B, T, NH, positions, rope, RopeDirection::Forward, ctx);
  }
  ROFORMER_CHECK(mask.key_valid == nullptr || mask.key_len == T, "attention: mask length differs from the sequence length");
  const TrainSegments seg = train_segments(B, T, mask.sequence_starts, mask.sequences);
  saved.key_valid.assign(mask.key_valid, mask.key_valid ? mask.key_valid + B * T : mask.key_valid);
  saved.causal = mask.causal;
  if (saved.fused) {
    // Every buffer keeps its size from step to step, so a repeated step allocates nothing.
    // Mixed precision: the attention's products in bf16 like every other
    // product of the step (the backward follows the flag saved here).
    saved.bf16_products = ctx.bf16_products && ctx.bf16_attention;
    grow_to(saved.lse, rows * NH);  // a packed sequence's (heads, len) from NH * first on
    int64_t need = 0;
    for_each_fused_call(seg, NH, D, mask.key_valid, mask.causal, saved.bf16_products,
                        [&](const kernels::FusedAttention& fa, int64_t) {
                          need = std::max({need, kernels::attention_forward_scratch(fa, ctx),
                                           kernels::attention_backward_scratch(fa, ctx)});
                        });
    grow_to(saved.scratch, need);
    for_each_fused_call(seg, NH, D, mask.key_valid, mask.causal, saved.bf16_products,
                        [&](const kernels::FusedAttention& fa, int64_t first) {
                          const int64_t at = first * H;
                          kernels::attention_forward_fused(fa, saved.q.data() + at, saved.k.data() + at,
                                                           saved.v.data() + at, out + at, saved.lse.data() + first * NH,
                                                           saved.scratch.data(), ctx);
                        });
    saved.context.assign(out, out + rows * H);
    return;
  }
  probability_offsets(seg, NH, saved.probs_at);
  grow_to(saved.probs, saved.probs_at.back());
  if (dropout.p > 0.0f) {
    grow_to(saved.keep, saved.probs_at.back());
    grow_to(saved.dropped, saved.probs_at.back());
  }

  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const float masked = std::numeric_limits<float>::lowest();
  const int64_t tasks = seg.count * NH;
#pragma omp parallel for num_threads(ctx.threads) if (ctx.threads > 1 && tasks > 1) schedule(static)
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t s = task / NH, h = task % NH, n = seg.len(s);
    if (n == 0) continue;
    const int64_t at = saved.probs_at[s] + h * n * n, off = seg.first(s) * H + h * D;
    float* p = saved.probs.data() + at;
    kernels::gemm(false, true, n, n, D, scale, saved.q.data() + off, H, saved.k.data() + off, H, 0.0f, p, n, ctx);
    const uint8_t* valid = mask.key_valid ? mask.key_valid + s * T : nullptr;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j)
        if ((valid != nullptr && valid[j] == 0) || (mask.causal && j > i)) p[i * n + j] += masked;
    kernels::softmax_rows(p, n, n, n);
    const float* used = p;
    if (dropout.p > 0.0f) {
      float* pd = saved.dropped.data() + at;
      std::memcpy(pd, p, static_cast<std::size_t>(n * n) * sizeof(float));
      // One seed per (sequence, head): the masks do not depend on the thread count.
      kernels::dropout_forward(pd, saved.keep.data() + at, n * n, dropout.p,
                               derive_seed(dropout.seed, static_cast<uint64_t>(task)));
      used = pd;
    }
    kernels::gemm(false, false, n, D, n, 1.0f, used, n, saved.v.data() + off, H, 0.0f, out + off, H, ctx);
  }
}

void SelfAttention::backward(const float* x, const AttentionSaved& saved, const float* dout, int64_t B, int64_t T,
                             const Tensor& positions, RopeTable& rope, float* dx, const SelfAttention& grad,
                             const ExecContext& ctx) const {
  const int64_t H = hidden(), NH = heads, D = head_dim(), rows = B * T;
  std::vector<float>& dq = saved.dq;
  std::vector<float>& dk = saved.dk;
  std::vector<float>& dv = saved.dv;
  grow_to(dq, rows * H);
  grow_to(dk, rows * H);
  grow_to(dv, rows * H);
  if (linear) {
    linear->backward(saved.q.data(), saved.k.data(), saved.v.data(), saved.linear, dout, B, T, positions.data<int64_t>(),
                     saved.key_valid.empty() ? nullptr : saved.key_valid.data(), dq.data(), dk.data(), dv.data(), ctx);
    query.backward(x, dq.data(), rows, dx, true, grad.query, ctx);
    key.backward(x, dk.data(), rows, dx, true, grad.key, ctx);
    value.backward(x, dv.data(), rows, dx, true, grad.value, ctx);
    return;
  }
  const bool packed = !saved.sequence_starts.empty();
  ROFORMER_CHECK(!packed || (B == 1 && saved.sequence_starts.back() == T),
                 "attention: backward of packed sequences with another shape than their forward");
  const TrainSegments seg = train_segments(B, T, packed ? saved.sequence_starts.data() : nullptr,
                                           static_cast<int64_t>(saved.sequence_starts.size()) - 1);
  const uint8_t* key_valid = saved.key_valid.empty() ? nullptr : saved.key_valid.data();
  if (saved.fused) {
    for_each_fused_call(seg, NH, D, key_valid, saved.causal, saved.bf16_products,
                        [&](const kernels::FusedAttention& fa, int64_t first) {
                          grow_to(saved.scratch, kernels::attention_backward_scratch(fa, ctx));
                          const int64_t at = first * H;
                          kernels::attention_backward_fused(fa, saved.q.data() + at, saved.k.data() + at,
                                                            saved.v.data() + at, saved.context.data() + at, dout + at,
                                                            saved.lse.data() + first * NH, dq.data() + at,
                                                            dk.data() + at, dv.data() + at, saved.scratch.data(), ctx);
                        });
  } else {
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
    const int64_t tasks = seg.count * NH, longest = seg.longest();
    const bool parallel = ctx.threads > 1 && tasks > 1;
    grow_to(saved.dp, (parallel ? ctx.threads : 1) * longest * longest);
#pragma omp parallel num_threads(ctx.threads) if (parallel)
    {
      float* dp = saved.dp.data() + (parallel ? omp_get_thread_num() : 0) * longest * longest;
#pragma omp for schedule(static)
      for (int64_t task = 0; task < tasks; ++task) {
        const int64_t s = task / NH, h = task % NH, n = seg.len(s);
        if (n == 0) continue;
        const int64_t at = saved.probs_at[s] + h * n * n, off = seg.first(s) * H + h * D;
        const float* p = saved.probs.data() + at;
        const bool dropped = saved.dropout > 0.0f;
        const float* used = dropped ? saved.dropped.data() + at : p;
        // dP = dO V^T, dV = P^T dO, dS = softmax'(dP), dQ = dS K s, dK = dS^T Q s
        // (with dropout, P^T is the dropped P, and dP passes back through the mask first)
        kernels::gemm(false, true, n, n, D, 1.0f, dout + off, H, saved.v.data() + off, H, 0.0f, dp, n, ctx);
        kernels::gemm(true, false, n, D, n, 1.0f, used, n, dout + off, H, 0.0f, dv.data() + off, H, ctx);
        if (dropped) kernels::dropout_backward(dp, saved.keep.data() + at, dp, n * n, saved.dropout);
        kernels::softmax_backward_rows(p, dp, dp, n, n);
        kernels::gemm(false, false, n, D, n, scale, dp, n, saved.k.data() + off, H, 0.0f, dq.data() + off, H, ctx);
        kernels::gemm(true, false, n, D, n, scale, dp, n, saved.q.data() + off, H, 0.0f, dk.data() + off, H, ctx);
      }
    }
  }
  // The rotation's gradient is the inverse rotation.
  if (use_rope) {
    rotate_heads(dq, B, T, NH, positions, rope, RopeDirection::Backward, ctx);
    rotate_heads(dk, B, T, NH, positions, rope, RopeDirection::Backward, ctx);
    if (rotary_value) rotate_heads(dv, B, T, NH, positions, rope, RopeDirection::Backward, ctx);
  }
  query.backward(x, dq.data(), rows, dx, true, grad.query, ctx);
  key.backward(x, dk.data(), rows, dx, true, grad.key, ctx);
  value.backward(x, dv.data(), rows, dx, true, grad.value, ctx);
}

}  // namespace roformer::nn
