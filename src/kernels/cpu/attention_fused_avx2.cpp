// AVX2 + FMA tiles of the fused attention (attention_tiles.h): 8 lanes, tile
// products blocked 6 rows x 2 registers (12 of the 16 registers accumulate;
// 6 rows measured up to 15% faster than 4 in training).
// Compiled with -mavx2 -mfma; called only when the CPU has them.
#include <immintrin.h>

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
  static V scale2(V p, V k) {
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
  }
};

}  // namespace

void attention_forward_tile_avx2(const FusedAttention& a, const AttentionIo& io, const AttentionScratch& s,
                                 int64_t b, int64_t h, int64_t q0, float* scratch) {
  attn::forward_tile<Avx2>(a, io, s, b, h, q0, scratch);
}

void attention_backward_head_avx2(const FusedAttention& a, const AttentionIo& io, const AttentionScratch& s,
                                  int64_t b, int64_t h, float* scratch) {
  attn::backward_head<Avx2>(a, io, s, b, h, scratch);
}

}  // namespace roformer::kernels
