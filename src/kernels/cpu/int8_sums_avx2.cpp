// The int8 sums on AVX2 (kernels/int8_sums.h): sixteen codes a step, widened
// to 16 bits and multiplied in pairs into eight 32-bit lanes. Compiled with
// -mavx2; called only when the CPU has it.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/int8_sums.h"

namespace roformer::kernels {
namespace {

constexpr int64_t kStep = 16;     // codes per step
constexpr int64_t kGroupRows = 4;  // activation rows that share each weight load

int32_t lane_sum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

// acc + the pair sums of 16 widened weights and 16 widened codes at a.
__m256i add_products(__m256i acc, __m256i weights, const int16_t* a) {
  return _mm256_add_epi32(acc, _mm256_madd_epi16(weights, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a))));
}

// Rows [0, R) of the widened codes a (stride steps * 16) against weight rows [o0, o1).
template <int R>
void group_sums(const int16_t* a, int64_t steps, int64_t in, const int8_t* w, int64_t out, int64_t o0, int64_t o1,
                int32_t* sums) {
  const int64_t full = in / kStep, stride = steps * kStep;
  alignas(16) int8_t tail[kStep];
  for (int64_t o = o0; o < o1; ++o) {
    const int8_t* row = w + o * in;
    // One or two rows: two sets of sums, four steps (a cache line of
    // weights) a pass; a step a pass spent as many instructions on the loop
    // as on the sums. More rows have enough sums a step (and no registers
    // for a second set). The sums are exact, so their order does not matter.
    __m256i acc[R], acc2[R];
    for (int r = 0; r < R; ++r) acc[r] = acc2[r] = _mm256_setzero_si256();
    int64_t s = 0;
    for (; R <= 2 && s + 4 <= full; s += 4) {
      const int8_t* wp = row + s * kStep;
      const int16_t* ap = a + s * kStep;
#pragma GCC unroll 4
      for (int u = 0; u < 4; u += 2) {
        const __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wp + u * kStep)));
        const __m256i w1 =
            _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wp + (u + 1) * kStep)));
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          acc[r] = add_products(acc[r], w0, ap + r * stride + u * kStep);
          acc2[r] = add_products(acc2[r], w1, ap + r * stride + (u + 1) * kStep);
        }
      }
    }
    for (; s < full; ++s) {
      const __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + s * kStep)));
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) acc[r] = add_products(acc[r], wv, a + r * stride + s * kStep);
    }
    for (int r = 0; r < R; ++r) acc[r] = _mm256_add_epi32(acc[r], acc2[r]);
    if (full < steps) {  // the last codes, padded with zeros on both sides
      std::memset(tail, 0, sizeof(tail));
      std::memcpy(tail, row + full * kStep, static_cast<std::size_t>(in - full * kStep));
      const __m256i wv = _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(tail)));
      for (int r = 0; r < R; ++r) acc[r] = add_products(acc[r], wv, a + r * stride + full * kStep);
    }
    for (int r = 0; r < R; ++r) sums[r * out + o] = lane_sum(acc[r]);
  }
}

}  // namespace

void int8_sums_avx2(const uint8_t* x, int64_t rows, int64_t in, const int8_t* w, int64_t out, int64_t o0, int64_t o1,
                    int32_t* sums) {
  const int64_t steps = (in + kStep - 1) / kStep;
  thread_local std::vector<int16_t> wide;
  const auto n = static_cast<std::size_t>(kGroupRows * steps * kStep);
  if (wide.size() < n) wide.resize(n);
  for (int64_t g = 0; g < rows; g += kGroupRows) {
    const int64_t R = std::min(kGroupRows, rows - g);
    for (int64_t r = 0; r < R; ++r) {
      int16_t* dst = wide.data() + r * steps * kStep;
      const uint8_t* src = x + (g + r) * in;
      for (int64_t k = 0; k < in; ++k) dst[k] = src[k];
      for (int64_t k = in; k < steps * kStep; ++k) dst[k] = 0;
    }
    int32_t* s = sums + g * out;
    switch (R) {
      case 1: group_sums<1>(wide.data(), steps, in, w, out, o0, o1, s); break;
      case 2: group_sums<2>(wide.data(), steps, in, w, out, o0, o1, s); break;
      case 3: group_sums<3>(wide.data(), steps, in, w, out, o0, o1, s); break;
      default: group_sums<4>(wide.data(), steps, in, w, out, o0, o1, s); break;
    }
  }
}

}  // namespace roformer::kernels
