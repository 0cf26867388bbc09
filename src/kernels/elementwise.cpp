#include "kernels/elementwise.h"

#include <algorithm>
#include <cmath>

namespace roformer::kernels {

namespace {

inline float gelu_erf(float x) { return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f)); }

inline float gelu_tanh(float x) {
  constexpr float k = 0.79788456080286536f;  // sqrt(2/pi)
  return 0.5f * x * (1.0f + std::tanh(k * (x + 0.044715f * x * x * x)));
}

template <typename F>
void map_inplace(float* x, int64_t n, const ExecContext& ctx, F f) {
  const bool parallel = ctx.threads > 1 && n >= (int64_t{1} << 16);
#pragma omp parallel for num_threads(ctx.threads) if (parallel) schedule(static)
  for (int64_t i = 0; i < n; ++i) x[i] = f(x[i]);
}

}  // namespace

void activation_forward(Activation act, float* x, int64_t n, const ExecContext& ctx) {
  switch (act) {
    case Activation::Gelu: map_inplace(x, n, ctx, gelu_erf); break;
    case Activation::GeluNew: map_inplace(x, n, ctx, gelu_tanh); break;
    case Activation::Relu: map_inplace(x, n, ctx, [](float v) { return v > 0.0f ? v : 0.0f; }); break;
  }
}

void layer_norm_forward(const float* x, float* y, const float* gamma, const float* beta, int64_t rows, int64_t cols,
                        float eps, const ExecContext& ctx) {
  const bool parallel = ctx.threads > 1 && rows * cols >= (int64_t{1} << 15);
#pragma omp parallel for num_threads(ctx.threads) if (parallel) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    // Two passes in double: the mean first, then the centred variance, so
    // large offsets do not cancel catastrophically.
    double mean = 0;
    for (int64_t c = 0; c < cols; ++c) mean += xr[c];
    mean /= static_cast<double>(cols);
    double var = 0;
    for (int64_t c = 0; c < cols; ++c) {
      const double d = xr[c] - mean;
      var += d * d;
    }
    var /= static_cast<double>(cols);
    const float inv = static_cast<float>(1.0 / std::sqrt(var + static_cast<double>(eps)));
    const float m = static_cast<float>(mean);
    for (int64_t c = 0; c < cols; ++c) yr[c] = (xr[c] - m) * inv * gamma[c] + beta[c];
  }
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

void add_bias_rows(float* y, const float* bias, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    float* yr = y + r * cols;
    for (int64_t c = 0; c < cols; ++c) yr[c] += bias[c];
  }
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
