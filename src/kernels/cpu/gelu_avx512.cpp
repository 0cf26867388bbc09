// AVX-512 GELU: 16 lanes, masked tails, the same algorithm as the AVX2 file
// (gelu_simd.h). Compiled with -mavx512f -mfma; called only when the CPU
// reports AVX-512.
// GCC 12 reports its own AVX-512 headers' deliberately undefined registers.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include "kernels/cpu/gelu_simd.h"
#include "kernels/gelu_kernels.h"

namespace roformer::kernels {
namespace {

struct Avx512 {
  using V = __m512;
  using M = __mmask16;
  static V set1(float v) { return _mm512_set1_ps(v); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V div(V a, V b) { return _mm512_div_ps(a, b); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V fnmadd(V a, V b, V c) { return _mm512_fnmadd_ps(a, b, c); }
  static V min(V a, V b) { return _mm512_min_ps(a, b); }
  static V max(V a, V b) { return _mm512_max_ps(a, b); }
  static V abs(V a) { return _mm512_abs_ps(a); }
  static M lt(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static M gt(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
  static V select(M m, V a, V b) { return _mm512_mask_blend_ps(m, b, a); }
  static V zero_if(M m, V a) { return _mm512_maskz_mov_ps(static_cast<__mmask16>(~m), a); }
  static V round_nearest(V a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static V scale2(V p, V k) { return _mm512_scalef_ps(p, k); }
};

inline __mmask16 tail_mask(int64_t n) { return static_cast<__mmask16>((1u << n) - 1u); }

template <class F>
void map_forward(float* x, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, f(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(x + i, m, f(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

template <class F>
void map_backward(const float* x, const float* dy, float* dx, int64_t n, F grad) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(dx + i, _mm512_mul_ps(_mm512_loadu_ps(dy + i), grad(_mm512_loadu_ps(x + i))));
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(dx + i, m,
                          _mm512_mul_ps(_mm512_maskz_loadu_ps(m, dy + i), grad(_mm512_maskz_loadu_ps(m, x + i))));
  }
}

}  // namespace

void gelu_forward_avx512(GeluForm form, float* x, int64_t n) {
  if (form == GeluForm::Erf)
    map_forward(x, n, [](__m512 v) { return simd::gelu_erf<Avx512>(v); });
  else
    map_forward(x, n, [](__m512 v) { return simd::gelu_tanh<Avx512>(v); });
}

void gelu_backward_avx512(GeluForm form, const float* x, const float* dy, float* dx, int64_t n) {
  if (form == GeluForm::Erf)
    map_backward(x, dy, dx, n, [](__m512 v) { return simd::gelu_erf_grad<Avx512>(v); });
  else
    map_backward(x, dy, dx, n, [](__m512 v) { return simd::gelu_tanh_grad<Avx512>(v); });
}

}  // namespace roformer::kernels
