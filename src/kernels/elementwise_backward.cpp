#include "kernels/elementwise_backward.h"

#include <algorithm>
#include <cmath>

namespace roformer::kernels {

void activation_backward(Activation act, const float* x, const float* dy, float* dx, int64_t n) {
  switch (act) {
    case Activation::Gelu:
      // d/dx [x * Phi(x)] = Phi(x) + x * phi(x)
      for (int64_t i = 0; i < n; ++i) {
        const float v = x[i];
        const float cdf = 0.5f * (1.0f + std::erf(v * 0.70710678118654752f));
        const float pdf = 0.39894228040143268f * std::exp(-0.5f * v * v);
        dx[i] = dy[i] * (cdf + v * pdf);
      }
      break;
    case Activation::GeluNew:
      for (int64_t i = 0; i < n; ++i) {
        const float v = x[i];
        constexpr float k = 0.79788456080286536f;
        const float inner = k * (v + 0.044715f * v * v * v);
        const float t = std::tanh(inner);
        const float dinner = k * (1.0f + 3.0f * 0.044715f * v * v);
        dx[i] = dy[i] * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * dinner);
      }
      break;
    case Activation::Relu:
      for (int64_t i = 0; i < n; ++i) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
      break;
  }
}

void layer_norm_forward_train(const float* x, float* y, const float* gamma, const float* beta, int64_t rows,
                              int64_t cols, float eps, float* mean, float* rstd) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    double m = 0;
    for (int64_t c = 0; c < cols; ++c) m += xr[c];
    m /= static_cast<double>(cols);
    double var = 0;
    for (int64_t c = 0; c < cols; ++c) var += (xr[c] - m) * (xr[c] - m);
    var /= static_cast<double>(cols);
    const float inv = static_cast<float>(1.0 / std::sqrt(var + static_cast<double>(eps)));
    const float mf = static_cast<float>(m);
    mean[r] = mf;
    rstd[r] = inv;
    float* yr = y + r * cols;
    for (int64_t c = 0; c < cols; ++c) yr[c] = (xr[c] - mf) * inv * gamma[c] + beta[c];
  }
}

void layer_norm_backward(const float* x, const float* dy, const float* gamma, const float* mean, const float* rstd,
                         int64_t rows, int64_t cols, float* dx, float* dgamma, float* dbeta) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    const float* dyr = dy + r * cols;
    float* dxr = dx + r * cols;
    const float m = mean[r], s = rstd[r];
    // With xhat = (x - mean) * rstd and g = dy * gamma:
    // dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
    double sum_g = 0, sum_gx = 0;
    for (int64_t c = 0; c < cols; ++c) {
      const float xhat = (xr[c] - m) * s;
      const float g = dyr[c] * gamma[c];
      sum_g += g;
      sum_gx += static_cast<double>(g) * xhat;
      dgamma[c] += dyr[c] * xhat;
      dbeta[c] += dyr[c];
    }
    const float mg = static_cast<float>(sum_g / static_cast<double>(cols));
    const float mgx = static_cast<float>(sum_gx / static_cast<double>(cols));
    for (int64_t c = 0; c < cols; ++c) {
      const float xhat = (xr[c] - m) * s;
      dxr[c] = s * (dyr[c] * gamma[c] - mg - xhat * mgx);
    }
  }
}

void softmax_backward_rows(const float* p, const float* dp, float* ds, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* pr = p + r * cols;
    const float* dpr = dp + r * cols;
    float* dsr = ds + r * cols;
    double dot = 0;
    for (int64_t c = 0; c < cols; ++c) dot += static_cast<double>(pr[c]) * dpr[c];
    const float d = static_cast<float>(dot);
    for (int64_t c = 0; c < cols; ++c) dsr[c] = pr[c] * (dpr[c] - d);
  }
}

void bias_backward(const float* dy, int64_t rows, int64_t cols, float* dbias) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dbias[c] += dy[r * cols + c];
}

void activation_backward(Activation act, const float* x, const float* dy, float* dx, int64_t n, const ExecContext& ctx) {
  constexpr int64_t kChunk = int64_t{1} << 14;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for num_threads(ctx.threads) if (ctx.threads > 1 && chunks > 1) schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * kChunk, len = std::min(kChunk, n - begin);
    activation_backward(act, x + begin, dy + begin, dx + begin, len);
  }
}

}  // namespace roformer::kernels
