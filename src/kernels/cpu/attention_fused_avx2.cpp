// AVX2 + FMA tiles of the fused attention (attention_tiles.h): 8 lanes, tile
// products blocked 6 rows x 2 registers (12 of the 16 registers accumulate;
// 6 rows measured up to 15% faster than 4 in training).
// Compiled with -mavx2 -mfma; called only when the CPU has them.
#include <immintrin.h>

#include "kernels/cpu/attention_decode.h"
#include "kernels/cpu/avx2_bf16.h"
#include "kernels/cpu/attention_tiles.h"

namespace roformer::kernels {
namespace {

struct Avx2 {
  using V = __m256;
  using M = __m256;
  static constexpr int64_t kWidth = 8;
  static constexpr int kRows = 6, kVecs = 2;
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float v) { return _mm256_set1_ps(v); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V max(V a, V b) { return _mm256_max_ps(a, b); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V fnmadd(V a, V b, V c) { return _mm256_fnmadd_ps(a, b, c); }
  static M lt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static V zero_if(M m, V a) { return _mm256_andnot_ps(m, a); }
  static V round_nearest(V a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // Lane t <- the sum of x[t]'s lanes (halving trees, as the AVX-512 traits').
  static V sum_lanes(const V (&x)[8]) {
    V r[4], s[2];
    for (int i = 0; i < 4; ++i)  // x[2i] in the lower half, x[2i+1] in the upper
      r[i] = _mm256_add_ps(_mm256_permute2f128_ps(x[2 * i], x[2 * i + 1], 0x20),
                           _mm256_permute2f128_ps(x[2 * i], x[2 * i + 1], 0x31));
    for (int i = 0; i < 2; ++i) {  // half c: two sums of x[4i + c], two of x[4i + 2 + c]
      const __m256d a = _mm256_castps_pd(r[2 * i]), b = _mm256_castps_pd(r[2 * i + 1]);
      s[i] = _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(a, b)), _mm256_castpd_ps(_mm256_unpackhi_pd(a, b)));
    }
    const V lo = _mm256_unpacklo_ps(s[0], s[1]), hi = _mm256_unpackhi_ps(s[0], s[1]);
    // half c: x[c], x[4 + c], x[2 + c], x[6 + c]
    const V u = _mm256_add_ps(_mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(1, 0, 1, 0)),
                              _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 2, 3, 2)));
    return _mm256_permutevar8x32_ps(u, _mm256_setr_epi32(0, 4, 2, 6, 1, 5, 3, 7));
  }
  static V load_bf16(const uint16_t* p) { return widen_bf16x8(p); }
  static V scale2(V p, V k) {
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
  }
};

}  // namespace

void attention_decode_head_avx2(const FusedAttention& a, const AttentionIo& io, int64_t b, int64_t h,
                                float* scratch) {
  attn::decode_head<Avx2>(a, io, b, h, scratch);
}

void attention_forward_tile_avx2(const FusedAttention& a, const AttentionIo& io, const AttentionScratch& s,
                                 int64_t b, int64_t h, int64_t q0, float* scratch) {
  attn::forward_tile<Avx2>(a, io, s, b, h, q0, scratch);
}

void attention_backward_head_avx2(const FusedAttention& a, const AttentionIo& io, const AttentionScratch& s,
                                  int64_t b, int64_t h, float* scratch) {
  attn::backward_head<Avx2>(a, io, s, b, h, scratch);
}

}  // namespace roformer::kernels
