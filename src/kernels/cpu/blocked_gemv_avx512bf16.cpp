// AVX512-BF16 loop of the bf16 blocked product: per panel, four registers of
// 16 columns x 2 (a pair of k) for each row, one vdpbf16ps per weight
// register and row for every pair of k. Compiled with -mavx512bf16; called
// only when the CPU reports AVX512-BF16.
#include "kernels/blocked_gemv.h"
#include "kernels/cpu/blocked_gemv_panel.h"

namespace roformer::kernels {

namespace {

constexpr int64_t kPrefetchPairs = 8;  // pair rows ahead: 2 KB, as the fp32 loop's 8 rows

// Row r's values k and k + 1 as one 32-bit lane (k + 1 past the end reads as zero).
inline uint32_t pair_at(const uint16_t* x, int64_t in, int64_t k) {
  const uint32_t lo = x[k], hi = k + 1 < in ? x[k + 1] : 0u;
  return lo | (hi << 16);
}

template <int R>
void panel_bf16(const uint16_t* panel, const uint16_t* x, int64_t in, const float* bias, float* y, int64_t out,
                int64_t n0) {
  __m512 acc[R][4];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < 4; ++j) acc[r][j] = _mm512_setzero_ps();
  const int64_t pairs = (in + 1) / 2;
  for (int64_t q = 0; q < pairs; ++q) {
    const uint16_t* row = panel + q * 2 * kGemvPanel;
    if (q + kPrefetchPairs < pairs)
      for (int line = 0; line < 4; ++line)
        _mm_prefetch(reinterpret_cast<const char*>(row + kPrefetchPairs * 2 * kGemvPanel + 32 * line), _MM_HINT_T0);
    __m512bh wv[4];
    for (int j = 0; j < 4; ++j) wv[j] = reinterpret_cast<__m512bh>(_mm512_loadu_si512(row + 32 * j));
    for (int r = 0; r < R; ++r) {
      const auto xv = reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(pair_at(x + r * in, in, 2 * q))));
      for (int j = 0; j < 4; ++j) acc[r][j] = _mm512_dpbf16_ps(acc[r][j], wv[j], xv);
    }
  }
  store_panel<R>(acc, bias, y, out, n0);
}

}  // namespace

void blocked_gemv_bf16_avx512bf16(const BlockedWeights& w, const void* xv, int64_t rows, const float* bias, float* y,
                                  int64_t p0, int64_t p1) {
  const uint16_t* x = static_cast<const uint16_t*>(xv);
  each_panel<uint16_t>(w, rows, p0, p1, [&](auto r, const uint16_t* panel, int64_t n0) {
    panel_bf16<decltype(r)::value>(panel, x, w.in, bias, y, w.out, n0);
  });
}

}  // namespace roformer::kernels
