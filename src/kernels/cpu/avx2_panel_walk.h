#pragma once
// What the AVX2 panel loops (fp32 and bf16 weights in cpu/f32_panels_avx2.cpp,
// int8 codes in cpu/int8_panels_avx2.cpp) share: the masks of a partial
// panel, how many rows a pass takes, and the walk over the panels of one
// block of rows and inputs. For the files compiled with -mavx2; in an
// anonymous namespace, so each has its own copy and none built with other
// flags can stand in for it.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

// M(0) ... M(5): a pass's step written once for each of its six rows, whose
// accumulators are named registers (GCC kept an array of them in memory).
#define ROFORMER_EACH_PANEL_ROW(M) M(0) M(1) M(2) M(3) M(4) M(5)

namespace roformer::kernels {
namespace {

// The valid columns of a 16-column panel as two 8-lane masks.
struct PanelColumns {
  bool partial;  // fewer than 16 valid columns: masked loads and stores
  __m256i lo, hi;
};

inline PanelColumns panel_columns(int64_t valid) {
  PanelColumns c{valid < 16, _mm256_setzero_si256(), _mm256_setzero_si256()};
  if (c.partial) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    c.lo = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(valid)), lane);
    c.hi = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(valid - 8)), lane);
  }
  return c;
}

// Rows for the next pass when `left` remain: up to `most` (six), except that
// 7 or 8 go as 4 + 3 or 4 + 4, as a pass of one or two rows keeps too few
// chains of sums in flight (two or four) and ran at about half the rate of
// a full one.
inline int64_t panel_rows_per_pass(int64_t left, int64_t most) {
  return left == 7 || left == 8 ? 4 : std::min(most, left);
}

// The passes over panels [p0, p1) (16 columns each, out columns in all) for
// rows [r0, r1) of one input block: two(p) where one or two rows take the
// full panels p and p + 1 in one pass, else one(p, r, m, columns) for each
// pass of m rows from row r.
template <class TwoPanels, class OnePanel>
void walk_panels(int64_t r0, int64_t r1, int64_t p0, int64_t p1, int64_t out, int64_t most_rows, TwoPanels two,
                 OnePanel one) {
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t o = p * 16;
    if (r1 - r0 <= 2 && p + 1 < p1 && o + 32 <= out) {
      two(p);
      ++p;
      continue;
    }
    const PanelColumns c = panel_columns(std::min<int64_t>(16, out - o));
    for (int64_t r = r0, m = 0; r < r1; r += m) {
      m = panel_rows_per_pass(r1 - r, most_rows);
      one(p, r, m, c);
    }
  }
}

}  // namespace
}  // namespace roformer::kernels
