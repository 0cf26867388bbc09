// The seq2seq model's backward pass against central finite differences for
// every parameter tensor (each variant: pre/post-LN, RoPE/sinusoidal,
// shared/separate embeddings, tied/untied output), with and without
// dropout; the label-smoothed loss against hand-computed values.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "models/losses.h"
#include "roformer/error.h"
#include "roformer/seq2seq.h"
#include "seq2seq_test_util.h"
#include "support/test_support.h"

namespace roformer {
namespace {

using testing::max_abs;

// ---------------------------------------------------------------- label smoothing

TEST(LabelSmoothing, MatchesHandComputation) {
  // Row 0: p = (1/4, 1/2, 1/4), target 1: nll = ln 2, -sum log p = 5 ln 2.
  // Row 1: padding (ignored). Row 2: same logits, target 0: nll = 2 ln 2.
  // eps = 0.1, eps_i = 0.05: loss = 0.85 nll + 0.05 * 5 ln 2.
  const double l2 = std::log(2.0);
  const std::vector<float> logits = {0, static_cast<float>(l2), 0, 9, -3, 1, 0, static_cast<float>(l2), 0};
  const std::vector<int64_t> t2 = {1, -1, 0};  // -1: the ignored index here
  std::vector<float> d(9, 7.0f);
  const LabelSmoothedLoss r = label_smoothed_cross_entropy(logits.data(), t2.data(), 3, 3, 0.1, -1, d.data(), 1.0f);
  EXPECT_EQ(r.tokens, 2);
  EXPECT_NEAR(r.loss_sum, 1.1 * l2 + 1.95 * l2, 1e-6);
  EXPECT_NEAR(r.loss(), 1.525 * l2, 1e-6);
  EXPECT_NEAR(r.nll_sum, 3 * l2, 1e-6);
  EXPECT_EQ(r.correct, 1);  // row 0's argmax is its target; row 2's is not
  // d = (p - eps_i - 0.85 onehot) / tokens
  const std::vector<float> expect = {0.1f, -0.2f, 0.1f, 0, 0, 0, -0.325f, 0.225f, 0.1f};
  for (int i = 0; i < 9; ++i) EXPECT_NEAR(d[i], expect[i], 1e-6) << i;
}

TEST(LabelSmoothing, ZeroEpsilonIsCrossEntropyAndGradientIsExact) {
  const int64_t rows = 5, V = 7;
  const auto logits = testing::random_floats(rows * V, 3, -3, 3);
  const std::vector<int64_t> targets = {1, 0, 6, 0, 3};  // 0 = padding
  std::vector<float> d(logits.size()), dref(logits.size());
  const auto r = label_smoothed_cross_entropy(logits.data(), targets.data(), rows, V, 0.0, 0, d.data(), 2.0f);
  std::vector<int64_t> hf = targets;
  for (auto& t : hf)
    if (t == 0) t = -100;
  const auto ref = models::cross_entropy(logits.data(), hf.data(), rows, V, 1, dref.data(), 2.0f);
  EXPECT_EQ(r.tokens, ref.count);
  EXPECT_NEAR(r.loss(), ref.loss, 1e-6);
  EXPECT_NEAR(r.nll(), ref.loss, 1e-6);
  for (std::size_t i = 0; i < d.size(); ++i) EXPECT_NEAR(d[i], dref[i], 1e-6);
  // With smoothing, the gradient equals finite differences of the mean loss.
  auto loss_of = [&](const std::vector<float>& x) {
    return label_smoothed_cross_entropy(x.data(), targets.data(), rows, V, 0.2, 0, nullptr, 1.0f).loss();
  };
  label_smoothed_cross_entropy(logits.data(), targets.data(), rows, V, 0.2, 0, d.data(), 1.0f);
  for (std::size_t i = 0; i < logits.size(); ++i) {
    auto up = logits, down = logits;
    up[i] += 1e-3f;
    down[i] -= 1e-3f;
    EXPECT_NEAR(d[i], (loss_of(up) - loss_of(down)) / 2e-3, 2e-4) << i;
  }
  EXPECT_THROW(label_smoothed_cross_entropy(logits.data(), targets.data(), rows, V, 1.0, 0, nullptr, 1.0f), Error);
  const std::vector<int64_t> bad = {1, 9, 1, 1, 1};
  EXPECT_THROW(label_smoothed_cross_entropy(logits.data(), bad.data(), rows, V, 0.1, 0, nullptr, 1.0f), Error);
}

// ---------------------------------------------------------------- gradients

// Central differences (fp32 forward, h = 1e-2) for the largest-gradient
// entry and two random entries of every parameter tensor.
void check_gradients(Seq2SeqTrainer& trainer, const std::function<double()>& loss, const std::string& what) {
  auto params = trainer.parameters();
  std::vector<std::vector<float>> grads;
  for (const auto& p : params) grads.emplace_back(p.grad, p.grad + p.size);
  std::mt19937 rng(7);
  int checked = 0, nonzero = 0;
  for (std::size_t k = 0; k < params.size(); ++k) {
    const auto& g = grads[k];
    const double gmax = max_abs(g);
    if (gmax > 0) ++nonzero;
    std::vector<std::size_t> entries = {static_cast<std::size_t>(
        std::max_element(g.begin(), g.end(), [](float a, float b) { return std::fabs(a) < std::fabs(b); }) - g.begin())};
    entries.push_back(rng() % g.size());
    entries.push_back(rng() % g.size());
    for (std::size_t i : entries) {
      float* v = params[k].value + i;
      const float orig = *v, h = 1e-2f * std::max(1.0f, std::fabs(orig));
      *v = orig + h;
      const double up = loss();
      *v = orig - h;
      const double down = loss();
      *v = orig;
      const double fd = (up - down) / (2.0 * h);
      EXPECT_NEAR(g[i], fd, 1e-2 * std::max(gmax, 1e-2) + 2e-4) << what << " " << params[k].name << "[" << i << "]";
      ++checked;
    }
  }
  // Every parameter takes part in the loss (LayerNorm biases included).
  EXPECT_EQ(nonzero, static_cast<int>(params.size())) << what;
  EXPECT_GT(checked, 60) << what;
}

class Seq2SeqGradients : public ::testing::TestWithParam<testing::Variant> {};

TEST_P(Seq2SeqGradients, MatchFiniteDifferences) {
  const Seq2SeqConfig c = testing::tiny_config(GetParam());
  Seq2SeqTrainer trainer(Seq2SeqModel::random_init(c, 11));
  const Seq2SeqBatch batch = testing::tiny_batch(c);
  const ExecContext ctx{1, best_isa()};
  const double eps = 0.1;
  const LabelSmoothedLoss r = trainer.forward_backward(batch, eps, ctx);
  EXPECT_EQ(r.tokens, 5 + 3);  // targets plus eos, padding excluded
  check_gradients(trainer, [&] { return trainer.evaluate(batch, eps, ctx).loss(); }, GetParam().name);
}

TEST_P(Seq2SeqGradients, WithDropoutAtAFixedStep) {
  const Seq2SeqConfig c = testing::tiny_config(GetParam(), 1);
  Seq2SeqTrainer trainer(Seq2SeqModel::random_init(c, 5));
  const Seq2SeqBatch batch = testing::tiny_batch(c);
  const ExecContext ctx{1, best_isa()};
  trainer.set_dropout(true, 42);
  trainer.set_dropout_step(3);
  const double dropped = trainer.forward_backward(batch, 0.1, ctx).loss();
  EXPECT_EQ(trainer.dropout_step(), 4u);
  EXPECT_NE(dropped, trainer.evaluate(batch, 0.1, ctx).loss()) << "dropout must change the training loss";
  auto params = trainer.parameters();
  std::vector<std::vector<float>> saved;
  for (const auto& p : params) saved.emplace_back(p.grad, p.grad + p.size);
  auto loss_at_step3 = [&] {
    trainer.set_dropout_step(3);
    return trainer.forward_backward(batch, 0.1, ctx).loss();
  };
  EXPECT_EQ(loss_at_step3(), dropped) << "the same step draws the same masks";
  // check_gradients reads the gradients first; restore those of one step.
  trainer.zero_grad();
  for (std::size_t k = 0; k < params.size(); ++k) std::copy(saved[k].begin(), saved[k].end(), params[k].grad);
  check_gradients(trainer, loss_at_step3, GetParam().name + " dropout");
}

INSTANTIATE_TEST_SUITE_P(Variants, Seq2SeqGradients, ::testing::ValuesIn(testing::all_variants()),
                         [](const auto& param_info) { return param_info.param.name; });

TEST(Seq2SeqTraining, GradientsAccumulateAndThreadsAgree) {
  const Seq2SeqConfig c = testing::tiny_config(testing::all_variants()[0]);
  const Seq2SeqModel model = Seq2SeqModel::random_init(c, 1);
  const Seq2SeqBatch batch = testing::tiny_batch(c);
  Seq2SeqTrainer one(model), two(model);
  const double l1 = one.forward_backward(batch, 0.1, ExecContext{1, best_isa()}).loss();
  const double l2 = two.forward_backward(batch, 0.1, ExecContext{2, best_isa()}).loss();
  EXPECT_NEAR(l1, l2, 1e-6 * std::fabs(l1));
  auto p1 = one.parameters(), p2 = two.parameters();
  ASSERT_EQ(p1.size(), p2.size());
  for (std::size_t k = 0; k < p1.size(); ++k)
    for (int64_t i = 0; i < p1[k].size; ++i) ASSERT_NEAR(p1[k].grad[i], p2[k].grad[i], 1e-5) << p1[k].name;
  const std::vector<float> once(p1[0].grad, p1[0].grad + p1[0].size);
  one.forward_backward(batch, 0.1, ExecContext{1, best_isa()}, 0.5f);
  for (int64_t i = 0; i < p1[0].size; ++i) ASSERT_NEAR(p1[0].grad[i], 1.5f * once[i], 1e-5f + 1e-5f * std::fabs(once[i]));
  one.zero_grad();
  EXPECT_EQ(max_abs(std::vector<float>(p1[0].grad, p1[0].grad + p1[0].size)), 0.0);
}

TEST(Seq2SeqTraining, TrainerForwardEqualsModelForward) {
  const Seq2SeqConfig c = testing::tiny_config(testing::all_variants()[1]);
  const Seq2SeqModel model = Seq2SeqModel::random_init(c, 2);
  const Seq2SeqBatch batch = testing::tiny_batch(c);
  const Tensor logits = model.forward(batch, ExecContext{1, best_isa()});
  ASSERT_EQ(logits.shape(), (Shape{2, 5, c.tgt_vocab_size}));
  std::vector<float> d(static_cast<std::size_t>(logits.numel()));
  const auto direct = label_smoothed_cross_entropy(logits.data<float>(), batch.tgt_out.data<int64_t>(), 10,
                                                   c.tgt_vocab_size, 0.1, c.pad_token_id, nullptr, 1.0f);
  Seq2SeqTrainer trainer(model);
  EXPECT_DOUBLE_EQ(trainer.evaluate(batch, 0.1, ExecContext{1, best_isa()}).loss(), direct.loss());
}

TEST(Seq2SeqTraining, BadBatchesAndConfigsAreClearErrors) {
  const Seq2SeqConfig c = testing::tiny_config(testing::all_variants()[0]);
  EXPECT_THROW(make_seq2seq_batch({{}}, {{1}}, c), Error);
  EXPECT_THROW(make_seq2seq_batch({{1}}, {{1}, {2}}, c), Error);
  Seq2SeqTrainer trainer(Seq2SeqModel::random_init(c, 1));
  const ExecContext ctx{1, best_isa()};
  EXPECT_THROW(trainer.forward_backward(make_seq2seq_batch({{99}}, {{1}}, c), 0.1, ctx), Error);
  Seq2SeqBatch b = testing::tiny_batch(c);
  b.tgt_out = Tensor::zeros({2, 3}, DType::I64);
  EXPECT_THROW(trainer.forward_backward(b, 0.1, ctx), Error);
  Seq2SeqConfig bad = c;
  bad.num_heads = 3;
  EXPECT_THROW(bad.validate(), Error);
  bad = c;
  bad.share_all_embeddings = true;
  bad.src_vocab_size = 7;
  EXPECT_THROW(bad.validate(), Error);
  bad = c;
  bad.position_encoding = "learned";
  EXPECT_THROW(Seq2SeqModel::random_init(bad, 0), Error);
}

}  // namespace
}  // namespace roformer
