// The int8 panel loops on AVX2 (kernels/int8_panels.h): the activation codes
// of a block of rows widened to 16 bits once, then up to six rows a pass
// over a panel, each pair of inputs' 16-bit codes broadcast and multiplied
// into the rows' twelve accumulators of 32-bit sums. Compiled with -mavx2;
// called only when the CPU has it.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/avx2_panel_walk.h"
#include "kernels/int8_panels.h"

namespace roformer::kernels {
namespace {

constexpr int64_t kHalf = kInt8PanelWidth / 2;  // columns per vector
// Rows per block: their widened codes for one input block (132 x 768 x 2
// bytes) stay in L2 while every panel passes over them.
constexpr int64_t kRowBlock = 22 * kInt8PanelRows;

static_assert(kInt8PanelWidth == 16, "the panel walk takes 16-column panels");
using Columns = PanelColumns;

__m256i load(const int32_t* p, const Columns& c, bool high) {
  if (!c.partial) return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm256_maskload_epi32(p, high ? c.hi : c.lo);
}

void store(int32_t* p, __m256i v, const Columns& c, bool high) {
  if (!c.partial) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v);
  } else {
    _mm256_maskstore_epi32(p, high ? c.hi : c.lo, v);
  }
}

// Eight columns' codes for a pair of inputs, sign-extended to 16 bits.
__m256i weights(const int8_t* w) { return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w))); }

// A row's two 16-bit codes at a, repeated in every 32-bit lane.
__m256i pair(const int16_t* a) {
  int32_t v;
  std::memcpy(&v, a, sizeof(v));
  return _mm256_set1_epi32(v);
}

__m256i add_products(__m256i acc, __m256i x, __m256i w) { return _mm256_add_epi32(acc, _mm256_madd_epi16(x, w)); }

// Rows [0, M) of the widened codes x (stride ldx) over one panel of depth d
// (even): the sums y (stride ldy) start from zero (first block) or from
// what the previous blocks left.
template <int M>
void pass(const int16_t* x, int64_t ldx, const int8_t* w, int64_t d, int32_t* y, int64_t ldy, bool first,
          const Columns& c) {
  static_assert(M >= 1 && M <= kInt8PanelRows);
  // Named accumulators, as in the fp32 panels: GCC kept an array's vectors in memory.
  __m256i a00, a01, a10, a11, a20, a21, a30, a31, a40, a41, a50, a51;
  const __m256i zero = _mm256_setzero_si256();
#define ROFORMER_PANEL_INIT(i)                              \
  if constexpr (M > i) {                                    \
    a##i##0 = first ? zero : load(y + i * ldy, c, false);   \
    a##i##1 = first ? zero : load(y + i * ldy + kHalf, c, true); \
  }
  ROFORMER_EACH_PANEL_ROW(ROFORMER_PANEL_INIT)
#undef ROFORMER_PANEL_INIT
#pragma GCC unroll 4
  for (int64_t k = 0; k < d; k += 2) {
    const __m256i w0 = weights(w + k * kInt8PanelWidth);
    const __m256i w1 = weights(w + k * kInt8PanelWidth + kInt8PanelWidth);
#define ROFORMER_PANEL_STEP(i)                      \
  if constexpr (M > i) {                            \
    const __m256i xb = pair(x + i * ldx + k);       \
    a##i##0 = add_products(a##i##0, xb, w0);        \
    a##i##1 = add_products(a##i##1, xb, w1);        \
  }
    ROFORMER_EACH_PANEL_ROW(ROFORMER_PANEL_STEP)
#undef ROFORMER_PANEL_STEP
  }
#define ROFORMER_PANEL_STORE(i)                   \
  if constexpr (M > i) {                          \
    store(y + i * ldy, a##i##0, c, false);        \
    store(y + i * ldy + kHalf, a##i##1, c, true); \
  }
  ROFORMER_EACH_PANEL_ROW(ROFORMER_PANEL_STORE)
#undef ROFORMER_PANEL_STORE
}

// Rows [0, M) (M <= 2) over two adjacent full panels at once, for a
// decoding step's one or two rows: four chains of sums a row in flight
// instead of two.
template <int M>
void pass_two_panels(const int16_t* x, int64_t ldx, const int8_t* w, int64_t d, int32_t* y, int64_t ldy,
                     bool first) {
  static_assert(M >= 1 && M <= 2);
  const int8_t* v = w + d * kInt8PanelWidth;  // the second panel
  __m256i a00, a01, a02, a03, a10, a11, a12, a13;
  const __m256i zero = _mm256_setzero_si256();
  auto at = [&](int row, int part) {
    return first ? zero : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + row * ldy + part * kHalf));
  };
  a00 = at(0, 0), a01 = at(0, 1), a02 = at(0, 2), a03 = at(0, 3);
  if constexpr (M > 1) a10 = at(1, 0), a11 = at(1, 1), a12 = at(1, 2), a13 = at(1, 3);
#pragma GCC unroll 4
  for (int64_t k = 0; k < d; k += 2) {
    const __m256i w0 = weights(w + k * kInt8PanelWidth), w1 = weights(w + k * kInt8PanelWidth + kInt8PanelWidth);
    const __m256i w2 = weights(v + k * kInt8PanelWidth), w3 = weights(v + k * kInt8PanelWidth + kInt8PanelWidth);
    const __m256i x0 = pair(x + k);
    a00 = add_products(a00, x0, w0);
    a01 = add_products(a01, x0, w1);
    a02 = add_products(a02, x0, w2);
    a03 = add_products(a03, x0, w3);
    if constexpr (M > 1) {
      const __m256i x1 = pair(x + ldx + k);
      a10 = add_products(a10, x1, w0);
      a11 = add_products(a11, x1, w1);
      a12 = add_products(a12, x1, w2);
      a13 = add_products(a13, x1, w3);
    }
  }
  auto put = [&](int row, int part, __m256i sum) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + row * ldy + part * kHalf), sum);
  };
  put(0, 0, a00), put(0, 1, a01), put(0, 2, a02), put(0, 3, a03);
  if constexpr (M > 1) put(1, 0, a10), put(1, 1, a11), put(1, 2, a12), put(1, 3, a13);
}

using Pass = void (*)(const int16_t*, int64_t, const int8_t*, int64_t, int32_t*, int64_t, bool, const Columns&);
constexpr Pass kPasses[kInt8PanelRows] = {pass<1>, pass<2>, pass<3>, pass<4>, pass<5>, pass<6>};

// Rows [r0, r1) of x (rows, in) zero-extended to 16 bits, padded with zeros to padded_in.
void widen_rows(const uint8_t* x, int64_t in, int64_t padded_in, int64_t r0, int64_t r1, int16_t* wide) {
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* src = x + r * in;
    int16_t* dst = wide + (r - r0) * padded_in;
    for (int64_t k = 0; k < in; ++k) dst[k] = src[k];
    for (int64_t k = in; k < padded_in; ++k) dst[k] = 0;
  }
}

}  // namespace

void int8_panels_sums_avx2(const uint8_t* x, int64_t rows, int64_t in, const int8_t* w, int64_t out, int32_t* sums,
                           int64_t p0, int64_t p1) {
  const int64_t padded_out = int8_panels_padded_out(out), padded_in = int8_panels_padded_in(in);
  thread_local std::vector<int16_t> wide;
  const auto need = static_cast<std::size_t>(std::min(rows, kRowBlock) * padded_in);
  if (wide.size() < need) wide.resize(need);
  for (int64_t r0 = 0; r0 < rows; r0 += kRowBlock) {
    const int64_t r1 = std::min(rows, r0 + kRowBlock);
    widen_rows(x, in, padded_in, r0, r1, wide.data());
    for (int64_t k0 = 0; k0 < padded_in; k0 += kInt8PanelDepth) {
      const int64_t d = std::min(kInt8PanelDepth, padded_in - k0);
      const int8_t* block = w + k0 * padded_out;
      const int16_t* xk = wide.data() + k0;
      auto two = [&](int64_t p) {
        const int8_t* both = block + p * d * kInt8PanelWidth;
        int32_t* s = sums + r0 * out + p * kInt8PanelWidth;
        if (r1 - r0 == 1) {
          pass_two_panels<1>(xk, padded_in, both, d, s, out, k0 == 0);
        } else {
          pass_two_panels<2>(xk, padded_in, both, d, s, out, k0 == 0);
        }
      };
      auto one = [&](int64_t p, int64_t r, int64_t m, const Columns& c) {
        kPasses[m - 1](xk + (r - r0) * padded_in, padded_in, block + p * d * kInt8PanelWidth, d,
                       sums + r * out + p * kInt8PanelWidth, out, k0 == 0, c);
      };
      walk_panels(r0, r1, p0, p1, out, kInt8PanelRows, two, one);
    }
  }
}

}  // namespace roformer::kernels
