// Gradient-norm clipping with torch 1.13's clip_grad_norm_ semantics:
//   norms  = [torch.norm(p.grad) for p]            fp32, one per tensor
//   total  = torch.norm(torch.stack(norms))        fp32
//   coef   = max_norm / (total + 1e-6)             fp32: reciprocal(total + 1e-6) * max_norm
//   grad  *= torch.clamp(coef, max=1.0)            always, even when the factor is 1
// Sums of squares are accumulated in double and rounded to fp32 where torch
// holds an fp32 value, so each norm is the correctly rounded one (torch's fp32
// accumulation lands within a few ulps of it).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "roformer/error.h"
#include "roformer/optim.h"

namespace roformer {

namespace {

constexpr int64_t kParallelMin = int64_t{1} << 16;
constexpr int kMaxParts = 256;

// Σ g², eight independent lanes so the loop vectorises without reassociation
// flags; the order is fixed, so the result is reproducible.
double sum_squares_serial(const float* g, int64_t n) {
  constexpr int kLanes = 8;
  double acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      const double x = g[i + j];
      acc[j] += x * x;
    }
  for (int j = 0; i < n; ++i, ++j) {
    const double x = g[i];
    acc[j] += x * x;
  }
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

// The split into parts depends only on `threads`, and the parts are added in
// order, so a given thread count always gives the same bits.
double sum_squares(const float* g, int64_t n, int threads) {
  if (threads <= 1 || n < kParallelMin) return sum_squares_serial(g, n);
  const int parts = std::min(threads, kMaxParts);
  double partial[kMaxParts];
#pragma omp parallel for num_threads(parts) schedule(static)
  for (int t = 0; t < parts; ++t) {
    const int64_t lo = n / parts * t + std::min<int64_t>(t, n % parts);
    const int64_t hi = lo + n / parts + (t < n % parts ? 1 : 0);
    partial[t] = sum_squares_serial(g + lo, hi - lo);
  }
  double s = 0;
  for (int t = 0; t < parts; ++t) s += partial[t];
  return s;
}

void check_clip_inputs(const std::vector<Parameter>& params, const ClipOptions& options) {
  ROFORMER_CHECK(options.threads >= 1, "clip_grad_norm: thread count must be >= 1, got " + std::to_string(options.threads));
  for (const Parameter& p : params) {
    if (!p.trainable) continue;
    ROFORMER_CHECK(p.size >= 0, "clip_grad_norm: parameter '" + p.name + "' has negative size");
    ROFORMER_CHECK(p.size == 0 || p.grad != nullptr, "clip_grad_norm: trainable parameter '" + p.name + "' has no gradient buffer");
  }
}

// torch's total norm: fp32 per-tensor norms, then the fp32 norm of those.
float total_norm_f32(const std::vector<Parameter>& params, int threads) {
  double total_sq = 0;
  for (const Parameter& p : params) {
    if (!p.trainable || p.size == 0) continue;
    const float norm = static_cast<float>(std::sqrt(sum_squares(p.grad, p.size, threads)));
    total_sq += static_cast<double>(norm) * static_cast<double>(norm);
  }
  return static_cast<float>(std::sqrt(total_sq));
}

}  // namespace

double grad_norm(const std::vector<Parameter>& params, const ClipOptions& options) {
  check_clip_inputs(params, options);
  return total_norm_f32(params, options.threads);
}

double clip_grad_norm(std::vector<Parameter>& params, double max_norm, const ClipOptions& options) {
  if (!(std::isfinite(max_norm) && max_norm > 0)) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", max_norm);
    throw Error(std::string("clip_grad_norm: max_norm must be finite and > 0, got ") + buf);
  }
  check_clip_inputs(params, options);
  const float total = total_norm_f32(params, options.threads);
  if (options.error_if_nonfinite && !std::isfinite(total))
    throw Error("clip_grad_norm: the total gradient norm is " + std::string(std::isnan(total) ? "nan" : "inf") +
                "; the gradients were left unchanged");

  // `max_norm / tensor` is Tensor.__rtruediv__, i.e. reciprocal() * max_norm;
  // 1e-6 and max_norm become fp32 scalars.
  const float denom = total + static_cast<float>(1e-6);
  const float coef = (1.0f / denom) * static_cast<float>(max_norm);
  const float factor = std::isnan(coef) ? coef : std::min(coef, 1.0f);  // torch.clamp keeps NaN

  const int threads = options.threads;
  for (Parameter& p : params) {
    if (!p.trainable || p.size == 0) continue;
    float* g = p.grad;
    const int64_t n = p.size;
    if (threads <= 1 || n < kParallelMin) {
      for (int64_t i = 0; i < n; ++i) g[i] *= factor;
      continue;
    }
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) g[i] *= factor;
  }
  return total;
}

}  // namespace roformer
