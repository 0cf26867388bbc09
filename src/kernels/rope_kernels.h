#pragma once
// Per-token RoPE kernels on raw buffers: one call rotates every head of one
// token. rope.cpp walks the tokens, looks up the angle rows, and picks the
// instruction set; each file under ref/ and cpu/ implements this signature.
#include <cstdint>

#include "roformer/dtype.h"
#include "roformer/rope.h"

namespace roformer::kernels {

struct RopeTokenArgs {
  int64_t heads = 0;
  int64_t head_dim = 0;
  int64_t pairs = 0;  // rotated pairs; dims [2*pairs, head_dim) pass through
  int64_t x_head_stride = 0;
  int64_t y_head_stride = 0;
  RopeLayout layout = RopeLayout::Interleaved;
  bool inverse = false;  // rotate by -angle (backward)
  // Write with non-temporal stores (full 64-byte lines, no read-for-ownership).
  // Only set for large out-of-place f32 outputs whose head rows are 64-byte
  // aligned and fully rotated; the caller issues the store fence.
  bool stream = false;
};

// cos, sin: `pairs` values each, for this token's position.
// x and y may alias exactly (in place), never partially.
void rope_token_ref(const float* x, float* y, const float* cos, const float* sin, const RopeTokenArgs& a);
void rope_token_ref(const bf16* x, bf16* y, const float* cos, const float* sin, const RopeTokenArgs& a);
void rope_token_avx2(const float* x, float* y, const float* cos, const float* sin, const RopeTokenArgs& a);
void rope_token_avx2(const bf16* x, bf16* y, const float* cos, const float* sin, const RopeTokenArgs& a);
void rope_token_avx512(const float* x, float* y, const float* cos, const float* sin, const RopeTokenArgs& a);
void rope_token_avx512(const bf16* x, bf16* y, const float* cos, const float* sin, const RopeTokenArgs& a);

}  // namespace roformer::kernels
