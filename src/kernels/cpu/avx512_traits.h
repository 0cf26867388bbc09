#pragma once
// The AVX-512 float traits the vector algorithms run on (gelu_simd.h,
// attention_tiles.h), and the tail mask and bf16 rounding store of the AVX-512 loops: 16 lanes; the attention's tile products blocked 6 rows
// x 4 registers (6 measured 5-10% faster than 4 on Zen 4; 24 of the 32
// registers accumulate). Included only by files compiled for AVX-512, each
// getting its own copy (anonymous namespace), so no instantiation can leak
// into baseline code.
// GCC 12 reports its own AVX-512 headers' deliberately undefined registers.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <cstdint>

namespace roformer::kernels {
namespace {

// The first min(n, 16) lanes.
inline __mmask16 tail_mask(int64_t n) { return n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1u); }

// v rounded to bf16 and stored to the lanes of m: round to nearest even with
// integer operations, as f32_to_bf16 does (denormals kept, unlike
// vcvtneps2bf16); NaNs stay quiet NaNs.
inline void store_bf16(uint16_t* p, __m512 v, __mmask16 m) {
  const __m512i u = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), lsb));
  const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(u, _mm512_set1_epi32(0x00400000)));
  _mm256_mask_storeu_epi16(p, m, _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16)));
}

// r[j] <- column j of the 16 x 16 matrix of 32-bit values whose rows were r[0..15].
inline void transpose_16x16(__m512i (&r)[16]) {
  __m512i t[16];
  // Values within 128-bit lanes, then 64-bit halves: lane L of r[4k + j]
  // ends up holding value 4L + j of rows 4k..4k+3.
  for (int k = 0; k < 8; ++k) {
    t[2 * k] = _mm512_unpacklo_epi32(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = _mm512_unpackhi_epi32(r[2 * k], r[2 * k + 1]);
  }
  for (int k = 0; k < 4; ++k) {
    r[4 * k] = _mm512_unpacklo_epi64(t[4 * k], t[4 * k + 2]);
    r[4 * k + 1] = _mm512_unpackhi_epi64(t[4 * k], t[4 * k + 2]);
    r[4 * k + 2] = _mm512_unpacklo_epi64(t[4 * k + 1], t[4 * k + 3]);
    r[4 * k + 3] = _mm512_unpackhi_epi64(t[4 * k + 1], t[4 * k + 3]);
  }
  // Then the lanes of the four row groups: column 4L + j is lane L of r[j], r[4 + j], r[8 + j], r[12 + j].
  for (int j = 0; j < 4; ++j) {
    const __m512i c0 = _mm512_shuffle_i32x4(r[j], r[4 + j], 0x88), c1 = _mm512_shuffle_i32x4(r[j], r[4 + j], 0xdd);
    const __m512i c2 = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0x88);
    const __m512i c3 = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0xdd);
    t[j] = _mm512_shuffle_i32x4(c0, c2, 0x88);
    t[4 + j] = _mm512_shuffle_i32x4(c1, c3, 0x88);
    t[8 + j] = _mm512_shuffle_i32x4(c0, c2, 0xdd);
    t[12 + j] = _mm512_shuffle_i32x4(c1, c3, 0xdd);
  }
  for (int j = 0; j < 16; ++j) r[j] = t[j];
}

struct Avx512 {
  using V = __m512;
  using M = __mmask16;
  static constexpr int64_t kWidth = 16;
  static constexpr int kRows = 6, kVecs = 4;
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float v) { return _mm512_set1_ps(v); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V div(V a, V b) { return _mm512_div_ps(a, b); }
  static V min(V a, V b) { return _mm512_min_ps(a, b); }
  static V max(V a, V b) { return _mm512_max_ps(a, b); }
  static V abs(V a) { return _mm512_abs_ps(a); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V fnmadd(V a, V b, V c) { return _mm512_fnmadd_ps(a, b, c); }
  static M lt(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static M gt(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
  static V select(M m, V a, V b) { return _mm512_mask_blend_ps(m, b, a); }
  static V zero_if(M m, V a) { return _mm512_maskz_mov_ps(static_cast<__mmask16>(~m), a); }
  static V round_nearest(V a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static V scale2(V p, V k) { return _mm512_scalef_ps(p, k); }
  // Lane t <- the sum of x[t]'s lanes: halving trees over the 16 registers
  // (8 of 8 partial sums, 4 of 4, 2 of 2, 1), then the lanes back in order.
  static V sum_lanes(const V (&x)[16]) {
    V r[8], s[4], t[2];
    for (int i = 0; i < 8; ++i)  // x[2i] in the lower half, x[2i+1] in the upper
      r[i] = _mm512_add_ps(_mm512_shuffle_f32x4(x[2 * i], x[2 * i + 1], 0x44),
                           _mm512_shuffle_f32x4(x[2 * i], x[2 * i + 1], 0xee));
    for (int i = 0; i < 4; ++i)  // x[4i + c] in quarter c
      s[i] = _mm512_add_ps(_mm512_shuffle_f32x4(r[2 * i], r[2 * i + 1], 0x88),
                           _mm512_shuffle_f32x4(r[2 * i], r[2 * i + 1], 0xdd));
    for (int i = 0; i < 2; ++i) {  // quarter c: two sums of x[8i + c], two of x[8i + 4 + c]
      const __m512d a = _mm512_castps_pd(s[2 * i]), b = _mm512_castps_pd(s[2 * i + 1]);
      t[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)), _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
    }
    const V lo = _mm512_unpacklo_ps(t[0], t[1]), hi = _mm512_unpackhi_ps(t[0], t[1]);
    // quarter c: x[c], x[8 + c], x[4 + c], x[12 + c]
    const V u = _mm512_add_ps(_mm512_shuffle_ps(lo, hi, _MM_SHUFFLE(1, 0, 1, 0)),
                              _mm512_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 2, 3, 2)));
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 2, 6, 10, 14, 1, 5, 9, 13, 3, 7, 11, 15);
    return _mm512_permutexvar_ps(order, u);
  }
  // 16 bf16 bits -> floats (a bf16 is the upper half of its float).
  static V load_bf16(const uint16_t* p) {
    const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
  }
  // out[d * ldo + i] = x[i * ld + d] * scale for i, d < 16, rows i >= `rows` zero.
  static void transpose_block(const float* x, int64_t ld, int64_t rows, float scale, float* out, int64_t ldo) {
    const __m512 s = _mm512_set1_ps(scale);
    __m512i r[16];
    for (int i = 0; i < 16; ++i)
      r[i] = i < rows ? _mm512_castps_si512(_mm512_mul_ps(_mm512_loadu_ps(x + i * ld), s)) : _mm512_setzero_si512();
    transpose_16x16(r);
    for (int d = 0; d < 16; ++d) _mm512_storeu_si512(out + d * ldo, r[d]);
  }
};

}  // namespace
}  // namespace roformer::kernels
