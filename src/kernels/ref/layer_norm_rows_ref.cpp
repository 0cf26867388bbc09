// LayerNorm row kernels as plain loops, the sums in 8 double lanes.
#include <cmath>

#include "kernels/layer_norm_rows.h"

namespace roformer::kernels {
namespace {

constexpr int64_t kLanes = 8;

double total(const double (&acc)[kLanes]) {
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// Two passes: the mean first, then the centred variance (biased, as torch).
LayerNormRowStats stats(const float* x, int64_t cols, float eps) {
  double acc[kLanes] = {};
  int64_t c = 0;
  for (; c + kLanes <= cols; c += kLanes)
    for (int64_t j = 0; j < kLanes; ++j) acc[j] += x[c + j];
  for (int64_t j = 0; c + j < cols; ++j) acc[j] += x[c + j];
  const double mean = total(acc) / static_cast<double>(cols);
  double sq[kLanes] = {};
  for (c = 0; c + kLanes <= cols; c += kLanes)
    for (int64_t j = 0; j < kLanes; ++j) {
      const double d = x[c + j] - mean;
      sq[j] += d * d;
    }
  for (int64_t j = 0; c + j < cols; ++j) {
    const double d = x[c + j] - mean;
    sq[j] += d * d;
  }
  const double var = total(sq) / static_cast<double>(cols);
  return {static_cast<float>(mean), static_cast<float>(1.0 / std::sqrt(var + static_cast<double>(eps)))};
}

void stats4(const float* x, int64_t stride, int64_t cols, float eps, LayerNormRowStats* out) {
  for (int64_t r = 0; r < 4; ++r) out[r] = stats(x + r * stride, cols, eps);
}

void normalize(const float* x, float* y, const float* gamma, const float* beta, int64_t cols, LayerNormRowStats s) {
#pragma omp simd
  for (int64_t c = 0; c < cols; ++c) y[c] = (x[c] - s.mean) * s.rstd * gamma[c] + beta[c];
}

// With xhat = (x - mean) * rstd and g = dy * gamma:
// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)).
void backward(const float* x, const float* dy, const float* gamma, LayerNormRowStats st, int64_t cols, float* dx,
              float* pg, float* pb) {
  const float m = st.mean, s = st.rstd;
  double ag[kLanes] = {}, agx[kLanes] = {};
  int64_t c = 0;
  for (; c + kLanes <= cols; c += kLanes)
    for (int64_t j = 0; j < kLanes; ++j) {
      const float xhat = (x[c + j] - m) * s;
      const float g = dy[c + j] * gamma[c + j];
      ag[j] += g;
      agx[j] += static_cast<double>(g) * xhat;
    }
  for (int64_t j = 0; c + j < cols; ++j) {
    const float xhat = (x[c + j] - m) * s;
    const float g = dy[c + j] * gamma[c + j];
    ag[j] += g;
    agx[j] += static_cast<double>(g) * xhat;
  }
  const float mg = static_cast<float>(total(ag) / static_cast<double>(cols));
  const float mgx = static_cast<float>(total(agx) / static_cast<double>(cols));
#pragma omp simd
  for (int64_t k = 0; k < cols; ++k) {
    const float xhat = (x[k] - m) * s;
    const float d = dy[k];
    pg[k] += d * xhat;
    pb[k] += d;
    dx[k] = s * (d * gamma[k] - mg - xhat * mgx);
  }
}

}  // namespace

LayerNormRowKernels layer_norm_rows_ref() { return {stats, stats4, normalize, backward}; }

}  // namespace roformer::kernels
