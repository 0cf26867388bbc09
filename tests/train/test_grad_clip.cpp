// clip_grad_norm against the definition in double and torch 1.13's fp32
// coefficient arithmetic.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "roformer/error.h"
#include "roformer/optim.h"
#include "support/test_support.h"
#include "train/train_test_util.h"

namespace roformer {
namespace {

using testing::bit_equal;
using testing::ParamStore;
using testing::random_floats;

double norm_f64(ParamStore& store) {
  double s = 0;
  for (std::size_t k = 0; k < store.size(); ++k)
    if (store.trainable(k))
      for (float g : store.grad(k)) s += static_cast<double>(g) * g;
  return std::sqrt(s);
}

// torch's factor: clamp(reciprocal(total + 1e-6) * max_norm, max=1), all fp32.
float torch_factor(double total, double max_norm) {
  const float coef = (1.0f / (static_cast<float>(total) + static_cast<float>(1e-6))) * static_cast<float>(max_norm);
  return std::min(coef, 1.0f);
}

ParamStore make_store(uint32_t seed, float scale) {
  ParamStore store;
  const std::size_t sizes[] = {1, 9, 300, 70001};  // 70001: split across threads
  for (std::size_t k = 0; k < 4; ++k) {
    std::string name = "p";  // not "p" + to_string: GCC 12 -Wrestrict false positive
    name += std::to_string(k);
    store.add(name, std::vector<float>(sizes[k], 0.5f));
    store.set_grad(k, random_floats(sizes[k], seed + static_cast<uint32_t>(k), -scale, scale));
  }
  return store;
}

// Per-tensor norms are rounded to fp32 and so is the total: ≤ ~2 ulps of fp32
// from the exact norm (2^-22 relative).
TEST(ClipGradNorm, NormMatchesDoubleAndScalesByTorchFactor) {
  for (int threads : {1, 4}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    ParamStore store = make_store(1, 0.1f);
    const double exact = norm_f64(store);
    std::vector<std::vector<float>> before;
    for (std::size_t k = 0; k < store.size(); ++k) before.push_back(store.grad(k));
    auto params = store.params();
    const double total = clip_grad_norm(params, 2.0, ClipOptions{false, threads});
    EXPECT_NEAR(total, exact, std::ldexp(exact, -22));
    ASSERT_GT(total, 2.0);
    const float factor = torch_factor(total, 2.0);
    for (std::size_t k = 0; k < store.size(); ++k)
      for (std::size_t i = 0; i < before[k].size(); ++i) ASSERT_EQ(store.grad(k)[i], before[k][i] * factor);
    EXPECT_NEAR(norm_f64(store), 2.0, 1e-5);
  }
}

TEST(ClipGradNorm, SameThreadCountSameBits) {
  ParamStore a = make_store(2, 1.0f), b = make_store(2, 1.0f), c = make_store(2, 1.0f);
  auto pa = a.params(), pb = b.params(), pc = c.params();
  const double ta = clip_grad_norm(pa, 1.0, ClipOptions{false, 3});
  const double tb = clip_grad_norm(pb, 1.0, ClipOptions{false, 3});
  const double tc = clip_grad_norm(pc, 1.0, ClipOptions{false, 1});
  EXPECT_EQ(ta, tb);
  for (std::size_t k = 0; k < a.size(); ++k) EXPECT_TRUE(bit_equal(a.grad(k), b.grad(k)));
  EXPECT_NEAR(ta, tc, std::ldexp(tc, -22));  // another split: at most a rounding apart
}

TEST(ClipGradNorm, BelowMaxNormLeavesGradientsAlone) {
  ParamStore store = make_store(3, 1e-4f);
  std::vector<std::vector<float>> before;
  for (std::size_t k = 0; k < store.size(); ++k) before.push_back(store.grad(k));
  auto params = store.params();
  const double total = clip_grad_norm(params, 1.0);
  EXPECT_LT(total, 1.0);
  for (std::size_t k = 0; k < store.size(); ++k) EXPECT_TRUE(bit_equal(store.grad(k), before[k]));
}

// At total == max_norm torch still scales, by max/(max + 1e-6) < 1: the 1e-6
// sits in the denominator, there is no "total > max_norm" test.
TEST(ClipGradNorm, ScalesEvenAtExactlyMaxNorm) {
  ParamStore store;
  store.add("w", {0, 0});
  store.set_grad(0, {3.0f, 4.0f});
  auto params = store.params();
  EXPECT_EQ(clip_grad_norm(params, 5.0), 5.0);
  const float factor = torch_factor(5.0, 5.0);
  EXPECT_LT(factor, 1.0f);
  EXPECT_EQ(store.grad(0)[0], 3.0f * factor);
  EXPECT_EQ(store.grad(0)[1], 4.0f * factor);
  EXPECT_NE(store.grad(0)[1], 4.0f);
}

TEST(ClipGradNorm, IgnoresParametersWithoutGradient) {
  ParamStore store;
  store.add("table", std::vector<float>(4, 1.0f), /*trainable=*/false);
  store.add("w", {0, 0});
  store.set_grad(1, {0.6f, 0.8f});
  auto params = store.params();
  EXPECT_NEAR(clip_grad_norm(params, 10.0), 1.0, 1e-7);
  EXPECT_EQ(grad_norm(params), clip_grad_norm(params, 10.0));

  ParamStore none;
  none.add("table", {1, 2}, false);
  auto p2 = none.params();
  EXPECT_EQ(clip_grad_norm(p2, 1.0), 0.0);  // torch returns tensor(0.) for no gradients
}

TEST(ClipGradNorm, NonFiniteNormIsReportedOrThrown) {
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    SCOPED_TRACE(bad);
    ParamStore store;
    store.add("a", {0, 0, 0});
    store.add("b", {0, 0});
    store.set_grad(0, {1.0f, bad, 2.0f});
    store.set_grad(1, {3.0f, 4.0f});
    auto params = store.params();

    ClipOptions strict;
    strict.error_if_nonfinite = true;
    try {
      clip_grad_norm(params, 1.0, strict);
      ADD_FAILURE() << "expected an Error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(std::isnan(bad) ? "nan" : "inf"), std::string::npos) << e.what();
    }
    EXPECT_EQ(store.grad(1), (std::vector<float>{3.0f, 4.0f})) << "left unchanged when throwing";

    // Like torch: the non-finite total comes back and the gradients are scaled
    // by the resulting factor (NaN, or 0 for an infinite norm).
    const double total = clip_grad_norm(params, 1.0);
    EXPECT_FALSE(std::isfinite(total));
    EXPECT_EQ(std::isnan(total), std::isnan(bad));
    if (std::isnan(bad)) {
      EXPECT_TRUE(std::isnan(store.grad(1)[0]));
    } else {
      EXPECT_EQ(store.grad(1)[0], 0.0f);
    }
  }
}

TEST(ClipGradNorm, RejectsBadArguments) {
  ParamStore store;
  store.add("w", {1, 2});
  auto params = store.params();
  EXPECT_THROW(clip_grad_norm(params, 0.0), Error);
  EXPECT_THROW(clip_grad_norm(params, -1.0), Error);
  EXPECT_THROW(clip_grad_norm(params, std::nan("")), Error);
  EXPECT_THROW(clip_grad_norm(params, 1.0, ClipOptions{false, 0}), Error);
  params[0].grad = nullptr;
  EXPECT_THROW(clip_grad_norm(params, 1.0), Error);
  EXPECT_THROW(grad_norm(params), Error);
}

}  // namespace
}  // namespace roformer
