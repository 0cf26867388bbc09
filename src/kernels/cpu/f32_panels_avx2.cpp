// The panel loops on AVX2 and FMA (kernels/f32_panels.h): up to six
// activation rows a pass over a panel, each input's two weight vectors
// loaded once (bf16 weights: widened by a zero-extension and a shift) and
// multiplied into the rows' twelve accumulators. Compiled with -mavx2 -mfma;
// called only when the CPU has both.
#include <immintrin.h>

#include <algorithm>

#include "kernels/cpu/avx2_bf16.h"
#include "kernels/cpu/avx2_panel_walk.h"
#include "kernels/f32_panels.h"

namespace roformer::kernels {
namespace {

constexpr int64_t kHalf = kF32PanelWidth / 2;  // columns per vector
// Rows per block of the loop over panels: the block's activations for one
// input block (132 x 768 floats, 405 KB) stay in a Zen 3 core's L2 while
// every panel passes over them; 128-token inputs are one block.
constexpr int64_t kRowBlock = 22 * kF32PanelRows;

static_assert(kF32PanelWidth == 16, "the panel walk takes 16-column panels");
using Columns = PanelColumns;

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

__m256 weights(const float* w) { return _mm256_loadu_ps(w); }
__m256 weights(const uint16_t* w) { return widen_bf16x8(w); }

// Rows [0, M) of x (stride ldx) over one panel of depth d: y (stride ldy)
// starts from the bias (first block) or from what the previous blocks left.
// The rows are read in place, M streams a stride apart: copying them first
// into one stream per pass (input-major, as GEMM libraries pack their left
// operand) ran no faster on a Zen 3 core in interleaved runs of 128 and 512
// rows at panel depths 768, 384 and 256, and costs a copy per product.
template <class W, int M>
void pass(const float* x, int64_t ldx, const W* w, int64_t d, float* y, int64_t ldy, const float* bias,
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
  ROFORMER_EACH_PANEL_ROW(ROFORMER_PANEL_INIT)
#undef ROFORMER_PANEL_INIT
#pragma GCC unroll 4
  for (int64_t k = 0; k < d; ++k) {
    const __m256 w0 = weights(w + k * kF32PanelWidth);
    const __m256 w1 = weights(w + k * kF32PanelWidth + kHalf);
#define ROFORMER_PANEL_STEP(i)                                  \
  if constexpr (M > i) {                                        \
    const __m256 xb = _mm256_broadcast_ss(x + i * ldx + k);     \
    a##i##0 = _mm256_fmadd_ps(xb, w0, a##i##0);                 \
    a##i##1 = _mm256_fmadd_ps(xb, w1, a##i##1);                 \
  }
    ROFORMER_EACH_PANEL_ROW(ROFORMER_PANEL_STEP)
#undef ROFORMER_PANEL_STEP
  }
#define ROFORMER_PANEL_STORE(i)                  \
  if constexpr (M > i) {                         \
    store(y + i * ldy, a##i##0, c, false);       \
    store(y + i * ldy + kHalf, a##i##1, c, true); \
  }
  ROFORMER_EACH_PANEL_ROW(ROFORMER_PANEL_STORE)
#undef ROFORMER_PANEL_STORE
}

// Rows [0, M) (M <= 2) over two adjacent full panels at once, for products
// of a row or two (decoding steps): one pass over a panel keeps only two
// chains of fused multiply-adds a row in flight, and their latency, not the
// memory, then set the pace; two panels give four.
template <class W, int M>
void pass_two_panels(const float* x, int64_t ldx, const W* w, int64_t d, float* y, int64_t ldy, const float* bias,
                     bool first) {
  static_assert(M >= 1 && M <= 2);
  const W* v = w + d * kF32PanelWidth;  // the second panel
  __m256 a00, a01, a02, a03, a10, a11, a12, a13;
#define ROFORMER_PANEL_INIT(i)                                                              \
  if constexpr (M > i) {                                                                    \
    const float* from = first ? bias : y + i * ldy;                                         \
    const bool zero = first && bias == nullptr;                                             \
    a##i##0 = zero ? _mm256_setzero_ps() : _mm256_loadu_ps(from);                           \
    a##i##1 = zero ? _mm256_setzero_ps() : _mm256_loadu_ps(from + kHalf);                   \
    a##i##2 = zero ? _mm256_setzero_ps() : _mm256_loadu_ps(from + 2 * kHalf);               \
    a##i##3 = zero ? _mm256_setzero_ps() : _mm256_loadu_ps(from + 3 * kHalf);               \
  }
  ROFORMER_PANEL_INIT(0)
  ROFORMER_PANEL_INIT(1)
#undef ROFORMER_PANEL_INIT
#pragma GCC unroll 4
  for (int64_t k = 0; k < d; ++k) {
    const __m256 w0 = weights(w + k * kF32PanelWidth), w1 = weights(w + k * kF32PanelWidth + kHalf);
    const __m256 w2 = weights(v + k * kF32PanelWidth), w3 = weights(v + k * kF32PanelWidth + kHalf);
#define ROFORMER_PANEL_STEP(i)                              \
  if constexpr (M > i) {                                    \
    const __m256 xb = _mm256_broadcast_ss(x + i * ldx + k); \
    a##i##0 = _mm256_fmadd_ps(xb, w0, a##i##0);             \
    a##i##1 = _mm256_fmadd_ps(xb, w1, a##i##1);             \
    a##i##2 = _mm256_fmadd_ps(xb, w2, a##i##2);             \
    a##i##3 = _mm256_fmadd_ps(xb, w3, a##i##3);             \
  }
    ROFORMER_PANEL_STEP(0)
    ROFORMER_PANEL_STEP(1)
#undef ROFORMER_PANEL_STEP
  }
#define ROFORMER_PANEL_STORE(i)                           \
  if constexpr (M > i) {                                  \
    _mm256_storeu_ps(y + i * ldy, a##i##0);               \
    _mm256_storeu_ps(y + i * ldy + kHalf, a##i##1);       \
    _mm256_storeu_ps(y + i * ldy + 2 * kHalf, a##i##2);   \
    _mm256_storeu_ps(y + i * ldy + 3 * kHalf, a##i##3);   \
  }
  ROFORMER_PANEL_STORE(0)
  ROFORMER_PANEL_STORE(1)
#undef ROFORMER_PANEL_STORE
}

template <class W>
using Pass = void (*)(const float*, int64_t, const W*, int64_t, float*, int64_t, const float*, bool, const Columns&);
template <class W>
constexpr Pass<W> kPasses[kF32PanelRows] = {pass<W, 1>, pass<W, 2>, pass<W, 3>, pass<W, 4>, pass<W, 5>, pass<W, 6>};

template <class W>
void product(const float* x, int64_t rows, int64_t in, const W* w, int64_t out, const float* bias, float* y,
             int64_t p0, int64_t p1) {
  const int64_t padded_out = f32_panels_padded_out(out);
  for (int64_t r0 = 0; r0 < rows; r0 += kRowBlock) {
    const int64_t r1 = std::min(rows, r0 + kRowBlock);
    for (int64_t k0 = 0; k0 < in; k0 += kF32PanelDepth) {
      const int64_t d = std::min(kF32PanelDepth, in - k0);
      const W* block = w + k0 * padded_out;
      auto two = [&](int64_t p) {
        const int64_t o = p * kF32PanelWidth;
        const W* pair = block + p * d * kF32PanelWidth;
        const float* b = bias != nullptr ? bias + o : nullptr;
        if (r1 - r0 == 1) {
          pass_two_panels<W, 1>(x + r0 * in + k0, in, pair, d, y + r0 * out + o, out, b, k0 == 0);
        } else {
          pass_two_panels<W, 2>(x + r0 * in + k0, in, pair, d, y + r0 * out + o, out, b, k0 == 0);
        }
      };
      auto one = [&](int64_t p, int64_t r, int64_t m, const Columns& c) {
        const int64_t o = p * kF32PanelWidth;
        const float* b = bias != nullptr ? bias + o : nullptr;
        kPasses<W>[m - 1](x + r * in + k0, in, block + p * d * kF32PanelWidth, d, y + r * out + o, out, b, k0 == 0,
                          c);
      };
      walk_panels(r0, r1, p0, p1, out, kF32PanelRows, two, one);
    }
  }
}

}  // namespace

void f32_panels_product_avx2(const float* x, int64_t rows, int64_t in, const float* w, int64_t out, const float* bias,
                             float* y, int64_t p0, int64_t p1) {
  product(x, rows, in, w, out, bias, y, p0, p1);
}

void bf16_weight_panels_product_avx2(const float* x, int64_t rows, int64_t in, const uint16_t* w, int64_t out,
                                     const float* bias, float* y, int64_t p0, int64_t p1) {
  product(x, rows, in, w, out, bias, y, p0, p1);
}

}  // namespace roformer::kernels
