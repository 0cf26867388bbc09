// AVX2 + FMA GELU: 8 lanes, the ragged end through masked loads and stores
// so every element takes the same path. Compiled with -mavx2 -mfma; called
// only when the CPU has them.
#include <immintrin.h>

#include "kernels/cpu/gelu_simd.h"
#include "kernels/gelu_kernels.h"

namespace roformer::kernels {
namespace {

struct Avx2 {
  using V = __m256;
  using M = __m256;
  static V set1(float v) { return _mm256_set1_ps(v); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V div(V a, V b) { return _mm256_div_ps(a, b); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V fnmadd(V a, V b, V c) { return _mm256_fnmadd_ps(a, b, c); }
  static V min(V a, V b) { return _mm256_min_ps(a, b); }
  static V max(V a, V b) { return _mm256_max_ps(a, b); }
  static V abs(V a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  static M lt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static M gt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
  static V select(M m, V a, V b) { return _mm256_blendv_ps(b, a, m); }
  static V zero_if(M m, V a) { return _mm256_andnot_ps(m, a); }
  static V round_nearest(V a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static V scale2(V p, V k) {
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
  }
};

// Lanes [0, n) of the last, partial vector.
inline __m256i tail_mask(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

template <class F>
void map_forward(float* x, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, f(_mm256_loadu_ps(x + i)));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(x + i, m, f(_mm256_maskload_ps(x + i, m)));
  }
}

template <class F>
void map_backward(const float* x, const float* dy, float* dx, int64_t n, F grad) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dx + i, _mm256_mul_ps(_mm256_loadu_ps(dy + i), grad(_mm256_loadu_ps(x + i))));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(dx + i, m, _mm256_mul_ps(_mm256_maskload_ps(dy + i, m), grad(_mm256_maskload_ps(x + i, m))));
  }
}

}  // namespace

void gelu_forward_avx2(GeluForm form, float* x, int64_t n) {
  if (form == GeluForm::Erf)
    map_forward(x, n, [](__m256 v) { return simd::gelu_erf<Avx2>(v); });
  else
    map_forward(x, n, [](__m256 v) { return simd::gelu_tanh<Avx2>(v); });
}

void gelu_backward_avx2(GeluForm form, const float* x, const float* dy, float* dx, int64_t n) {
  if (form == GeluForm::Erf)
    map_backward(x, dy, dx, n, [](__m256 v) { return simd::gelu_erf_grad<Avx2>(v); });
  else
    map_backward(x, dy, dx, n, [](__m256 v) { return simd::gelu_tanh_grad<Avx2>(v); });
}

}  // namespace roformer::kernels
