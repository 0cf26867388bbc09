// The bf16 panel product on AVX512-BF16 (kernels/bf16_panels.h): output
// tiles of 6 rows x 64 columns, 24 fp32 accumulators, each k step four loads
// of B and six broadcasts of A folded into the dot products. Compiled with
// the AVX-512 flags plus -mavx512bf16; called only when the CPU reports
// AVX512-BF16.
#include <algorithm>

#include "kernels/bf16_panels.h"
#include "kernels/cpu/avx512_traits.h"
#include "kernels/gelu_kernels.h"

namespace roformer::kernels {
namespace {

constexpr int64_t W = kBf16PanelWidth, kVecs = W / 16;
// Rows per block: their bf16 values (up to 192 x 3072 x 2 bytes) stay in
// L2 while every panel of the thread passes over them (measured: 96-192 rows
// are within noise; 1000+ rows lose 5-15 % at 1024 x 3072 x 768).
constexpr int64_t kBlockRows = 32 * kBf16PanelRows;

// Two bf16 values read as one word; the type may alias the uint16_t storage.
using PairWord = uint32_t __attribute__((may_alias, aligned(2)));

// tile (R, 64) = x rows [0, R) (ldx words apart) times one panel, plus bias.
template <int R>
void tile_product(int64_t pairs, const PairWord* x, int64_t ldx, const uint32_t* b, const float* bias, __mmask16 (&m)[kVecs],
                  float* tile) {
  __m512 acc[R][kVecs];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < kVecs; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int64_t k = 0; k < pairs; ++k) {
    __m512bh bv[kVecs];
#pragma GCC unroll 4
    for (int v = 0; v < kVecs; ++v) bv[v] = reinterpret_cast<__m512bh>(_mm512_loadu_si512(b + k * W + v * 16));
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512bh a = reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(x[r * ldx + k])));
#pragma GCC unroll 4
      for (int v = 0; v < kVecs; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], a, bv[v]);
    }
  }
  __m512 bvec[kVecs];
#pragma GCC unroll 4
  for (int v = 0; v < kVecs; ++v) bvec[v] = bias != nullptr ? _mm512_maskz_loadu_ps(m[v], bias + v * 16) : _mm512_setzero_ps();
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < kVecs; ++v) _mm512_store_ps(tile + r * W + v * 16, _mm512_add_ps(acc[r][v], bvec[v]));
}

template <int R>
void tile_rows(int64_t rows, int64_t pairs, const PairWord* x, int64_t ldx, const uint32_t* b, const float* bias,
               __mmask16 (&m)[kVecs], float* tile) {
  if constexpr (R > 0) {
    if (rows == R) tile_product<R>(pairs, x, ldx, b, bias, m, tile);
    else tile_rows<R - 1>(rows, pairs, x, ldx, b, bias, m, tile);
  }
}

void activate(Activation act, float* v, int64_t n) {
  switch (act) {
    case Activation::Gelu: gelu_forward_avx512(GeluForm::Erf, v, n); break;
    case Activation::GeluNew: gelu_forward_avx512(GeluForm::Tanh, v, n); break;
    case Activation::Relu:
      for (int64_t i = 0; i < n; i += 16) _mm512_store_ps(v + i, _mm512_max_ps(_mm512_load_ps(v + i), _mm512_setzero_ps()));
      break;
  }
}

}  // namespace

void bf16_panel_product_avx512bf16(const Bf16PanelProduct& p, int64_t panel_begin, int64_t panel_end) {
  const int64_t pairs = p.in / 2;
  const auto* x = reinterpret_cast<const PairWord*>(p.x);
  alignas(64) float tile[kBf16PanelRows * W];
  for (int64_t r0 = 0; r0 < p.rows; r0 += kBlockRows) {
    const int64_t r_end = std::min(p.rows, r0 + kBlockRows);
    for (int64_t panel = panel_begin; panel < panel_end; ++panel) {
      const int64_t n0 = panel * W, width = std::min(W, p.out - n0);
      __mmask16 m[kVecs];
      for (int64_t v = 0; v < kVecs; ++v) m[v] = tail_mask(std::max<int64_t>(0, width - v * 16));
      const uint32_t* b = p.panels + panel * pairs * W;
      const float* bias = p.bias != nullptr ? p.bias + n0 : nullptr;
      for (int64_t r = r0; r < r_end; r += kBf16PanelRows) {
        const int64_t rows = std::min(kBf16PanelRows, r_end - r);
        tile_rows<kBf16PanelRows>(rows, pairs, x + r * pairs, pairs, b, bias, m, tile);
        if (p.epilogue.activation) activate(*p.epilogue.activation, tile, rows * W);
        for (int64_t i = 0; i < rows; ++i) {
          const int64_t at = (r + i) * p.out + n0;
          for (int64_t v = 0; v < kVecs; ++v) {
            if (m[v] == 0) break;
            __m512 y = _mm512_load_ps(tile + i * W + v * 16);
            if (p.epilogue.residual != nullptr)
              y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(m[v], p.epilogue.residual + at + v * 16));
            if (p.y32 != nullptr) _mm512_mask_storeu_ps(p.y32 + at + v * 16, m[v], y);
            else store_bf16(p.y16 + at + v * 16, y, m[v]);
          }
        }
      }
    }
  }
}

}  // namespace roformer::kernels
