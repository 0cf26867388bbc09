// Row-wise kernels split over threads: for each instruction set the same
// bits for 1 to 4 threads, and every path equal to the definitions in double
// within fp32 rounding (the bias kernels: equal to plain serial loops).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kernels/bf16_convert.h"
#include "kernels/elementwise.h"
#include "kernels/elementwise_backward.h"
#include "support/test_support.h"

namespace roformer::kernels {
namespace {

using roformer::testing::random_floats;

struct Shape2 {
  int64_t rows, cols;
};
// Rows and columns that are not multiples of the vector width, the row chunk
// (32) or the column block (64); the first two are below the threading
// threshold, the others above it.
const Shape2 kRowShapes[] = {{1, 5}, {3, 24}, {203, 300}, {97, 1030}, {517, 77}, {64, 256}};

struct LnCase {
  std::vector<float> x, dy, gamma, beta;
};

LnCase ln_case(Shape2 s, uint32_t seed) {
  LnCase c{random_floats(static_cast<std::size_t>(s.rows * s.cols), seed, -3.0f, 3.0f),
           random_floats(static_cast<std::size_t>(s.rows * s.cols), seed + 1),
           random_floats(static_cast<std::size_t>(s.cols), seed + 2, 0.5f, 1.5f),
           random_floats(static_cast<std::size_t>(s.cols), seed + 3)};
  for (std::size_t i = 0; i < c.x.size(); i += 7) c.x[i] += 100.0f;  // uneven offsets across a row
  return c;
}

// Isa::Scalar runs the plain row loops; AVX2 and AVX-512 CPUs the AVX2 rows.
class LayerNormIsa : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!isa_supported(GetParam()))
      GTEST_SKIP() << "this CPU lacks " << (GetParam() == Isa::Avx512 ? "AVX-512 (F, BW, VL)" : "AVX2 and FMA");
  }
};

using testing::isa_param_name;

INSTANTIATE_TEST_SUITE_P(Isas, LayerNormIsa, ::testing::Values(Isa::Scalar, Isa::Avx2, Isa::Avx512), isa_param_name);

TEST_P(LayerNormIsa, ForwardSameBitsForAnyThreadCountAndMatchesDefinition) {
  for (const Shape2 s : kRowShapes) {
    const LnCase c = ln_case(s, 1);
    const std::size_t n = c.x.size(), r = static_cast<std::size_t>(s.rows);
    std::vector<float> y1(n), m1(r), s1(r);
    layer_norm_forward_train(c.x.data(), y1.data(), c.gamma.data(), c.beta.data(), s.rows, s.cols, 1e-12f, m1.data(),
                             s1.data(), ExecContext{1, GetParam()});
    for (int threads = 1; threads <= 4; ++threads) {
      std::vector<float> y(n), m(r), sd(r), yi(n);
      const ExecContext ctx{threads, GetParam()};
      layer_norm_forward_train(c.x.data(), y.data(), c.gamma.data(), c.beta.data(), s.rows, s.cols, 1e-12f, m.data(),
                               sd.data(), ctx);
      layer_norm_forward(c.x.data(), yi.data(), c.gamma.data(), c.beta.data(), s.rows, s.cols, 1e-12f, ctx);
      EXPECT_EQ(y, y1) << s.rows << "x" << s.cols << " threads=" << threads;
      EXPECT_EQ(yi, y1) << "inference forward differs from the training forward";
      EXPECT_EQ(m, m1);
      EXPECT_EQ(sd, s1);
      auto inplace = c.x;  // y may alias x
      layer_norm_forward(inplace.data(), inplace.data(), c.gamma.data(), c.beta.data(), s.rows, s.cols, 1e-12f, ctx);
      EXPECT_EQ(inplace, y1);
    }
    // Against the definition in double.
    for (int64_t i = 0; i < s.rows; ++i) {
      const float* xr = c.x.data() + i * s.cols;
      double mean = 0, var = 0;
      for (int64_t j = 0; j < s.cols; ++j) mean += xr[j];
      mean /= static_cast<double>(s.cols);
      for (int64_t j = 0; j < s.cols; ++j) var += (xr[j] - mean) * (xr[j] - mean);
      var /= static_cast<double>(s.cols);
      for (int64_t j = 0; j < s.cols; ++j) {
        const double want = (xr[j] - mean) / std::sqrt(var + 1e-12) * c.gamma[j] + c.beta[j];
        ASSERT_NEAR(y1[i * s.cols + j], want, 1e-5 * std::max(1.0, std::fabs(want))) << i << "," << j;
      }
    }
  }
}

// The bf16 copy a LayerNorm writes for the next products holds the bits the
// separate conversion of its fp32 output gives, and the fp32 output is unchanged.
TEST_P(LayerNormIsa, Bf16CopyEqualsConvertingTheOutput) {
  for (const Shape2 s : kRowShapes) {
    const LnCase c = ln_case(s, 9);
    const std::size_t n = c.x.size();
    std::vector<float> y(n);
    layer_norm_forward(c.x.data(), y.data(), c.gamma.data(), c.beta.data(), s.rows, s.cols, 1e-12f,
                       ExecContext{1, GetParam()});
    std::vector<uint16_t> want(n);
    convert_to_bf16(y.data(), static_cast<int64_t>(n), want.data(), ExecContext{1, GetParam()});
    for (int threads = 1; threads <= 3; ++threads) {
      auto inplace = c.x;
      std::vector<uint16_t> got(n, 0xFFFF);
      layer_norm_forward(inplace.data(), inplace.data(), c.gamma.data(), c.beta.data(), s.rows, s.cols, 1e-12f,
                         ExecContext{threads, GetParam()}, got.data());
      EXPECT_EQ(inplace, y) << s.rows << "x" << s.cols << " threads=" << threads;
      EXPECT_EQ(got, want) << s.rows << "x" << s.cols << " threads=" << threads;
    }
  }
}

// Rows' statistics are computed four at a time; each row must still get the
// numbers it gets alone, and those of the plain loops (same sums, same order).
TEST_P(LayerNormIsa, RowStatisticsDoNotDependOnNeighbouringRows) {
  for (const Shape2 s : kRowShapes) {
    const LnCase c = ln_case(s, 5);
    const auto n = static_cast<std::size_t>(s.rows * s.cols), r = static_cast<std::size_t>(s.rows);
    std::vector<float> y(n), m(r), sd(r), y_ref(n), m_ref(r), sd_ref(r);
    layer_norm_forward_train(c.x.data(), y.data(), c.gamma.data(), c.beta.data(), s.rows, s.cols, 1e-12f, m.data(),
                             sd.data(), ExecContext{2, GetParam()});
    layer_norm_forward_train(c.x.data(), y_ref.data(), c.gamma.data(), c.beta.data(), s.rows, s.cols, 1e-12f,
                             m_ref.data(), sd_ref.data(), ExecContext{1, Isa::Scalar});
    EXPECT_EQ(m, m_ref) << s.rows << "x" << s.cols;
    EXPECT_EQ(sd, sd_ref) << s.rows << "x" << s.cols;
    for (int64_t i = 0; i < s.rows; ++i) {
      std::vector<float> yi(static_cast<std::size_t>(s.cols));
      float mi = 0, si = 0;
      layer_norm_forward_train(c.x.data() + i * s.cols, yi.data(), c.gamma.data(), c.beta.data(), 1, s.cols, 1e-12f,
                               &mi, &si, ExecContext{1, GetParam()});
      ASSERT_EQ(mi, m[static_cast<std::size_t>(i)]) << "row " << i << " of " << s.rows << "x" << s.cols;
      ASSERT_EQ(si, sd[static_cast<std::size_t>(i)]) << "row " << i << " of " << s.rows << "x" << s.cols;
      ASSERT_TRUE(std::equal(yi.begin(), yi.end(), y.begin() + i * s.cols)) << "row " << i;
    }
  }
}

TEST_P(LayerNormIsa, BackwardSameBitsForAnyThreadCountAndMatchesFormulas) {
  for (const Shape2 s : kRowShapes) {
    const LnCase c = ln_case(s, 5);
    const std::size_t n = c.x.size(), r = static_cast<std::size_t>(s.rows), cols = static_cast<std::size_t>(s.cols);
    std::vector<float> y(n), mean(r), rstd(r);
    layer_norm_forward_train(c.x.data(), y.data(), c.gamma.data(), c.beta.data(), s.rows, s.cols, 1e-12f, mean.data(),
                             rstd.data(), ExecContext{1, GetParam()});
    // Parameter gradients accumulate onto what is there.
    const auto dg0 = random_floats(cols, 9), db0 = random_floats(cols, 10);
    std::vector<float> dx1(n), dg1 = dg0, db1 = db0;
    layer_norm_backward(c.x.data(), c.dy.data(), c.gamma.data(), mean.data(), rstd.data(), s.rows, s.cols, dx1.data(),
                        dg1.data(), db1.data(), ExecContext{1, GetParam()});
    for (int threads = 1; threads <= 4; ++threads) {
      std::vector<float> dx(n), dg = dg0, db = db0;
      layer_norm_backward(c.x.data(), c.dy.data(), c.gamma.data(), mean.data(), rstd.data(), s.rows, s.cols, dx.data(),
                          dg.data(), db.data(), ExecContext{threads, GetParam()});
      EXPECT_EQ(dx, dx1) << s.rows << "x" << s.cols << " threads=" << threads;
      EXPECT_EQ(dg, dg1) << s.rows << "x" << s.cols << " threads=" << threads;
      EXPECT_EQ(db, db1) << s.rows << "x" << s.cols << " threads=" << threads;
      auto inplace = c.dy;  // dx may alias dy
      std::vector<float> dg2 = dg0, db2 = db0;
      layer_norm_backward(c.x.data(), inplace.data(), c.gamma.data(), mean.data(), rstd.data(), s.rows, s.cols,
                          inplace.data(), dg2.data(), db2.data(), ExecContext{threads, GetParam()});
      EXPECT_EQ(inplace, dx1);
      EXPECT_EQ(dg2, dg1);
    }
    // Against the formulas in double from the same saved statistics.
    for (std::size_t j = 0; j < cols; ++j) {
      double g = dg0[j], b = db0[j], scale = std::fabs(dg0[j]) + std::fabs(db0[j]);
      for (std::size_t i = 0; i < r; ++i) {
        const double xhat = (c.x[i * cols + j] - double(mean[i])) * rstd[i];
        g += c.dy[i * cols + j] * xhat;
        b += c.dy[i * cols + j];
        scale += std::fabs(c.dy[i * cols + j] * xhat) + std::fabs(c.dy[i * cols + j]);
      }
      ASSERT_NEAR(dg1[j], g, 4e-6 * scale) << "dgamma " << j;
      ASSERT_NEAR(db1[j], b, 4e-6 * scale) << "dbeta " << j;
    }
    for (std::size_t i = 0; i < r; ++i) {
      double mg = 0, mgx = 0;
      for (std::size_t j = 0; j < cols; ++j) {
        const double xhat = (c.x[i * cols + j] - double(mean[i])) * rstd[i], gj = double(c.dy[i * cols + j]) * c.gamma[j];
        mg += gj;
        mgx += gj * xhat;
      }
      mg /= double(cols);
      mgx /= double(cols);
      for (std::size_t j = 0; j < cols; ++j) {
        const double xhat = (c.x[i * cols + j] - double(mean[i])) * rstd[i];
        const double want = rstd[i] * (double(c.dy[i * cols + j]) * c.gamma[j] - mg - xhat * mgx);
        ASSERT_NEAR(dx1[i * cols + j], want, 1e-5 * std::max(1.0, std::fabs(want))) << i << "," << j;
      }
    }
  }
}

// The overloads without a context run the plain loops on the calling thread.
TEST(ThreadedRowKernels, LayerNormOverloadsWithoutContextAreTheReference) {
  const Shape2 s{203, 300};
  const LnCase c = ln_case(s, 17);
  const std::size_t n = c.x.size(), r = static_cast<std::size_t>(s.rows), cols = static_cast<std::size_t>(s.cols);
  const ExecContext ref{1, Isa::Scalar};
  std::vector<float> y(n), m(r), sd(r), y2(n), m2(r), sd2(r);
  layer_norm_forward_train(c.x.data(), y.data(), c.gamma.data(), c.beta.data(), s.rows, s.cols, 1e-5f, m.data(), sd.data());
  layer_norm_forward_train(c.x.data(), y2.data(), c.gamma.data(), c.beta.data(), s.rows, s.cols, 1e-5f, m2.data(),
                           sd2.data(), ref);
  EXPECT_EQ(y, y2);
  EXPECT_EQ(sd, sd2);
  std::vector<float> dx(n), dg(cols, 0.0f), db(cols, 0.0f), dx2(n), dg2(cols, 0.0f), db2(cols, 0.0f);
  layer_norm_backward(c.x.data(), c.dy.data(), c.gamma.data(), m.data(), sd.data(), s.rows, s.cols, dx.data(), dg.data(),
                      db.data());
  layer_norm_backward(c.x.data(), c.dy.data(), c.gamma.data(), m.data(), sd.data(), s.rows, s.cols, dx2.data(),
                      dg2.data(), db2.data(), ref);
  EXPECT_EQ(dx, dx2);
  EXPECT_EQ(dg, dg2);
  EXPECT_EQ(db, db2);
}

TEST(ThreadedRowKernels, BiasKernelsEqualSerialLoopsExactly) {
  for (const Shape2 s : kRowShapes) {
    const std::size_t n = static_cast<std::size_t>(s.rows * s.cols), cols = static_cast<std::size_t>(s.cols);
    const auto dy = random_floats(n, 13), bias = random_floats(cols, 14), db0 = random_floats(cols, 15);
    // The serial loops: rows added in order, one at a time.
    auto want_db = db0;
    for (int64_t i = 0; i < s.rows; ++i)
      for (std::size_t j = 0; j < cols; ++j) want_db[j] += dy[static_cast<std::size_t>(i) * cols + j];
    auto want_y = dy;
    for (int64_t i = 0; i < s.rows; ++i)
      for (std::size_t j = 0; j < cols; ++j) want_y[static_cast<std::size_t>(i) * cols + j] += bias[j];
    auto db = db0;
    bias_backward(dy.data(), s.rows, s.cols, db.data());
    EXPECT_EQ(db, want_db);
    for (int threads = 1; threads <= 4; ++threads) {
      db = db0;
      bias_backward(dy.data(), s.rows, s.cols, db.data(), ExecContext{threads, best_isa()});
      EXPECT_EQ(db, want_db) << s.rows << "x" << s.cols << " threads=" << threads;
      auto y = dy;
      add_bias_rows(y.data(), bias.data(), s.rows, s.cols, ExecContext{threads, best_isa()});
      EXPECT_EQ(y, want_y) << s.rows << "x" << s.cols << " threads=" << threads;
    }
  }
}

}  // namespace
}  // namespace roformer::kernels
