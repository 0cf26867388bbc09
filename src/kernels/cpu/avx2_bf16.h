#pragma once
// bf16 values widened to fp32 lanes on AVX2, for the files compiled with
// -mavx2. In an anonymous namespace, so each such file has its own copy and
// none built with other flags can stand in for it. Exact: a bf16 value is
// the top half of an fp32 one.
#include <immintrin.h>

namespace roformer::kernels {
namespace {

// The eight bf16 values whose 16-bit patterns start at p.
inline __m256 widen_bf16x8(const void* p) {
  const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(static_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}

}  // namespace
}  // namespace roformer::kernels
