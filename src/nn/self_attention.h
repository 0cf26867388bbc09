#pragma once
// Multi-head self-attention with RoPE, as HF's RoFormerSelfAttention:
// project Q, K, V; rotate Q and K (and V when rotary_value) per head by
// each token's position; softmax(Q K^T / sqrt(d) + mask) V. Keys and values
// of earlier steps can come from a cache (causal decoding); cached keys are
// stored already rotated.
#include <cstdint>
#include <memory>
#include <vector>

#include "nn/linear.h"
#include "nn/linear_attention.h"
#include "roformer/rope.h"

namespace roformer::nn {

// Keys and values of one layer for every batch row: (B, capacity, hidden),
// the first `length` positions filled; as floats, or as bf16 bits where the
// layer's attention rounds them to bf16 anyway (kernels::bf16_kv_cache_pays):
// a decoding step then reads half the bytes.
struct LayerKvCache {
  std::vector<float> keys, values;        // unless bf16_storage
  std::vector<uint16_t> keys16, values16;  // if bf16_storage
  bool bf16_storage = false;
  int64_t batch = 0, capacity = 0, length = 0, hidden = 0;
  int64_t min_capacity = 0;  // positions to make room for at once when growing (KvCache::reserve)

  // Makes room for `extra` more positions (at least min_capacity in all, else
  // doubling), keeping what is stored. An empty cache (length 0) takes the
  // batch size, hidden size and storage (bf16 or not) given; a filled one
  // keeps its storage and must be given its batch and hidden size.
  void reserve_more(int64_t batch_size, int64_t hidden_size, int64_t extra, bool as_bf16 = false);
  // Stores n positions of batch row b, from position `length` on (room made).
  void store(int64_t b, const float* k, const float* v, int64_t n, const ExecContext& ctx);
  // Positions [0, length) of every batch row as floats, (B, length, hidden).
  void to_floats(std::vector<float>& k, std::vector<float>& v) const;
  // Batch row r takes what row from[r] held (beam search).
  void gather_rows(const std::vector<int64_t>& from);

  // gather_rows' other buffers, kept so that repeated calls do not allocate.
  std::vector<float> spare;
  std::vector<uint16_t> spare16;
};

struct AttentionMask {
  // Key padding: (B, Tk) with 1 for real keys, 0 for padding; empty = all real.
  const uint8_t* key_valid = nullptr;
  int64_t key_len = 0;
  bool causal = false;  // query t (absolute past+t) sees keys <= past+t
  // Packed sequences (B = 1, no cache, no key_valid): rows [starts[s],
  // starts[s + 1]) of the T rows are sequence s of `sequences`, back to back,
  // and each attends within itself only (the positions passed are each
  // token's within its sequence).
  const int64_t* sequence_starts = nullptr;
  int64_t sequences = 0;
};

// Whether forward runs the fused kernel under ctx (not with Isa::Scalar,
// which keeps the materialised reference); packed sequences need it in
// forward (forward_train runs them either way).
bool attention_runs_fused(const ExecContext& ctx);

// What the training forward keeps for backward.
struct AttentionSaved {
  std::vector<float> q, k, v;  // (B, T, hidden), after rotation
  std::vector<float> probs;    // (B, heads, T, T); materialised path only
  // Packed sequences (AttentionMask::sequence_starts): their starts, and
  // where each one's (heads, len, len) block of probs starts; empty otherwise.
  std::vector<int64_t> sequence_starts;
  std::vector<int64_t> probs_at;
  // Fused path (no attention dropout, ctx.isa not Scalar): instead of probs,
  // the log-sum-exp of each query's scores and the context itself; backward
  // recomputes the probabilities tile by tile.
  bool fused = false;
  std::vector<float> lse;      // (B, heads, T); packed: each sequence's (heads, len) from heads * first row
  std::vector<float> context;  // (B, T, hidden), the forward's out
  bool causal = false;         // the forward's mask (key_valid below holds the padding)
  bool bf16_products = false;  // the forward's FusedAttention::bf16_products
  // Attention dropout (training): the kept-mask and the dropped
  // probabilities that multiplied V; empty when dropout is off.
  std::vector<uint8_t> keep;
  std::vector<float> dropped;
  float dropout = 0.0f;
  LinearAttentionSaved linear;  // linear attention: what its backward needs (q, k, v above are unrotated)
  std::vector<uint8_t> key_valid;  // linear and fused attention: the padding mask of the forward
  // Backward's scratch, kept so that repeated steps do not allocate.
  mutable std::vector<float> dq, dk, dv, dp;
  mutable std::vector<float> scratch;  // the fused kernels' workspace
};

// Dropout of the attention probabilities for one training forward.
struct AttentionDropout {
  float p = 0.0f;      // 0: off
  uint64_t seed = 0;   // masks are drawn per (batch row, head) from this seed
};

struct SelfAttention {
  Linear query, key, value;
  int64_t heads = 0;
  bool rotary_value = false;
  bool use_rope = true;  // false: positions enter elsewhere (absolute/sinusoidal embeddings) or not at all
  // Set: the paper's RoPE linear attention (eq. 19) replaces softmax attention
  // after the projections; it rotates its features itself and has no
  // probabilities (no attention dropout, no cache).
  std::shared_ptr<const LinearAttention> linear;

  int64_t hidden() const { return query.out_features(); }
  int64_t head_dim() const { return hidden() / heads; }

  // x: (B, T, hidden) -> out: (B, T, hidden), the context before the output
  // projection. positions: I64 (T) absolute positions of the new tokens.
  // probs (optional): (B, heads, T, Tk) softmax probabilities. Without probs
  // (and unless ctx.isa is Scalar, which keeps the materialised reference)
  // the fused kernel runs and no (T, Tk) matrix is formed.
  // workspace (optional): 3·B·T·hidden floats for q, k and v, so that a
  // caller with a free buffer (the encoder's FFN activations) spares the
  // allocation; without it they are allocated here.
  // x_prepared (optional): x already prepared for the query pack (see
  // nn::forward_same_input).
  // out_bf16 (optional): where the fused kernel runs, it stores the output
  // here rounded to bf16 (the bits convert_to_bf16 gives for out's values)
  // instead of into out, and forward returns true (for a caller feeding a
  // native bf16 product); otherwise out holds it and forward returns false.
  bool forward(const float* x, int64_t B, int64_t T, const Tensor& positions, RopeTable& rope,
               const AttentionMask& mask, LayerKvCache* cache, float* out, float* probs,
               const ExecContext& ctx, float* workspace = nullptr,
               const kernels::PackedInput* x_prepared = nullptr, uint16_t* out_bf16 = nullptr) const;

  // Training forward (no cache): like forward, keeping q, k, v and the
  // probabilities - or, without attention dropout and unless ctx.isa is
  // Scalar, the fused kernel's log-sum-exp and output (O(T) per head, not O(T^2)).
  // Packed sequences (mask.sequence_starts, B = 1, softmax attention) run
  // either way, each on its own rows: len^2 probabilities, not T^2.
  void forward_train(const float* x, int64_t B, int64_t T, const Tensor& positions, RopeTable& rope,
                     const AttentionMask& mask, AttentionSaved& saved, float* out, const ExecContext& ctx,
                     const AttentionDropout& dropout = {}) const;
  // dout: gradient of the context (B, T, hidden). dx is added to (the
  // residual stream already holds the other path's gradient); grad's
  // weights accumulate.
  void backward(const float* x, const AttentionSaved& saved, const float* dout, int64_t B, int64_t T,
                const Tensor& positions, RopeTable& rope, float* dx, const SelfAttention& grad,
                const ExecContext& ctx) const;
};

}  // namespace roformer::nn
