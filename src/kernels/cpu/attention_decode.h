#pragma once
// Attention for a few queries against many keys: a decoding step, one new
// token against its KV cache. The tiles of attention_tiles.h put queries
// across the vector lanes, so a lone query would use one lane in kWidth of
// its score products; here each query's scores are dot products along d,
// kWidth keys at a time (S::sum_lanes turns their kWidth registers into one
// register of kWidth scores), then one softmax pass and one weighted sum of
// V rows. Up to kDecodeGroup queries share each pass over the keys; K and V are
// read in place, as floats or as bf16 bits (a bf16 KV cache), and every sum
// is fp32.
//
// The masking is the tiles': a hidden key gets probability 0, and a query
// that sees no key averages all Tk keys (its scores all taken as 0; its
// log-sum-exp is log(Tk)).
//
// Written once over the traits S of attention_tiles.h, which also provides
// sum_lanes (lane t of the result = the sum of the lanes of register t),
// and load_bf16 (kWidth bf16 bits widened to floats).
#include <cmath>
#include <cstdint>

#include "kernels/cpu/attention_tiles.h"
#include "roformer/dtype.h"

namespace roformer::kernels::attn {

template <class S>
typename S::V load_kv(const float* p) {
  return S::load(p);
}
template <class S>
typename S::V load_kv(const uint16_t* p) {
  return S::load_bf16(p);
}
inline float kv_at(const float* p) { return *p; }
inline float kv_at(const uint16_t* p) { return bf16_to_f32(bf16{*p}); }

// Rows this many keys ahead are prefetched: successive keys of a head are
// kv_row elements apart, a stride the hardware prefetcher follows only
// after a few misses.
inline constexpr int64_t kDecodePrefetchKeys = 8;

template <class E>
void prefetch_row(const E* p, int64_t bytes) {
  for (int64_t at = 0; at < bytes; at += 64) __builtin_prefetch(reinterpret_cast<const char*>(p) + at);
}

// Registers of query-group accumulators for the weighted sum of V.
inline constexpr int kDecodeAccumulators = 16;

// sc[j] = qs . k_j for j < n, kWidth keys at a time (NV > 0: D = NV * kWidth;
// NV = 0: any D, one key at a time, in plain C++ with explicit fused
// multiply-adds, so that no compiler's contraction choice makes float and
// bf16 K differ); sc is padded to a multiple of kWidth and a partial last
// block reads key n - 1 again.
template <class S, class E, int NV>
void key_scores(const float* qs, const E* kb, int64_t ld, int64_t D, int64_t n, float* sc) {
  using V = typename S::V;
  constexpr int64_t W = S::kWidth;
  if constexpr (NV == 0) {
    for (int64_t j = 0; j < n; ++j) {
      float s = 0.0f;
      for (int64_t d = 0; d < D; ++d) s = std::fma(qs[d], kv_at(kb + j * ld + d), s);
      sc[j] = s;
    }
  } else {
    const int64_t row_bytes = D * static_cast<int64_t>(sizeof(E));
    V q[NV];
    for (int c = 0; c < NV; ++c) q[c] = S::load(qs + c * W);
    for (int64_t j0 = 0; j0 < n; j0 += W) {
      V acc[W];
      for (int64_t t = 0; t < W; ++t) {
        const int64_t j = j0 + t < n ? j0 + t : n - 1;
        if (j + kDecodePrefetchKeys < n) prefetch_row(kb + (j + kDecodePrefetchKeys) * ld, row_bytes);
        const E* kr = kb + j * ld;
        acc[t] = S::mul(q[0], load_kv<S>(kr));
        for (int c = 1; c < NV; ++c) acc[t] = S::fmadd(q[c], load_kv<S>(kr + c * W), acc[t]);
      }
      S::store(sc + j0, S::sum_lanes(acc));
    }
  }
}

// o_g[0, D) = inv[g] * sum_{j < n} p_g[j] v_j for the G queries of a group
// (p_g = p + g * ldp, o_g = o + g * ldo); a key that every query gives
// probability 0 (padding) is not read.
template <class S, class E, int NV, int G>
void weighted_values(const float* p, int64_t ldp, const E* vb, int64_t ld, int64_t D, int64_t n, const float* inv,
                     float* o, int64_t ldo) {
  using V = typename S::V;
  constexpr int64_t W = S::kWidth;
  if constexpr (NV == 0) {
    for (int g = 0; g < G; ++g) {
      float* og = o + g * ldo;
      for (int64_t d = 0; d < D; ++d) og[d] = 0.0f;
      for (int64_t j = 0; j < n; ++j) {
        const float pj = p[g * ldp + j];
        if (pj == 0.0f) continue;
        for (int64_t d = 0; d < D; ++d) og[d] = std::fma(pj, kv_at(vb + j * ld + d), og[d]);
      }
      for (int64_t d = 0; d < D; ++d) og[d] *= inv[g];
    }
  } else {
    const int64_t row_bytes = D * static_cast<int64_t>(sizeof(E));
    V acc[G][NV];
    for (int g = 0; g < G; ++g)
      for (int c = 0; c < NV; ++c) acc[g][c] = S::zero();
    for (int64_t j = 0; j < n; ++j) {
      if (j + kDecodePrefetchKeys < n) prefetch_row(vb + (j + kDecodePrefetchKeys) * ld, row_bytes);
      bool any = false;
      for (int g = 0; g < G; ++g) any = any || p[g * ldp + j] != 0.0f;
      if (!any) continue;
      const E* vr = vb + j * ld;
      V row[NV];
      for (int c = 0; c < NV; ++c) row[c] = load_kv<S>(vr + c * W);
      for (int g = 0; g < G; ++g) {
        const V pj = S::set1(p[g * ldp + j]);
        for (int c = 0; c < NV; ++c) acc[g][c] = S::fmadd(pj, row[c], acc[g][c]);
      }
    }
    for (int g = 0; g < G; ++g)
      for (int c = 0; c < NV; ++c) S::store(o + g * ldo + c * W, S::mul(acc[g][c], S::set1(inv[g])));
  }
}

// Queries i0 .. i0 + G - 1 of (batch row b, head h).
template <class S, class E, int NV, int G>
void decode_group(const FusedAttention& a, const AttentionIo& io, const E* kb, const E* vb, int64_t b, int64_t h,
                  int64_t i0, float* scratch) {
  using V = typename S::V;
  constexpr int64_t W = S::kWidth;
  const int64_t D = a.head_dim, Tk = a.kv_len, dp = (D + 15) / 16 * 16, tkp = (Tk + 15) / 16 * 16;
  float* qs = scratch;             // G x dp scaled queries
  float* sc = qs + G * dp;         // G x tkp scores, then probabilities
  float* o = sc + G * tkp;         // G x dp outputs
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const uint8_t* valid = a.key_valid ? a.key_valid + b * Tk : nullptr;
  int64_t n_all = 0;  // keys any query of the group reads
  float m[G], inv[G];
  for (int g = 0; g < G; ++g) {
    const int64_t i = i0 + g;
    const float* qrow = io.q + b * a.q_batch + i * a.q_row + h * D;
    float* qg = qs + g * dp;
    float* sg = sc + g * tkp;
    for (int64_t d = 0; d < D; ++d) qg[d] = qrow[d] * scale;
    int64_t n = a.causal && a.past + i + 1 < Tk ? a.past + i + 1 : Tk;
    key_scores<S, E, NV>(qg, kb, a.kv_row, D, n, sg);
    float mg = kNegInf;
    for (int64_t j = 0; j < n; ++j) {
      if (valid != nullptr && valid[j] == 0) sg[j] = kNegInf;
      mg = sg[j] > mg ? sg[j] : mg;
    }
    if (mg == kNegInf) {  // no visible key: every key, weight 1
      n = Tk;
      for (int64_t j = 0; j < n; ++j) sg[j] = 0.0f;
      mg = 0.0f;
    }
    const int64_t np = (n + W - 1) / W * W;
    for (int64_t j = n; j < tkp; ++j) sg[j] = kNegInf;
    const V mv = S::set1(mg);
    V sum = S::zero();
    for (int64_t j = 0; j < np; j += W) {
      const V e = exp_nonpositive<S>(S::sub(S::load(sg + j), mv));
      S::store(sg + j, e);
      sum = S::add(sum, e);
    }
    alignas(64) float lanes[W];
    S::store(lanes, sum);
    float l = 0.0f;
    for (int64_t t = 0; t < W; ++t) l += lanes[t];
    for (int64_t j = np; j < tkp; ++j) sg[j] = 0.0f;
    m[g] = mg + std::log(l);  // the log-sum-exp
    inv[g] = 1.0f / l;
    n_all = n > n_all ? n : n_all;
  }
  weighted_values<S, E, NV, G>(sc, tkp, vb, a.kv_row, D, n_all, inv, o, dp);
  for (int g = 0; g < G; ++g) {
    const int64_t i = i0 + g;
    const float* og = o + g * dp;
    if (io.out16 != nullptr) {  // rounded as convert_to_bf16 would round the fp32 output
      uint16_t* orow = io.out16 + b * a.q_batch + i * a.q_row + h * D;
      for (int64_t d = 0; d < D; ++d) orow[d] = f32_to_bf16(og[d]).bits;
    } else {
      float* orow = io.out + b * a.q_batch + i * a.q_row + h * D;
      for (int64_t d = 0; d < D; ++d) orow[d] = og[d];
    }
    if (io.lse_out != nullptr) io.lse_out[(b * a.heads + h) * a.q_len + i] = m[g];
  }
}

// Every query of (batch row b, head h), kDecodeGroup (or fewer, as the
// accumulators allow) at a time.
template <class S, class E, int NV>
void decode_queries(const FusedAttention& a, const AttentionIo& io, const E* k, const E* v, int64_t b, int64_t h,
                    float* scratch) {
  constexpr int kFit = NV == 0 ? 1 : kDecodeAccumulators / NV;
  constexpr int kGroup = kFit < kDecodeGroup ? kFit : kDecodeGroup;
  const E* kb = k + b * a.kv_batch + h * a.head_dim;
  const E* vb = v + b * a.kv_batch + h * a.head_dim;
  int64_t i = 0;
  for (; i + kGroup <= a.q_len; i += kGroup) decode_group<S, E, NV, kGroup>(a, io, kb, vb, b, h, i, scratch);
  const int64_t left = a.q_len - i;
  if constexpr (kGroup > 3) {
    if (left == 3) return decode_group<S, E, NV, 3>(a, io, kb, vb, b, h, i, scratch);
  }
  if constexpr (kGroup > 2) {
    if (left == 2) return decode_group<S, E, NV, 2>(a, io, kb, vb, b, h, i, scratch);
  }
  if (left == 1) decode_group<S, E, NV, 1>(a, io, kb, vb, b, h, i, scratch);
}

// decode_queries with the query in registers where D is 1, 2, 4 or 8 registers wide.
template <class S, class E>
void decode_head(const FusedAttention& a, const AttentionIo& io, const E* k, const E* v, int64_t b, int64_t h,
                 float* scratch) {
  constexpr int64_t W = S::kWidth;
  const int64_t D = a.head_dim;
  if constexpr (W > 1) {
    if (D == W) return decode_queries<S, E, 1>(a, io, k, v, b, h, scratch);
    if (D == 2 * W) return decode_queries<S, E, 2>(a, io, k, v, b, h, scratch);
    if (D == 4 * W) return decode_queries<S, E, 4>(a, io, k, v, b, h, scratch);
    if (D == 8 * W) return decode_queries<S, E, 8>(a, io, k, v, b, h, scratch);
  }
  decode_queries<S, E, 0>(a, io, k, v, b, h, scratch);
}

template <class S>
void decode_head(const FusedAttention& a, const AttentionIo& io, int64_t b, int64_t h, float* scratch) {
  if (io.k16 != nullptr) {
    decode_head<S, uint16_t>(a, io, io.k16, io.v16, b, h, scratch);
  } else {
    decode_head<S, float>(a, io, io.k, io.v, b, h, scratch);
  }
}

}  // namespace roformer::kernels::attn
