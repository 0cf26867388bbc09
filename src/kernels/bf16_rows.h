#pragma once
// Products with bf16 weights for CPUs without bf16 dot products (no
// AVX512-BF16, no AMX), where bf16 is emulated: the weights take two bytes a
// value in memory, and every product widens them to fp32 on the way in
// (exact: a bf16 value is the top half of an fp32 one).
//
// A product of a few rows (a decoding step's) reads every weight once and
// does two flops per value, so memory bounds it: widening in registers reads
// half of fp32's bytes. A longer product is bound by the arithmetic; it
// widens the weights back into fp32 rows and hands them to the fp32 GEMM.
//
// Layout: groups of kBf16RowsGroup output rows, each group's rows
// interleaved eight values at a time, so a pass over a group reads one
// sequential stream (eight rows read side by side were eight short streams,
// which the hardware prefetchers followed at two thirds of the read rate):
//   (o, k) at (o / 8) * 8 * padded_in + (k / 8) * 64 + (o % 8) * 8 + k % 8,
// padded_in = in rounded up to 8; the padding (rows past out, values past in)
// holds zeros.
//
// Every loop sums in one order, so they give the same bits: an output is
// eight lanes, lane j summing k = j, j + 8, j + 16, ... by fused
// multiply-adds from zero; then the lanes are added as
// ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)), and the bias last.
#include <cstdint>

#include "kernels/huge_pages.h"
#include "roformer/cpu.h"

namespace roformer::kernels {

inline constexpr int64_t kBf16RowsGroup = 8;  // output rows per interleaved group
// Up to this many rows a product streams the weights through these loops:
// a decoding step of up to four sequences (or beams), as kGemvMaxRows.
inline constexpr int64_t kBf16RowsMaxRows = 4;
// Output rows per task of the threaded product (a multiple of the group):
// 100 KB of weights at 768 inputs, enough to outweigh a task's dispatch.
inline constexpr int64_t kBf16RowsPerTask = 64;

int64_t bf16_rows_padded_in(int64_t in);
// weight (out, in) fp32 row-major, rounded to nearest even, in the layout
// (in huge pages where it is large: streamed once per decoding step).
HugePageVector<uint16_t> pack_bf16_rows(const float* weight, int64_t out, int64_t in);

// y[r][o] = sum_k x[r][k] * w(o, k) (+ bias[o]) for the output rows [o0, o1)
// and every row r < rows of x (rows, in); w in the layout; y is (rows, out);
// bias may be null. o0 is a multiple of kBf16RowsGroup.
using Bf16RowsProduct = void (*)(const float* x, int64_t rows, int64_t in, const uint16_t* w, int64_t out,
                                 const float* bias, float* y, int64_t o0, int64_t o1);
void bf16_rows_product_ref(const float* x, int64_t rows, int64_t in, const uint16_t* w, int64_t out,
                           const float* bias, float* y, int64_t o0, int64_t o1);
void bf16_rows_product_avx2(const float* x, int64_t rows, int64_t in, const uint16_t* w, int64_t out,
                            const float* bias, float* y, int64_t o0, int64_t o1);

// Output rows [o0, o1) of w as fp32 rows into y (o1 - o0, in); o0 is a
// multiple of kBf16RowsGroup.
using Bf16Widen = void (*)(const uint16_t* w, int64_t in, int64_t o0, int64_t o1, float* y);
void widen_bf16_rows_ref(const uint16_t* w, int64_t in, int64_t o0, int64_t o1, float* y);
void widen_bf16_rows_avx2(const uint16_t* w, int64_t in, int64_t o0, int64_t o1, float* y);

struct Bf16RowsKernels {
  Bf16RowsProduct product;
  Bf16Widen widen;
};
// The plain loops for Scalar, the AVX2 ones for any other isa; throws Error
// when this CPU lacks isa.
Bf16RowsKernels bf16_rows_kernels(Isa isa);

}  // namespace roformer::kernels
