// The optimizer half of the training goldens (fixtures/README.md, "Training
// goldens"): clipping of PyTorch's step-1 gradients, the first AdamW step from
// the checkpoint weights, and the BERT-style no-decay list. adamw.final.* is
// after five steps with fresh gradients each step, so it needs the model's
// backward and is checked by the training tests, not here.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "roformer/optim.h"
#include "roformer/safetensors.h"
#include "support/test_support.h"
#include "train/train_test_util.h"

namespace roformer {
namespace {

using testing::data_path;
using testing::ParamStore;

constexpr double kLr = 1e-3, kWeightDecay = 0.01, kEps = 1e-8;

struct Fixture {
  std::string model;
  ParamStore store;
  std::vector<std::vector<float>> initial;  // checkpoint values
  SafeTensors expected;
};

// Every tensor of model.safetensors becomes a parameter; the ones with a
// `grad.<name>` entry are trainable and get that gradient (step 1 of PyTorch's
// run), the rest (the sinusoidal table) are not.
Fixture load(const std::string& model) {
  const std::string dir = data_path("fixtures/" + model);
  Fixture f{model, {}, {}, SafeTensors::open(dir + "/train_expected.safetensors")};
  const SafeTensors weights = SafeTensors::open(dir + "/model.safetensors");
  for (const std::string& name : weights.names()) {
    const Tensor w = weights.get(name);
    const bool trainable = f.expected.contains("grad." + name);
    f.store.add(name, w.to_vector(), trainable, w.shape());
    if (trainable) {
      const Tensor g = f.expected.get("grad." + name);
      EXPECT_EQ(g.shape(), w.shape()) << name;
      f.store.set_grad(f.store.size() - 1, g.to_vector());
    }
    f.initial.push_back(w.to_vector());
  }
  return f;
}

float scalar_at(const SafeTensors& st, const std::string& key, int64_t i) { return st.get(key).to_vector().at(i); }

class OptimizerFixture : public ::testing::TestWithParam<const char*> {};

TEST_P(OptimizerFixture, TrainableParametersAreTheGradEntries) {
  Fixture f = load(GetParam());
  std::size_t trainable = 0;
  for (std::size_t k = 0; k < f.store.size(); ++k) {
    if (f.store.trainable(k)) {
      ++trainable;
    } else {
      EXPECT_EQ(f.store.name(k), "roformer.encoder.embed_positions.weight");
    }
  }
  EXPECT_EQ(trainable, std::string(GetParam()) == "roformer-tiny-mlm" ? 43u : 40u);
}

// clip_grad_norm_ on exactly PyTorch's step-1 gradients must return its total
// norm; README tolerance 3e-4 relative (measured fp32 vs fp64: ≤ 1e-6).
TEST_P(OptimizerFixture, ClipReturnsTorchGradNormAndScalesToMaxNorm) {
  Fixture f = load(GetParam());
  const double ref = scalar_at(f.expected, "adamw.grad_norm", 0);
  EXPECT_EQ(ref, scalar_at(f.expected, "adamw_grouped.grad_norm", 0));  // same weights, same batch

  std::vector<Parameter> params = f.store.params();
  std::vector<std::vector<float>> before;
  for (std::size_t k = 0; k < f.store.size(); ++k) before.push_back(f.store.grad(k));
  const double total = clip_grad_norm(params, 1.0);
  EXPECT_LE(std::fabs(total - ref), 3e-4 * ref) << "ours " << total << " torch " << ref;
  EXPECT_LE(std::fabs(total - ref), 1e-6 * ref) << "fp32 rounding only; expected far inside the README bound";
  std::printf("[%s] grad norm: ours %.9g, torch %.9g, rel diff %.2e\n", GetParam(), total, ref,
              std::fabs(total - ref) / ref);

  // Clipping is active (norm 34.0 for MLM, 5.75 for cls): every gradient is
  // scaled by the same fp32 factor 1/(total + 1e-6), leaving a norm of 1.
  ASSERT_GT(total, 1.0);
  const float factor = 1.0f / (static_cast<float>(total) + static_cast<float>(1e-6));
  for (std::size_t k = 0; k < f.store.size(); ++k) {
    if (!f.store.trainable(k)) continue;
    for (std::size_t i = 0; i < before[k].size(); ++i)
      ASSERT_EQ(f.store.grad(k)[i], before[k][i] * factor) << f.store.name(k) << "[" << i << "]";
  }
  EXPECT_NEAR(grad_norm(params), 1.0, 1e-6);
}

// One AdamW step (torch's defaults of the fixture run) from the checkpoint with
// the clipped step-1 gradients. At t = 1, m̂ = g and v̂ = g², so each entry
// moves by exactly the decay p·lr·wd and then lr·g/(|g| + eps) against its
// gradient: ≈ lr for |g| ≫ eps, nothing where g = 0.
TEST_P(OptimizerFixture, FirstStepMovesAgainstTheGradient) {
  Fixture f = load(GetParam());
  std::vector<Parameter> params = f.store.params();
  clip_grad_norm(params, 1.0);
  AdamWOptions opt;
  opt.lr = kLr;
  opt.weight_decay = kWeightDecay;
  opt.eps = kEps;
  AdamW adam(params, opt);
  adam.step();

  const float decay = static_cast<float>(1 - kLr * kWeightDecay);
  std::size_t moved = 0, zero_grad = 0;
  for (std::size_t k = 0; k < f.store.size(); ++k) {
    const std::vector<float>& p0 = f.initial[k];
    const std::vector<float>& p1 = f.store.value(k);
    if (!f.store.trainable(k)) {
      EXPECT_TRUE(testing::bit_equal(p0, p1)) << "the sinusoidal table must not move: " << f.store.name(k);
      continue;
    }
    const std::vector<float>& g = f.store.grad(k);
    for (std::size_t i = 0; i < p0.size(); ++i) {
      const float decayed = p0[i] * decay;
      if (g[i] == 0.0f) {
        ASSERT_EQ(p1[i], decayed) << f.store.name(k) << "[" << i << "]: zero gradient, decay only";
        ++zero_grad;
        continue;
      }
      const double step = static_cast<double>(p1[i]) - decayed;
      const double expected = -kLr * g[i] / (std::fabs(static_cast<double>(g[i])) + kEps);
      // fp32: p1 is rounded (≤ 2^-24·|p|) and the update carries a few ulps.
      const double tol = std::ldexp(std::fabs(p0[i]), -22) + 1e-6 * kLr;
      ASSERT_NEAR(step, expected, tol) << f.store.name(k) << "[" << i << "]";
      if (std::fabs(expected) > tol) {  // else the move is below p's rounding (|g| far below eps)
        ASSERT_TRUE(step * g[i] < 0) << f.store.name(k) << "[" << i << "] moved with its gradient";
        ++moved;
      }
    }
  }
  std::size_t entries = 0;
  for (std::size_t k = 0; k < f.store.size(); ++k)
    if (f.store.trainable(k)) entries += f.store.value(k).size();
  std::printf("[%s] first step: %zu of %zu entries moved by about lr, %zu have a zero gradient\n", GetParam(), moved,
              entries, zero_grad);
  EXPECT_GT(moved, entries / 2);
  EXPECT_GE(moved + zero_grad, entries * 99 / 100);  // the rest: |g| so far below eps that p rounds back
  if (std::string(GetParam()) == "roformer-tiny-cls") {
    EXPECT_GT(zero_grad, 0u);  // word rows not in the batch
  }
}

// The BERT rule on the fixture's trainable names gives exactly the no-decay
// list of train_report.json and the key set of adamw_grouped.final.*.
TEST_P(OptimizerFixture, BertStyleGroupsMatchTheReport) {
  const std::string model = GetParam();
  Fixture f = load(model);
  const std::vector<Parameter> params = f.store.params();
  const std::vector<ParamGroup> groups = bert_style_groups(params, kWeightDecay);
  std::set<std::string> decay, no_decay;
  for (std::size_t i : groups[0].params) decay.insert(params[i].name);
  for (std::size_t i : groups[1].params) no_decay.insert(params[i].name);

  std::ifstream in(data_path("fixtures/train_report.json"));
  ASSERT_TRUE(in) << "cannot open train_report.json";
  const nlohmann::json report = nlohmann::json::parse(in);
  const auto listed = report.at("models").at(model).at("adamw_grouped").at("no_decay").get<std::vector<std::string>>();
  EXPECT_EQ(no_decay, std::set<std::string>(listed.begin(), listed.end()));
  EXPECT_EQ(no_decay.size(), model == "roformer-tiny-mlm" ? 27u : 24u);
  EXPECT_EQ(decay.size(), 16u);

  std::set<std::string> grouped_final;
  const std::string prefix = "adamw_grouped.final.";
  for (const std::string& key : f.expected.names())
    if (key.rfind(prefix, 0) == 0) grouped_final.insert(key.substr(prefix.size()));
  EXPECT_EQ(no_decay, grouped_final);
  EXPECT_EQ(no_decay.count("roformer.encoder.embed_positions.weight"), 0u);
  EXPECT_EQ(decay.count("roformer.encoder.embed_positions.weight"), 0u);
}

INSTANTIATE_TEST_SUITE_P(Models, OptimizerFixture, ::testing::Values("roformer-tiny-cls", "roformer-tiny-mlm"));

}  // namespace
}  // namespace roformer
