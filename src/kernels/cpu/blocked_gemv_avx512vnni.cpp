// AVX512-VNNI loop of the int8 blocked product: per panel, four registers of
// 16 columns x 4 (a group of k) for each row, one vpdpbusd per weight
// register and row for every group of four k. The sums are exact, so any
// order gives the plain loop's. Compiled with -mavx512vnni; called only when
// the CPU reports AVX512-VNNI.
#include <cstring>

#include "kernels/blocked_gemv.h"
#include "kernels/cpu/blocked_gemv_panel.h"

namespace roformer::kernels {

namespace {

constexpr int64_t kPrefetchGroups = 8;  // groups ahead: 2 KB, as the fp32 and bf16 loops

// Row r's codes k to k + 3 as one 32-bit lane: four codes when they exist;
// the last group of a row whose width is no multiple of four pads with zeros.
inline __m512i group_at(const uint8_t* x, int64_t k) {
  int32_t v;
  std::memcpy(&v, x + k, 4);
  return _mm512_set1_epi32(v);
}

inline __m512i last_group_at(const uint8_t* x, int64_t in, int64_t k) {
  uint8_t bytes[4] = {0, 0, 0, 0};
  for (int64_t i = k; i < in; ++i) bytes[i - k] = x[i];
  return group_at(bytes, 0);
}

template <int R>
inline void add_group(const int8_t* row, const __m512i (&xv)[R], __m512i (&acc)[R][4]) {
  __m512i wv[4];
  for (int j = 0; j < 4; ++j) wv[j] = _mm512_loadu_si512(row + 64 * j);
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < 4; ++j) acc[r][j] = _mm512_dpbusd_epi32(acc[r][j], xv[r], wv[j]);
}

template <int R>
void panel_s8(const int8_t* panel, const uint8_t* x, int64_t in, int32_t* sums, int64_t out, int64_t n0) {
  __m512i acc[R][4];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < 4; ++j) acc[r][j] = _mm512_setzero_si512();
  const int64_t groups = in / 4;
  for (int64_t q = 0; q < groups; ++q) {
    const int8_t* row = panel + q * 4 * kGemvPanel;
    if (q + kPrefetchGroups < groups)
      for (int line = 0; line < 4; ++line)
        _mm_prefetch(reinterpret_cast<const char*>(row + kPrefetchGroups * 4 * kGemvPanel + 64 * line), _MM_HINT_T0);
    __m512i xv[R];
    for (int r = 0; r < R; ++r) xv[r] = group_at(x + r * in, 4 * q);
    add_group<R>(row, xv, acc);
  }
  if (in % 4 != 0) {
    __m512i xv[R];
    for (int r = 0; r < R; ++r) xv[r] = last_group_at(x + r * in, in, 4 * groups);
    add_group<R>(panel + groups * 4 * kGemvPanel, xv, acc);
  }
  for (int j = 0; j < 4; ++j) {
    const int64_t n = n0 + 16 * j;
    if (n >= out) break;
    const __mmask16 m = tail_mask(out - n);
    for (int r = 0; r < R; ++r) _mm512_mask_storeu_epi32(sums + r * out + n, m, acc[r][j]);
  }
}

}  // namespace

void blocked_sums_s8_avx512vnni(const BlockedWeights& w, const uint8_t* x, int64_t rows, int32_t* sums, int64_t p0,
                                int64_t p1) {
  each_panel<int8_t>(w, rows, p0, p1, [&](auto r, const int8_t* panel, int64_t n0) {
    panel_s8<decltype(r)::value>(panel, x, w.in, sums, w.out, n0);
  });
}

}  // namespace roformer::kernels
