// The bf16-row loops on AVX2 and FMA (kernels/bf16_rows.h): eight bf16
// weights a step, widened to fp32 by a zero-extension and a shift, one
// fused multiply-add per row of activations. Compiled with -mavx2 -mfma;
// called only when the CPU has both.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/bf16_rows.h"

namespace roformer::kernels {
namespace {

constexpr int64_t kLanes = 8;                          // values per step: one vector of fp32 lanes
constexpr int64_t kBlock = kBf16RowsGroup * kLanes;    // values of one step of a group
constexpr int kGroupRows = 4;                          // activation rows that share each weight load

__m256 widen8(const uint16_t* w) {
  const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}

// The lanes added in the order the header fixes.
float lane_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));  // l0+l4, l1+l5, l2+l6, l3+l7
  s = _mm_add_ps(s, _mm_shuffle_ps(s, s, 0x4e));  // (l0+l4)+(l2+l6), (l1+l5)+(l3+l7), ...
  s = _mm_add_ps(s, _mm_shuffle_ps(s, s, 0xb1));
  return _mm_cvtss_f32(s);
}

// Rows [j0, j0 + O) of the group starting at output o (those below
// `valid`) for activation rows [0, R): R x O accumulators, at most eight,
// so each weight vector is widened once for every row. x_tail holds each
// row's last in % 8 values padded with zeros (the weights' padding is zeros).
template <int R, int O>
void group_outputs(const float* x, int64_t in, const float (*x_tail)[kLanes], const uint16_t* group, int j0,
                   int64_t valid, const float* bias, float* y, int64_t out, int64_t o) {
  static_assert(R * O <= 8);
  const int64_t full = in / kLanes;
  __m256 acc[R][O];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < O; ++j) acc[r][j] = _mm256_setzero_ps();
  const uint16_t* w = group + j0 * kLanes;
  for (int64_t s = 0; s < full; ++s) {
    __m256 xv[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) xv[r] = _mm256_loadu_ps(x + r * in + s * kLanes);
#pragma GCC unroll 8
    for (int j = 0; j < O; ++j) {
      const __m256 wv = widen8(w + s * kBlock + j * kLanes);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) acc[r][j] = _mm256_fmadd_ps(xv[r], wv, acc[r][j]);
    }
  }
  if (full * kLanes < in)
    for (int j = 0; j < O; ++j) {
      const __m256 wv = widen8(w + full * kBlock + j * kLanes);
      for (int r = 0; r < R; ++r) acc[r][j] = _mm256_fmadd_ps(_mm256_load_ps(x_tail[r]), wv, acc[r][j]);
    }
  for (int j = 0; j < O && j0 + j < valid; ++j) {
    const int64_t n = o + j0 + j;
    for (int r = 0; r < R; ++r) {
      const float sum = lane_sum(acc[r][j]);
      y[r * out + n] = bias != nullptr ? sum + bias[n] : sum;
    }
  }
}

// Outputs [o0, o1) for R rows, group by group, O rows of a group at a time.
template <int R, int O>
void output_range(const float* x, int64_t in, const float (*x_tail)[kLanes], const uint16_t* w, const float* bias,
                  float* y, int64_t out, int64_t o0, int64_t o1) {
  const int64_t group_values = kBf16RowsGroup * bf16_rows_padded_in(in);
  for (int64_t o = o0; o < o1; o += kBf16RowsGroup) {
    const uint16_t* group = w + (o / kBf16RowsGroup) * group_values;
    const int64_t valid = std::min(kBf16RowsGroup, o1 - o);
    for (int j0 = 0; j0 < valid; j0 += O) group_outputs<R, O>(x, in, x_tail, group, j0, valid, bias, y, out, o);
  }
}

}  // namespace

void bf16_rows_product_avx2(const float* x, int64_t rows, int64_t in, const uint16_t* w, int64_t out,
                            const float* bias, float* y, int64_t o0, int64_t o1) {
  const int64_t full = in / kLanes;
  for (int64_t g = 0; g < rows; g += kGroupRows) {
    const int64_t R = std::min<int64_t>(kGroupRows, rows - g);
    alignas(32) float x_tail[kGroupRows][kLanes] = {};
    for (int64_t r = 0; r < R; ++r)
      std::memcpy(x_tail[r], x + (g + r) * in + full * kLanes,
                  static_cast<std::size_t>(in - full * kLanes) * sizeof(float));
    const float* xg = x + g * in;
    float* yg = y + g * out;
    // Eight accumulators: enough independent chains to hide the fused
    // multiply-add's latency while the weights stream in. One row reads a
    // group in one pass, more rows in two or four.
    switch (R) {
      case 1: output_range<1, 8>(xg, in, x_tail, w, bias, yg, out, o0, o1); break;
      case 2: output_range<2, 4>(xg, in, x_tail, w, bias, yg, out, o0, o1); break;
      case 3: output_range<3, 2>(xg, in, x_tail, w, bias, yg, out, o0, o1); break;
      default: output_range<4, 2>(xg, in, x_tail, w, bias, yg, out, o0, o1); break;
    }
  }
}

void widen_bf16_rows_avx2(const uint16_t* w, int64_t in, int64_t o0, int64_t o1, float* y) {
  const int64_t full = in / kLanes, group_values = kBf16RowsGroup * bf16_rows_padded_in(in);
  for (int64_t o = o0; o < o1; o += kBf16RowsGroup) {
    const uint16_t* group = w + (o / kBf16RowsGroup) * group_values;
    const int64_t valid = std::min(kBf16RowsGroup, o1 - o);
    float* rows = y + (o - o0) * in;
    for (int64_t s = 0; s < full; ++s)
      for (int64_t j = 0; j < valid; ++j)
        _mm256_storeu_ps(rows + j * in + s * kLanes, widen8(group + s * kBlock + j * kLanes));
    for (int64_t j = 0; j < valid; ++j)
      for (int64_t k = full * kLanes; k < in; ++k) {
        const uint32_t bits = static_cast<uint32_t>(group[full * kBlock + j * kLanes + k % kLanes]) << 16;
        std::memcpy(rows + j * in + k, &bits, sizeof(bits));
      }
  }
}

}  // namespace roformer::kernels
