// The fused attention's tiles in plain C++ (one lane): the same algorithm
// as the vector files, for CPUs without AVX2 and for Isa::Scalar callers.
#include <cmath>

#include "kernels/cpu/attention_decode.h"
#include "kernels/cpu/attention_tiles.h"
#include "roformer/dtype.h"

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
  static V sum_lanes(const V (&x)[1]) { return x[0]; }
  static V load_bf16(const uint16_t* p) { return bf16_to_f32(bf16{*p}); }
};

// bf16 pairs one lane at a time: both products in fp32 (exact: 8-bit
// significands), added to the sum odd index first, as vdpbf16ps is specified.
struct PlainPairs {
  using In = uint32_t;
  using Acc = float;
  using Op = uint32_t;
  static constexpr int64_t kWidth = 1;
  static constexpr int kRows = 4, kVecs = 4;
  static float lo(uint32_t w) { return bf16_to_f32(bf16{static_cast<uint16_t>(w & 0xffffu)}); }
  static float hi(uint32_t w) { return bf16_to_f32(bf16{static_cast<uint16_t>(w >> 16)}); }
  static uint32_t pair(float even, float odd) {
    return static_cast<uint32_t>(f32_to_bf16(even).bits) | static_cast<uint32_t>(f32_to_bf16(odd).bits) << 16;
  }
  static Acc zero() { return 0.0f; }
  static Acc load_acc(const float* p) { return *p; }
  static void store_acc(float* p, Acc v) { *p = v; }
  static Op load_op(const uint32_t* p) { return *p; }
  static Op bcast(uint32_t w) { return w; }
  static Acc madd(Acc c, Op a, Op b) { return (c + hi(a) * hi(b)) + lo(a) * lo(b); }
  static void row_pairs(const float* x, float scale, uint32_t* out) { *out = pair(x[0] * scale, x[1] * scale); }
  static void pairs(const float* even, const float* odd, uint32_t* out) { *out = pair(*even, *odd); }
};

}  // namespace

void attention_convert_kv_bf16_ref(const FusedAttention& a, const AttentionIo& io, const AttentionScratch& s,
                                   int64_t b, int64_t h, float* scratch) {
  attn::convert_kv<PlainPairs>(a, io, s, b, h, scratch);
}

void attention_forward_tile_bf16_ref(const FusedAttention& a, const AttentionIo& io, const AttentionScratch& s,
                                     int64_t b, int64_t h, int64_t q0, float* scratch) {
  attn::forward_tile<Plain, attn::Bf16Products<Plain, PlainPairs>>(a, io, s, b, h, q0, scratch);
}

void attention_backward_head_bf16_ref(const FusedAttention& a, const AttentionIo& io, const AttentionScratch& s,
                                      int64_t b, int64_t h, float* scratch) {
  attn::backward_head<Plain, attn::Bf16Grads<Plain, PlainPairs>>(a, io, s, b, h, scratch);
}

void attention_decode_head_ref(const FusedAttention& a, const AttentionIo& io, int64_t b, int64_t h,
                               float* scratch) {
  attn::decode_head<Plain>(a, io, b, h, scratch);
}

void attention_forward_tile_ref(const FusedAttention& a, const AttentionIo& io, const AttentionScratch& s, int64_t b,
                                int64_t h, int64_t q0, float* scratch) {
  attn::forward_tile<Plain>(a, io, s, b, h, q0, scratch);
}

void attention_backward_head_ref(const FusedAttention& a, const AttentionIo& io, const AttentionScratch& s, int64_t b,
                                 int64_t h, float* scratch) {
  attn::backward_head<Plain>(a, io, s, b, h, scratch);
}

}  // namespace roformer::kernels
