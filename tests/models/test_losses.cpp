// Cross-entropy against its definition evaluated in double, and its
// independence from the thread count.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "models/losses.h"

namespace roformer::models {
namespace {

struct Case {
  std::vector<float> logits;
  std::vector<int64_t> targets;
  int64_t rows, classes;
};

Case random_case(int64_t rows, int64_t classes, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> n(0.0f, 4.0f);
  Case c{std::vector<float>(static_cast<std::size_t>(rows * classes)), std::vector<int64_t>(rows), rows, classes};
  for (float& x : c.logits) x = n(rng);
  for (int64_t i = 0; i < rows; ++i) {
    const uint64_t r = rng() % 10;
    // Some ignored rows: the ignore index and a target past the classes (QA's clamp).
    c.targets[i] = r == 0 ? -100 : r == 1 ? classes : static_cast<int64_t>(rng() % static_cast<uint64_t>(classes));
  }
  return c;
}

TEST(CrossEntropy, EqualsTheDefinitionInDouble) {
  const Case c = random_case(37, 501, 7);
  std::vector<float> d(c.logits.size(), 123.0f);
  const float scale = 0.5f;
  const LossResult r = cross_entropy(c.logits.data(), c.targets.data(), c.rows, c.classes, 1, d.data(), scale);

  double total = 0;
  int64_t count = 0, correct = 0;
  for (int64_t i = 0; i < c.rows; ++i)
    if (c.targets[i] >= 0 && c.targets[i] < c.classes) ++count;
  for (int64_t i = 0; i < c.rows; ++i) {
    const float* x = &c.logits[i * c.classes];
    const int64_t t = c.targets[i];
    if (t < 0 || t >= c.classes) {
      for (int64_t k = 0; k < c.classes; ++k) ASSERT_EQ(d[i * c.classes + k], 0.0f) << "ignored row " << i;
      continue;
    }
    double sum = 0;
    int64_t arg = 0;
    for (int64_t k = 0; k < c.classes; ++k) {
      sum += std::exp(static_cast<double>(x[k]));
      if (x[k] > x[arg]) arg = k;
    }
    total += std::log(sum) - x[t];
    if (arg == t) ++correct;
    for (int64_t k = 0; k < c.classes; ++k) {
      const double p = std::exp(static_cast<double>(x[k])) / sum;
      const double want = scale * (p - (k == t ? 1.0 : 0.0)) / static_cast<double>(count);
      ASSERT_NEAR(d[i * c.classes + k], want, 1e-7) << "row " << i << " class " << k;
    }
  }
  EXPECT_EQ(r.count, count);
  EXPECT_EQ(r.correct, correct);
  EXPECT_NEAR(r.loss, total / static_cast<double>(count), 1e-6 * std::fabs(total / static_cast<double>(count)));
}

TEST(CrossEntropy, SameBitsOnAnyThreadCount) {
  // Large enough that the rows really are shared out (rows x classes >= 2^16).
  const Case c = random_case(300, 1000, 11);
  std::vector<float> d1(c.logits.size());
  const LossResult r1 = cross_entropy(c.logits.data(), c.targets.data(), c.rows, c.classes, 1, d1.data(), 1.0f, 1);
  for (int threads : {2, 3, 4}) {
    std::vector<float> dn(c.logits.size());
    const LossResult rn =
        cross_entropy(c.logits.data(), c.targets.data(), c.rows, c.classes, 1, dn.data(), 1.0f, threads);
    EXPECT_EQ(std::memcmp(&r1.loss, &rn.loss, sizeof(double)), 0) << threads << " threads";
    EXPECT_EQ(r1.correct, rn.correct);
    EXPECT_EQ(std::memcmp(d1.data(), dn.data(), d1.size() * sizeof(float)), 0) << threads << " threads";
  }
}

TEST(CrossEntropy, NoCountedRowsGiveZeroLossAndGradient) {
  const std::vector<float> logits{1.0f, 2.0f, 3.0f, 4.0f};
  const std::vector<int64_t> targets{-100, -100};
  std::vector<float> d(4, 9.0f);
  const LossResult r = cross_entropy(logits.data(), targets.data(), 2, 2, 1, d.data(), 1.0f);
  EXPECT_EQ(r.count, 0);
  EXPECT_EQ(r.loss, 0.0);
  for (float v : d) EXPECT_EQ(v, 0.0f);
}

}  // namespace
}  // namespace roformer::models
