// AVX-512 fp32 -> bf16 conversion: sixteen lanes at a time through the
// shared rounding store (avx512_traits.h), the integer rounding of
// f32_to_bf16. Compiled with -mavx512f -mavx512bw -mavx512vl; called only
// when the CPU reports AVX-512.
#include "kernels/bf16_convert.h"
#include "kernels/cpu/avx512_traits.h"

namespace roformer::kernels {

void convert_to_bf16_avx512(const float* x, int64_t n, uint16_t* y) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    store_bf16(y + i, _mm512_maskz_loadu_ps(m, x + i), m);
  }
}

}  // namespace roformer::kernels
