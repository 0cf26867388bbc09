#include "models/losses.h"

#include <algorithm>
#include <cmath>

namespace roformer::models {

LossResult cross_entropy(const float* logits, const int64_t* targets, int64_t rows, int64_t classes,
                         int64_t target_stride, float* dlogits, float scale, int threads) {
  LossResult r;
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t t = targets[i * target_stride];
    if (t >= 0 && t < classes) ++r.count;
  }
  const double k = r.count > 0 ? static_cast<double>(scale) / static_cast<double>(r.count) : 0.0;
  // Rows are split into a fixed number of chunks whatever the thread count,
  // and the chunk sums are added in order: the loss is the same bits on any
  // number of threads.
  constexpr int64_t kChunks = 256;
  double chunk_loss[kChunks];
  int64_t chunk_correct[kChunks];
  const int64_t chunks = std::min(rows, kChunks);
  auto one_row = [&](int64_t i, double& loss, int64_t& correct) {
    const float* x = logits + i * classes;
    float* d = dlogits ? dlogits + i * classes : nullptr;
    const int64_t t = targets[i * target_stride];
    if (t < 0 || t >= classes) {
      if (d) std::fill(d, d + classes, 0.0f);
      return;
    }
    const float* top = std::max_element(x, x + classes);
    const float mx = *top;
    if (top - x == t) ++correct;
    // exp(x - max) once, in float (the largest term is exactly 1), kept in d
    // for the gradient; the sum in double.
    double sum = 0;
    for (int64_t c = 0; c < classes; ++c) {
      const float e = std::exp(x[c] - mx);
      if (d) d[c] = e;
      sum += e;
    }
    loss += std::log(sum) - (static_cast<double>(x[t]) - mx);
    if (d) {
      const float f = static_cast<float>(k / sum);
      for (int64_t c = 0; c < classes; ++c) d[c] *= f;
      d[t] -= static_cast<float>(k);
    }
  };
  // A row of a large vocabulary is worth a thread; a few small rows are not.
  const bool parallel = threads > 1 && rows * classes >= (int64_t{1} << 16);
#pragma omp parallel for schedule(static) num_threads(threads) if (parallel)
  for (int64_t ch = 0; ch < chunks; ++ch) {
    double loss = 0;
    int64_t correct = 0;
    for (int64_t i = ch * rows / chunks; i < (ch + 1) * rows / chunks; ++i) one_row(i, loss, correct);
    chunk_loss[ch] = loss;
    chunk_correct[ch] = correct;
  }
  double total = 0;
  for (int64_t ch = 0; ch < chunks; ++ch) {
    total += chunk_loss[ch];
    r.correct += chunk_correct[ch];
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
