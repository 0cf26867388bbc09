// AVX-512 fp32 -> bf16 conversion: the integer rounding of f32_to_bf16
// (add 0x7fff plus the kept part's lowest bit, keep the top half), sixteen
// lanes at a time. Not vcvtneps2bf16, which flushes denormals to zero and so
// would differ from the reference. Compiled with -mavx512f -mavx512bw;
// called only when the CPU reports AVX-512.
#include "kernels/bf16_convert.h"
#include "kernels/cpu/avx512_traits.h"

namespace roformer::kernels {

void convert_to_bf16_avx512(const float* x, int64_t n, uint16_t* y) {
  const __m512i one = _mm512_set1_epi32(1), half = _mm512_set1_epi32(0x7fff);
  const __m512i magnitude = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000);
  const __m512i quiet = _mm512_set1_epi32(0x40);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512i u = _mm512_castps_si512(_mm512_maskz_loadu_ps(m, x + i));
    const __m512i top = _mm512_srli_epi32(u, 16);
    const __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(half, _mm512_and_si512(top, one))), 16);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, magnitude), inf);
    const __m512i out = _mm512_mask_mov_epi32(rounded, nan, _mm512_or_si512(top, quiet));
    _mm256_mask_storeu_epi16(y + i, m, _mm512_cvtepi32_epi16(out));
  }
}

}  // namespace roformer::kernels
