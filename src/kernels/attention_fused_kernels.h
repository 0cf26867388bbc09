#pragma once
// Per-instruction-set pieces of the fused attention: one query tile of one
// (batch row, head) forward, one (batch row, head) backward. attention_fused.cpp
// checks the arguments, lays out the scratch, spreads the pieces over threads
// and picks the instruction set; ref/ and cpu/ implement these signatures
// (all from cpu/attention_tiles.h).
#include <cstdint>

#include "kernels/attention_fused.h"

namespace roformer::kernels {

inline constexpr int64_t kAttnTileQ = 64;  // queries per tile
inline constexpr int64_t kAttnTileK = 64;  // keys per tile

struct AttentionIo {
  const float *q = nullptr, *k = nullptr, *v = nullptr;
  const uint16_t *k16 = nullptr, *v16 = nullptr;  // decode: K and V as bf16 bits instead of k and v
  float* out = nullptr;        // forward output
  uint16_t* out16 = nullptr;   // or the forward output rounded to bf16 (then out is unused)
  float* lse_out = nullptr;    // forward lse (optional)
  const float* o = nullptr;    // backward: the forward's out
  const float* dout = nullptr;
  const float* lse = nullptr;  // backward: the forward's lse
  float *dq = nullptr, *dk = nullptr, *dv = nullptr;
  uint32_t* kv16 = nullptr;    // forward with bf16 products: K and V as bf16 pairs (attention_tiles.h)
};

// Offsets (floats, each a multiple of 16) of the buffers inside one thread's
// scratch. Dp = D rounded up to 16, Tp = T rounded up to 16.
struct AttentionScratch {
  int64_t dp = 0, tp = 0;
  // forward: qt (D, Bq) scaled queries transposed; st (Bk, Bq) scores;
  // o (Bq, Dp) accumulator; vp (Bk, Dp) padded values; m, l, alpha (Bq);
  // with bf16 products also pp (Bk/2, Bq) probability pairs and a zero row
  // (max(Bq, Dp)), qt then holding query pairs.
  int64_t f_qt = 0, f_st = 0, f_o = 0, f_vp = 0, f_m = 0, f_l = 0, f_alpha = 0, f_pp = 0, f_zero = 0, f_total = 0;
  // backward: qt, dot (D, Tp) scaled queries / dout transposed; qr, dor (T, Dp)
  // and kr (Tk, Dp) padded rows; dq (T, Dp); dr, lse (Tp); st, dpt (Bk, Bq);
  // dk, dv (Bk, Dp).
  int64_t b_qt = 0, b_dot = 0, b_qr = 0, b_dor = 0, b_kr = 0, b_dq = 0, b_dr = 0, b_lse = 0, b_st = 0, b_dpt = 0,
          b_dk = 0, b_dv = 0, b_total = 0;
  // backward with bf16 products (FusedAttention::bf16_products), words of
  // bf16 pairs: kd, vd (Tk, D/2) along d; kk ((Tk+1)/2, D) of consecutive
  // keys; qd, gd (D/2, Tp) scaled queries / dout along d, transposed; qq, gq
  // ((T+1)/2, D) of consecutive queries; sp, dsq (Bk, Bq/2) a tile's P / dS
  // over query pairs; dsk (Bk/2, Bq) dS over key pairs; and a zero row.
  int64_t h_kd = 0, h_vd = 0, h_kk = 0, h_qd = 0, h_gd = 0, h_qq = 0, h_gq = 0, h_sp = 0, h_dsq = 0, h_dsk = 0,
          h_zero = 0;
};

// Words of K and V as bf16 pairs per (batch row, head) (attention_tiles.h).
inline int64_t bf16_kv_words_per_head(const FusedAttention& a) { return (a.kv_len + (a.kv_len & 1)) * a.head_dim; }

// Decoding (cpu/attention_decode.h): every query of one (batch row, head),
// one at a time, K and V read in place (io.k16 / io.v16 when set);
// decode_scratch_floats() floats of scratch per thread.
inline constexpr int kDecodeGroup = 4;  // the most queries per pass over the keys
inline int64_t decode_scratch_floats(const FusedAttention& a) {
  return kDecodeGroup * (2 * ((a.head_dim + 15) / 16 * 16) + (a.kv_len + 15) / 16 * 16);
}

#define ROFORMER_ATTENTION_KERNELS(suffix)                                                                    \
  void attention_decode_head_##suffix(const FusedAttention& a, const AttentionIo& io, int64_t b, int64_t h,      \
                                      float* scratch);                                                         \
  void attention_forward_tile_##suffix(const FusedAttention& a, const AttentionIo& io, const AttentionScratch& s, \
                                       int64_t b, int64_t h, int64_t q0, float* scratch);                      \
  void attention_backward_head_##suffix(const FusedAttention& a, const AttentionIo& io,                        \
                                        const AttentionScratch& s, int64_t b, int64_t h, float* scratch);
ROFORMER_ATTENTION_KERNELS(ref)
ROFORMER_ATTENTION_KERNELS(avx2)
ROFORMER_ATTENTION_KERNELS(avx512)
#undef ROFORMER_ATTENTION_KERNELS

// The forward with bf16 products: convert_kv for every (batch row, head)
// first, then the tiles. ref emulates in plain C++ what avx512bf16 does
// with vdpbf16ps (run only when the CPU reports AVX512-BF16).
#define ROFORMER_ATTENTION_BF16_KERNELS(suffix)                                                                  \
  void attention_convert_kv_bf16_##suffix(const FusedAttention& a, const AttentionIo& io,                       \
                                          const AttentionScratch& s, int64_t b, int64_t h, float* scratch);     \
  void attention_forward_tile_bf16_##suffix(const FusedAttention& a, const AttentionIo& io,                     \
                                            const AttentionScratch& s, int64_t b, int64_t h, int64_t q0,        \
                                            float* scratch);
ROFORMER_ATTENTION_BF16_KERNELS(ref)
ROFORMER_ATTENTION_BF16_KERNELS(avx512bf16)
#undef ROFORMER_ATTENTION_BF16_KERNELS

// The backward of a forward that ran bf16 products (backward_head over Bf16Grads in
// attention_tiles.h); ref emulates avx512bf16 as above.
void attention_backward_head_bf16_ref(const FusedAttention& a, const AttentionIo& io, const AttentionScratch& s,
                                      int64_t b, int64_t h, float* scratch);
void attention_backward_head_bf16_avx512bf16(const FusedAttention& a, const AttentionIo& io,
                                             const AttentionScratch& s, int64_t b, int64_t h, float* scratch);

}  // namespace roformer::kernels
