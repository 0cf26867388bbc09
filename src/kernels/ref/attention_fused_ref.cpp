// The fused attention's tiles in plain C++ (one lane): the same algorithm
// as the vector files, for CPUs without AVX2 and for Isa::Scalar callers.
#include <cmath>

#include "kernels/cpu/attention_tiles.h"

namespace roformer::kernels {
namespace {

struct Plain {
  using V = float;
  using M = bool;
  static constexpr int64_t kWidth = 1;
  static constexpr int kRows = 4, kVecs = 4;
  static V load(const float* p) { return *p; }
  static void store(float* p, V v) { *p = v; }
  static V zero() { return 0.0f; }
  static V set1(float v) { return v; }
  static V add(V a, V b) { return a + b; }
  static V sub(V a, V b) { return a - b; }
  static V mul(V a, V b) { return a * b; }
  static V max(V a, V b) { return a > b ? a : b; }  // b when either is NaN, as maxps
  static V fmadd(V a, V b, V c) { return a * b + c; }
  static V fnmadd(V a, V b, V c) { return c - a * b; }
  static M lt(V a, V b) { return a < b; }
  static V zero_if(M m, V a) { return m ? 0.0f : a; }
  static V round_nearest(V a) { return std::nearbyint(a); }
  static V scale2(V p, V k) { return std::ldexp(p, static_cast<int>(k)); }
};

}  // namespace

void attention_forward_tile_ref(const FusedAttention& a, const AttentionIo& io, const AttentionScratch& s, int64_t b,
                                int64_t h, int64_t q0, float* scratch) {
  attn::forward_tile<Plain>(a, io, s, b, h, q0, scratch);
}

void attention_backward_head_ref(const FusedAttention& a, const AttentionIo& io, const AttentionScratch& s, int64_t b,
                                 int64_t h, float* scratch) {
  attn::backward_head<Plain>(a, io, s, b, h, scratch);
}

}  // namespace roformer::kernels
