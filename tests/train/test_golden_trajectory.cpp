// Five training steps end to end against PyTorch (fixtures' "Training
// goldens"): forward, loss, backward, clip_grad_norm_(1.0), AdamW — with one
// decay group and with BERT-style groups. Checks and tolerances are the
// README's: losses 3e-4 relative (step 0: 2e-6), grad norms 3e-4 relative,
// final parameters |d| <= 2e-3 everywhere and > 1e-5 for at most 0.1% of
// the entries.
#include <gtest/gtest.h>

#include <cmath>

#include "roformer/optim.h"
#include "roformer/safetensors.h"
#include "roformer/training.h"
#include "support/model_fixtures.h"
#include "support/test_support.h"

namespace roformer {
namespace {

using testing::fixture_batch;
std::vector<Parameter> as_parameters(const std::vector<TrainableParameter>& params) {
  std::vector<Parameter> out;
  for (const auto& p : params) out.push_back({p.name, p.value.data<float>(), p.grad.data<float>(), p.value.numel(), true, p.value.shape()});
  return out;
}

void run_trajectory(const std::string& fixture, bool grouped) {
  const std::string dir = testing::data_path("fixtures/" + fixture);
  SafeTensors expected = SafeTensors::open(dir + "/expected.safetensors");
  SafeTensors golden = SafeTensors::open(dir + "/train_expected.safetensors");
  const std::string key = grouped ? "adamw_grouped" : "adamw";
  TrainableRoFormer trainer(RoFormerModel::from_pretrained(dir));
  const auto tparams = trainer.parameters();
  std::vector<Parameter> params = as_parameters(tparams);
  AdamWOptions opt;
  opt.lr = 1e-3;
  opt.weight_decay = 0.01;
  AdamW adamw = grouped ? AdamW(params, bert_style_groups(params, 0.01), opt) : AdamW(params, opt);
  const Batch batch = fixture_batch(expected);
  const TrainLabels labels{golden.get("train.labels"), {}, {}};
  const ExecContext ctx{1, best_isa()};
  const auto ref_loss = golden.get(key + ".loss").to_vector();
  const auto ref_norm = golden.get(key + ".grad_norm").to_vector();
  for (int s = 0; s < 5; ++s) {
    trainer.zero_grad();
    const double loss = trainer.forward_backward(batch, labels, ctx).loss;
    const double tol = s == 0 ? 2e-6 : 3e-4;
    EXPECT_LE(std::fabs(loss - ref_loss[s]), tol * std::max(1.0, std::fabs(double(ref_loss[s])))) << key << " loss step " << s;
    const double norm = clip_grad_norm(params, 1.0);
    EXPECT_LE(std::fabs(norm - ref_norm[s]), 3e-4 * ref_norm[s]) << key << " grad norm step " << s;
    adamw.step(1e-3);
  }
  const double final_loss = trainer.evaluate(batch, labels, ctx).loss;
  const double ref_final = golden.get(key + ".final_loss").to_vector()[0];
  EXPECT_LE(std::fabs(final_loss - ref_final), 3e-4 * std::max(1.0, std::fabs(ref_final))) << key << " final loss";

  int64_t entries = 0, loose = 0, compared = 0;
  double worst = 0;
  for (const auto& p : tparams) {
    const std::string name = key + ".final." + p.name;
    if (!golden.contains(name)) {
      EXPECT_TRUE(grouped) << "no golden for " << p.name;  // grouped goldens hold the no-decay group only
      continue;
    }
    ++compared;
    const auto ref = golden.get(name).to_vector(), got = p.value.to_vector();
    ASSERT_EQ(ref.size(), got.size());
    for (std::size_t i = 0; i < ref.size(); ++i) {
      const double d = std::fabs(double(got[i]) - ref[i]);
      worst = std::max(worst, d);
      loose += d > 1e-5;
      ++entries;
    }
  }
  EXPECT_GT(compared, 20);
  EXPECT_LE(worst, 2e-3) << key;
  EXPECT_LE(static_cast<double>(loose), 1e-3 * static_cast<double>(entries)) << key << ": " << loose << " of " << entries;
}

TEST(GoldenTrajectory, MlmOneGroup) { run_trajectory("roformer-tiny-mlm", false); }
TEST(GoldenTrajectory, MlmBertGroups) { run_trajectory("roformer-tiny-mlm", true); }
TEST(GoldenTrajectory, ClsOneGroup) { run_trajectory("roformer-tiny-cls", false); }
TEST(GoldenTrajectory, ClsBertGroups) { run_trajectory("roformer-tiny-cls", true); }

}  // namespace
}  // namespace roformer
