// fairseq's label_smoothed_nll_loss, with its gradient written directly:
// d loss / d x_c = (1 - eps - eps_i) (p_c - [c = t]) + eps_i (V p_c - 1)
//               = p_c - eps_i - (1 - eps - eps_i) [c = t],
// since (1 - eps - eps_i) + V eps_i = 1.
#include <algorithm>
#include <cmath>

#include "roformer/error.h"
#include "roformer/seq2seq.h"

namespace roformer {

LabelSmoothedLoss label_smoothed_cross_entropy(const float* logits, const int64_t* targets, int64_t rows,
                                               int64_t classes, double epsilon, int64_t ignore_index, float* dlogits,
                                               float scale) {
  ROFORMER_CHECK(classes >= 2, "label smoothing needs at least 2 classes");
  ROFORMER_CHECK(epsilon >= 0 && epsilon < 1, "label smoothing must be in [0, 1)");
  LabelSmoothedLoss r;
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t t = targets[i];
    if (t == ignore_index) continue;
    ROFORMER_CHECK(t >= 0 && t < classes, "label smoothing: target " + std::to_string(t) + " outside [0, " +
                                              std::to_string(classes) + ")");
    ++r.tokens;
  }
  const double eps_i = epsilon / static_cast<double>(classes - 1);
  const double w_nll = 1.0 - epsilon - eps_i;
  const double k = r.tokens > 0 ? static_cast<double>(scale) / static_cast<double>(r.tokens) : 0.0;
  for (int64_t i = 0; i < rows; ++i) {
    const float* x = logits + i * classes;
    float* d = dlogits ? dlogits + i * classes : nullptr;
    const int64_t t = targets[i];
    if (t == ignore_index) {
      if (d) std::fill(d, d + classes, 0.0f);
      continue;
    }
    const float* top = std::max_element(x, x + classes);
    const double mx = *top;
    if (top - x == t) ++r.correct;
    // log p_c = x_c - mx - log(sum exp(x - mx)), all in double.
    double sum = 0, sum_x = 0;
    for (int64_t c = 0; c < classes; ++c) {
      sum += std::exp(static_cast<double>(x[c]) - mx);
      sum_x += static_cast<double>(x[c]) - mx;
    }
    const double lse = std::log(sum);
    const double nll = lse - (static_cast<double>(x[t]) - mx);
    const double smooth = static_cast<double>(classes) * lse - sum_x;  // -sum_c log p_c
    r.nll_sum += nll;
    r.loss_sum += w_nll * nll + eps_i * smooth;
    if (d) {
      for (int64_t c = 0; c < classes; ++c)
        d[c] = static_cast<float>(k * (std::exp(static_cast<double>(x[c]) - mx - lse) - eps_i));
      d[t] -= static_cast<float>(k * w_nll);
    }
  }
  return r;
}

}  // namespace roformer
