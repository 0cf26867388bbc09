// AVX2 + FMA LayerNorm row kernels: 8 floats per step, the double sums in
// two 4-lane registers (lanes 0-3 and 4-7 of the reference's 8), ragged ends
// through masked loads and stores. Compiled with -mavx2 -mfma; called only
// when the CPU has them. The compiler does not vectorise the float-to-double
// sums on its own (measured 3x slower as plain loops).
#include <immintrin.h>

#include <cmath>

#include "kernels/layer_norm_rows.h"

namespace roformer::kernels {
namespace {

// Float lanes [0, n) for n < 8.
inline __m256i tail_mask(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
// The same lanes as two masks over double lanes 0-3 and 4-7.
inline __m256d mask_lo(__m256i m) { return _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(m))); }
inline __m256d mask_hi(__m256i m) { return _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_extracti128_si256(m, 1))); }

inline __m256d lo_pd(__m256 v) { return _mm256_cvtps_pd(_mm256_castps256_ps128(v)); }
inline __m256d hi_pd(__m256 v) { return _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)); }

// The reference's combination of its 8 lanes.
inline double total(__m256d lo, __m256d hi) {
  alignas(32) double a[8];
  _mm256_store_pd(a, lo);
  _mm256_store_pd(a + 4, hi);
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

// R rows at once, each summed exactly as alone: the sums are chains of
// dependent adds, so R rows side by side keep 2R of them in flight where one
// row alone waits on the adds' latency.
template <int R>
void stats_rows(const float* x, int64_t stride, int64_t cols, float eps, LayerNormRowStats* out) {
  const int64_t full = cols / 8 * 8, rest = cols - full;
  const __m256i m = tail_mask(rest);
  __m256d s0[R], s1[R];
  for (int r = 0; r < R; ++r) s0[r] = s1[r] = _mm256_setzero_pd();
  for (int64_t c = 0; c < full; c += 8)
    for (int r = 0; r < R; ++r) {
      const __m256 v = _mm256_loadu_ps(x + r * stride + c);
      s0[r] = _mm256_add_pd(s0[r], lo_pd(v));
      s1[r] = _mm256_add_pd(s1[r], hi_pd(v));
    }
  if (rest)  // masked-off lanes load as 0
    for (int r = 0; r < R; ++r) {
      const __m256 v = _mm256_maskload_ps(x + r * stride + full, m);
      s0[r] = _mm256_add_pd(s0[r], lo_pd(v));
      s1[r] = _mm256_add_pd(s1[r], hi_pd(v));
    }
  __m256d vm[R];
  double mean[R];
  for (int r = 0; r < R; ++r) {
    mean[r] = total(s0[r], s1[r]) / static_cast<double>(cols);
    vm[r] = _mm256_set1_pd(mean[r]);
    s0[r] = s1[r] = _mm256_setzero_pd();  // now the squared deviations
  }
  for (int64_t c = 0; c < full; c += 8)
    for (int r = 0; r < R; ++r) {
      const __m256 v = _mm256_loadu_ps(x + r * stride + c);
      const __m256d d0 = _mm256_sub_pd(lo_pd(v), vm[r]), d1 = _mm256_sub_pd(hi_pd(v), vm[r]);
      s0[r] = _mm256_fmadd_pd(d0, d0, s0[r]);
      s1[r] = _mm256_fmadd_pd(d1, d1, s1[r]);
    }
  if (rest)
    for (int r = 0; r < R; ++r) {
      const __m256 v = _mm256_maskload_ps(x + r * stride + full, m);
      const __m256d d0 = _mm256_and_pd(_mm256_sub_pd(lo_pd(v), vm[r]), mask_lo(m));
      const __m256d d1 = _mm256_and_pd(_mm256_sub_pd(hi_pd(v), vm[r]), mask_hi(m));
      s0[r] = _mm256_fmadd_pd(d0, d0, s0[r]);
      s1[r] = _mm256_fmadd_pd(d1, d1, s1[r]);
    }
  for (int r = 0; r < R; ++r) {
    const double var = total(s0[r], s1[r]) / static_cast<double>(cols);
    out[r] = {static_cast<float>(mean[r]), static_cast<float>(1.0 / std::sqrt(var + static_cast<double>(eps)))};
  }
}

LayerNormRowStats stats(const float* x, int64_t cols, float eps) {
  LayerNormRowStats s;
  stats_rows<1>(x, cols, cols, eps, &s);
  return s;
}

void stats4(const float* x, int64_t stride, int64_t cols, float eps, LayerNormRowStats* out) {
  stats_rows<4>(x, stride, cols, eps, out);
}

void normalize(const float* x, float* y, const float* gamma, const float* beta, int64_t cols, LayerNormRowStats s) {
  const __m256 vm = _mm256_set1_ps(s.mean), vs = _mm256_set1_ps(s.rstd);
  const int64_t full = cols / 8 * 8;
  for (int64_t c = 0; c < full; c += 8) {
    const __m256 xh = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + c), vm), vs);
    _mm256_storeu_ps(y + c, _mm256_fmadd_ps(xh, _mm256_loadu_ps(gamma + c), _mm256_loadu_ps(beta + c)));
  }
  if (full < cols) {
    const __m256i m = tail_mask(cols - full);
    const __m256 xh = _mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(x + full, m), vm), vs);
    _mm256_maskstore_ps(y + full, m,
                        _mm256_fmadd_ps(xh, _mm256_maskload_ps(gamma + full, m), _mm256_maskload_ps(beta + full, m)));
  }
}

// As the reference: dx = rstd * (g - mean(g) - xhat * mean(g * xhat)). The
// products g * xhat of two floats are exact in double, so the fused
// multiply-adds of the sums round exactly as a multiply and an add would.
void backward(const float* x, const float* dy, const float* gamma, LayerNormRowStats st, int64_t cols, float* dx,
              float* pg, float* pb) {
  const __m256 vm = _mm256_set1_ps(st.mean), vs = _mm256_set1_ps(st.rstd);
  const int64_t full = cols / 8 * 8, rest = cols - full;
  const __m256i m = tail_mask(rest);
  __m256d g0 = _mm256_setzero_pd(), g1 = g0, gx0 = g0, gx1 = g0;
  auto add = [&](__m256 xv, __m256 dyv, __m256 gv) {
    const __m256 xh = _mm256_mul_ps(_mm256_sub_ps(xv, vm), vs);
    const __m256 g = _mm256_mul_ps(dyv, gv);
    const __m256d gl = lo_pd(g), gh = hi_pd(g);
    g0 = _mm256_add_pd(g0, gl);
    g1 = _mm256_add_pd(g1, gh);
    gx0 = _mm256_fmadd_pd(gl, lo_pd(xh), gx0);
    gx1 = _mm256_fmadd_pd(gh, hi_pd(xh), gx1);
  };
  for (int64_t c = 0; c < full; c += 8)
    add(_mm256_loadu_ps(x + c), _mm256_loadu_ps(dy + c), _mm256_loadu_ps(gamma + c));
  if (rest)  // masked-off lanes load as 0, so their g is 0
    add(_mm256_maskload_ps(x + full, m), _mm256_maskload_ps(dy + full, m), _mm256_maskload_ps(gamma + full, m));
  const double n = static_cast<double>(cols);
  const __m256 mg = _mm256_set1_ps(static_cast<float>(total(g0, g1) / n));
  const __m256 mgx = _mm256_set1_ps(static_cast<float>(total(gx0, gx1) / n));
  auto step = [&](__m256 xv, __m256 d, __m256 gv, __m256 pgv, __m256 pbv, __m256& dxv, __m256& pg_out,
                  __m256& pb_out) {
    const __m256 xh = _mm256_mul_ps(_mm256_sub_ps(xv, vm), vs);
    pg_out = _mm256_fmadd_ps(d, xh, pgv);
    pb_out = _mm256_add_ps(pbv, d);
    dxv = _mm256_mul_ps(vs, _mm256_fnmadd_ps(xh, mgx, _mm256_fmsub_ps(d, gv, mg)));
  };
  for (int64_t c = 0; c < full; c += 8) {
    __m256 dxv, pgv, pbv;
    step(_mm256_loadu_ps(x + c), _mm256_loadu_ps(dy + c), _mm256_loadu_ps(gamma + c), _mm256_loadu_ps(pg + c),
         _mm256_loadu_ps(pb + c), dxv, pgv, pbv);
    _mm256_storeu_ps(pg + c, pgv);
    _mm256_storeu_ps(pb + c, pbv);
    _mm256_storeu_ps(dx + c, dxv);
  }
  if (rest) {
    __m256 dxv, pgv, pbv;
    step(_mm256_maskload_ps(x + full, m), _mm256_maskload_ps(dy + full, m), _mm256_maskload_ps(gamma + full, m),
         _mm256_maskload_ps(pg + full, m), _mm256_maskload_ps(pb + full, m), dxv, pgv, pbv);
    _mm256_maskstore_ps(pg + full, m, pgv);
    _mm256_maskstore_ps(pb + full, m, pbv);
    _mm256_maskstore_ps(dx + full, m, dxv);
  }
}

}  // namespace

LayerNormRowKernels layer_norm_rows_avx2() { return {stats, stats4, normalize, backward}; }

}  // namespace roformer::kernels
