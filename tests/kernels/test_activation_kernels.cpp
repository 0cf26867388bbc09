// GELU kernels: each instruction-set path against the libm reference and the
// definitions in double, their limits, and thread-count independence.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kernels/elementwise.h"
#include "kernels/elementwise_backward.h"
#include "kernels/gelu_kernels.h"
#include "support/test_support.h"

namespace roformer::kernels {
namespace {

using roformer::testing::random_floats;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kMax = std::numeric_limits<float>::max();

double gelu_def(double v, GeluForm form) {
  if (form == GeluForm::Erf) return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
  return 0.5 * v * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
}

double gelu_grad_def(double v, GeluForm form) {
  if (form == GeluForm::Erf)
    return 0.5 * (1.0 + std::erf(v / std::sqrt(2.0))) + v * std::exp(-0.5 * v * v) / std::sqrt(2.0 * M_PI);
  const double k = std::sqrt(2.0 / M_PI), t = std::tanh(k * (v + 0.044715 * v * v * v));
  return 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * k * (1.0 + 3.0 * 0.044715 * v * v);
}

const char* form_name(GeluForm form) { return form == GeluForm::Erf ? "gelu" : "gelu_new"; }

std::vector<float> forward(GeluKernels k, GeluForm form, std::vector<float> x) {
  k.forward(form, x.data(), static_cast<int64_t>(x.size()));
  return x;
}

std::vector<float> backward(GeluKernels k, GeluForm form, const std::vector<float>& x, const std::vector<float>& dy) {
  std::vector<float> dx(x.size());
  k.backward(form, x.data(), dy.data(), dx.data(), static_cast<int64_t>(x.size()));
  return dx;
}

// Values that stress the ranges: zero of both signs, the approximation's
// seams, saturation, overflow of x^3 and x^2, and the limits.
std::vector<float> extreme_values() {
  return {0.0f,   -0.0f,  1e-30f,  -1e-30f, 1e-8f,   -1e-8f,  0.5f,   -0.5f,  3.0f,   -3.0f,  5.7f,   -5.7f,
          9.99f,  -9.99f, 10.3f,   -10.3f,  12.49f,  -12.49f, 12.5f,  -12.5f, 12.51f, -12.51f, 13.2f, -13.2f,
          20.0f,  -20.0f, 1e4f,    -1e4f,   1e7f,    -1e7f,   3e12f,  -3e12f, 1e20f,  -1e20f, kMax,   -kMax};
}

class GeluIsa : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!isa_supported(GetParam()))
      GTEST_SKIP() << "this CPU lacks " << (GetParam() == Isa::Avx512 ? "AVX-512 (F, BW, VL)" : "AVX2 and FMA");
  }
  GeluKernels kernels() const { return gelu_kernels(GetParam()); }
};

using testing::isa_param_name;

INSTANTIATE_TEST_SUITE_P(Isas, GeluIsa, ::testing::Values(Isa::Scalar, Isa::Avx2, Isa::Avx512), isa_param_name);

// Fast paths against the reference on random data, every tail length and
// then some; 1e-6 relative to max(1, |ref|) covers both sides' rounding
// (the fast paths measure <= 2.4e-7, the reference's own error is <= 5.6e-7).
TEST_P(GeluIsa, MatchesReferenceOnRandomInputsAndTails) {
  const GeluKernels ref = gelu_kernels(Isa::Scalar);
  for (GeluForm form : {GeluForm::Erf, GeluForm::Tanh}) {
    for (int64_t n : {0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 1001, 4099}) {
      for (float range : {1.0f, 4.0f, 12.0f, 40.0f}) {
        const auto x = random_floats(static_cast<std::size_t>(n), static_cast<uint32_t>(n * 7 + 1), -range, range);
        const auto dy = random_floats(static_cast<std::size_t>(n), static_cast<uint32_t>(n * 7 + 2), -2.0f, 2.0f);
        const auto y = forward(kernels(), form, x), y_ref = forward(ref, form, x);
        const auto dx = backward(kernels(), form, x, dy), dx_ref = backward(ref, form, x, dy);
        for (std::size_t i = 0; i < x.size(); ++i) {
          ASSERT_NEAR(y[i], y_ref[i], 1e-6 * std::max(1.0f, std::fabs(y_ref[i])))
              << form_name(form) << " n=" << n << " x=" << x[i];
          ASSERT_NEAR(dx[i], dx_ref[i], 1e-6 * std::max(1.0f, std::fabs(dx_ref[i])))
              << form_name(form) << "' n=" << n << " x=" << x[i];
        }
      }
    }
  }
}

// The accuracy contract: 2e-6 * max(1, |y|) against the definitions in double
// on [-10, 10] in steps of 2^-12 (81921 points), forward and derivative.
TEST_P(GeluIsa, MatchesDoubleDefinitionOnDenseGrid) {
  const int64_t n = 20 * 4096 + 1;
  std::vector<float> x(static_cast<std::size_t>(n)), ones(x.size(), 1.0f);
  for (int64_t i = 0; i < n; ++i) x[static_cast<std::size_t>(i)] = -10.0f + static_cast<float>(i) / 4096.0f;
  for (GeluForm form : {GeluForm::Erf, GeluForm::Tanh}) {
    const auto y = forward(kernels(), form, x);
    const auto d = backward(kernels(), form, x, ones);
    double worst_y = 0, worst_d = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double want = gelu_def(x[i], form), want_d = gelu_grad_def(x[i], form);
      worst_y = std::max(worst_y, std::fabs(y[i] - want) / std::max(1.0, std::fabs(want)));
      worst_d = std::max(worst_d, std::fabs(d[i] - want_d) / std::max(1.0, std::fabs(want_d)));
    }
    EXPECT_LE(worst_y, 2e-6) << form_name(form);
    EXPECT_LE(worst_d, 2e-6) << form_name(form) << "'";
  }
}

// Limits: gelu(x) -> x and gelu'(x) -> 1 as x -> +inf; both -> 0 as x -> -inf;
// NaN in x or dy stays NaN.
TEST_P(GeluIsa, LimitsAndNaN) {
  for (GeluForm form : {GeluForm::Erf, GeluForm::Tanh}) {
    const std::vector<float> x = {kInf, -kInf, kMax, -kMax, 1e20f, -1e20f, 1e7f, -1e7f, 20.0f, -20.0f, kNaN, 1.0f};
    const std::vector<float> dy = {3.0f, 3.0f, 3.0f, 3.0f, 3.0f, 3.0f, 3.0f, 3.0f, 3.0f, 3.0f, 3.0f, kNaN};
    const auto y = forward(kernels(), form, x);
    const auto dx = backward(kernels(), form, x, dy);
    for (std::size_t i = 0; i + 2 < x.size(); ++i) {
      const bool positive = x[i] > 0;
      EXPECT_EQ(y[i], positive ? x[i] : 0.0f) << form_name(form) << " x=" << x[i];
      EXPECT_EQ(dx[i], positive ? 3.0f : 0.0f) << form_name(form) << "' x=" << x[i];
    }
    EXPECT_TRUE(std::isnan(y[10])) << form_name(form);
    EXPECT_TRUE(std::isnan(dx[10])) << form_name(form);
    EXPECT_TRUE(std::isnan(dx[11])) << form_name(form);
  }
}

// Every extreme value agrees with the reference (both are finite there, or both NaN).
TEST_P(GeluIsa, ExtremeValuesMatchReference) {
  const GeluKernels ref = gelu_kernels(Isa::Scalar);
  const auto x = extreme_values();
  const std::vector<float> dy(x.size(), -1.5f);
  for (GeluForm form : {GeluForm::Erf, GeluForm::Tanh}) {
    const auto y = forward(kernels(), form, x), y_ref = forward(ref, form, x);
    const auto dx = backward(kernels(), form, x, dy), dx_ref = backward(ref, form, x, dy);
    for (std::size_t i = 0; i < x.size(); ++i) {
      ASSERT_TRUE(std::isfinite(y[i]) && std::isfinite(dx[i])) << form_name(form) << " x=" << x[i];
      EXPECT_NEAR(y[i], y_ref[i], 1e-6 * std::max(1.0f, std::fabs(y_ref[i]))) << form_name(form) << " x=" << x[i];
      EXPECT_NEAR(dx[i], dx_ref[i], 1e-6 * std::max(1.0f, std::fabs(dx_ref[i]))) << form_name(form) << "' x=" << x[i];
    }
  }
}

// An element's result does not depend on the length or its position (tails
// take the vector path), and dx may alias dy.
TEST_P(GeluIsa, ResultIndependentOfPositionAndAliasing) {
  const auto x = random_floats(45, 11, -6.0f, 6.0f);
  const auto dy = random_floats(45, 12);
  for (GeluForm form : {GeluForm::Erf, GeluForm::Tanh}) {
    const auto y = forward(kernels(), form, x);
    const auto dx = backward(kernels(), form, x, dy);
    for (std::size_t i = 0; i < x.size(); ++i) {
      EXPECT_EQ(forward(kernels(), form, {x[i]})[0], y[i]);
      EXPECT_EQ(backward(kernels(), form, {x[i]}, {dy[i]})[0], dx[i]);
    }
    auto inplace = dy;
    kernels().backward(form, x.data(), inplace.data(), inplace.data(), static_cast<int64_t>(x.size()));
    EXPECT_EQ(inplace, dx);
  }
}

// activation_forward / activation_backward run ctx.isa's kernels (Isa::Scalar
// is the reference) and give the same bits for 1 to 4 threads.
TEST_P(GeluIsa, DispatchFollowsIsaAndThreadsDoNotChangeBits) {
  const std::size_t n = 100003;  // several chunks and a ragged end
  const auto x = random_floats(n, 21, -7.0f, 7.0f), dy = random_floats(n, 22);
  for (Activation act : {Activation::Gelu, Activation::GeluNew}) {
    const GeluForm form = act == Activation::Gelu ? GeluForm::Erf : GeluForm::Tanh;
    const auto want_y = forward(kernels(), form, x);
    const auto want_dx = backward(kernels(), form, x, dy);
    for (int threads = 1; threads <= 4; ++threads) {
      const ExecContext ctx{threads, GetParam()};
      auto y = x;
      activation_forward(act, y.data(), static_cast<int64_t>(n), ctx);
      std::vector<float> dx(n);
      activation_backward(act, x.data(), dy.data(), dx.data(), static_cast<int64_t>(n), ctx);
      EXPECT_EQ(y, want_y) << form_name(form) << " threads=" << threads;
      EXPECT_EQ(dx, want_dx) << form_name(form) << " threads=" << threads;
    }
  }
}

// Both vector widths run the same operation sequence, so they agree bit for bit.
TEST(GeluIsaAgreement, Avx512EqualsAvx2) {
  if (!isa_supported(Isa::Avx512)) GTEST_SKIP() << "this CPU lacks AVX-512 (F, BW, VL)";
  if (!isa_supported(Isa::Avx2)) GTEST_SKIP() << "this CPU lacks AVX2 and FMA";
  auto x = random_floats(5003, 31, -14.0f, 14.0f);
  const auto extremes = extreme_values();
  x.insert(x.end(), extremes.begin(), extremes.end());
  const auto dy = random_floats(x.size(), 32);
  for (GeluForm form : {GeluForm::Erf, GeluForm::Tanh}) {
    EXPECT_EQ(forward(gelu_kernels(Isa::Avx512), form, x), forward(gelu_kernels(Isa::Avx2), form, x));
    EXPECT_EQ(backward(gelu_kernels(Isa::Avx512), form, x, dy), backward(gelu_kernels(Isa::Avx2), form, x, dy));
  }
}

}  // namespace
}  // namespace roformer::kernels
