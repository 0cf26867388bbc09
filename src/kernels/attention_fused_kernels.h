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
  float* out = nullptr;        // forward output
  float* lse_out = nullptr;    // forward lse (optional)
  const float* o = nullptr;    // backward: the forward's out
  const float* dout = nullptr;
  const float* lse = nullptr;  // backward: the forward's lse
  float *dq = nullptr, *dk = nullptr, *dv = nullptr;
};

// Offsets (floats, each a multiple of 16) of the buffers inside one thread's
// scratch. Dp = D rounded up to 16, Tp = T rounded up to 16.
struct AttentionScratch {
  int64_t dp = 0, tp = 0;
  // forward: qt (D, Bq) scaled queries transposed; st (Bk, Bq) scores;
  // o (Bq, Dp) accumulator; vp (Bk, Dp) padded values; m, l, mu, alpha (Bq).
  int64_t f_qt = 0, f_st = 0, f_o = 0, f_vp = 0, f_m = 0, f_l = 0, f_mu = 0, f_alpha = 0, f_total = 0;
  // backward: qt, dot (D, Tp) scaled queries / dout transposed; qr, dor (T, Dp)
  // and kr (Tk, Dp) padded rows; dq (T, Dp); dr, lse (Tp); st, dpt (Bk, Bq);
  // dk, dv (Bk, Dp).
  int64_t b_qt = 0, b_dot = 0, b_qr = 0, b_dor = 0, b_kr = 0, b_dq = 0, b_dr = 0, b_lse = 0, b_st = 0, b_dpt = 0,
          b_dk = 0, b_dv = 0, b_total = 0;
};

#define ROFORMER_ATTENTION_KERNELS(suffix)                                                                    \
  void attention_forward_tile_##suffix(const FusedAttention& a, const AttentionIo& io, const AttentionScratch& s, \
                                       int64_t b, int64_t h, int64_t q0, float* scratch);                      \
  void attention_backward_head_##suffix(const FusedAttention& a, const AttentionIo& io,                        \
                                        const AttentionScratch& s, int64_t b, int64_t h, float* scratch);
ROFORMER_ATTENTION_KERNELS(ref)
ROFORMER_ATTENTION_KERNELS(avx2)
ROFORMER_ATTENTION_KERNELS(avx512)
#undef ROFORMER_ATTENTION_KERNELS

}  // namespace roformer::kernels
