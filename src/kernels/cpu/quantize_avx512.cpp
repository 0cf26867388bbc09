// AVX-512 quantization loops: the same float operations as the plain loops in
// quantize.cpp, sixteen lanes at a time (round to nearest even through the
// default MXCSR mode, like std::nearbyint), so both give the same bits.
// Compiled with -mavx512f -mavx512bw -mavx512vl; called only when the CPU
// reports AVX-512.
#include <cmath>

#include "kernels/cpu/avx512_traits.h"
#include "kernels/quantize.h"

namespace roformer::kernels {

bool quantize_rows_avx512(const float* x, int64_t rows, int64_t cols, uint8_t* q, RowQuant* params) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * cols;
    __m512 lo = _mm512_setzero_ps(), hi = _mm512_setzero_ps();
    __mmask16 nan = 0;
    for (int64_t c = 0; c < cols; c += 16) {
      const __mmask16 m = tail_mask(cols - c);
      const __m512 v = _mm512_maskz_loadu_ps(m, row + c);  // masked-off lanes read 0, inside [lo, hi]
      nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
      lo = _mm512_min_ps(lo, v);
      hi = _mm512_max_ps(hi, v);
    }
    const float l = _mm512_reduce_min_ps(lo), h = _mm512_reduce_max_ps(hi);
    if (nan != 0 || !std::isfinite(l) || !std::isfinite(h)) return false;
    const RowQuant p = row_quant(l, h);
    params[r] = p;
    const __m512 inv = _mm512_set1_ps(1.0f / p.scale);
    const __m512i zero = _mm512_set1_epi32(p.zero);
    const __m512i top = _mm512_set1_epi32(255), bottom = _mm512_setzero_si512();
    uint8_t* out = q + r * cols;
    for (int64_t c = 0; c < cols; c += 16) {
      const __mmask16 m = tail_mask(cols - c);
      const __m512i v = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, row + c), inv)), zero);
      const __m512i clamped = _mm512_min_epi32(_mm512_max_epi32(v, bottom), top);
      _mm_mask_storeu_epi8(out + c, m, _mm512_cvtepi32_epi8(clamped));
    }
  }
  return true;
}

void dequantize_rows_avx512(const int32_t* acc, int64_t rows, int64_t cols, const RowQuant* params,
                            const float* w_scale, const int32_t* w_sum, const float* bias, float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const __m512 s = _mm512_set1_ps(params[r].scale);
    const __m512i z = _mm512_set1_epi32(params[r].zero);
    const int32_t* a = acc + r * cols;
    float* out = y + r * cols;
    for (int64_t n = 0; n < cols; n += 16) {
      const __mmask16 m = tail_mask(cols - n);
      const __m512i centred =
          _mm512_sub_epi32(_mm512_maskz_loadu_epi32(m, a + n), _mm512_mullo_epi32(z, _mm512_maskz_loadu_epi32(m, w_sum + n)));
      const __m512 scale = _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, w_scale + n));
      const __m512 v = bias != nullptr
                           ? _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(centred), _mm512_maskz_loadu_ps(m, bias + n))
                           : _mm512_mul_ps(scale, _mm512_cvtepi32_ps(centred));
      _mm512_mask_storeu_ps(out + n, m, v);
    }
  }
}

}  // namespace roformer::kernels
