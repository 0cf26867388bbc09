#pragma once
// Row-wise and elementwise kernels of the transformer block, on raw buffers.
// GELU and LayerNorm run the instruction-set kernels of gelu_kernels.h and
// layer_norm_rows.h picked by ctx.isa (Isa::Scalar: the plain reference
// loops); the others are plain loops. Results never depend on ctx.threads.
#include <cstdint>

#include "roformer/cpu.h"

namespace roformer::kernels {

enum class Activation { Gelu, GeluNew, Relu };

// x <- act(x) for n values. GELU uses ctx.isa's kernels (Isa::Scalar: the libm reference).
void activation_forward(Activation act, float* x, int64_t n, const ExecContext& ctx);

// y[r,:] = (x[r,:] - mean) / sqrt(var + eps) * gamma + beta for `rows` rows of
// `cols`, biased variance (as torch.nn.LayerNorm). y may alias x.
void layer_norm_forward(const float* x, float* y, const float* gamma, const float* beta, int64_t rows, int64_t cols,
                        float eps, const ExecContext& ctx);
// The same, also storing y rounded to bf16 (the bits convert_to_bf16 gives)
// into y_bf16 (rows, cols) while each row is still in cache; y_bf16 may be null.
void layer_norm_forward(const float* x, float* y, const float* gamma, const float* beta, int64_t rows, int64_t cols,
                        float eps, const ExecContext& ctx, uint16_t* y_bf16);

// In-place softmax over each of `rows` rows of `cols` values (row stride ld).
void softmax_rows(float* x, int64_t rows, int64_t cols, int64_t ld);

// y[i] += x[i] for n values, split over ctx.threads.
void add_inplace(float* y, const float* x, int64_t n, const ExecContext& ctx);

// y[r,:] += bias for `rows` rows of `cols`; the rows split over ctx.threads.
void add_bias_rows(float* y, const float* bias, int64_t rows, int64_t cols, const ExecContext& ctx);
// The same on one thread.
void add_bias_rows(float* y, const float* bias, int64_t rows, int64_t cols);

}  // namespace roformer::kernels

namespace roformer::kernels {

// Inverted dropout: keep[i] = (uniform >= p), x[i] = keep ? x[i] / (1 - p) : 0.
// Draws come from a DataRng seeded with `seed`, so masks are the same on
// every platform and thread count.
void dropout_forward(float* x, uint8_t* keep, int64_t n, float p, uint64_t seed);
// dx[i] = keep[i] ? dy[i] / (1 - p) : 0 (dx may alias dy).
void dropout_backward(const float* dy, const uint8_t* keep, float* dx, int64_t n, float p);

}  // namespace roformer::kernels
