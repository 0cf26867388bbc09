// AVX-512 loop of the fp32 blocked product: per panel, four registers of 16
// columns for each row, one fused multiply-add per weight register and row
// for every k, in k order (the plain loop's order, so the same bits).
// Compiled with -mavx512f; called only when the CPU reports AVX-512.
#include "kernels/blocked_gemv.h"
#include "kernels/cpu/blocked_gemv_panel.h"

namespace roformer::kernels {

namespace {

// Rows ahead of the loads to ask for (2 KB). Without it the loop read the
// base model's weights at about 21 GB/s; 4 to 12 rows ahead reached 25-28,
// 16 to 128 less (the hardware prefetcher alone trails the loop).
constexpr int64_t kPrefetchRows = 8;

template <int R>
void panel_f32(const float* panel, const float* x, int64_t in, const float* bias, float* y, int64_t out, int64_t n0) {
  __m512 acc[R][4];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < 4; ++j) acc[r][j] = _mm512_setzero_ps();
  for (int64_t k = 0; k < in; ++k) {
    const float* row = panel + k * kGemvPanel;
    if (k + kPrefetchRows < in)
      for (int line = 0; line < 4; ++line)
        _mm_prefetch(reinterpret_cast<const char*>(row + kPrefetchRows * kGemvPanel + 16 * line), _MM_HINT_T0);
    __m512 wv[4];
    for (int j = 0; j < 4; ++j) wv[j] = _mm512_loadu_ps(row + 16 * j);
    for (int r = 0; r < R; ++r) {
      const __m512 xv = _mm512_set1_ps(x[r * in + k]);
      for (int j = 0; j < 4; ++j) acc[r][j] = _mm512_fmadd_ps(wv[j], xv, acc[r][j]);
    }
  }
  store_panel<R>(acc, bias, y, out, n0);
}

}  // namespace

void blocked_gemv_f32_avx512(const BlockedWeights& w, const void* xv, int64_t rows, const float* bias, float* y,
                             int64_t p0, int64_t p1) {
  const float* x = static_cast<const float*>(xv);
  each_panel<float>(w, rows, p0, p1, [&](auto r, const float* panel, int64_t n0) {
    panel_f32<decltype(r)::value>(panel, x, w.in, bias, y, w.out, n0);
  });
}

}  // namespace roformer::kernels
