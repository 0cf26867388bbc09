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
#include "roformer/dtype.h"

namespace roformer::kernels::attn {

using simd::exp_nonpositive;

inline constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// The tile products below run over a product traits type G: In (the
// elements of A and B), Acc (an fp32 register of kWidth lanes), Op (a
// register of In), zero / load_acc / store_acc, load_op (kWidth lanes of B),
// bcast (one A element to every lane) and madd(acc, a, b). Fma<S> is the
// fp32 one; bf16 pairs (two bf16 in each 32-bit In, summed in fp32) are
// defined by the files that have them.
template <class S>
struct Fma {
  using In = float;
  using Acc = typename S::V;
  using Op = typename S::V;
  static constexpr int64_t kWidth = S::kWidth;
  static constexpr int kRows = S::kRows, kVecs = S::kVecs;
  static Acc zero() { return S::zero(); }
  static Acc load_acc(const float* p) { return S::load(p); }
  static void store_acc(float* p, Acc v) { S::store(p, v); }
  static Op load_op(const float* p) { return S::load(p); }
  static Op bcast(float v) { return S::set1(v); }
  static Acc madd(Acc c, Op a, Op b) { return S::fmadd(a, b, c); }
};

// C[m, 0..n) (= or +=) sum_k A(m, k) * B[k, 0..n) for a block of R rows and
// NV registers, A(m, k) = a[m * ars + k * acs] (either A or A^T in memory).
template <class G, int R, int NV, bool Acc>
void micro(int64_t K, const typename G::In* a, int64_t ars, int64_t acs, const typename G::In* b, int64_t ldb,
           float* c, int64_t ldc) {
  constexpr int64_t W = G::kWidth;
  typename G::Acc acc[R][NV];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[r][v] = Acc ? G::load_acc(c + r * ldc + v * W) : G::zero();
  for (int64_t k = 0; k < K; ++k) {
    typename G::Op bv[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) bv[v] = G::load_op(b + k * ldb + v * W);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const typename G::Op av = G::bcast(a[r * ars + k * acs]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[r][v] = G::madd(acc[r][v], av, bv[v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) G::store_acc(c + r * ldc + v * W, acc[r][v]);
}

// The last `left` (< kRows) rows.
template <class G, int R, int NV, bool Acc>
void tail_rows(int64_t left, int64_t K, const typename G::In* a, int64_t ars, int64_t acs, const typename G::In* b,
               int64_t ldb, float* c, int64_t ldc) {
  if constexpr (R > 0) {
    if (left == R) micro<G, R, NV, Acc>(K, a, ars, acs, b, ldb, c, ldc);
    else tail_rows<G, R - 1, NV, Acc>(left, K, a, ars, acs, b, ldb, c, ldc);
  }
}

template <class G, int NV, bool Acc>
void rows(int64_t M, int64_t K, const typename G::In* a, int64_t ars, int64_t acs, const typename G::In* b,
          int64_t ldb, float* c, int64_t ldc) {
  constexpr int R = G::kRows;
  int64_t m = 0;
  for (; m + R <= M; m += R) micro<G, R, NV, Acc>(K, a + m * ars, ars, acs, b, ldb, c + m * ldc, ldc);
  if (m < M) tail_rows<G, R - 1, NV, Acc>(M - m, K, a + m * ars, ars, acs, b, ldb, c + m * ldc, ldc);
}

// C (M, N) (= or +=) A (M, K) B (K, N); N a multiple of kWidth, B's and C's
// rows padded to it. Each C value is one chain of products over k in order,
// so it does not depend on M, N or the blocking.
template <class G, bool Acc>
void gemm_tile(int64_t M, int64_t N, int64_t K, const typename G::In* a, int64_t ars, int64_t acs,
               const typename G::In* b, int64_t ldb, float* c, int64_t ldc) {
  constexpr int64_t W = G::kWidth;
  constexpr int NV = G::kVecs;
  int64_t n = 0;
  for (; n + NV * W <= N; n += NV * W) rows<G, NV, Acc>(M, K, a, ars, acs, b + n, ldb, c + n, ldc);
  const int64_t left = (N - n) / W;
  if constexpr (NV > 3) {
    if (left == 3) rows<G, 3, Acc>(M, K, a, ars, acs, b + n, ldb, c + n, ldc);
  }
  if constexpr (NV > 2) {
    if (left == 2) rows<G, 2, Acc>(M, K, a, ars, acs, b + n, ldb, c + n, ldc);
  }
  if (left == 1) rows<G, 1, Acc>(M, K, a, ars, acs, b + n, ldb, c + n, ldc);
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
  // Blocks transposed in registers where the traits can (the same products, so the same bits).
  if constexpr (requires { &S::transpose_block; }) {
    if (D % S::kWidth == 0 && np % S::kWidth == 0) {
      for (int64_t i = 0; i < np; i += S::kWidth)
        for (int64_t d = 0; d < D; d += S::kWidth)
          S::transpose_block(x + i * ld + d, ld, n - i, scale, out + d * ldo + i, ldo);
      return;
    }
  }
  for (int64_t i = 0; i < n; ++i)
    for (int64_t d = 0; d < D; ++d) out[d * ldo + i] = x[i * ld + d] * scale;
  for (int64_t d = 0; d < D; ++d)
    for (int64_t i = n; i < np; ++i) out[d * ldo + i] = 0.0f;
}

// The forward's two products in fp32: the query tile scaled and transposed
// once, K read in place as broadcast rows, V in place (or padded copies
// when D is not a multiple of the width).
template <class S>
class F32Products {
 public:
  F32Products(const FusedAttention& a, const AttentionIo& io, const AttentionScratch& L, int64_t b, int64_t h,
              float* scratch)
      : a_(a),
        kb_(io.k + b * a.kv_batch + h * a.head_dim),
        vb_(io.v + b * a.kv_batch + h * a.head_dim),
        qt_(scratch + L.f_qt),
        vp_(scratch + L.f_vp),
        dp_(L.dp) {}

  // Queries [0, qt) of the tile, rows of a.q_row floats, times scale.
  void queries(const float* q, int64_t qt, int64_t qtp, float scale) {
    pack_transposed<S>(q, a_.q_row, qt, qtp, a_.head_dim, scale, qt_, kAttnTileQ);
  }
  // st (kt, Bq) = K[j0, j0 + kt) Q^T.
  void scores(int64_t j0, int64_t kt, int64_t qtp, float* st) {
    gemm_tile<Fma<S>, false>(kt, qtp, a_.head_dim, kb_ + j0 * a_.kv_row, a_.kv_row, 1, qt_, kAttnTileQ, st,
                             kAttnTileQ);
  }
  // o (qt, dp) += P V[j0, j0 + kt), P = st transposed.
  void add_values(int64_t j0, int64_t kt, int64_t qt, int64_t /*qtp*/, const float* st, float* o) {
    const int64_t D = a_.head_dim;
    const float* vsrc = vb_ + j0 * a_.kv_row;
    int64_t ldv = a_.kv_row;
    if (D % S::kWidth != 0) {
      pack_rows<S>(vsrc, a_.kv_row, kt, D, dp_, vp_);
      vsrc = vp_;
      ldv = dp_;
    }
    gemm_tile<Fma<S>, true>(qt, round_up<S>(D), kt, st, 1, kAttnTileQ, vsrc, ldv, o, dp_);
  }

 private:
  const FusedAttention& a_;
  const float *kb_, *vb_;
  float *qt_, *vp_;
  int64_t dp_;
};

// bf16 products (inference, and the forward of mixed-precision training):
// Q, K, V and the probabilities rounded to bf16, every product summed in
// fp32. Operands are pairs: two bf16 in one
// 32-bit word, the even index in the lower half (vdpbf16ps's layout), so the
// product traits G (In = uint32_t) multiply-add two terms per lane. K and V
// of each (batch row, head) are converted once by convert_kv before the
// tiles run; G also provides row_pairs (2 kWidth floats times a scale ->
// kWidth words, in order) and pairs (kWidth floats of an even and an odd
// row -> kWidth interleaved words).
//
// Per (batch row, head), bf16_kv_words_per_head() words at io.kv16: K as
// (Tk, D/2) rows of pairs along d, then V as (Tk2/2, D) pairs of consecutive
// keys (Tk2 = Tk rounded up to even, the missing key zero).

// Where K and V of (batch row b, head h) sit at io.kv16.
struct KvPairs {
  uint32_t *k, *v;
};
inline KvPairs kv_pairs(const FusedAttention& a, const AttentionIo& io, int64_t b, int64_t h) {
  uint32_t* k = io.kv16 + (b * a.heads + h) * bf16_kv_words_per_head(a);
  return {k, k + (a.kv_len + (a.kv_len & 1)) * (a.head_dim / 2)};
}

// Rows 2c and 2c + 1 of x (`rows` rows ld floats apart, `width` floats of
// each, a multiple of kWidth) -> row c of out (ldo words apart) of pairs; an
// odd last row pairs with `zero` (width zeros).
template <class G>
void pair_rows(const float* x, int64_t ld, int64_t rows, int64_t width, const float* zero, uint32_t* out,
               int64_t ldo) {
  for (int64_t c = 0; c < rows; c += 2) {
    const float* odd = c + 1 < rows ? x + (c + 1) * ld : zero;
    for (int64_t i = 0; i < width; i += G::kWidth) G::pairs(x + c * ld + i, odd + i, out + (c / 2) * ldo + i);
  }
}

// out (D/2, ldo) words: pairs along d of x's n rows (stride ld) times scale,
// transposed (word p of row i at out[p * ldo + i]); columns [n, np) zero.
template <class G>
void transposed_row_pairs(const float* x, int64_t ld, int64_t n, int64_t np, int64_t D, float scale, uint32_t* out,
                          int64_t ldo) {
  const int64_t half = D / 2;
  if constexpr (requires { &G::transposed_pairs; }) {
    for (int64_t i = 0; i < np; i += G::kWidth)
      for (int64_t p = 0; p < half; p += G::kWidth)
        G::transposed_pairs(x + i * ld + 2 * p, ld, n - i, scale, out + p * ldo + i, ldo);
    return;
  }
  uint32_t row[G::kWidth];
  for (int64_t i = 0; i < n; ++i)
    for (int64_t p = 0; p < half; p += G::kWidth) {
      G::row_pairs(x + i * ld + 2 * p, scale, row);
      for (int64_t w = 0; w < G::kWidth; ++w) out[(p + w) * ldo + i] = row[w];
    }
  for (int64_t p = 0; p < half; ++p)
    for (int64_t i = n; i < np; ++i) out[p * ldo + i] = 0;
}

// x's n rows (stride ld) of D floats -> pairs along d, D/2 words a row.
template <class G>
void row_pairs_along_d(const float* x, int64_t ld, int64_t n, int64_t D, uint32_t* out) {
  const int64_t half = D / 2;
  for (int64_t c = 0; c < n; ++c)
    for (int64_t p = 0; p < half; p += G::kWidth) G::row_pairs(x + c * ld + 2 * p, 1.0f, out + c * half + p);
}

template <class G>
void convert_kv(const FusedAttention& a, const AttentionIo& io, const AttentionScratch& L, int64_t b, int64_t h,
                float* scratch) {
  const int64_t D = a.head_dim;
  const KvPairs kv = kv_pairs(a, io, b, h);
  const float* kb = io.k + b * a.kv_batch + h * D;
  const float* vb = io.v + b * a.kv_batch + h * D;
  row_pairs_along_d<G>(kb, a.kv_row, a.kv_len, D, kv.k);
  float* zero = scratch + L.f_zero;
  for (int64_t d = 0; d < D; ++d) zero[d] = 0.0f;
  pair_rows<G>(vb, a.kv_row, a.kv_len, D, zero, kv.v, D);
}

template <class S, class G>
class Bf16Products {
 public:
  Bf16Products(const FusedAttention& a, const AttentionIo& io, const AttentionScratch& L, int64_t b, int64_t h,
               float* scratch)
      : a_(a),
        kv_(kv_pairs(a, io, b, h)),
        qp_(reinterpret_cast<uint32_t*>(scratch + L.f_qt)),
        pp_(reinterpret_cast<uint32_t*>(scratch + L.f_pp)),
        zero_(scratch + L.f_zero),
        dp_(L.dp) {}

  // qp (D/2, Bq) = pairs of the scaled queries along d, transposed.
  void queries(const float* q, int64_t qt, int64_t qtp, float scale) {
    transposed_row_pairs<G>(q, a_.q_row, qt, qtp, a_.head_dim, scale, qp_, kAttnTileQ);
  }
  void scores(int64_t j0, int64_t kt, int64_t qtp, float* st) {
    const int64_t half = a_.head_dim / 2;
    gemm_tile<G, false>(kt, qtp, half, kv_.k + j0 * half, half, 1, qp_, kAttnTileQ, st, kAttnTileQ);
  }
  // The probabilities (st, keys down) become pairs of consecutive keys per
  // query, then o += P V over key pairs (j0 is even: tiles start at multiples of Bk).
  void add_values(int64_t j0, int64_t kt, int64_t qt, int64_t qtp, const float* st, float* o) {
    for (int64_t i = 0; i < qtp; ++i) zero_[i] = 0.0f;
    pair_rows<G>(st, kAttnTileQ, kt, qtp, zero_, pp_, kAttnTileQ);
    gemm_tile<G, true>(qt, a_.head_dim, (kt + 1) / 2, pp_, 1, kAttnTileQ, kv_.v + (j0 / 2) * a_.head_dim,
                       a_.head_dim, o, dp_);
  }

 private:
  const FusedAttention& a_;
  const KvPairs kv_;
  uint32_t *qp_, *pp_;
  float* zero_;
  int64_t dp_;
};

// One query tile of one (batch row, head): the products come from P
// (F32Products, or bf16 pairs), the masking and online softmax are fp32.
template <class S, class P = F32Products<S>>
void forward_tile(const FusedAttention& a, const AttentionIo& io, const AttentionScratch& L, int64_t b, int64_t h,
                  int64_t q0, float* scratch) {
  using V = typename S::V;
  constexpr int64_t W = S::kWidth, Bq = kAttnTileQ, Bk = kAttnTileK;
  const int64_t D = a.head_dim, T = a.q_len, Tk = a.kv_len, dp = L.dp;
  const int64_t qt = T - q0 < Bq ? T - q0 : Bq, qtp = round_up<S>(qt), dn = round_up<S>(D);
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const float* qb = io.q + b * a.q_batch + h * D;
  const uint8_t* valid = a.key_valid ? a.key_valid + b * Tk : nullptr;
  const int64_t nfm_all = fully_masked_prefix<S>(a, valid) - q0;
  const int64_t nfm = nfm_all < 0 ? 0 : (nfm_all > qt ? qt : nfm_all);

  P products(a, io, L, b, h, scratch);
  float* st = scratch + L.f_st;
  float* o = scratch + L.f_o;
  float *m = scratch + L.f_m, *l = scratch + L.f_l, *alpha = scratch + L.f_alpha;
  products.queries(qb + q0 * a.q_row, qt, qtp, scale);
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
    products.scores(j0, kt, qtp, st);
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
      S::store(alpha + i, al);
      S::store(l + i, S::fmadd(S::load(l + i), al, sum));
    }
    for (int64_t i = 0; i < qt; ++i) {
      if (alpha[i] == 1.0f) continue;
      const V al = S::set1(alpha[i]);
      for (int64_t d = 0; d < dn; d += W) S::store(o + i * dp + d, S::mul(S::load(o + i * dp + d), al));
    }
    products.add_values(j0, kt, qt, qtp, st, o);
  }

  if (io.out16 != nullptr) {  // rounded as convert_to_bf16 would round the fp32 output
    uint16_t* ob = io.out16 + b * a.q_batch + h * D;
    for (int64_t i = 0; i < qt; ++i) {
      const float inv = 1.0f / l[i];
      uint16_t* orow = ob + (q0 + i) * a.q_row;
      for (int64_t d = 0; d < D; ++d) orow[d] = f32_to_bf16(o[i * dp + d] * inv).bits;
    }
  } else {
    float* ob = io.out + b * a.q_batch + h * D;
    for (int64_t i = 0; i < qt; ++i) {
      const float inv = 1.0f / l[i];
      float* orow = ob + (q0 + i) * a.q_row;
      for (int64_t d = 0; d < D; ++d) orow[d] = o[i * dp + d] * inv;
    }
  }
  if (io.lse_out != nullptr) {
    float* lse = io.lse_out + (b * a.heads + h) * T + q0;
    for (int64_t i = 0; i < qt; ++i) lse[i] = m[i] + std::log(l[i]);
  }
}

// The backward's five products in fp32: the scaled queries and dout
// transposed once per head (the same scaled, transposed queries as the
// forward, so the scores come out bit-identical), Q, dout and K read in
// place, or as padded copies when D is not a multiple of the width.
template <class S>
class F32Grads {
 public:
  F32Grads(const FusedAttention& a, const AttentionIo& io, const AttentionScratch& L, int64_t b, int64_t h,
           float* scratch)
      : a_(a), dp_(L.dp), tp_(L.tp), dn_(round_up<S>(a.head_dim)) {
    const int64_t D = a.head_dim, T = a.q_len, qoff = b * a.q_batch + h * D, kvoff = b * a.kv_batch + h * D;
    const float *qb = io.q + qoff, *gb = io.dout + qoff;
    kb_ = io.k + kvoff;
    vb_ = io.v + kvoff;
    qt_ = scratch + L.b_qt;
    dot_ = scratch + L.b_dot;
    pack_transposed<S>(qb, a.q_row, T, tp_, D, 1.0f / std::sqrt(static_cast<float>(D)), qt_, tp_);
    pack_transposed<S>(gb, a.q_row, T, tp_, D, 1.0f, dot_, tp_);
    qr_ = qb;
    dor_ = gb;
    kr_ = kb_;
    ldq_ = a.q_row;
    ldk_ = a.kv_row;
    if (D % S::kWidth != 0) {
      pack_rows<S>(qb, a.q_row, T, D, dp_, scratch + L.b_qr);
      pack_rows<S>(gb, a.q_row, T, D, dp_, scratch + L.b_dor);
      pack_rows<S>(kb_, a.kv_row, a.kv_len, D, dp_, scratch + L.b_kr);
      qr_ = scratch + L.b_qr;
      dor_ = scratch + L.b_dor;
      kr_ = scratch + L.b_kr;
      ldq_ = ldk_ = dp_;
    }
  }
  // st (kt, Bq) = K[j0, j0 + kt) Q[i0, i0 + qtp)^T, scaled.
  void scores(int64_t j0, int64_t kt, int64_t i0, int64_t qtp, float* st) {
    gemm_tile<Fma<S>, false>(kt, qtp, a_.head_dim, kb_ + j0 * a_.kv_row, a_.kv_row, 1, qt_ + i0, tp_, st,
                             kAttnTileQ);
  }
  // dv (kt, Dp) += P^T dO over the tile's qt queries.
  void add_dv(int64_t kt, int64_t i0, int64_t qt, int64_t /*qtp*/, float* p, float* dv) {
    gemm_tile<Fma<S>, true>(kt, dn_, qt, p, kAttnTileQ, 1, dor_ + i0 * ldq_, ldq_, dv, dp_);
  }
  // dpt (kt, Bq) = V[j0, j0 + kt) dO^T.
  void dp(int64_t j0, int64_t kt, int64_t i0, int64_t qtp, float* dpt) {
    gemm_tile<Fma<S>, false>(kt, qtp, a_.head_dim, vb_ + j0 * a_.kv_row, a_.kv_row, 1, dot_ + i0, tp_, dpt,
                             kAttnTileQ);
  }
  // dk (kt, Dp) += dS^T Q;  dq (qt, Dp) += dS K.
  void add_dk_dq(int64_t j0, int64_t kt, int64_t i0, int64_t qt, int64_t /*qtp*/, float* ds, float* dk, float* dq) {
    gemm_tile<Fma<S>, true>(kt, dn_, qt, ds, kAttnTileQ, 1, qr_ + i0 * ldq_, ldq_, dk, dp_);
    gemm_tile<Fma<S>, true>(qt, dn_, kt, ds, 1, kAttnTileQ, kr_ + j0 * ldk_, ldk_, dq, dp_);
  }

 private:
  const FusedAttention& a_;
  int64_t dp_, tp_, dn_, ldq_ = 0, ldk_ = 0;
  const float *kb_ = nullptr, *vb_ = nullptr, *qr_ = nullptr, *dor_ = nullptr, *kr_ = nullptr;
  float *qt_ = nullptr, *dot_ = nullptr;
};

// The backward's products with bf16 operands (mixed-precision training, after
// a forward with Bf16Products): every operand rounded and paired for G, along
// d for the products that sum over d (the scores, dP), along keys or queries
// for those that sum over them; Q, K, V and dO once per head, P and dS once
// per tile. The scores use the forward's rounded operands in its order, so
// they are the forward's to the bit. D is a multiple of 32
// (uses_bf16_products): rows need no padding and Dp = D.
template <class S, class G>
class Bf16Grads {
 public:
  Bf16Grads(const FusedAttention& a, const AttentionIo& io, const AttentionScratch& L, int64_t b, int64_t h,
            float* scratch)
      : a_(a), half_(a.head_dim / 2), tp_(L.tp) {
    const int64_t D = a.head_dim, T = a.q_len, Tk = a.kv_len;
    const int64_t qoff = b * a.q_batch + h * D, kvoff = b * a.kv_batch + h * D;
    const float *qb = io.q + qoff, *gb = io.dout + qoff, *kb = io.k + kvoff, *vb = io.v + kvoff;
    auto words = [scratch](int64_t at) { return reinterpret_cast<uint32_t*>(scratch + at); };
    kd_ = words(L.h_kd);
    vd_ = words(L.h_vd);
    kk_ = words(L.h_kk);
    qd_ = words(L.h_qd);
    gd_ = words(L.h_gd);
    qq_ = words(L.h_qq);
    gq_ = words(L.h_gq);
    sp_ = words(L.h_sp);
    dsq_ = words(L.h_dsq);
    dsk_ = words(L.h_dsk);
    zero_ = scratch + L.h_zero;
    for (int64_t i = 0; i < (kAttnTileQ > L.dp ? kAttnTileQ : L.dp); ++i) zero_[i] = 0.0f;
    row_pairs_along_d<G>(kb, a.kv_row, Tk, D, kd_);  // as convert_kv's K
    row_pairs_along_d<G>(vb, a.kv_row, Tk, D, vd_);
    pair_rows<G>(kb, a.kv_row, Tk, D, zero_, kk_, D);
    transposed_row_pairs<G>(qb, a.q_row, T, tp_, D, 1.0f / std::sqrt(static_cast<float>(D)), qd_, tp_);
    transposed_row_pairs<G>(gb, a.q_row, T, tp_, D, 1.0f, gd_, tp_);
    pair_rows<G>(qb, a.q_row, T, D, zero_, qq_, D);
    pair_rows<G>(gb, a.q_row, T, D, zero_, gq_, D);
  }
  void scores(int64_t j0, int64_t kt, int64_t i0, int64_t qtp, float* st) {
    gemm_tile<G, false>(kt, qtp, half_, kd_ + j0 * half_, half_, 1, qd_ + i0, tp_, st, kAttnTileQ);
  }
  // P's rows as pairs of consecutive queries (after zeroing a last, narrower
  // tile's stale columns), then dV += P^T dO over query pairs.
  void add_dv(int64_t kt, int64_t i0, int64_t qt, int64_t qtp, float* p, float* dv) {
    query_pairs(p, kt, qtp, sp_);
    gemm_tile<G, true>(kt, a_.head_dim, (qt + 1) / 2, sp_, kAttnTileQ / 2, 1, gq_ + (i0 / 2) * a_.head_dim,
                       a_.head_dim, dv, a_.head_dim);
  }
  void dp(int64_t j0, int64_t kt, int64_t i0, int64_t qtp, float* dpt) {
    gemm_tile<G, false>(kt, qtp, half_, vd_ + j0 * half_, half_, 1, gd_ + i0, tp_, dpt, kAttnTileQ);
  }
  // dK += dS^T Q over query pairs;  dQ += dS K over key pairs (j0 is even).
  void add_dk_dq(int64_t j0, int64_t kt, int64_t i0, int64_t qt, int64_t qtp, float* ds, float* dk, float* dq) {
    const int64_t D = a_.head_dim;
    query_pairs(ds, kt, qtp, dsq_);
    gemm_tile<G, true>(kt, D, (qt + 1) / 2, dsq_, kAttnTileQ / 2, 1, qq_ + (i0 / 2) * D, D, dk, D);
    pair_rows<G>(ds, kAttnTileQ, kt, qtp, zero_, dsk_, kAttnTileQ);
    gemm_tile<G, true>(qt, D, (kt + 1) / 2, dsk_, 1, kAttnTileQ, kk_ + (j0 / 2) * D, D, dq, D);
  }

 private:
  // Rows [0, kt) of a (keys down, queries across) tile -> pairs of
  // consecutive queries, Bq / 2 words a row; columns [qtp, the next multiple
  // of 2 kWidth) are zeroed first (queries past the tile).
  static void query_pairs(float* tile, int64_t kt, int64_t qtp, uint32_t* out) {
    constexpr int64_t Bq = kAttnTileQ, W2 = 2 * G::kWidth;
    const int64_t width = (qtp + W2 - 1) / W2 * W2;
    for (int64_t c = 0; c < kt; ++c) {
      for (int64_t i = qtp; i < width; ++i) tile[c * Bq + i] = 0.0f;
      for (int64_t i = 0; i < width; i += W2) G::row_pairs(tile + c * Bq + i, 1.0f, out + c * (Bq / 2) + i / 2);
    }
  }

  const FusedAttention& a_;
  int64_t half_, tp_;
  uint32_t *kd_, *vd_, *kk_, *qd_, *gd_, *qq_, *gq_, *sp_, *dsq_, *dsk_;
  float* zero_;
};

// One (batch row, head) backward: per key tile, per query tile, the scores
// recomputed by the products P, masked and turned into probabilities with
// the saved lse, then dV, dP, dS = P (dP - D_i) (fp32) and dK, dQ.
template <class S, class P = F32Grads<S>>
void backward_head(const FusedAttention& a, const AttentionIo& io, const AttentionScratch& L, int64_t b, int64_t h,
                   float* scratch) {
  constexpr int64_t W = S::kWidth, Bq = kAttnTileQ, Bk = kAttnTileK;
  const int64_t D = a.head_dim, T = a.q_len, Tk = a.kv_len, dp = L.dp, tp = L.tp;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const int64_t qoff = b * a.q_batch + h * D, kvoff = b * a.kv_batch + h * D;
  const float *ob = io.o + qoff, *gb = io.dout + qoff;
  const uint8_t* valid = a.key_valid ? a.key_valid + b * Tk : nullptr;
  const int64_t nfm = fully_masked_prefix<S>(a, valid);

  float *dq = scratch + L.b_dq, *dr = scratch + L.b_dr, *lse = scratch + L.b_lse;
  float *st = scratch + L.b_st, *dpt = scratch + L.b_dpt, *dk = scratch + L.b_dk, *dv = scratch + L.b_dv;
  P products(a, io, L, b, h, scratch);
  // D_i = dO_i . O_i (fp32); padding queries get lse = +inf, so their probabilities are 0.
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
      products.scores(j0, kt, i0, qtp, st);
      mask_scores<S>(a, valid, j0, kt, i0, nfm_tile, qtp, st, Bq);
      for (int64_t c = 0; c < kt; ++c)
        for (int64_t i = 0; i < qtp; i += W) {
          float* sc = st + c * Bq + i;
          S::store(sc, exp_nonpositive<S>(S::sub(S::load(sc), S::load(lse + i0 + i))));
        }
      // dV += P^T dO;  dP^T = V dO^T;  dS = P (dP - D_i);  dK += dS^T Q;  dQ += dS K
      products.add_dv(kt, i0, qt, qtp, st, dv);
      products.dp(j0, kt, i0, qtp, dpt);
      for (int64_t c = 0; c < kt; ++c)
        for (int64_t i = 0; i < qtp; i += W) {
          float* g = dpt + c * Bq + i;
          S::store(g, S::mul(S::load(st + c * Bq + i), S::sub(S::load(g), S::load(dr + i0 + i))));
        }
      products.add_dk_dq(j0, kt, i0, qt, qtp, dpt, dk, dq + i0 * dp);
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
