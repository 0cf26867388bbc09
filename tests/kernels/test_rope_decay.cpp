// The long-term decay bound (paper section 3.4.3), checked against a direct
// evaluation of the definition and against values known in closed form.
#include <gtest/gtest.h>

#include <cmath>

#include "roformer/error.h"
#include "roformer/rope.h"

namespace roformer {
namespace {

// Each |S_j| summed from scratch with real cos/sin (O(d^2)), independent of
// the library's running complex sum.
double direct_bound(int64_t d, int64_t r, double base) {
  double total = 0;
  for (int64_t j = 1; j <= d / 2; ++j) {
    double re = 0, im = 0;
    for (int64_t k = 0; k < j; ++k) {
      const double angle = static_cast<double>(r) / std::pow(base, 2.0 * static_cast<double>(k) / static_cast<double>(d));
      re += std::cos(angle);
      im += std::sin(angle);
    }
    total += std::hypot(re, im);
  }
  return total / static_cast<double>(d / 2);
}

TEST(RopeDecay, MatchesDirectEvaluation) {
  for (int64_t d : {2, 8, 64, 128}) {
    const auto bound = rope_decay_bound(d, 300, 10000.0);
    ASSERT_EQ(bound.size(), 301u);
    for (int64_t r : {0, 1, 7, 50, 123, 250, 300}) {
      EXPECT_NEAR(bound[static_cast<std::size_t>(r)], direct_bound(d, r, 10000.0), 1e-9) << "d=" << d << " r=" << r;
    }
  }
}

TEST(RopeDecay, ClosedFormValues) {
  // At distance 0 every term is 1, so |S_j| = j and the bound is (d/2 + 1) / 2.
  EXPECT_DOUBLE_EQ(rope_decay_bound(128, 0)[0], 32.5);
  // With one pair, |S_1| = |e^{i r}| = 1 at every distance.
  for (double v : rope_decay_bound(2, 100)) EXPECT_NEAR(v, 1.0, 1e-12);
}

TEST(RopeDecay, DecaysWithDistance) {
  const auto bound = rope_decay_bound(128, 250);
  double near = 0, far = 0;
  for (int r = 0; r < 50; ++r) near += bound[static_cast<std::size_t>(r)];
  for (int r = 200; r <= 249; ++r) far += bound[static_cast<std::size_t>(r)];
  EXPECT_LT(far, 0.5 * near);
  for (double v : bound) EXPECT_LE(v, bound[0] + 1e-12);
}

TEST(RopeDecay, RejectsBadArguments) {
  EXPECT_THROW(rope_decay_bound(7, 10), Error);
  EXPECT_THROW(rope_decay_bound(0, 10), Error);
  EXPECT_THROW(rope_decay_bound(64, -1), Error);
}

}  // namespace
}  // namespace roformer
