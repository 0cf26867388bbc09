// AVX512-BF16 products of the fused attention, forward and backward (attention_tiles.h):
// vdpbf16ps multiplies two bf16 pairs per fp32 lane, twice the terms of an
// fp32 FMA per instruction; the masking and online softmax stay fp32 on the
// AVX-512 traits. Compiled with the AVX-512 flags plus -mavx512bf16; called
// only when the CPU reports AVX512-BF16.
#include "kernels/cpu/avx512_traits.h"
#include "kernels/cpu/attention_tiles.h"

namespace roformer::kernels {
namespace {

struct Bf16Pairs {
  using In = uint32_t;
  using Acc = __m512;
  using Op = __m512bh;
  static constexpr int64_t kWidth = 16;
  static constexpr int kRows = 6, kVecs = 4;
  static Acc zero() { return _mm512_setzero_ps(); }
  static Acc load_acc(const float* p) { return _mm512_loadu_ps(p); }
  static void store_acc(float* p, Acc v) { _mm512_storeu_ps(p, v); }
  static Op load_op(const uint32_t* p) { return reinterpret_cast<Op>(_mm512_loadu_si512(p)); }
  static Op bcast(uint32_t w) { return reinterpret_cast<Op>(_mm512_set1_epi32(static_cast<int>(w))); }
  static Acc madd(Acc c, Op a, Op b) { return _mm512_dpbf16_ps(c, a, b); }
  // 32 floats -> 16 words: vcvtne2ps2bf16 puts its second operand in the lower half.
  static __m512i pairs_of(const float* x, __m512 s) {
    return reinterpret_cast<__m512i>(
        _mm512_cvtne2ps_pbh(_mm512_mul_ps(_mm512_loadu_ps(x + 16), s), _mm512_mul_ps(_mm512_loadu_ps(x), s)));
  }
  static void row_pairs(const float* x, float scale, uint32_t* out) {
    _mm512_storeu_si512(out, pairs_of(x, _mm512_set1_ps(scale)));
  }
  // Rows [0, rows) (<= 16, ld floats apart) of 32 floats times scale, as
  // pairs, transposed: word p of row i -> out[p * ldo + i], rows past `rows`
  // zero. A 16 x 16 transpose in registers instead of 256 scalar stores.
  static void transposed_pairs(const float* x, int64_t ld, int64_t rows, float scale, uint32_t* out, int64_t ldo) {
    const __m512 s = _mm512_set1_ps(scale);
    __m512i r[16];
    for (int i = 0; i < 16; ++i) r[i] = i < rows ? pairs_of(x + i * ld, s) : _mm512_setzero_si512();
    transpose_16x16(r);
    for (int p = 0; p < 16; ++p) _mm512_storeu_si512(out + p * ldo, r[p]);
  }
  // Lane i of the even row and of the odd row -> word i.
  static void pairs(const float* even, const float* odd, uint32_t* out) {
    alignas(64) static constexpr uint16_t kInterleave[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,
                                                             21, 6, 22, 7, 23, 8,  24, 9,  25, 10, 26,
                                                             11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    const __m512bh both = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(odd), _mm512_loadu_ps(even));
    const __m512i idx = _mm512_load_si512(kInterleave);
    _mm512_storeu_si512(out, _mm512_permutexvar_epi16(idx, reinterpret_cast<__m512i>(both)));
  }
};

}  // namespace

void attention_convert_kv_bf16_avx512bf16(const FusedAttention& a, const AttentionIo& io, const AttentionScratch& s,
                                          int64_t b, int64_t h, float* scratch) {
  attn::convert_kv<Bf16Pairs>(a, io, s, b, h, scratch);
}

void attention_forward_tile_bf16_avx512bf16(const FusedAttention& a, const AttentionIo& io,
                                            const AttentionScratch& s, int64_t b, int64_t h, int64_t q0,
                                            float* scratch) {
  attn::forward_tile<Avx512, attn::Bf16Products<Avx512, Bf16Pairs>>(a, io, s, b, h, q0, scratch);
}

void attention_backward_head_bf16_avx512bf16(const FusedAttention& a, const AttentionIo& io,
                                             const AttentionScratch& s, int64_t b, int64_t h, float* scratch) {
  attn::backward_head<Avx512, attn::Bf16Grads<Avx512, Bf16Pairs>>(a, io, s, b, h, scratch);
}

}  // namespace roformer::kernels
