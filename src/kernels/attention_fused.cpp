// Fused attention driver: argument checks, the scratch layout, the spread of
// (batch row, head, query tile) pieces over threads, and the choice of
// instruction set.
#include "kernels/attention_fused.h"

#include <omp.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "kernels/attention_fused_kernels.h"
#include "roformer/error.h"

namespace roformer::kernels {

namespace {

constexpr int64_t kAlign = 16;  // floats: 64 bytes

int64_t up16(int64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

void check(const FusedAttention& a) {
  ROFORMER_CHECK(a.batch >= 0 && a.heads > 0 && a.q_len >= 0 && a.head_dim > 0,
                 "fused attention: bad sizes (batch " + std::to_string(a.batch) + ", heads " + std::to_string(a.heads) +
                     ", queries " + std::to_string(a.q_len) + ", head_dim " + std::to_string(a.head_dim) + ")");
  ROFORMER_CHECK(a.past >= 0 && a.kv_len >= a.past + a.q_len && (a.kv_len > 0 || a.q_len == 0),
                 "fused attention: " + std::to_string(a.kv_len) + " keys cannot hold " + std::to_string(a.past) +
                     " past + " + std::to_string(a.q_len) + " new positions");
  const int64_t width = a.heads * a.head_dim;
  ROFORMER_CHECK(a.q_row >= width && a.kv_row >= width, "fused attention: a row stride is smaller than heads * head_dim");
  ROFORMER_CHECK(a.batch <= 1 || (a.q_batch >= a.q_len * a.q_row && a.kv_batch >= a.kv_len * a.kv_row),
                 "fused attention: batch rows overlap");
}

AttentionScratch layout(const FusedAttention& a) {
  AttentionScratch s;
  s.dp = up16(a.head_dim);
  s.tp = up16(a.q_len);
  const int64_t D = a.head_dim, Bq = kAttnTileQ, Bk = kAttnTileK;
  int64_t at = 0;
  auto take = [&at](int64_t n) {
    const int64_t off = at;
    at += up16(n);
    return off;
  };
  s.f_qt = take(D * Bq);
  s.f_st = take(Bk * Bq);
  s.f_o = take(Bq * s.dp);
  s.f_vp = take(Bk * s.dp);
  s.f_m = take(Bq);
  s.f_l = take(Bq);
  s.f_alpha = take(Bq);
  s.f_pp = take(Bk / 2 * Bq);
  s.f_zero = take(s.dp > Bq ? s.dp : Bq);
  s.f_total = at;
  at = 0;
  s.b_qt = take(D * s.tp);
  s.b_dot = take(D * s.tp);
  s.b_qr = take(a.q_len * s.dp);
  s.b_dor = take(a.q_len * s.dp);
  s.b_kr = take(a.kv_len * s.dp);
  s.b_dq = take(a.q_len * s.dp);
  s.b_dr = take(s.tp);
  s.b_lse = take(s.tp);
  s.b_st = take(Bk * Bq);
  s.b_dpt = take(Bk * Bq);
  s.b_dk = take(Bk * s.dp);
  s.b_dv = take(Bk * s.dp);
  if (a.bf16_products) {  // words in float-sized slots
    const int64_t half = D / 2, key_pairs = (a.kv_len + 1) / 2, query_pairs = (a.q_len + 1) / 2;
    s.h_kd = take(a.kv_len * half);
    s.h_vd = take(a.kv_len * half);
    s.h_kk = take(key_pairs * D);
    s.h_qd = take(half * s.tp);
    s.h_gd = take(half * s.tp);
    s.h_qq = take(query_pairs * D);
    s.h_gq = take(query_pairs * D);
    s.h_sp = take(Bk * Bq / 2);
    s.h_dsq = take(Bk * Bq / 2);
    s.h_dsk = take(Bk / 2 * Bq);
    s.h_zero = take(s.dp > Bq ? s.dp : Bq);
  }
  s.b_total = at;
  return s;
}

using ForwardTile = void (*)(const FusedAttention&, const AttentionIo&, const AttentionScratch&, int64_t, int64_t,
                             int64_t, float*);
using ConvertKv = void (*)(const FusedAttention&, const AttentionIo&, const AttentionScratch&, int64_t, int64_t,
                           float*);
using BackwardHead = void (*)(const FusedAttention&, const AttentionIo&, const AttentionScratch&, int64_t, int64_t,
                              float*);

using DecodeHead = void (*)(const FusedAttention&, const AttentionIo&, int64_t, int64_t, float*);

struct Kernels {
  ForwardTile forward;
  BackwardHead backward;
  DecodeHead decode;
};

Kernels pick(Isa isa) {
  ROFORMER_CHECK(isa_supported(isa),
                 "fused attention: instruction set " + std::string(isa_name(isa)) + " is not supported by this CPU");
  switch (isa) {
    case Isa::Avx512:
      return {attention_forward_tile_avx512, attention_backward_head_avx512, attention_decode_head_avx512};
    case Isa::Avx2: return {attention_forward_tile_avx2, attention_backward_head_avx2, attention_decode_head_avx2};
    case Isa::Scalar: break;
  }
  return {attention_forward_tile_ref, attention_backward_head_ref, attention_decode_head_ref};
}

int threads_of(const ExecContext& ctx) { return ctx.threads > 1 ? ctx.threads : 1; }

// Whether the bf16 tiles run a: as uses_bf16_products for float K and V;
// bf16 K and V (already rounded, only to be paired) from more than
// kDecodeMaxQueries queries on.
bool bf16_tiles(const FusedAttention& a, const ExecContext& ctx, bool bf16_kv) {
  if (a.q_len < (bf16_kv ? kDecodeMaxQueries + 1 : kBf16MinQueries)) return false;
  return a.bf16_products && a.head_dim % 32 == 0 &&
         (ctx.isa == Isa::Scalar || (ctx.isa == Isa::Avx512 && cpu_has_avx512_bf16()));
}

// Floats after the threads' parts that hold K and V as bf16 pairs (one
// 32-bit word per float).
int64_t bf16_kv_floats(const FusedAttention& a, const ExecContext& ctx, bool bf16_kv) {
  return bf16_tiles(a, ctx, bf16_kv) ? a.batch * a.heads * bf16_kv_words_per_head(a) : 0;
}

// Each thread's part of the caller's scratch, 64-byte aligned.
float* thread_scratch(float* scratch, int64_t per_thread, int thread) {
  const auto addr = reinterpret_cast<uintptr_t>(scratch);
  float* base = scratch + ((kAlign * 4 - addr % (kAlign * 4)) % (kAlign * 4)) / 4;
  return base + per_thread * thread;
}

// Whether the forward runs the decoding path: few queries, or bf16 K and V
// that no bf16 tile will take.
bool decodes(const FusedAttention& a, const ExecContext& ctx, bool bf16_kv) {
  return a.q_len <= kDecodeMaxQueries || (bf16_kv && !bf16_tiles(a, ctx, true));
}

int64_t forward_scratch(const FusedAttention& a, const ExecContext& ctx, bool bf16_kv) {
  if (decodes(a, ctx, bf16_kv)) return decode_scratch_floats(a) * threads_of(ctx) + kAlign;
  return layout(a).f_total * threads_of(ctx) + bf16_kv_floats(a, ctx, bf16_kv) + kAlign;
}

// Every query of every (batch row, head), one (batch row, head) per task.
void decode_all(const FusedAttention& a, const AttentionIo& io, float* scratch, const ExecContext& ctx) {
  const DecodeHead decode = pick(ctx.isa).decode;
  const int threads = threads_of(ctx);
  const int64_t per_thread = decode_scratch_floats(a), tasks = a.batch * a.heads;
#pragma omp parallel num_threads(threads) if (threads > 1 && tasks > 1)
  {
    float* mine = thread_scratch(scratch, per_thread, omp_get_thread_num());
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tasks; ++t) decode(a, io, t / a.heads, t % a.heads, mine);
  }
}

// K as (Tk, D/2) words of pairs along d is the bf16 row itself; V as pairs
// of consecutive keys interleaves two rows (the last odd one with zeros):
// the layout convert_kv writes from floats (attention_tiles.h).
void pair_bf16_kv(const FusedAttention& a, const uint16_t* k, const uint16_t* v, int64_t b, int64_t h,
                  uint32_t* out) {
  const int64_t D = a.head_dim, Tk = a.kv_len;
  uint32_t* kp = out + (b * a.heads + h) * bf16_kv_words_per_head(a);
  uint32_t* vp = kp + (Tk + (Tk & 1)) * (D / 2);
  const uint16_t* kb = k + b * a.kv_batch + h * D;
  const uint16_t* vb = v + b * a.kv_batch + h * D;
  for (int64_t j = 0; j < Tk; ++j)
    std::memcpy(kp + j * (D / 2), kb + j * a.kv_row, static_cast<std::size_t>(D) * sizeof(uint16_t));
  for (int64_t j = 0; j < Tk; j += 2) {
    const uint16_t* even = vb + j * a.kv_row;
    const uint16_t* odd = j + 1 < Tk ? even + a.kv_row : nullptr;
    for (int64_t d = 0; d < D; ++d)
      vp[(j / 2) * D + d] = static_cast<uint32_t>(even[d]) | (odd ? static_cast<uint32_t>(odd[d]) << 16 : 0u);
  }
}

// The forward over io: K and V as floats, or as bf16 bits when io.k16 is set.
void forward(const FusedAttention& a, AttentionIo io, float* scratch, const ExecContext& ctx) {
  check(a);
  ROFORMER_CHECK(io.out != nullptr || io.out16 != nullptr || a.batch * a.q_len == 0,
                 "fused attention: no output buffer");
  const bool bf16_kv = io.k16 != nullptr;
  if (decodes(a, ctx, bf16_kv)) return decode_all(a, io, scratch, ctx);
  const AttentionScratch s = layout(a);
  const int threads = threads_of(ctx);
  const bool bf16 = bf16_tiles(a, ctx, bf16_kv);
  ForwardTile tile = pick(ctx.isa).forward;
  ConvertKv convert = nullptr;
  if (bf16) {
    const bool fast = ctx.isa == Isa::Avx512;
    tile = fast ? attention_forward_tile_bf16_avx512bf16 : attention_forward_tile_bf16_ref;
    convert = fast ? attention_convert_kv_bf16_avx512bf16 : attention_convert_kv_bf16_ref;
    // After the threads' parts; 4-byte words in float-sized slots.
    io.kv16 = reinterpret_cast<uint32_t*>(thread_scratch(scratch, s.f_total, threads));
  }
  const int64_t q_tiles = (a.q_len + kAttnTileQ - 1) / kAttnTileQ;
  const int64_t heads = a.batch * a.heads;
  const int64_t tasks = heads * q_tiles;
  // Causal tiles differ in cost; dynamic scheduling balances them, and each
  // piece's result is the same whichever thread computes it.
#pragma omp parallel num_threads(threads) if (threads > 1 && tasks > 1)
  {
    float* mine = thread_scratch(scratch, s.f_total, omp_get_thread_num());
    if (convert != nullptr) {
#pragma omp for schedule(static)
      for (int64_t bh = 0; bh < heads; ++bh) {
        if (bf16_kv) {
          pair_bf16_kv(a, io.k16, io.v16, bh / a.heads, bh % a.heads, io.kv16);
        } else {
          convert(a, io, s, bh / a.heads, bh % a.heads, mine);
        }
      }
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t tile_index = t % q_tiles, bh = t / q_tiles;
      tile(a, io, s, bh / a.heads, bh % a.heads, tile_index * kAttnTileQ, mine);
    }
  }
}

// The forward's outputs; the caller adds K and V in either form.
AttentionIo forward_io(const float* q, float* out, float* lse, uint16_t* out_bf16) {
  AttentionIo io;
  io.q = q;
  io.out = out;
  io.out16 = out_bf16;
  io.lse_out = lse;
  return io;
}

}  // namespace

bool uses_bf16_products(const FusedAttention& a, const ExecContext& ctx) { return bf16_tiles(a, ctx, false); }

bool bf16_kv_cache_pays(const FusedAttention& a, const ExecContext& ctx) {
  // The bf16 tiles' conditions whatever the query count, natively: the
  // plain emulation (Isa::Scalar) is the reference, which SelfAttention runs
  // materialised on fp32 keys.
  FusedAttention many = a;
  many.q_len = kBf16MinQueries;
  return ctx.isa != Isa::Scalar && (bf16_tiles(many, ctx, false) || bf16_kv_rounded_by_caller(a, ctx));
}

bool bf16_kv_rounded_by_caller(const FusedAttention& a, const ExecContext& ctx) {
  return a.bf16_products && ctx.isa != Isa::Scalar && !(ctx.isa == Isa::Avx512 && cpu_has_avx512_bf16());
}

bool bf16_kv_wants_floats(const FusedAttention& a, const ExecContext& ctx) {
  return a.q_len > kDecodeMaxQueries && !bf16_tiles(a, ctx, true);
}

int64_t attention_forward_scratch(const FusedAttention& a, const ExecContext& ctx) {
  return forward_scratch(a, ctx, false);
}

int64_t attention_backward_scratch(const FusedAttention& a, const ExecContext& ctx) {
  return layout(a).b_total * threads_of(ctx) + kAlign;
}

void attention_forward_fused(const FusedAttention& a, const float* q, const float* k, const float* v, float* out,
                             float* lse, float* scratch, const ExecContext& ctx, uint16_t* out_bf16) {
  AttentionIo io = forward_io(q, out, lse, out_bf16);
  io.k = k;
  io.v = v;
  forward(a, io, scratch, ctx);
}

int64_t attention_forward_scratch_bf16_kv(const FusedAttention& a, const ExecContext& ctx) {
  return forward_scratch(a, ctx, true);
}

void attention_forward_fused_bf16_kv(const FusedAttention& a, const float* q, const uint16_t* k, const uint16_t* v,
                                     float* out, float* lse, float* scratch, const ExecContext& ctx,
                                     uint16_t* out_bf16) {
  ROFORMER_CHECK(k != nullptr && v != nullptr, "fused attention: no bf16 keys or values");
  AttentionIo io = forward_io(q, out, lse, out_bf16);
  io.k16 = k;
  io.v16 = v;
  forward(a, io, scratch, ctx);
}

void attention_backward_fused(const FusedAttention& a, const float* q, const float* k, const float* v,
                              const float* out, const float* dout, const float* lse, float* dq, float* dk, float* dv,
                              float* scratch, const ExecContext& ctx) {
  check(a);
  const Kernels kern = pick(ctx.isa);
  const AttentionScratch s = layout(a);
  AttentionIo io;
  io.q = q;
  io.k = k;
  io.v = v;
  io.o = out;
  io.dout = dout;
  io.lse = lse;
  io.dq = dq;
  io.dk = dk;
  io.dv = dv;
  BackwardHead backward = kern.backward;
  if (uses_bf16_products(a, ctx))
    backward = ctx.isa == Isa::Avx512 ? attention_backward_head_bf16_avx512bf16 : attention_backward_head_bf16_ref;
  const int64_t tasks = a.batch * a.heads;
  const int threads = threads_of(ctx);
  // One (batch row, head) per piece: dk / dv of a key tile sum over every
  // query tile and dq over every key tile, in a fixed order on one thread.
#pragma omp parallel num_threads(threads) if (threads > 1 && tasks > 1)
  {
    float* mine = thread_scratch(scratch, s.b_total, omp_get_thread_num());
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; ++t) backward(a, io, s, t / a.heads, t % a.heads, mine);
  }
}

}  // namespace roformer::kernels
