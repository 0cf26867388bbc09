// TrainableRoFormer::set_skip_padding: a right-padded batch trains on its
// real tokens alone, and its loss and gradients are the padded step's:
// PyTorch's goldens (computed on the padded batch) still hold, every head
// agrees with its padded step, and what must read padding runs padded.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "roformer/safetensors.h"
#include "roformer/training.h"
#include "support/model_fixtures.h"
#include "support/test_support.h"

namespace roformer {
namespace {

using testing::data_path;
using testing::fixture_batch;
using testing::fixture_dir;
using testing::max_abs;
using testing::max_abs_diff;
using testing::right_padded_batch;

// A contiguous int64 tensor's values.
std::vector<int64_t> values(const Tensor& t) {
  const Tensor c = t.to(DType::I64);
  return std::vector<int64_t>(c.data<int64_t>(), c.data<int64_t>() + c.numel());
}

int64_t real_tokens(const Batch& batch) {
  int64_t n = 0;
  for (int64_t v : values(batch.attention_mask)) n += v;
  return n;
}

// The execution contexts a step can take: the materialised reference
// (scalar) and the fused attention of each instruction set this CPU has.
std::vector<ExecContext> contexts() {
  std::vector<ExecContext> out;
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512})
    if (isa_supported(isa)) out.push_back(ExecContext{1, isa});
  out.push_back(ExecContext{2, best_isa()});
  return out;
}

std::string label(const ExecContext& ctx) {
  return std::string(isa_name(ctx.isa)) + " " + std::to_string(ctx.threads) + " thread(s)";
}

// The fixtures' batches are right-padded (7, 19 and 33 real tokens of 33)
// with their padded positions unlabelled: skipping the padding must leave
// PyTorch's loss and every gradient where the padded step has them.
TEST(SkipPaddingTraining, PyTorchGoldensHoldOnTheRealTokensAlone) {
  for (const std::string fixture : {"roformer-tiny-mlm", "roformer-tiny-cls"}) {
    const std::string dir = data_path("fixtures/" + fixture);
    const SafeTensors expected = SafeTensors::open(dir + "/expected.safetensors");
    const SafeTensors golden = SafeTensors::open(dir + "/train_expected.safetensors");
    const RoFormerModel model = RoFormerModel::from_pretrained(dir);
    const Batch batch = fixture_batch(expected);
    for (const ExecContext& ctx : contexts()) {
      SCOPED_TRACE(fixture + " " + label(ctx));
      TrainableRoFormer trainer(model);
      trainer.set_skip_padding(true);
      const TrainStep step = trainer.forward_backward(batch, TrainLabels{golden.get("train.labels"), {}, {}}, ctx);
      EXPECT_EQ(step.encoder_rows, real_tokens(batch));
      EXPECT_LT(step.encoder_rows, batch.input_ids.numel());
      const double ref_loss = golden.get("train.loss").to_vector()[0];
      EXPECT_LE(std::fabs(step.loss - ref_loss), 2e-6 * std::max(1.0, std::fabs(ref_loss)));
      for (const auto& p : trainer.parameters()) {
        const auto ref = golden.get("grad." + p.name).to_vector();
        EXPECT_LE(max_abs_diff(p.grad.to_vector(), ref), 3e-5 * max_abs(ref)) << p.name;
      }
    }
  }
}

// Labels for a right-padded batch: -100 at padded positions; per token (MLM,
// causal LM, token classification) every real position labelled, otherwise
// one class per example.
TrainLabels labels_for(Task task, const Batch& batch, int64_t classes, int64_t choices) {
  const auto mask = values(batch.attention_mask);
  const auto ids = values(batch.input_ids);
  if (task == Task::MaskedLM || task == Task::CausalLM || task == Task::TokenClassification) {
    const int64_t T = batch.input_ids.shape().back();
    Tensor lab = Tensor::zeros({static_cast<int64_t>(mask.size()) / T, T}, DType::I64);
    for (std::size_t i = 0; i < mask.size(); ++i)
      lab.data<int64_t>()[i] = mask[i] == 0                        ? -100
                               : task == Task::TokenClassification ? static_cast<int64_t>(i * 7 % classes)
                                                                   : ids[i];
    return TrainLabels{lab, {}, {}};
  }
  const int64_t examples = batch.input_ids.size(0);
  Tensor lab = Tensor::zeros({examples}, DType::I64);
  for (int64_t i = 0; i < examples; ++i) lab.data<int64_t>()[i] = (i * 5 + 1) % (task == Task::MultipleChoice ? choices : classes);
  return TrainLabels{lab, {}, {}};
}

struct StepResult {
  TrainStep step;
  std::vector<std::vector<float>> grads;
};

StepResult train_step(const RoFormerModel& model, const Batch& batch, const TrainLabels& labels, bool skip,
                      const ExecContext& ctx) {
  TrainableRoFormer trainer(model);
  trainer.set_skip_padding(skip);
  StepResult r{trainer.forward_backward(batch, labels, ctx), {}};
  for (const auto& p : trainer.parameters()) r.grads.push_back(p.grad.to_vector());
  return r;
}

// Every head whose loss reads real positions only runs packed and agrees
// with its padded step (fp32 and bf16 products, every path); the others run
// padded, step for step the same.
TEST(SkipPaddingTraining, EveryHeadAgreesWithItsPaddedStep) {
  const std::vector<int64_t> lengths = {9, 4, 1, 7};
  const int64_t padded_rows = 4 * 9, real = 9 + 4 + 1 + 7;
  struct HeadCase {
    std::string fixture;
    Task task;
    bool packs;
  };
  for (const HeadCase& c : {HeadCase{"roformer-tiny-mlm", Task::MaskedLM, true}, HeadCase{"roformer-tiny-causal", Task::CausalLM, true},
                        HeadCase{"roformer-tiny-cls", Task::SequenceClassification, true},
                        HeadCase{"roformer-tiny-tok", Task::TokenClassification, true},
                        // Summarised by the last position, a padded one in most rows (HF's default).
                        HeadCase{"roformer-tiny-mc", Task::MultipleChoice, false}}) {
    const RoFormerModel model = RoFormerModel::from_pretrained(fixture_dir(c.fixture));
    ASSERT_EQ(model.task(), c.task) << c.fixture;
    const int64_t choices = c.task == Task::MultipleChoice ? 2 : 1;
    const Batch batch = right_padded_batch(lengths, model.config().vocab_size, 11, choices);
    const TrainLabels labels = labels_for(c.task, batch, model.config().num_labels(), choices);
    for (bool bf16 : {false, true}) {
      for (ExecContext ctx : contexts()) {
        ctx.bf16_products = bf16;
        SCOPED_TRACE(c.fixture + " " + label(ctx) + (bf16 ? " bf16" : " f32"));
        const StepResult padded = train_step(model, batch, labels, false, ctx);
        const StepResult packed = train_step(model, batch, labels, true, ctx);
        EXPECT_EQ(padded.step.encoder_rows, padded_rows);
        EXPECT_EQ(packed.step.encoder_rows, c.packs ? real : padded_rows);
        EXPECT_EQ(packed.step.examples, padded.step.examples);
        EXPECT_EQ(packed.step.correct, padded.step.correct);
        if (!c.packs) {
          EXPECT_EQ(packed.step.loss, padded.step.loss);
          EXPECT_TRUE(packed.grads == padded.grads);
          continue;
        }
        EXPECT_NEAR(packed.step.loss, padded.step.loss, 2e-6 * std::max(1.0, std::fabs(padded.step.loss)));
        // fp32: the tolerance of PyTorch's goldens. bf16: another summation
        // order upstream (fewer rows per product) can tip a value to the
        // neighbouring bf16 number (2^-8 relative) where it is rounded for a
        // product; measured up to 1.6e-3 of a tensor's largest gradient
        // (AVX2 with OpenBLAS), within 3e-5 elsewhere.
        const double tol = bf16 ? 1e-2 : 3e-5;
        ASSERT_EQ(packed.grads.size(), padded.grads.size());
        for (std::size_t k = 0; k < padded.grads.size(); ++k)
          EXPECT_LE(max_abs_diff(packed.grads[k], padded.grads[k]), tol * max_abs(padded.grads[k]) + 1e-12)
              << "parameter " << k;
      }
    }
  }
}

// Learned absolute positions (the paper's baseline) are looked up per packed
// token, at its position within its own sequence, and their gradients land
// there; linear attention (no packed form) takes the padded step.
TEST(SkipPaddingTraining, AbsolutePositionsPackAndLinearAttentionDoesNot) {
  const ExecContext ctx{1, best_isa()};
  RoFormerConfig c = testing::tiny_mlm_config();
  c.position_embedding_type = "absolute";
  const std::vector<int64_t> lengths = {10, 3, 7};
  const Batch batch = right_padded_batch(lengths, c.vocab_size, 17);
  const TrainLabels labels = labels_for(Task::MaskedLM, batch, 0, 1);
  const RoFormerModel absolute = RoFormerModel::random_init(c, Task::MaskedLM, 5);
  const StepResult padded = train_step(absolute, batch, labels, false, ctx);
  const StepResult packed = train_step(absolute, batch, labels, true, ctx);
  EXPECT_EQ(packed.step.encoder_rows, 20);
  EXPECT_NEAR(packed.step.loss, padded.step.loss, 2e-6 * padded.step.loss);
  for (std::size_t k = 0; k < padded.grads.size(); ++k)
    EXPECT_LE(max_abs_diff(packed.grads[k], padded.grads[k]), 3e-5 * max_abs(padded.grads[k]) + 1e-12) << k;

  c.position_embedding_type = "rope";
  c.attention_type = "linear";
  const RoFormerModel linear = RoFormerModel::random_init(c, Task::MaskedLM, 5);
  const StepResult linear_step = train_step(linear, batch, labels, true, ctx);
  EXPECT_EQ(linear_step.step.encoder_rows, 30);
  EXPECT_EQ(linear_step.step.loss, train_step(linear, batch, labels, false, ctx).step.loss);
}

// Asks whose loss reads padded positions take the padded step: a labelled
// padded position, question answering (its softmax spans every position),
// left padding, a row without a real token.
TEST(SkipPaddingTraining, LossesThatReadPaddingRunPadded) {
  const ExecContext ctx{1, best_isa()};
  const RoFormerModel mlm = RoFormerModel::from_pretrained(fixture_dir("roformer-tiny-mlm"));
  const Batch batch = right_padded_batch({6, 3}, mlm.config().vocab_size, 4);
  TrainLabels labelled_pad = labels_for(Task::MaskedLM, batch, 0, 1);
  labelled_pad.labels.data<int64_t>()[6 + 4] = 7;  // row 1, position 4: padding
  auto expect_padded_step = [&](const RoFormerModel& model, const Batch& b, const TrainLabels& l, const std::string& what) {
    const StepResult padded = train_step(model, b, l, false, ctx);
    const StepResult skipped = train_step(model, b, l, true, ctx);
    EXPECT_EQ(skipped.step.encoder_rows, b.input_ids.numel()) << what;
    EXPECT_EQ(skipped.step.loss, padded.step.loss) << what;
    EXPECT_TRUE(skipped.grads == padded.grads) << what;
  };
  expect_padded_step(mlm, batch, labelled_pad, "labelled padding");

  const RoFormerModel qa = RoFormerModel::from_pretrained(fixture_dir("roformer-tiny-qa"));
  const Batch qa_batch = right_padded_batch({8, 5}, qa.config().vocab_size, 6);
  Tensor start = Tensor::zeros({2}, DType::I64), end = Tensor::zeros({2}, DType::I64);
  start.data<int64_t>()[0] = 2;
  end.data<int64_t>()[0] = 4;
  start.data<int64_t>()[1] = 1;
  end.data<int64_t>()[1] = 3;
  expect_padded_step(qa, qa_batch, TrainLabels{{}, start, end}, "question answering");

  Batch left = right_padded_batch({6, 3}, mlm.config().vocab_size, 8);
  int64_t* mask = left.attention_mask.data<int64_t>();
  std::swap(mask[6 + 0], mask[6 + 5]);  // row 1: 0 1 1 0 0 1
  expect_padded_step(mlm, left, labels_for(Task::MaskedLM, left, 0, 1), "not right-padded");

  Batch empty_row = right_padded_batch({6, 3}, mlm.config().vocab_size, 9);
  for (int64_t t = 0; t < 6; ++t) empty_row.attention_mask.data<int64_t>()[6 + t] = 0;
  expect_padded_step(mlm, empty_row, labels_for(Task::MaskedLM, empty_row, 0, 1), "a row of padding only");
}

// With dropout the packed step draws its own masks; at a fixed (seed, step)
// its loss is still a function of the weights, whose gradient is checked by
// finite differences on the materialised attention (the one dropout takes).
TEST(SkipPaddingTraining, DropoutGradientsMatchFiniteDifferences) {
  const RoFormerModel model = RoFormerModel::from_pretrained(fixture_dir("roformer-tiny-mlm"));
  const Batch batch = right_padded_batch({9, 4, 1, 7}, model.config().vocab_size, 13);
  const TrainLabels labels = labels_for(Task::MaskedLM, batch, 0, 1);
  const ExecContext ctx{1, best_isa()};
  TrainableRoFormer trainer(model);
  trainer.set_skip_padding(true);
  trainer.set_dropout(true, 21);
  auto loss_at_step5 = [&] {
    trainer.set_dropout_step(5);
    const TrainStep s = trainer.forward_backward(batch, labels, ctx);
    EXPECT_EQ(s.encoder_rows, 21);
    return s.loss;
  };
  const double loss5 = loss_at_step5();
  EXPECT_NE(loss5, trainer.evaluate(batch, labels, ctx).loss) << "dropout must change the training loss";
  auto params = trainer.parameters();
  std::vector<std::vector<float>> grads;
  for (auto& p : params) grads.push_back(p.grad.to_vector());
  int checked = 0;
  for (std::size_t k = 0; k < params.size(); k += 2) {
    const auto& grad = grads[k];
    const double gmax = max_abs(grad);
    if (gmax == 0) continue;
    const auto i = static_cast<std::size_t>(
        std::max_element(grad.begin(), grad.end(), [](float a, float b) { return std::fabs(a) < std::fabs(b); }) -
        grad.begin());
    float* v = params[k].value.data<float>() + i;
    const float orig = *v, h = 1e-2f * std::max(1.0f, std::fabs(orig));
    *v = orig + h;
    const double up = loss_at_step5();
    *v = orig - h;
    const double down = loss_at_step5();
    *v = orig;
    EXPECT_NEAR(grad[i], (up - down) / (2.0 * h), 2e-2 * gmax + 1e-4) << params[k].name;
    ++checked;
  }
  EXPECT_GT(checked, 10);
}

}  // namespace
}  // namespace roformer
