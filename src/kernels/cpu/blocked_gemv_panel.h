#pragma once
// What the AVX-512 loops of the blocked product (kernels/blocked_gemv.h)
// share: storing a panel's accumulators with the bias, and running the loop
// instantiated for a row count. Included only by files compiled for AVX-512.
#include <type_traits>

#include "kernels/blocked_gemv.h"
#include "kernels/cpu/avx512_traits.h"

namespace roformer::kernels {
namespace {

// Rows 0..R-1 of y (rows of `out` values), columns n0..n0+63 where they
// exist, from four registers of 16 columns per row, plus the bias.
template <int R>
inline void store_panel(const __m512 (&acc)[R][4], const float* bias, float* y, int64_t out, int64_t n0) {
  for (int j = 0; j < 4; ++j) {
    const int64_t n = n0 + 16 * j;
    if (n >= out) break;
    const __mmask16 m = tail_mask(out - n);
    const __m512 b = bias != nullptr ? _mm512_maskz_loadu_ps(m, bias + n) : _mm512_setzero_ps();
    for (int r = 0; r < R; ++r) _mm512_mask_storeu_ps(y + r * out + n, m, _mm512_add_ps(acc[r][j], b));
  }
}

// f(std::integral_constant<int, R>{}) with R = rows, for rows 1 to 4.
template <class F>
inline void with_row_count(int64_t rows, F f) {
  static_assert(kGemvMaxRows == 4, "one case per row count");
  switch (rows) {
    case 1: f(std::integral_constant<int, 1>{}); break;
    case 2: f(std::integral_constant<int, 2>{}); break;
    case 3: f(std::integral_constant<int, 3>{}); break;
    default: f(std::integral_constant<int, 4>{}); break;
  }
}

}  // namespace
}  // namespace roformer::kernels
