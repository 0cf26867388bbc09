// Backward kernels against central finite differences of their forwards.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/elementwise.h"
#include "kernels/elementwise_backward.h"
#include "support/test_support.h"

namespace roformer::kernels {
namespace {

using roformer::testing::random_floats;

TEST(BackwardKernels, ActivationsMatchFiniteDifferences) {
  auto x = random_floats(500, 1, -5.0f, 5.0f);
  auto dy = random_floats(500, 2);
  for (auto act : {Activation::Gelu, Activation::GeluNew, Activation::Relu}) {
    std::vector<float> dx(x.size());
    activation_backward(act, x.data(), dy.data(), dx.data(), static_cast<int64_t>(x.size()));
    for (std::size_t i = 0; i < x.size(); ++i) {
      if (act == Activation::Relu && std::fabs(x[i]) < 1e-2f) continue;  // the kink
      const double h = 1e-3;
      float up = static_cast<float>(x[i] + h), down = static_cast<float>(x[i] - h);
      activation_forward(act, &up, 1, ExecContext{1, Isa::Scalar});
      activation_forward(act, &down, 1, ExecContext{1, Isa::Scalar});
      const double fd = (double(up) - double(down)) / (2 * h) * dy[i];
      ASSERT_NEAR(dx[i], fd, 2e-3) << "x=" << x[i];
    }
  }
}

TEST(BackwardKernels, LayerNormMatchesFiniteDifferences) {
  const int64_t rows = 3, cols = 24;
  auto x = random_floats(static_cast<std::size_t>(rows * cols), 3, -2.0f, 2.0f);
  auto g = random_floats(cols, 4), b = random_floats(cols, 5), dy = random_floats(x.size(), 6);
  std::vector<float> y(x.size()), mean(rows), rstd(rows), dx(x.size()), dg(cols, 0.0f), db(cols, 0.0f);
  layer_norm_forward_train(x.data(), y.data(), g.data(), b.data(), rows, cols, 1e-5f, mean.data(), rstd.data());
  layer_norm_backward(x.data(), dy.data(), g.data(), mean.data(), rstd.data(), rows, cols, dx.data(), dg.data(), db.data());
  // L = <dy, LN(x)>, differentiated numerically (double accumulation of fp32 forwards).
  auto loss = [&](const std::vector<float>& xx, const std::vector<float>& gg, const std::vector<float>& bb) {
    std::vector<float> yy(xx.size()), m(rows), r(rows);
    layer_norm_forward_train(xx.data(), yy.data(), gg.data(), bb.data(), rows, cols, 1e-5f, m.data(), r.data());
    double l = 0;
    for (std::size_t i = 0; i < yy.size(); ++i) l += double(dy[i]) * yy[i];
    return l;
  };
  const float h = 1e-2f;
  for (std::size_t i = 0; i < x.size(); ++i) {
    auto xp = x, xm = x;
    xp[i] += h;
    xm[i] -= h;
    EXPECT_NEAR(dx[i], (loss(xp, g, b) - loss(xm, g, b)) / (double(xp[i]) - double(xm[i])), 5e-3) << "x " << i;
  }
  for (std::size_t c = 0; c < static_cast<std::size_t>(cols); ++c) {
    auto gp = g, gm = g, bp = b, bm = b;
    gp[c] += h;
    gm[c] -= h;
    bp[c] += h;
    bm[c] -= h;
    EXPECT_NEAR(dg[c], (loss(x, gp, b) - loss(x, gm, b)) / (double(gp[c]) - double(gm[c])), 2e-3) << "gamma " << c;
    EXPECT_NEAR(db[c], (loss(x, g, bp) - loss(x, g, bm)) / (double(bp[c]) - double(bm[c])), 2e-3) << "beta " << c;
  }
}

TEST(BackwardKernels, SoftmaxMatchesFiniteDifferences) {
  const int64_t rows = 2, cols = 9;
  auto s = random_floats(static_cast<std::size_t>(rows * cols), 7, -3.0f, 3.0f);
  auto dp = random_floats(s.size(), 8);
  auto p = s;
  softmax_rows(p.data(), rows, cols, cols);
  std::vector<float> ds(s.size());
  softmax_backward_rows(p.data(), dp.data(), ds.data(), rows, cols);
  auto loss = [&](std::vector<float> v) {
    softmax_rows(v.data(), rows, cols, cols);
    double l = 0;
    for (std::size_t i = 0; i < v.size(); ++i) l += double(dp[i]) * v[i];
    return l;
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto up = s, down = s;
    up[i] += 1e-2f;
    down[i] -= 1e-2f;
    EXPECT_NEAR(ds[i], (loss(up) - loss(down)) / (double(up[i]) - double(down[i])), 2e-4) << i;
  }
}

TEST(BackwardKernels, BiasGradientAccumulates) {
  std::vector<float> dy = {1, 2, 3, 4, 5, 6}, db = {10, 20, 30};
  bias_backward(dy.data(), 2, 3, db.data());
  EXPECT_EQ(db, (std::vector<float>{15, 27, 39}));
}

TEST(BackwardKernels, ThreadedActivationBackwardEqualsSerial) {
  const std::size_t n = 100003;  // several chunks and a ragged end
  const auto x = roformer::testing::random_floats(n, 3, -4.0f, 4.0f), dy = roformer::testing::random_floats(n, 4);
  for (Activation act : {Activation::Gelu, Activation::GeluNew, Activation::Relu}) {
    std::vector<float> serial(n), threaded(n);
    activation_backward(act, x.data(), dy.data(), serial.data(), static_cast<int64_t>(n));
    // The overload without a context is the scalar reference; the fast paths are in test_activation_kernels.cpp.
    activation_backward(act, x.data(), dy.data(), threaded.data(), static_cast<int64_t>(n), ExecContext{2, Isa::Scalar});
    EXPECT_EQ(serial, threaded);
  }
}

}  // namespace
}  // namespace roformer::kernels
