#include "roformer/classification_metrics.h"

#include <cmath>
#include <string>

#include "roformer/error.h"

namespace roformer {

ConfusionMatrix::ConfusionMatrix(int64_t classes) : classes_(classes) {
  ROFORMER_CHECK(classes >= 1, "confusion matrix: need at least one class");
  cells_.assign(static_cast<std::size_t>(classes * classes), 0);
}

void ConfusionMatrix::add(int64_t label, int64_t predicted) {
  ROFORMER_CHECK(label >= 0 && label < classes_ && predicted >= 0 && predicted < classes_,
        "confusion matrix: class out of range (" + std::to_string(label) + ", " + std::to_string(predicted) + ")");
  ++cells_[static_cast<std::size_t>(label * classes_ + predicted)];
  ++total_;
}

int64_t ConfusionMatrix::count(int64_t label, int64_t predicted) const {
  return cells_[static_cast<std::size_t>(label * classes_ + predicted)];
}

double ConfusionMatrix::accuracy() const {
  if (total_ == 0) return 0;
  int64_t hit = 0;
  for (int64_t k = 0; k < classes_; ++k) hit += count(k, k);
  return static_cast<double>(hit) / static_cast<double>(total_);
}

double ConfusionMatrix::f1(int64_t cls) const {
  int64_t labelled = 0, predicted = 0;
  for (int64_t k = 0; k < classes_; ++k) {
    labelled += count(cls, k);
    predicted += count(k, cls);
  }
  if (labelled + predicted == 0) return 0;
  return 2.0 * static_cast<double>(count(cls, cls)) / static_cast<double>(labelled + predicted);
}

double ConfusionMatrix::macro_f1() const {
  double sum = 0;
  int64_t present = 0;
  for (int64_t k = 0; k < classes_; ++k) {
    int64_t seen = 0;
    for (int64_t j = 0; j < classes_; ++j) seen += count(k, j) + count(j, k);
    if (seen == 0) continue;
    sum += f1(k);
    ++present;
  }
  return present > 0 ? sum / static_cast<double>(present) : 0;
}

double ConfusionMatrix::mcc() const {
  // R_K = (c·s − Σ p_k t_k) / sqrt((s² − Σ p_k²)(s² − Σ t_k²)), c correct, s total,
  // t_k items labelled k, p_k items predicted k.
  double c = 0, s = static_cast<double>(total_), pt = 0, pp = 0, tt = 0;
  for (int64_t k = 0; k < classes_; ++k) {
    double t = 0, p = 0;
    for (int64_t j = 0; j < classes_; ++j) {
      t += static_cast<double>(count(k, j));
      p += static_cast<double>(count(j, k));
    }
    c += static_cast<double>(count(k, k));
    pt += p * t;
    pp += p * p;
    tt += t * t;
  }
  const double denom = (s * s - pp) * (s * s - tt);
  if (denom <= 0) return 0;
  return (c * s - pt) / std::sqrt(denom);
}

}  // namespace roformer
