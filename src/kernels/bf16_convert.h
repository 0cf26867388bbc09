#pragma once
// fp32 -> bf16 conversion of activations for the bf16 products, rounding to
// nearest even exactly as roformer::f32_to_bf16 (NaN stays a quiet NaN,
// denormals are kept), so the vector loop and the plain one give the same bits.
#include <cstdint>

#include "roformer/cpu.h"

namespace roformer::kernels {

// y[i] = bits of f32_to_bf16(x[i]) for i in [0, n).
using Bf16ConvertKernel = void (*)(const float* x, int64_t n, uint16_t* y);
void convert_to_bf16_ref(const float* x, int64_t n, uint16_t* y);
void convert_to_bf16_avx512(const float* x, int64_t n, uint16_t* y);

// The loop for isa (AVX2 and Scalar take the plain one); throws Error when
// this CPU lacks isa.
Bf16ConvertKernel bf16_convert_kernel(Isa isa);

// All of x (n values) with ctx.isa's loop, in fixed chunks over ctx.threads.
void convert_to_bf16(const float* x, int64_t n, uint16_t* y, const ExecContext& ctx);

// y[i] = the fp32 value of f32_to_bf16(x[i]) (y may be x), in fixed chunks
// over ctx.threads: values a bf16 copy of x would hold, kept as floats.
void round_to_bf16_values(const float* x, int64_t n, float* y, const ExecContext& ctx);

}  // namespace roformer::kernels
