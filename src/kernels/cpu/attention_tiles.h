#pragma once
// The fused attention's tiles, written once over a traits type S (as
// gelu_simd.h) so the plain, AVX2 and AVX-512 files share the algorithm.
// Every function is a template on S and each S lives in an anonymous
// namespace of a file compiled for its instruction set, so the linker cannot
// hand one file's wider instantiation to another.
//
// S provides the register V, kWidth lanes, kRows x kVecs register blocking of
// the tile products, load / store (unaligned), zero, set1, add, mul, max,
// and what exp_nonpositive (gelu_simd.h) needs.
//
// Scores are kept transposed, keys down and queries across ((Bk, Bq) tiles):
// S^T = K Q^T reads K rows in place as broadcast scalars against the query
// tile transposed once per task, and every per-query statistic of the online
// softmax (max, sum, rescale) is then a plain vector operation across lanes.
#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/attention_fused_kernels.h"
#include "kernels/cpu/gelu_simd.h"

namespace roformer::kernels::attn {

using simd::exp_nonpositive;

inline constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// C[m, 0..n) (= or +=) sum_k A(m, k) * B[k, 0..n) for a block of R rows and
// NV registers, A(m, k) = a[m * ars + k * acs] (either A or A^T in memory).
template <class S, int R, int NV, bool Acc>
void micro(int64_t K, const float* a, int64_t ars, int64_t acs, const float* b, int64_t ldb, float* c, int64_t ldc) {
  using V = typename S::V;
  constexpr int64_t W = S::kWidth;
  V acc[R][NV];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[r][v] = Acc ? S::load(c + r * ldc + v * W) : S::zero();
  for (int64_t k = 0; k < K; ++k) {
    V bv[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) bv[v] = S::load(b + k * ldb + v * W);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const V av = S::set1(a[r * ars + k * acs]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[r][v] = S::fmadd(av, bv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) S::store(c + r * ldc + v * W, acc[r][v]);
}

// The last `left` (< kRows) rows.
template <class S, int R, int NV, bool Acc>
void tail_rows(int64_t left, int64_t K, const float* a, int64_t ars, int64_t acs, const float* b, int64_t ldb,
               float* c, int64_t ldc) {
  if constexpr (R > 0) {
    if (left == R) micro<S, R, NV, Acc>(K, a, ars, acs, b, ldb, c, ldc);
    else tail_rows<S, R - 1, NV, Acc>(left, K, a, ars, acs, b, ldb, c, ldc);
  }
}

template <class S, int NV, bool Acc>
void rows(int64_t M, int64_t K, const float* a, int64_t ars, int64_t acs, const float* b, int64_t ldb, float* c,
          int64_t ldc) {
  constexpr int R = S::kRows;
  int64_t m = 0;
  for (; m + R <= M; m += R) micro<S, R, NV, Acc>(K, a + m * ars, ars, acs, b, ldb, c + m * ldc, ldc);
  if (m < M) tail_rows<S, R - 1, NV, Acc>(M - m, K, a + m * ars, ars, acs, b, ldb, c + m * ldc, ldc);
}

// C (M, N) (= or +=) A (M, K) B (K, N); N a multiple of kWidth, B's and C's
// rows padded to it. Each C value is one chain of FMAs over k in order, so
// it does not depend on M, N or the blocking.
template <class S, bool Acc>
void gemm_tile(int64_t M, int64_t N, int64_t K, const float* a, int64_t ars, int64_t acs, const float* b, int64_t ldb,
               float* c, int64_t ldc) {
  constexpr int64_t W = S::kWidth;
  constexpr int NV = S::kVecs;
  int64_t n = 0;
  for (; n + NV * W <= N; n += NV * W) rows<S, NV, Acc>(M, K, a, ars, acs, b + n, ldb, c + n, ldc);
  const int64_t left = (N - n) / W;
  if constexpr (NV > 3) {
    if (left == 3) rows<S, 3, Acc>(M, K, a, ars, acs, b + n, ldb, c + n, ldc);
  }
  if constexpr (NV > 2) {
    if (left == 2) rows<S, 2, Acc>(M, K, a, ars, acs, b + n, ldb, c + n, ldc);
  }
  if (left == 1) rows<S, 1, Acc>(M, K, a, ars, acs, b + n, ldb, c + n, ldc);
}

template <class S>
constexpr int64_t round_up(int64_t n) {
  return (n + S::kWidth - 1) / S::kWidth * S::kWidth;
}

// Queries [0, n) of this batch row see no key (padding before them, and the
// causal limit): the result is always a prefix.
template <class S>
int64_t fully_masked_prefix(const FusedAttention& a, const uint8_t* valid) {
  if (valid == nullptr) return 0;
  int64_t first = 0;
  while (first < a.kv_len && valid[first] == 0) ++first;
  if (!a.causal) return first == a.kv_len ? a.q_len : 0;
  const int64_t n = first - a.past;
  return n < 0 ? 0 : (n > a.q_len ? a.q_len : n);
}

// Masks a transposed score tile st (kt keys from j0, rows of ld floats) for
// queries q0 + [0, width): hidden scores become -inf; queries [0, nfm) of the
// tile see no key at all and get 0 for every real key.
template <class S>
void mask_scores(const FusedAttention& a, const uint8_t* valid, int64_t j0, int64_t kt, int64_t q0, int64_t nfm,
                 int64_t width, float* st, int64_t ld) {
  for (int64_t c = 0; c < kt; ++c) {
    const int64_t j = j0 + c;
    float* row = st + c * ld;
    for (int64_t i = 0; i < nfm; ++i) row[i] = 0.0f;
    int64_t hide_end = nfm;  // queries [nfm, hide_end) do not see key j
    if (valid != nullptr && valid[j] == 0) {
      hide_end = width;
    } else if (a.causal) {
      const int64_t first_seeing = j - a.past - q0;  // query i sees j iff past + q0 + i >= j
      hide_end = first_seeing < nfm ? nfm : (first_seeing > width ? width : first_seeing);
    }
    for (int64_t i = nfm; i < hide_end; ++i) row[i] = kNegInf;
  }
}

// Copies n rows of D floats (stride ld) into rows of dp floats, zero beyond D.
template <class S>
void pack_rows(const float* x, int64_t ld, int64_t n, int64_t D, int64_t dp, float* out) {
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t d = 0; d < D; ++d) out[r * dp + d] = x[r * ld + d];
    for (int64_t d = D; d < dp; ++d) out[r * dp + d] = 0.0f;
  }
}

// out (D, ldo) = scale * x^T for n rows of x (stride ld), columns [n, np) zero.
template <class S>
void pack_transposed(const float* x, int64_t ld, int64_t n, int64_t np, int64_t D, float scale, float* out,
                     int64_t ldo) {
  for (int64_t i = 0; i < n; ++i)
    for (int64_t d = 0; d < D; ++d) out[d * ldo + i] = x[i * ld + d] * scale;
  for (int64_t d = 0; d < D; ++d)
    for (int64_t i = n; i < np; ++i) out[d * ldo + i] = 0.0f;
}

template <class S>
void forward_tile(const FusedAttention& a, const AttentionIo& io, const AttentionScratch& L, int64_t b, int64_t h,
                  int64_t q0, float* scratch) {
  using V = typename S::V;
  constexpr int64_t W = S::kWidth, Bq = kAttnTileQ, Bk = kAttnTileK;
  const int64_t D = a.head_dim, T = a.q_len, Tk = a.kv_len, dp = L.dp;
  const int64_t qt = T - q0 < Bq ? T - q0 : Bq, qtp = round_up<S>(qt), dn = round_up<S>(D);
  const bool direct = D % W == 0;  // V rows are read in place; otherwise padded copies
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const float* qb = io.q + b * a.q_batch + h * D;
  const float* kb = io.k + b * a.kv_batch + h * D;
  const float* vb = io.v + b * a.kv_batch + h * D;
  const uint8_t* valid = a.key_valid ? a.key_valid + b * Tk : nullptr;
  const int64_t nfm_all = fully_masked_prefix<S>(a, valid) - q0;
  const int64_t nfm = nfm_all < 0 ? 0 : (nfm_all > qt ? qt : nfm_all);

  float* qt_buf = scratch + L.f_qt;
  float* st = scratch + L.f_st;
  float* o = scratch + L.f_o;
  float* vp = scratch + L.f_vp;
  float *m = scratch + L.f_m, *l = scratch + L.f_l, *mu = scratch + L.f_mu, *alpha = scratch + L.f_alpha;
  pack_transposed<S>(qb + q0 * a.q_row, a.q_row, qt, qtp, D, scale, qt_buf, Bq);
  for (int64_t i = 0; i < qt * dp; ++i) o[i] = 0.0f;
  for (int64_t i = 0; i < qtp; ++i) {
    m[i] = kNegInf;
    l[i] = 0.0f;
  }

  // Causal: keys past the last query's position are hidden from the whole
  // tile, unless some query sees no key (then it averages all of them).
  int64_t j_end = Tk;
  if (a.causal && nfm == 0 && a.past + q0 + qt < Tk) j_end = a.past + q0 + qt;
  for (int64_t j0 = 0; j0 < j_end; j0 += Bk) {
    const int64_t kt = j_end - j0 < Bk ? j_end - j0 : Bk;
    gemm_tile<S, false>(kt, qtp, D, kb + j0 * a.kv_row, a.kv_row, 1, qt_buf, Bq, st, Bq);
    mask_scores<S>(a, valid, j0, kt, q0, nfm, qtp, st, Bq);
    // Online softmax per query (a lane): new max, rescale of what came before, exponentials.
    for (int64_t i = 0; i < qtp; i += W) {
      const V m_old = S::load(m + i);
      V m_new = m_old;
      for (int64_t c = 0; c < kt; ++c) m_new = S::max(m_new, S::load(st + c * Bq + i));
      // A query that has seen only hidden keys so far keeps -inf; subtracting
      // lowest instead gives exp(-inf) = 0 rather than NaN.
      const V use = S::max(m_new, S::set1(std::numeric_limits<float>::lowest()));
      const V al = exp_nonpositive<S>(S::sub(m_old, use));
      V sum = S::zero();
      for (int64_t c = 0; c < kt; ++c) {
        float* sc = st + c * Bq + i;
        const V p = exp_nonpositive<S>(S::sub(S::load(sc), use));
        S::store(sc, p);
        sum = S::add(sum, p);
      }
      S::store(m + i, m_new);
      S::store(mu + i, use);
      S::store(alpha + i, al);
      S::store(l + i, S::fmadd(S::load(l + i), al, sum));
    }
    for (int64_t i = 0; i < qt; ++i) {
      if (alpha[i] == 1.0f) continue;
      const V al = S::set1(alpha[i]);
      for (int64_t d = 0; d < dn; d += W) S::store(o + i * dp + d, S::mul(S::load(o + i * dp + d), al));
    }
    const float* vsrc = vb + j0 * a.kv_row;
    int64_t ldv = a.kv_row;
    if (!direct) {
      pack_rows<S>(vsrc, a.kv_row, kt, D, dp, vp);
      vsrc = vp;
      ldv = dp;
    }
    gemm_tile<S, true>(qt, dn, kt, st, 1, Bq, vsrc, ldv, o, dp);
  }

  float* ob = io.out + b * a.q_batch + h * D;
  for (int64_t i = 0; i < qt; ++i) {
    const float inv = 1.0f / l[i];
    float* orow = ob + (q0 + i) * a.q_row;
    for (int64_t d = 0; d < D; ++d) orow[d] = o[i * dp + d] * inv;
  }
  if (io.lse_out != nullptr) {
    float* lse = io.lse_out + (b * a.heads + h) * T + q0;
    for (int64_t i = 0; i < qt; ++i) lse[i] = m[i] + std::log(l[i]);
  }
}

template <class S>
void backward_head(const FusedAttention& a, const AttentionIo& io, const AttentionScratch& L, int64_t b, int64_t h,
                   float* scratch) {
  constexpr int64_t W = S::kWidth, Bq = kAttnTileQ, Bk = kAttnTileK;
  const int64_t D = a.head_dim, T = a.q_len, Tk = a.kv_len, dp = L.dp, tp = L.tp, dn = round_up<S>(D);
  const bool direct = D % W == 0;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const int64_t qoff = b * a.q_batch + h * D, kvoff = b * a.kv_batch + h * D;
  const float *qb = io.q + qoff, *ob = io.o + qoff, *gb = io.dout + qoff;
  const float *kb = io.k + kvoff, *vb = io.v + kvoff;
  const uint8_t* valid = a.key_valid ? a.key_valid + b * Tk : nullptr;
  const int64_t nfm = fully_masked_prefix<S>(a, valid);

  float *qt_buf = scratch + L.b_qt, *dot = scratch + L.b_dot, *dq = scratch + L.b_dq, *dr = scratch + L.b_dr;
  float *lse = scratch + L.b_lse, *st = scratch + L.b_st, *dpt = scratch + L.b_dpt;
  float *dk = scratch + L.b_dk, *dv = scratch + L.b_dv;
  // The same scaled, transposed queries as the forward, so the scores come out bit-identical.
  pack_transposed<S>(qb, a.q_row, T, tp, D, scale, qt_buf, tp);
  pack_transposed<S>(gb, a.q_row, T, tp, D, 1.0f, dot, tp);
  const float *qr = qb, *dor = gb, *kr = kb;
  int64_t ldq = a.q_row, ldk = a.kv_row;
  if (!direct) {
    pack_rows<S>(qb, a.q_row, T, D, dp, scratch + L.b_qr);
    pack_rows<S>(gb, a.q_row, T, D, dp, scratch + L.b_dor);
    pack_rows<S>(kb, a.kv_row, Tk, D, dp, scratch + L.b_kr);
    qr = scratch + L.b_qr;
    dor = scratch + L.b_dor;
    kr = scratch + L.b_kr;
    ldq = ldk = dp;
  }
  // D_i = dO_i . O_i; padding queries get lse = +inf, so their probabilities are 0.
  const float* lse_in = io.lse + (b * a.heads + h) * T;
  for (int64_t i = 0; i < tp; ++i) {
    double s = 0;
    if (i < T)
      for (int64_t d = 0; d < D; ++d) s += static_cast<double>(gb[i * a.q_row + d]) * ob[i * a.q_row + d];
    dr[i] = static_cast<float>(s);
    lse[i] = i < T ? lse_in[i] : std::numeric_limits<float>::infinity();
  }
  for (int64_t i = 0; i < T * dp; ++i) dq[i] = 0.0f;

  for (int64_t j0 = 0; j0 < Tk; j0 += Bk) {
    const int64_t kt = Tk - j0 < Bk ? Tk - j0 : Bk;
    for (int64_t i = 0; i < kt * dp; ++i) dk[i] = dv[i] = 0.0f;
    // Causal: queries before the tile's first key see none of it (unless they see no key at all).
    int64_t i_first = 0;
    if (a.causal && nfm == 0 && j0 > a.past) i_first = (j0 - a.past) / Bq * Bq;
    for (int64_t i0 = i_first; i0 < T; i0 += Bq) {
      const int64_t qt = T - i0 < Bq ? T - i0 : Bq, qtp = round_up<S>(qt);
      const int64_t nfm_tile = nfm - i0 < 0 ? 0 : (nfm - i0 > qt ? qt : nfm - i0);
      gemm_tile<S, false>(kt, qtp, D, kb + j0 * a.kv_row, a.kv_row, 1, qt_buf + i0, tp, st, Bq);
      mask_scores<S>(a, valid, j0, kt, i0, nfm_tile, qtp, st, Bq);
      for (int64_t c = 0; c < kt; ++c)
        for (int64_t i = 0; i < qtp; i += W) {
          float* sc = st + c * Bq + i;
          S::store(sc, exp_nonpositive<S>(S::sub(S::load(sc), S::load(lse + i0 + i))));
        }
      // dV += P^T dO;  dP^T = V dO^T;  dS = P (dP - D_i);  dK += dS^T Q;  dQ += dS K
      gemm_tile<S, true>(kt, dn, qt, st, Bq, 1, dor + i0 * ldq, ldq, dv, dp);
      gemm_tile<S, false>(kt, qtp, D, vb + j0 * a.kv_row, a.kv_row, 1, dot + i0, tp, dpt, Bq);
      for (int64_t c = 0; c < kt; ++c)
        for (int64_t i = 0; i < qtp; i += W) {
          float* g = dpt + c * Bq + i;
          S::store(g, S::mul(S::load(st + c * Bq + i), S::sub(S::load(g), S::load(dr + i0 + i))));
        }
      gemm_tile<S, true>(kt, dn, qt, dpt, Bq, 1, qr + i0 * ldq, ldq, dk, dp);
      gemm_tile<S, true>(qt, dn, kt, dpt, 1, Bq, kr + j0 * ldk, ldk, dq + i0 * dp, dp);
    }
    float* dkb = io.dk + kvoff + j0 * a.kv_row;
    float* dvb = io.dv + kvoff + j0 * a.kv_row;
    for (int64_t c = 0; c < kt; ++c)
      for (int64_t d = 0; d < D; ++d) {
        dkb[c * a.kv_row + d] = dk[c * dp + d] * scale;
        dvb[c * a.kv_row + d] = dv[c * dp + d];
      }
  }
  float* dqb = io.dq + qoff;
  for (int64_t i = 0; i < T; ++i)
    for (int64_t d = 0; d < D; ++d) dqb[i * a.q_row + d] = dq[i * dp + d] * scale;
}

}  // namespace roformer::kernels::attn
