#include "models/losses.h"

#include <algorithm>
#include <cmath>

namespace roformer::models {

LossResult cross_entropy(const float* logits, const int64_t* targets, int64_t rows, int64_t classes,
                         int64_t target_stride, float* dlogits, float scale) {
  LossResult r;
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t t = targets[i * target_stride];
    if (t >= 0 && t < classes) ++r.count;
  }
  double total = 0;
  for (int64_t i = 0; i < rows; ++i) {
    const float* x = logits + i * classes;
    float* d = dlogits ? dlogits + i * classes : nullptr;
    const int64_t t = targets[i * target_stride];
    if (t < 0 || t >= classes) {
      if (d) std::fill(d, d + classes, 0.0f);
      continue;
    }
    const float* top = std::max_element(x, x + classes);
    const float mx = *top;
    if (top - x == t) ++r.correct;
    double sum = 0;
    for (int64_t c = 0; c < classes; ++c) sum += std::exp(static_cast<double>(x[c]) - mx);
    const double lse = mx + std::log(sum);
    total += lse - x[t];
    if (d) {
      const double k = static_cast<double>(scale) / static_cast<double>(r.count);
      for (int64_t c = 0; c < classes; ++c) d[c] = static_cast<float>(k * std::exp(static_cast<double>(x[c]) - lse));
      d[t] -= static_cast<float>(k);
    }
  }
  r.loss = r.count > 0 ? total / static_cast<double>(r.count) : 0.0;
  return r;
}

LossResult mse(const float* pred, const float* target, int64_t n, float* dpred, float scale) {
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double e = static_cast<double>(pred[i]) - target[i];
    total += e * e;
    if (dpred) dpred[i] = static_cast<float>(2.0 * e * scale / static_cast<double>(n));
  }
  return LossResult{total / static_cast<double>(n), n};
}

LossResult bce_with_logits(const float* logits, const float* target, int64_t n, float* dlogits, float scale) {
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double x = logits[i], y = target[i];
    // max(x, 0) - x*y + log(1 + exp(-|x|)): stable for large |x|.
    total += std::max(x, 0.0) - x * y + std::log1p(std::exp(-std::fabs(x)));
    if (dlogits) dlogits[i] = static_cast<float>((1.0 / (1.0 + std::exp(-x)) - y) * scale / static_cast<double>(n));
  }
  return LossResult{total / static_cast<double>(n), n};
}

}  // namespace roformer::models
