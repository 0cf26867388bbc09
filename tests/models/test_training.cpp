// Training forward/backward against PyTorch: the loss and every parameter
// gradient of the fixtures' training goldens (tolerances from the fixtures'
// README: loss 2e-6 relative, gradients 3e-5 * max|ref| per tensor), and
// finite differences for the heads the goldens do not cover.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include "roformer/error.h"
#include "roformer/safetensors.h"
#include "roformer/training.h"
#include "support/model_fixtures.h"
#include "support/test_support.h"

namespace roformer {
namespace {

using testing::fixture_batch;
using testing::data_path;
using testing::max_abs;
using testing::max_abs_diff;

class TrainingGoldens : public ::testing::TestWithParam<std::string> {};

TEST_P(TrainingGoldens, LossAndEveryGradientMatchPyTorch) {
  const std::string dir = data_path("fixtures/" + GetParam());
  SafeTensors expected = SafeTensors::open(dir + "/expected.safetensors");
  SafeTensors golden = SafeTensors::open(dir + "/train_expected.safetensors");
  RoFormerModel model = RoFormerModel::from_pretrained(dir);
  for (int threads : {1, 2}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    TrainableRoFormer trainer(model);
    const ExecContext ctx{threads, best_isa()};
    TrainStep step = trainer.forward_backward(fixture_batch(expected), TrainLabels{golden.get("train.labels"), {}, {}}, ctx);
    const double ref_loss = golden.get("train.loss").to_vector()[0];
    EXPECT_LE(std::fabs(step.loss - ref_loss), 2e-6 * std::max(1.0, std::fabs(ref_loss)))
        << "loss " << step.loss << " vs " << ref_loss;

    std::set<std::string> expected_names;
    for (const auto& n : golden.names())
      if (n.starts_with("grad.")) expected_names.insert(n.substr(5));
    std::set<std::string> ours;
    for (const auto& p : trainer.parameters()) {
      ours.insert(p.name);
      ASSERT_TRUE(golden.contains("grad." + p.name)) << "no golden gradient for " << p.name;
      const auto ref = golden.get("grad." + p.name).to_vector();
      const auto got = p.grad.to_vector();
      ASSERT_EQ(got.size(), ref.size()) << p.name;
      EXPECT_LE(max_abs_diff(got, ref), 3e-5 * max_abs(ref)) << p.name << " max|ref| " << max_abs(ref);
    }
    EXPECT_EQ(ours, expected_names);
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TrainingGoldens, ::testing::Values("roformer-tiny-mlm", "roformer-tiny-cls"),
                         [](const auto& param_info) { return param_info.param.substr(14); });

TEST(Training, ForwardEqualsInferenceAndGradientsAccumulate) {
  const std::string dir = data_path("fixtures/roformer-tiny-mlm");
  SafeTensors expected = SafeTensors::open(dir + "/expected.safetensors");
  SafeTensors golden = SafeTensors::open(dir + "/train_expected.safetensors");
  RoFormerModel model = RoFormerModel::from_pretrained(dir);
  TrainableRoFormer trainer(model);
  const ExecContext ctx{1, best_isa()};
  const TrainLabels labels{golden.get("train.labels"), {}, {}};
  trainer.forward_backward(fixture_batch(expected), labels, ctx);
  const auto once = trainer.parameters().front().grad.to_vector();
  trainer.forward_backward(fixture_batch(expected), labels, ctx, 0.5f);
  const auto twice = trainer.parameters().front().grad.to_vector();
  for (std::size_t i = 0; i < once.size(); ++i) ASSERT_NEAR(twice[i], 1.5f * once[i], 1e-6f + 1e-5f * std::fabs(once[i]));
  trainer.zero_grad();
  EXPECT_EQ(max_abs(trainer.parameters().front().grad.to_vector()), 0.0);
  // A snapshot runs the inference path on the same weights.
  RoFormerModel snap = trainer.snapshot();
  const auto logits = snap.forward(fixture_batch(expected), {}, ctx).heads.at("logits").to_vector();
  EXPECT_LE(max_abs_diff(logits, expected.get("logits").to_vector()), 2e-4);
}

// Mixed precision (ExecContext::bf16_products): every product on bf16-rounded
// operands, everything else fp32. Against PyTorch's fp32 goldens the loss and
// gradients move by bf16's rounding (2^-9 relative per operand): far beyond
// fp32's own 3e-5, which shows the rounding is in effect, and within bounds
// set above the worst measured, native and fallback alike: loss 1.3e-3
// relative, gradient tensors 4.0e-2 (relative L2).
TEST_P(TrainingGoldens, Bf16ProductsStayCloseToFp32) {
  const std::string dir = data_path("fixtures/" + GetParam());
  SafeTensors expected = SafeTensors::open(dir + "/expected.safetensors");
  SafeTensors golden = SafeTensors::open(dir + "/train_expected.safetensors");
  const RoFormerModel model = RoFormerModel::from_pretrained(dir);
  std::vector<ExecContext> contexts{ExecContext{1, Isa::Scalar, GemmBackend::OpenBlas, true}};
  if (best_isa() != Isa::Scalar) contexts.push_back(ExecContext{2, best_isa(), default_gemm_backend(), true});
  for (const ExecContext& ctx : contexts) {
    SCOPED_TRACE(std::string(isa_name(ctx.isa)) + " " + product_precision_label(true, ctx.isa));
    TrainableRoFormer trainer(model);
    const TrainStep step =
        trainer.forward_backward(fixture_batch(expected), TrainLabels{golden.get("train.labels"), {}, {}}, ctx);
    const double ref_loss = golden.get("train.loss").to_vector()[0];
    EXPECT_LE(std::fabs(step.loss - ref_loss), 5e-3 * std::fabs(ref_loss)) << step.loss << " vs " << ref_loss;
    double worst = 0;  // the largest relative difference of a gradient tensor
    for (const auto& p : trainer.parameters()) {
      const auto ref = golden.get("grad." + p.name).to_vector();
      if (max_abs(ref) == 0) continue;
      // Relative to the tensor's norm: single entries near zero may move by
      // several percent of max|ref| (bf16 spacing of a cancelling sum).
      const auto got = p.grad.to_vector();
      double diff2 = 0, ref2 = 0;
      for (std::size_t i = 0; i < ref.size(); ++i) {
        diff2 += (static_cast<double>(got[i]) - ref[i]) * (static_cast<double>(got[i]) - ref[i]);
        ref2 += static_cast<double>(ref[i]) * ref[i];
      }
      const double rel = std::sqrt(diff2 / ref2);
      EXPECT_LE(rel, 8e-2) << p.name;  // measured: up to 4.0e-2 (query and key weights)
      worst = std::max(worst, rel);
    }
    EXPECT_GT(worst, 3e-4) << "no gradient moved beyond fp32's tolerance: are the products in bf16?";
    std::printf("[ bf16 ] %s %s: loss %.7f vs %.7f, worst gradient tensor %.2e off (relative L2)\n", GetParam().c_str(),
                isa_name(ctx.isa).data(), step.loss, ref_loss, worst);
  }
}

// Gradient accumulation: the 3-row cls batch as micro-batches {row 0} and
// {rows 1, 2}, each cut to its own length and scaled by its share of the
// rows, sums to the full batch's gradient (the mean over rows), i.e. to
// PyTorch's golden gradient.
TEST(Training, AccumulatedMicroBatchesEqualTheFullBatch) {
  const std::string dir = data_path("fixtures/roformer-tiny-cls");
  SafeTensors expected = SafeTensors::open(dir + "/expected.safetensors");
  SafeTensors golden = SafeTensors::open(dir + "/train_expected.safetensors");
  TrainableRoFormer trainer(RoFormerModel::from_pretrained(dir));
  const ExecContext ctx{1, best_isa()};
  const Tensor ids = expected.get("input_ids"), mask = expected.get("attention_mask"), types = expected.get("token_type_ids");
  const Tensor labels = golden.get("train.labels");
  const int64_t T = ids.size(1);
  auto rows = [&](int64_t first, int64_t count) {
    // The rows' real length (right padding) is the longest mask among them.
    int64_t len = 0;
    for (int64_t r = first; r < first + count; ++r)
      for (int64_t t = 0; t < T; ++t) len = std::max(len, mask.data<int64_t>()[r * T + t] ? t + 1 : len);
    auto cut = [&](const Tensor& x) {
      Tensor out = Tensor::zeros({count, len}, DType::I64);
      for (int64_t r = 0; r < count; ++r)
        for (int64_t t = 0; t < len; ++t) out.data<int64_t>()[r * len + t] = x.data<int64_t>()[(first + r) * T + t];
      return out;
    };
    Tensor lab = Tensor::zeros({count}, DType::I64);
    for (int64_t r = 0; r < count; ++r) lab.data<int64_t>()[r] = labels.data<int64_t>()[first + r];
    return std::make_pair(Batch{cut(ids), cut(mask), cut(types)}, lab);
  };
  const auto [b0, l0] = rows(0, 1);
  const auto [b12, l12] = rows(1, 2);
  ASSERT_LT(b0.input_ids.size(1), T) << "the first micro-batch should be shorter than the padded batch";
  const double loss0 = trainer.forward_backward(b0, TrainLabels{l0, {}, {}}, ctx, 1.0f / 3.0f).loss;
  const double loss12 = trainer.forward_backward(b12, TrainLabels{l12, {}, {}}, ctx, 2.0f / 3.0f).loss;
  const double ref_loss = golden.get("train.loss").to_vector()[0];
  EXPECT_NEAR((loss0 + 2 * loss12) / 3, ref_loss, 1e-5 * ref_loss);
  int checked = 0;
  for (const auto& p : trainer.parameters()) {
    const auto ref = golden.get("grad." + p.name).to_vector();
    EXPECT_LE(max_abs_diff(p.grad.to_vector(), ref), 3e-5 * max_abs(ref) + 1e-9) << p.name;
    ++checked;
  }
  EXPECT_EQ(checked, 40);
}

// Central differences of the loss in fp32 with respect to a few entries of
// each parameter (the largest-gradient entry and two random ones).
void check_finite_differences(const std::string& fixture, const Batch& batch, const TrainLabels& labels) {
  RoFormerModel model = RoFormerModel::from_pretrained(data_path("fixtures/" + fixture));
  TrainableRoFormer trainer(model);
  const ExecContext ctx{1, best_isa()};
  trainer.forward_backward(batch, labels, ctx);
  std::mt19937 rng(5);
  int checked = 0;
  for (auto& p : trainer.parameters()) {
    const auto grad = p.grad.to_vector();
    const double gmax = max_abs(grad);
    if (gmax == 0) continue;
    std::vector<std::size_t> entries = {static_cast<std::size_t>(std::max_element(grad.begin(), grad.end(), [](float a, float b) {
                                          return std::fabs(a) < std::fabs(b);
                                        }) - grad.begin())};
    entries.push_back(rng() % grad.size());
    entries.push_back(rng() % grad.size());
    for (std::size_t i : entries) {
      float* v = p.value.data<float>() + i;
      const float orig = *v;
      const float h = 1e-2f * std::max(1.0f, std::fabs(orig));
      *v = orig + h;
      const double up = trainer.evaluate(batch, labels, ctx).loss;
      *v = orig - h;
      const double down = trainer.evaluate(batch, labels, ctx).loss;
      *v = orig;
      const double fd = (up - down) / (2.0 * h);
      EXPECT_NEAR(grad[i], fd, 2e-2 * gmax + 1e-4) << fixture << " " << p.name << "[" << i << "]";
      ++checked;
    }
  }
  EXPECT_GT(checked, 30);
}

Tensor i64(const Shape& shape, std::vector<int64_t> values) {
  Tensor t = Tensor::zeros(shape, DType::I64);
  std::copy(values.begin(), values.end(), t.data<int64_t>());
  return t;
}

TEST(TrainingFiniteDifferences, TokenClassification) {
  SafeTensors e = SafeTensors::open(data_path("fixtures/roformer-tiny-tok/expected.safetensors"));
  const Batch b = fixture_batch(e);
  std::vector<int64_t> lab(static_cast<std::size_t>(b.input_ids.numel()), -100);
  for (std::size_t i = 0; i < lab.size(); i += 3) lab[i] = static_cast<int64_t>(i % 5);
  check_finite_differences("roformer-tiny-tok", b, TrainLabels{i64(b.input_ids.shape(), lab), {}, {}});
}

TEST(TrainingFiniteDifferences, QuestionAnswering) {
  SafeTensors e = SafeTensors::open(data_path("fixtures/roformer-tiny-qa/expected.safetensors"));
  const Batch b = fixture_batch(e);
  check_finite_differences("roformer-tiny-qa", b, TrainLabels{{}, i64({3}, {2, 5, 40}), i64({3}, {4, 9, 12})});
}

TEST(TrainingFiniteDifferences, MultipleChoice) {
  SafeTensors e = SafeTensors::open(data_path("fixtures/roformer-tiny-mc/expected.safetensors"));
  check_finite_differences("roformer-tiny-mc", fixture_batch(e), TrainLabels{i64({2}, {1, 2}), {}, {}});
}

TEST(TrainingFiniteDifferences, CausalLm) {
  SafeTensors e = SafeTensors::open(data_path("fixtures/roformer-tiny-causal/expected.safetensors"));
  const Batch b = fixture_batch(e);
  check_finite_differences("roformer-tiny-causal", b, TrainLabels{b.input_ids, {}, {}});
}

TEST(Training, BadLabelsAreClearErrors) {
  RoFormerModel model = RoFormerModel::from_pretrained(data_path("fixtures/roformer-tiny-cls"));
  TrainableRoFormer trainer(model);
  SafeTensors e = SafeTensors::open(data_path("fixtures/roformer-tiny-cls/expected.safetensors"));
  const ExecContext ctx{1, best_isa()};
  EXPECT_THROW(trainer.forward_backward(fixture_batch(e), TrainLabels{i64({2}, {0, 1}), {}, {}}, ctx), Error);
  EXPECT_THROW(trainer.forward_backward(fixture_batch(e), TrainLabels{}, ctx), Error);
}

}  // namespace
}  // namespace roformer

namespace roformer {
namespace {

// With dropout on, the loss at a fixed (seed, step) is a deterministic
// function of the weights: its gradient is checked by finite differences,
// re-running the same step's masks.
void check_dropout_gradients(const std::string& fixture, const TrainLabels& labels) {
  SafeTensors e = SafeTensors::open(data_path("fixtures/" + fixture + "/expected.safetensors"));
  const Batch batch = fixture_batch(e);
  TrainableRoFormer trainer(RoFormerModel::from_pretrained(data_path("fixtures/" + fixture)));
  const ExecContext ctx{1, best_isa()};
  trainer.set_dropout(true, 99);
  trainer.set_dropout_step(3);
  const double loss3 = trainer.forward_backward(batch, labels, ctx).loss;
  EXPECT_EQ(trainer.dropout_step(), 4u);
  const double eval = trainer.evaluate(batch, labels, ctx).loss;
  EXPECT_NE(loss3, eval) << "dropout must change the training loss";
  auto params = trainer.parameters();
  std::vector<std::vector<float>> grads;
  for (auto& p : params) grads.push_back(p.grad.to_vector());
  auto loss_at_step3 = [&] {
    trainer.set_dropout_step(3);
    return trainer.forward_backward(batch, labels, ctx).loss;
  };
  EXPECT_EQ(loss_at_step3(), loss3) << "the same step must draw the same masks";
  std::mt19937 rng(3);
  int checked = 0;
  for (std::size_t k = 0; k < params.size(); k += 3) {
    const auto& grad = grads[k];
    const double gmax = max_abs(grad);
    if (gmax == 0) continue;
    const std::size_t i = std::max_element(grad.begin(), grad.end(), [](float a, float b) { return std::fabs(a) < std::fabs(b); }) - grad.begin();
    float* v = params[k].value.data<float>() + i;
    const float orig = *v, h = 1e-2f * std::max(1.0f, std::fabs(orig));
    *v = orig + h;
    const double up = loss_at_step3();
    *v = orig - h;
    const double down = loss_at_step3();
    *v = orig;
    EXPECT_NEAR(grad[i], (up - down) / (2.0 * h), 2e-2 * gmax + 1e-4) << fixture << " " << params[k].name;
    ++checked;
  }
  EXPECT_GT(checked, 8);
  // Masks do not depend on the thread count.
  trainer.zero_grad();
  trainer.set_dropout_step(3);
  const double two = trainer.forward_backward(batch, labels, ExecContext{2, best_isa()}).loss;
  EXPECT_NEAR(two, loss3, 1e-5 * std::max(1.0, std::fabs(loss3)));
}

TEST(TrainingDropout, SequenceClassificationGradients) {
  check_dropout_gradients("roformer-tiny-cls", TrainLabels{i64({3}, {2, 2, 0}), {}, {}});
}

TEST(TrainingDropout, TokenClassificationGradients) {
  std::vector<int64_t> lab(3 * 33, -100);
  for (std::size_t i = 0; i < lab.size(); i += 2) lab[i] = static_cast<int64_t>(i % 5);
  check_dropout_gradients("roformer-tiny-tok", TrainLabels{i64({3, 33}, lab), {}, {}});
}

TEST(TrainingDropout, MaskedLmGradients) {
  SafeTensors g = SafeTensors::open(data_path("fixtures/roformer-tiny-mlm/train_expected.safetensors"));
  check_dropout_gradients("roformer-tiny-mlm", TrainLabels{g.get("train.labels"), {}, {}});
}

}  // namespace
}  // namespace roformer
