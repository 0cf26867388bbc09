// The fp32 panel loop on AVX2 and FMA (kernels/f32_panels.h): up to six
// activation rows a pass over a panel, each input's two weight vectors
// loaded once and multiplied into the rows' twelve accumulators. Compiled
// with -mavx2 -mfma; called only when the CPU has both.
#include <immintrin.h>

#include <algorithm>

#include "kernels/f32_panels.h"

namespace roformer::kernels {
namespace {

constexpr int64_t kHalf = kF32PanelWidth / 2;  // columns per vector
// Rows per block of the loop over panels: the block's activations for one
// input block (132 x 768 floats, 405 KB) stay in a Zen 3 core's L2 while
// every panel passes over them; 128-token inputs are one block.
constexpr int64_t kRowBlock = 22 * kF32PanelRows;

struct Columns {
  bool partial;  // fewer than 16 valid columns: masked loads and stores
  __m256i lo, hi;
};

__m256 load(const float* p, const Columns& c, bool high) {
  if (!c.partial) return _mm256_loadu_ps(p);
  return _mm256_maskload_ps(p, high ? c.hi : c.lo);
}

void store(float* p, __m256 v, const Columns& c, bool high) {
  if (!c.partial) {
    _mm256_storeu_ps(p, v);
  } else {
    _mm256_maskstore_ps(p, high ? c.hi : c.lo, v);
  }
}

// Rows [0, M) of x (stride ldx) over one panel of depth d: y (stride ldy)
// starts from the bias (first block) or from what the previous blocks left.
template <int M>
void pass(const float* x, int64_t ldx, const float* w, int64_t d, float* y, int64_t ldy, const float* bias,
          bool first, const Columns& c) {
  static_assert(M >= 1 && M <= kF32PanelRows);
  // Named accumulators rather than an array: GCC kept an array's vectors in
  // memory across the loop.
  __m256 a00, a01, a10, a11, a20, a21, a30, a31, a40, a41, a50, a51;
  __m256 init0 = _mm256_setzero_ps(), init1 = _mm256_setzero_ps();
  if (first && bias != nullptr) {
    init0 = load(bias, c, false);
    init1 = load(bias + kHalf, c, true);
  }
#define ROFORMER_PANEL_INIT(i)                                                  \
  if constexpr (M > i) {                                                        \
    a##i##0 = first ? init0 : load(y + i * ldy, c, false);                      \
    a##i##1 = first ? init1 : load(y + i * ldy + kHalf, c, true);               \
  }
  ROFORMER_PANEL_INIT(0)
  ROFORMER_PANEL_INIT(1)
  ROFORMER_PANEL_INIT(2)
  ROFORMER_PANEL_INIT(3)
  ROFORMER_PANEL_INIT(4)
  ROFORMER_PANEL_INIT(5)
#undef ROFORMER_PANEL_INIT
#pragma GCC unroll 4
  for (int64_t k = 0; k < d; ++k) {
    const __m256 w0 = _mm256_loadu_ps(w + k * kF32PanelWidth);
    const __m256 w1 = _mm256_loadu_ps(w + k * kF32PanelWidth + kHalf);
#define ROFORMER_PANEL_STEP(i)                                  \
  if constexpr (M > i) {                                        \
    const __m256 xb = _mm256_broadcast_ss(x + i * ldx + k);     \
    a##i##0 = _mm256_fmadd_ps(xb, w0, a##i##0);                 \
    a##i##1 = _mm256_fmadd_ps(xb, w1, a##i##1);                 \
  }
    ROFORMER_PANEL_STEP(0)
    ROFORMER_PANEL_STEP(1)
    ROFORMER_PANEL_STEP(2)
    ROFORMER_PANEL_STEP(3)
    ROFORMER_PANEL_STEP(4)
    ROFORMER_PANEL_STEP(5)
#undef ROFORMER_PANEL_STEP
  }
#define ROFORMER_PANEL_STORE(i)                  \
  if constexpr (M > i) {                         \
    store(y + i * ldy, a##i##0, c, false);       \
    store(y + i * ldy + kHalf, a##i##1, c, true); \
  }
  ROFORMER_PANEL_STORE(0)
  ROFORMER_PANEL_STORE(1)
  ROFORMER_PANEL_STORE(2)
  ROFORMER_PANEL_STORE(3)
  ROFORMER_PANEL_STORE(4)
  ROFORMER_PANEL_STORE(5)
#undef ROFORMER_PANEL_STORE
}

using Pass = void (*)(const float*, int64_t, const float*, int64_t, float*, int64_t, const float*, bool,
                      const Columns&);
constexpr Pass kPasses[kF32PanelRows] = {pass<1>, pass<2>, pass<3>, pass<4>, pass<5>, pass<6>};

Columns columns(int64_t valid) {
  Columns c{valid < kF32PanelWidth, _mm256_setzero_si256(), _mm256_setzero_si256()};
  if (c.partial) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    c.lo = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(valid)), lane);
    c.hi = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(valid - kHalf)), lane);
  }
  return c;
}

}  // namespace

void f32_panels_product_avx2(const float* x, int64_t rows, int64_t in, const float* w, int64_t out, const float* bias,
                             float* y, int64_t p0, int64_t p1) {
  const int64_t padded_out = f32_panels_padded_out(out);
  for (int64_t r0 = 0; r0 < rows; r0 += kRowBlock) {
    const int64_t r1 = std::min(rows, r0 + kRowBlock);
    for (int64_t k0 = 0; k0 < in; k0 += kF32PanelDepth) {
      const int64_t d = std::min(kF32PanelDepth, in - k0);
      const float* block = w + k0 * padded_out;
      for (int64_t p = p0; p < p1; ++p) {
        const int64_t o = p * kF32PanelWidth;
        const Columns c = columns(std::min(kF32PanelWidth, out - o));
        const float* panel = block + p * d * kF32PanelWidth;
        const float* b = bias != nullptr ? bias + o : nullptr;
        for (int64_t r = r0; r < r1; r += kF32PanelRows) {
          const int64_t m = std::min(kF32PanelRows, r1 - r);
          kPasses[m - 1](x + r * in + k0, in, panel, d, y + r * out + o, out, b, k0 == 0, c);
        }
      }
    }
  }
}

}  // namespace roformer::kernels
