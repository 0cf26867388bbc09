#pragma once
// Fused softmax attention (FlashAttention-2 style) on raw buffers: the
// scores are formed, masked, exponentiated and multiplied into V one
// (64 keys x 64 queries) tile at a time with an online softmax, so nothing
// of size T x Tk is ever stored. Backward recomputes the probabilities tile
// by tile from the saved log-sum-exp.
//
// Letters: B batch, NH heads, T queries, Tk keys, D head size. q, out, dout
// and dq are (B, T, hidden) rows with head h at columns [h*D, h*D + D); k, v,
// dk and dv the same over keys, with their own strides (a KV cache is
// (B, capacity, hidden)). Scores are q.k / sqrt(D).
//
// Masking follows HF (and SelfAttention's materialised path): a hidden key
// gets float lowest added to its score, so it has probability exactly 0 -
// unless the query sees no key at all, in which case every score is the same
// (lowest) and the query averages all Tk keys uniformly. Here such a query's
// scores are taken as 0 for every key, which gives the same probabilities,
// and its log-sum-exp is log(Tk).
//
// The instruction set is ctx.isa (Isa::Scalar runs the same tiles in plain
// C++). Work splits over ctx.threads as (batch row, head, query tile) in the
// forward and (batch row, head) in the backward; each piece is computed by
// one thread in a fixed order, so results do not depend on the thread count.
#include <cstdint>

#include "roformer/cpu.h"

namespace roformer::kernels {

struct FusedAttention {
  int64_t batch = 0, heads = 0, q_len = 0, kv_len = 0, head_dim = 0;
  int64_t past = 0;                  // query i sits at key position past + i (Tk = past + T with a cache)
  int64_t q_row = 0, q_batch = 0;    // floats between tokens / batch rows of q, out, dout, dq
  int64_t kv_row = 0, kv_batch = 0;  // the same for k, v, dk, dv
  const uint8_t* key_valid = nullptr;  // (B, Tk): 0 = padding key; null = every key real
  bool causal = false;                 // query i sees keys j <= past + i
  // QK^T and PV with Q, K, V and the probabilities rounded to bf16 and
  // summed in fp32 (softmax still fp32); the backward then rounds the
  // operands of its products too (dO and dS as well). Taken when it pays and
  // is there (uses_bf16_products); otherwise the products stay fp32. The
  // backward must see the flag the forward saw.
  bool bf16_products = false;
};

// Whether attention_forward_fused runs a's products in bf16 under ctx:
// asked for, head_dim a multiple of 32, at least kBf16MinQueries queries
// (converting K and V costs as much as a few queries' products, so a decode
// step with one query stays fp32), and ctx.isa avx512 on a CPU with
// AVX512-BF16, or scalar (the plain emulation the fast path is tested
// against).
inline constexpr int64_t kBf16MinQueries = 16;
bool uses_bf16_products(const FusedAttention& a, const ExecContext& ctx);

// Floats of scratch the calls below need for ctx.threads threads (the
// caller owns it, so repeated calls allocate nothing).
int64_t attention_forward_scratch(const FusedAttention& a, const ExecContext& ctx);
int64_t attention_backward_scratch(const FusedAttention& a, const ExecContext& ctx);

// out: like q. lse (optional): (B, NH, T) log-sum-exp of each query's scaled,
// masked scores (log(Tk) for a query that sees no key). out_bf16 (optional):
// the output stored there instead, like q but bf16 bits, each value rounded
// (nearest even) from the fp32 value out would hold; out is then not written
// and may be null.
void attention_forward_fused(const FusedAttention& a, const float* q, const float* k, const float* v, float* out,
                             float* lse, float* scratch, const ExecContext& ctx, uint16_t* out_bf16 = nullptr);

// From the forward's inputs, its out and lse, and dout: dq (like q), dk and
// dv (like k), all overwritten.
void attention_backward_fused(const FusedAttention& a, const float* q, const float* k, const float* v,
                              const float* out, const float* dout, const float* lse, float* dq, float* dk, float* dv,
                              float* scratch, const ExecContext& ctx);

}  // namespace roformer::kernels
