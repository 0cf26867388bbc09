#pragma once
// What the AVX-512 loops of the blocked product (kernels/blocked_gemv.h)
// share: storing a panel's accumulators with the bias, and walking the
// panels with the loop instantiated for the row count. Included only by files compiled for AVX-512.
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

// f(r, panel, n0) for the panels [p0, p1) of w (elements of type E), r as
// with_row_count passes it, n0 the panel's first column.
template <class E, class F>
inline void each_panel(const BlockedWeights& w, int64_t rows, int64_t p0, int64_t p1, F f) {
  const E* data = static_cast<const E*>(w.data);
  for (int64_t p = p0; p < p1; ++p)
    with_row_count(rows, [&](auto r) { f(r, data + p * w.padded_in * kGemvPanel, p * kGemvPanel); });
}

}  // namespace
}  // namespace roformer::kernels
