#pragma once
// fp32 products on weights packed once into column panels, for CPUs where
// no library keeps fp32 weights packed between calls: without AVX-512,
// oneDNN 2.6 has no blocked fp32 kernels and OpenBLAS copies the weights
// into its panels on every call (a tenth of a 128-token forward on a Zen 3
// core). Here the copy happens at load, and a product reads the panels
// straight from memory: each panel, 16 output columns deep through a block
// of inputs, stays in cache while every activation row passes over it, so
// the weights stream from memory once per product at any row count.
//
// Layout: the inputs cut into blocks of kF32PanelDepth (the last may be
// shorter); within a block of depth d, panels of kF32PanelWidth output
// columns, each d rows of 16 values:
//   (o, k) at (k / D) * D * padded_out + (o / 16) * d * 16 + (k % D) * 16 + o % 16
// with D = kF32PanelDepth and padded_out = out rounded up to 16; the
// padding columns hold zeros.
//
// The same panels hold bf16 weights for CPUs without bf16 products (bf16
// emulated): two bytes a value in memory, widened to fp32 in registers as a
// pass loads them (exact: a bf16 value is the top half of an fp32 one), so a
// decoding step streams half of fp32's bytes and a longer product runs at
// the fp32 panels' speed.
//
// Every loop sums in one order, so they give the same bits: an output
// starts at its bias (or zero) and takes k = 0, 1, ..., in - 1 one fused
// multiply-add at a time.
#include <cstdint>

#include "kernels/huge_pages.h"
#include "roformer/cpu.h"

namespace roformer::kernels {

inline constexpr int64_t kF32PanelWidth = 16;   // output columns per panel: two AVX2 vectors
inline constexpr int64_t kF32PanelDepth = 768;  // inputs per block: a panel of 48 KB
// Activation rows per pass of the AVX2 loop over a panel: 6 x 2 accumulators
// plus the two weight vectors and a broadcast fill the 16 vector registers.
inline constexpr int64_t kF32PanelRows = 6;

int64_t f32_panels_padded_out(int64_t out);
// weight (out, in) fp32 row-major in the layout (in huge pages where large).
HugePageVector<float> pack_f32_panels(const float* weight, int64_t out, int64_t in);
// The packed weights back as (out, in) row-major.
void unpack_f32_panels(const float* w, int64_t out, int64_t in, float* weight);

// y[r][o] = bias[o] + sum_k x[r][k] * w(o, k) for the panels [p0, p1) (the
// columns o in [16 p0, min(16 p1, out))) and every row r < rows of x
// (rows, in); y is (rows, out); bias may be null.
using F32PanelsProduct = void (*)(const float* x, int64_t rows, int64_t in, const float* w, int64_t out,
                                  const float* bias, float* y, int64_t p0, int64_t p1);
void f32_panels_product_ref(const float* x, int64_t rows, int64_t in, const float* w, int64_t out, const float* bias,
                            float* y, int64_t p0, int64_t p1);
void f32_panels_product_avx2(const float* x, int64_t rows, int64_t in, const float* w, int64_t out, const float* bias,
                             float* y, int64_t p0, int64_t p1);

// The plain loop for Scalar, the AVX2 one for any other isa; throws Error
// when this CPU lacks isa.
F32PanelsProduct f32_panels_kernel(Isa isa);

// The whole product, its panels cut among ctx.threads (the bits do not
// depend on the cut).
void f32_panels_forward(const float* x, int64_t rows, int64_t in, const float* w, int64_t out, const float* bias,
                        float* y, const ExecContext& ctx);

// The same for bf16 weights: packed rounded to nearest even, in the same
// layout (bf16 bits); unpacked widened back to fp32.
HugePageVector<uint16_t> pack_bf16_weight_panels(const float* weight, int64_t out, int64_t in);
void unpack_bf16_weight_panels(const uint16_t* w, int64_t out, int64_t in, float* weight);
using Bf16WeightPanelsProduct = void (*)(const float* x, int64_t rows, int64_t in, const uint16_t* w, int64_t out,
                                         const float* bias, float* y, int64_t p0, int64_t p1);
void bf16_weight_panels_product_ref(const float* x, int64_t rows, int64_t in, const uint16_t* w, int64_t out,
                                    const float* bias, float* y, int64_t p0, int64_t p1);
void bf16_weight_panels_product_avx2(const float* x, int64_t rows, int64_t in, const uint16_t* w, int64_t out,
                                     const float* bias, float* y, int64_t p0, int64_t p1);
Bf16WeightPanelsProduct bf16_weight_panels_kernel(Isa isa);
void bf16_weight_panels_forward(const float* x, int64_t rows, int64_t in, const uint16_t* w, int64_t out,
                                const float* bias, float* y, const ExecContext& ctx);

}  // namespace roformer::kernels
