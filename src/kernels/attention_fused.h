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
// forward ((batch row, head) on the decoding path, below) and (batch row,
// head) in the backward; each piece is computed by
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

// Up to this many queries (a decoding step) run the decoding path: each
// query scores the keys with dot products along d, instead of the query
// tiles, whose products put queries across vector lanes (one query uses one
// lane in 16). Measured on AVX-512 (12 heads of 64, 512 keys): 2.5x faster
// for one query, even at four, 1.6x slower at eight.
inline constexpr int64_t kDecodeMaxQueries = 4;

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

// Whether a KV cache for attention like a (with a.bf16_products asked) pays
// to hold K and V as bf16, so that a decoding step reads half the bytes:
// where its queries' products would round them to bf16 (uses_bf16_products,
// whatever the number of queries), and where no bf16 products exist at all
// and the caller rounds K and V itself (bf16_kv_rounded_by_caller).
bool bf16_kv_cache_pays(const FusedAttention& a, const ExecContext& ctx);

// Whether a layer with reduced-precision products (a.bf16_products) rounds
// its K and V to bf16 values itself before the attention: on CPUs (or isa)
// without the bf16 products (no AVX512-BF16), which run every attention
// product in fp32; the Scalar reference excepted. K and V are then what a
// bf16 KV cache holds, with or without one.
bool bf16_kv_rounded_by_caller(const FusedAttention& a, const ExecContext& ctx);

// Whether attention_forward_fused_bf16_kv would run a's queries through the
// decoding path only for want of bf16 products (more than kDecodeMaxQueries
// queries, none of the bf16 tiles): a caller that widens K and V to floats
// instead gets the fp32 tiles, as a forward without the cache does.
bool bf16_kv_wants_floats(const FusedAttention& a, const ExecContext& ctx);

// The same with K and V as bf16 bits (a bf16 KV cache), laid out as the
// floats would be. The result is the one attention_forward_fused gives for
// K and V as floats holding those bf16 values, bit for bit where both take
// the same path: the decoding path up to kDecodeMaxQueries queries, and the
// bf16 products where uses_bf16_products holds. From kDecodeMaxQueries + 1
// to kBf16MinQueries - 1 queries with a.bf16_products (where the bf16
// products run at all) the bf16 products take bf16 K and V too, as they have
// nothing to convert; without them every query runs the decoding path.
int64_t attention_forward_scratch_bf16_kv(const FusedAttention& a, const ExecContext& ctx);
void attention_forward_fused_bf16_kv(const FusedAttention& a, const float* q, const uint16_t* k, const uint16_t* v,
                                     float* out, float* lse, float* scratch, const ExecContext& ctx,
                                     uint16_t* out_bf16 = nullptr);

// From the forward's inputs, its out and lse, and dout: dq (like q), dk and
// dv (like k), all overwritten.
void attention_backward_fused(const FusedAttention& a, const float* q, const float* k, const float* v,
                              const float* out, const float* dout, const float* lse, float* dq, float* dk, float* dv,
                              float* scratch, const ExecContext& ctx);

}  // namespace roformer::kernels
