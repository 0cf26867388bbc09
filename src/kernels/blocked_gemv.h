#pragma once
// Products of a few rows (one token while decoding) with weights already in
// the blocked layouts oneDNN packs them into. With one row a product reads
// every weight once and does two flops per value, so memory bounds it; these
// loops stream each 64-column panel from start to end with nothing else in
// the way (oneDNN's matmul at one row read the base model's weights at about
// three quarters of the machine's read rate). PackedMatmul takes them for up
// to kGemvMaxRows rows when it recognises its weights' layout.
//
// K = input features, N = output features; a panel holds 64 output columns
// over the whole padded K, one panel after another. oneDNN names the layouts
// by blocks of K (16 rows of 64 columns for fp32; 16 row pairs of 64 columns
// x 2 for bf16, the pairs vdpbf16ps multiplies), and block after block that
// makes each panel a plain row-major matrix of rows, row pairs or groups of
// four rows (int8: 16 groups of 64 columns x 4, the groups vpdpbusd sums):
//   F32x16x64:   (k, n) at panel(n) + k * 64 + n % 64
//   Bf16x32x64:  (k, n) at panel(n) + (k / 2) * 128 + (n % 64) * 2 + k % 2
//   S8x64x64:    (k, n) at panel(n) + (k / 4) * 256 + (n % 64) * 4 + k % 4
// with panel(n) = (n / 64) * padded_in * 64, padded_in = K rounded up to 16
// (fp32), 32 (bf16) or 64 (int8); padding rows and columns hold zeros.
#include <cstdint>
#include <vector>

#include "roformer/cpu.h"

namespace roformer::kernels {

enum class BlockedLayout { F32x16x64, Bf16x32x64, S8x64x64 };

inline constexpr int64_t kGemvPanel = 64;  // output columns per panel
// Up to this many rows go through these loops: a decoding step of up to
// four sequences (or beams). Alone, on the base model's weights, they matched
// or beat oneDNN's product up to 8 rows (not measured further); larger
// products are compute-bound, which oneDNN's blocked kernels are built for.
inline constexpr int64_t kGemvMaxRows = 4;
// Panels per task of the threaded products: a few hundred KB of weights,
// enough to outweigh a task's dispatch, while the smallest product (768
// columns, 12 panels) still splits.
inline constexpr int64_t kGemvPanelsPerTask = 2;

struct BlockedWeights {
  BlockedLayout layout = BlockedLayout::F32x16x64;
  const void* data = nullptr;  // float (F32x16x64), bf16 bits (Bf16x32x64) or int8_t (S8x64x64)
  int64_t in = 0, out = 0;     // K and N
  int64_t padded_in = 0;       // K rounded up to the layout's block (16, 32 or 64)
};

// Where element (k, n) sits in the layout, in elements from the start.
int64_t blocked_offset(const BlockedWeights& w, int64_t k, int64_t n);

// The K block of a layout: 16 rows for F32x16x64, 32 for Bf16x32x64, 64 for S8x64x64.
int64_t blocked_k_block(BlockedLayout layout);

// weight (out, in) row-major (nn.Linear's layout) into the blocked layout:
// fp32 values, or bf16 bits of the values rounded to nearest even. For tests
// and for checking a layout's reading; the engine's weights come from oneDNN.
std::vector<float> pack_blocked_f32(const float* weight, int64_t out, int64_t in);
std::vector<uint16_t> pack_blocked_bf16(const float* weight, int64_t out, int64_t in);
std::vector<int8_t> pack_blocked_s8(const int8_t* weight, int64_t out, int64_t in);

// y (rows, out) = x (rows, in) . W + bias for the output panels [p0, p1);
// bias may be null. x: fp32 rows for F32x16x64, bf16 bits for Bf16x32x64.
// Every output column is one chain of multiply-adds in k order: fused
// multiply-adds for fp32 (so the vector loop and the plain one agree to the
// bit), one bf16 pair per step for Bf16x32x64.
using BlockedGemvKernel = void (*)(const BlockedWeights& w, const void* x, int64_t rows, const float* bias, float* y,
                                   int64_t p0, int64_t p1);
void blocked_gemv_ref(const BlockedWeights& w, const void* x, int64_t rows, const float* bias, float* y, int64_t p0,
                      int64_t p1);
void blocked_gemv_f32_avx512(const BlockedWeights& w, const void* x, int64_t rows, const float* bias, float* y,
                             int64_t p0, int64_t p1);
void blocked_gemv_bf16_avx512bf16(const BlockedWeights& w, const void* x, int64_t rows, const float* bias, float* y,
                                  int64_t p0, int64_t p1);

// The loop for this layout and isa: the vector one where isa is Avx512 (and,
// for bf16, the CPU has AVX512-BF16), the plain one otherwise. Throws Error
// when this CPU lacks isa.
BlockedGemvKernel blocked_gemv_kernel(BlockedLayout layout, Isa isa);

// int8: sums (rows, out) = x (rows, in) . W for the output panels [p0, p1),
// with x unsigned codes and W S8x64x64 signed ones: exact int32 sums (at
// most 2^15 * in in magnitude), the same from every loop and from oneDNN's
// int8 product, which PackedMatmul rescales to fp32 as it does oneDNN's.
using BlockedSumsKernel = void (*)(const BlockedWeights& w, const uint8_t* x, int64_t rows, int32_t* sums, int64_t p0,
                                   int64_t p1);
void blocked_sums_ref(const BlockedWeights& w, const uint8_t* x, int64_t rows, int32_t* sums, int64_t p0, int64_t p1);
void blocked_sums_s8_avx512vnni(const BlockedWeights& w, const uint8_t* x, int64_t rows, int32_t* sums, int64_t p0,
                                int64_t p1);
// The vector loop where isa is Avx512 and the CPU has AVX512-VNNI, the plain
// one otherwise. Throws Error when this CPU lacks isa.
BlockedSumsKernel blocked_sums_kernel(Isa isa);

// Whether the loop for this layout under isa (blocked_gemv_kernel or
// blocked_sums_kernel) is a vector one rather than the plain reference. The
// layouts are oneDNN's, chosen for the CPU whatever isa a context asks for:
// under a narrower isa (--isa avx2 on an AVX-512 CPU) only the plain loop
// reads them, many times slower than oneDNN's own product on the same weights.
bool blocked_loop_is_vector(BlockedLayout layout, Isa isa);

// The whole product on ctx.threads, panels in fixed chunks: the same bits for
// any thread count. Throws Error unless rows is in [1, kGemvMaxRows].
void blocked_gemv(const BlockedWeights& w, const void* x, int64_t rows, const float* bias, float* y,
                  const ExecContext& ctx);

}  // namespace roformer::kernels
