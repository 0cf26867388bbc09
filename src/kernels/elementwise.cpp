#include "kernels/elementwise.h"

#include <algorithm>
#include <cmath>

#include "kernels/gelu_kernels.h"
#include "kernels/parallel_chunks.h"

namespace roformer::kernels {

namespace {

template <typename F>
void map_inplace(float* x, int64_t n, const ExecContext& ctx, F f) {
  const bool parallel = ctx.threads > 1 && n >= (int64_t{1} << 16);
#pragma omp parallel for num_threads(ctx.threads) if (parallel) schedule(static)
  for (int64_t i = 0; i < n; ++i) x[i] = f(x[i]);
}

}  // namespace

void activation_forward(Activation act, float* x, int64_t n, const ExecContext& ctx) {
  if (act == Activation::Relu) {
    map_inplace(x, n, ctx, [](float v) { return v > 0.0f ? v : 0.0f; });
    return;
  }
  const GeluForm form = act == Activation::Gelu ? GeluForm::Erf : GeluForm::Tanh;
  const auto kernel = gelu_kernels(ctx.isa).forward;
  for_each_chunk(n, kActivationChunk, ctx, [&](int64_t begin, int64_t end) { kernel(form, x + begin, end - begin); });
}

void softmax_rows(float* x, int64_t rows, int64_t cols, int64_t ld) {
  for (int64_t r = 0; r < rows; ++r) {
    float* xr = x + r * ld;
    float mx = xr[0];
    for (int64_t c = 1; c < cols; ++c) mx = std::max(mx, xr[c]);
    double sum = 0;
    for (int64_t c = 0; c < cols; ++c) {
      xr[c] = std::exp(xr[c] - mx);
      sum += xr[c];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t c = 0; c < cols; ++c) xr[c] *= inv;
  }
}

void add_inplace(float* y, const float* x, int64_t n, const ExecContext& ctx) {
  for_each_chunk(n, kActivationChunk, ctx, [&](int64_t begin, int64_t end) {
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) y[i] += x[i];
  });
}

void add_bias_rows(float* y, const float* bias, int64_t rows, int64_t cols, const ExecContext& ctx) {
  const bool parallel = ctx.threads > 1 && rows > 1 && rows * cols >= (int64_t{1} << 15);
#pragma omp parallel for num_threads(ctx.threads) if (parallel) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    float* yr = y + r * cols;
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) yr[c] += bias[c];
  }
}

void add_bias_rows(float* y, const float* bias, int64_t rows, int64_t cols) {
  add_bias_rows(y, bias, rows, cols, ExecContext{1, Isa::Scalar});
}

}  // namespace roformer::kernels

#include "roformer/data_rng.h"

namespace roformer::kernels {

void dropout_forward(float* x, uint8_t* keep, int64_t n, float p, uint64_t seed) {
  DataRng rng(seed);
  const float scale = 1.0f / (1.0f - p);
  for (int64_t i = 0; i < n; ++i) {
    keep[i] = rng.uniform() >= static_cast<double>(p) ? 1 : 0;
    x[i] = keep[i] ? x[i] * scale : 0.0f;
  }
}

void dropout_backward(const float* dy, const uint8_t* keep, float* dx, int64_t n, float p) {
  const float scale = 1.0f / (1.0f - p);
  for (int64_t i = 0; i < n; ++i) dx[i] = keep[i] ? dy[i] * scale : 0.0f;
}

}  // namespace roformer::kernels
