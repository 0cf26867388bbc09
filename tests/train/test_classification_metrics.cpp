// Classifier metrics against hand-computed values and an independent
// formula (MCC as the correlation of one-hot label and prediction vectors).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "roformer/classification_metrics.h"
#include "roformer/error.h"

namespace roformer {
namespace {

ConfusionMatrix from(int64_t k, const std::vector<int64_t>& labels, const std::vector<int64_t>& preds) {
  ConfusionMatrix m(k);
  for (std::size_t i = 0; i < labels.size(); ++i) m.add(labels[i], preds[i]);
  return m;
}

// Pearson correlation of the flattened one-hot matrices (the definition R_K generalises).
double one_hot_correlation(int64_t k, const std::vector<int64_t>& labels, const std::vector<int64_t>& preds) {
  const auto n = static_cast<double>(labels.size());
  double cov_xy = 0, cov_xx = 0, cov_yy = 0;
  for (int64_t c = 0; c < k; ++c) {
    double mx = 0, my = 0;
    for (std::size_t i = 0; i < labels.size(); ++i) {
      mx += labels[i] == c;
      my += preds[i] == c;
    }
    mx /= n;
    my /= n;
    for (std::size_t i = 0; i < labels.size(); ++i) {
      const double x = (labels[i] == c) - mx, y = (preds[i] == c) - my;
      cov_xy += x * y;
      cov_xx += x * x;
      cov_yy += y * y;
    }
  }
  return cov_xy / std::sqrt(cov_xx * cov_yy);
}

TEST(ClassificationMetrics, BinaryByHand) {
  // TP 2, FN 1, FP 1, TN 1.
  const auto m = from(2, {1, 1, 0, 0, 1}, {1, 0, 0, 1, 1});
  EXPECT_DOUBLE_EQ(m.accuracy(), 0.6);
  EXPECT_NEAR(m.f1(1), 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(m.f1(0), 0.5, 1e-12);
  EXPECT_NEAR(m.macro_f1(), (2.0 / 3.0 + 0.5) / 2, 1e-12);
  // (TP·TN − FP·FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = 1 / 6.
  EXPECT_NEAR(m.mcc(), 1.0 / 6.0, 1e-12);
}

TEST(ClassificationMetrics, MultiClassMatchesPublishedAndIndependentValues) {
  // scikit-learn's f1_score documentation example: macro F1 = 0.2666...
  const std::vector<int64_t> y = {0, 1, 2, 0, 1, 2}, p = {0, 2, 1, 0, 0, 1};
  const auto m = from(3, y, p);
  EXPECT_NEAR(m.macro_f1(), 0.26666666666666666, 1e-12);
  EXPECT_NEAR(m.accuracy(), 2.0 / 6.0, 1e-12);
  EXPECT_NEAR(m.mcc(), one_hot_correlation(3, y, p), 1e-12);
  const std::vector<int64_t> y2 = {2, 0, 2, 2, 0, 1, 1, 3, 3, 0}, p2 = {0, 0, 2, 2, 0, 2, 1, 3, 0, 1};
  EXPECT_NEAR(from(4, y2, p2).mcc(), one_hot_correlation(4, y2, p2), 1e-12);
}

TEST(ClassificationMetrics, PerfectConstantAndAbsentClasses) {
  EXPECT_DOUBLE_EQ(from(3, {0, 1, 2}, {0, 1, 2}).mcc(), 1.0);
  EXPECT_DOUBLE_EQ(from(3, {0, 1, 2}, {0, 1, 2}).macro_f1(), 1.0);
  EXPECT_DOUBLE_EQ(from(2, {0, 1, 1}, {1, 1, 1}).mcc(), 0.0);  // constant prediction: undefined, reported as 0
  // Class 2 never appears: left out of the macro average, as scikit-learn does with labels=None.
  EXPECT_DOUBLE_EQ(from(3, {0, 1}, {0, 1}).macro_f1(), 1.0);
  ConfusionMatrix m(2);
  EXPECT_THROW(m.add(2, 0), Error);
  EXPECT_THROW(m.add(0, -1), Error);
  EXPECT_THROW(ConfusionMatrix(0), Error);
}

}  // namespace
}  // namespace roformer
