// AVX-512 GELU: 16 lanes, masked tails, the same algorithm as the AVX2 file
// (gelu_simd.h). Compiled with -mavx512f -mfma; called only when the CPU
// reports AVX-512.
#include "kernels/cpu/avx512_traits.h"
#include "kernels/cpu/gelu_simd.h"
#include "kernels/gelu_kernels.h"

namespace roformer::kernels {
namespace {

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
