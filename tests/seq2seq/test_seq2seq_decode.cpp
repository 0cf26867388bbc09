// Incremental decoding (self-attention KV caches, precomputed cross-attention
// keys/values, beam reordering) against the full teacher-forced forward, and
// beam search against exhaustive search over every short output.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "roformer/error.h"
#include "roformer/seq2seq.h"
#include "roformer/seq2seq_decode.h"
#include "seq2seq_test_util.h"
#include "support/test_support.h"

namespace roformer {
namespace {

class IncrementalDecoding : public ::testing::TestWithParam<testing::Variant> {};

TEST_P(IncrementalDecoding, EqualsTheFullForward) {
  const Seq2SeqConfig c = testing::tiny_config(GetParam());
  const Seq2SeqModel model = Seq2SeqModel::random_init(c, 3);
  const Seq2SeqBatch batch = testing::tiny_batch(c);
  for (int threads : {1, 2}) {
    const ExecContext ctx{threads, best_isa()};
    const Tensor full = model.forward(batch, ctx);  // (2, 5, V)
    const int64_t B = 2, T = 5, V = c.tgt_vocab_size;
    IncrementalDecoder dec(model, batch.src, 1, ctx);
    double worst = 0, spread = 0;
    for (int64_t t = 0; t < T; ++t) {
      std::vector<int64_t> tokens(B);
      for (int64_t b = 0; b < B; ++b) tokens[b] = batch.tgt_in.data<int64_t>()[b * T + t];
      const float* logits = dec.step(tokens);
      for (int64_t b = 0; b < B; ++b)
        for (int64_t v = 0; v < V && tokens[b] != c.pad_token_id; ++v) {  // the full forward masks padded inputs
          const float ref = full.data<float>()[(b * T + t) * V + v];
          worst = std::max(worst, static_cast<double>(std::fabs(logits[b * V + v] - ref)));
          spread = std::max(spread, static_cast<double>(std::fabs(ref - full.data<float>()[(b * T + t) * V])));
        }
    }
    EXPECT_EQ(dec.steps(), T);
    EXPECT_LE(worst, 2e-5) << "threads " << threads;
    EXPECT_GT(spread, 0.1) << "logits should not be flat";
  }
}

TEST_P(IncrementalDecoding, ReorderedRowsContinueTheirNewHistories) {
  // Two beams of one source take different prefixes, then swap: each row must
  // then see the other's cached prefix, as the full forward of that prefix does.
  const Seq2SeqConfig c = testing::tiny_config(GetParam());
  const Seq2SeqModel model = Seq2SeqModel::random_init(c, 4);
  const ExecContext ctx{1, best_isa()};
  const std::vector<int64_t> src = {5, 6, 7};
  const std::vector<std::vector<int64_t>> prefix = {{c.bos_token_id, 4, 5}, {c.bos_token_id, 9, 11}};
  const Seq2SeqBatch one = make_seq2seq_batch({src}, {{}}, c);
  IncrementalDecoder dec(model, one.src, 2, ctx);
  for (std::size_t t = 0; t < 3; ++t) dec.step({prefix[0][t], prefix[1][t]});
  dec.reorder({1, 0});
  const float* logits = dec.step({8, 12});
  const int64_t V = c.tgt_vocab_size;
  // Row 0 now continues prefix 1 with token 8; row 1 prefix 0 with token 12.
  const std::vector<std::vector<int64_t>> continued = {{9, 11, 8}, {4, 5, 12}};
  for (int r = 0; r < 2; ++r) {
    const Tensor full = model.forward(make_seq2seq_batch({src}, {continued[r]}, c), ctx);  // (1, 4, V)
    double worst = 0;
    for (int64_t v = 0; v < V; ++v)
      worst = std::max(worst, static_cast<double>(std::fabs(logits[r * V + v] - full.data<float>()[3 * V + v])));
    EXPECT_LE(worst, 2e-5) << "row " << r;
  }
  EXPECT_THROW(dec.reorder({0}), Error);
  EXPECT_THROW(dec.step({1}), Error);
}

INSTANTIATE_TEST_SUITE_P(Variants, IncrementalDecoding, ::testing::ValuesIn(testing::all_variants()),
                         [](const auto& param_info) { return param_info.param.name; });

// Sum of log-probabilities of `tokens` + eos under the full forward.
double sequence_log_prob(const Seq2SeqModel& model, const std::vector<int64_t>& src, const std::vector<int64_t>& tokens) {
  const Seq2SeqConfig& c = model.config();
  const Seq2SeqBatch b = make_seq2seq_batch({src}, {tokens}, c);
  const Tensor logits = model.forward(b, ExecContext{1, best_isa()});
  const int64_t V = c.tgt_vocab_size, T = b.tgt_out.size(1);
  double total = 0;
  for (int64_t t = 0; t < T; ++t) {
    const float* x = logits.data<float>() + t * V;
    const double mx = *std::max_element(x, x + V);
    double sum = 0;
    for (int64_t v = 0; v < V; ++v) sum += std::exp(static_cast<double>(x[v]) - mx);
    total += static_cast<double>(x[b.tgt_out.data<int64_t>()[t]]) - mx - std::log(sum);
  }
  return total;
}

TEST(BeamSearch, WideBeamFindsTheExhaustiveOptimum) {
  // V = 6 (pad 0, bos 2, eos 3): outputs of 1 or 2 tokens from {1, 2, 4, 5},
  // 20 in all; a beam of 32 keeps every one, so beam search must return the
  // best normalised score among them.
  Seq2SeqConfig c = testing::tiny_config(testing::all_variants()[0]);
  c.src_vocab_size = c.tgt_vocab_size = 6;
  c.init_std = 1.0;
  const std::vector<int64_t> allowed = {1, 2, 4, 5};
  for (uint64_t seed : {1, 2, 3}) {
    const Seq2SeqModel model = Seq2SeqModel::random_init(c, seed);
    const std::vector<int64_t> src = {4, 5, 1};
    for (double lenpen : {0.0, 0.6, 2.0}) {
      std::vector<int64_t> best;
      double best_score = -1e300;
      auto consider = [&](const std::vector<int64_t>& y) {
        const double s = sequence_log_prob(model, src, y) / std::pow(static_cast<double>(y.size() + 1), lenpen);
        if (s > best_score) {
          best_score = s;
          best = y;
        }
      };
      for (int64_t a : allowed) {
        consider({a});
        for (int64_t b : allowed) consider({a, b});
      }
      DecodeOptions o;
      o.beam = 32;
      o.lenpen = lenpen;
      o.max_len_b = 2;
      const Hypothesis h = beam_search(model, {src}, o, ExecContext{1, best_isa()})[0];
      EXPECT_EQ(h.tokens, best) << "seed " << seed << " lenpen " << lenpen;
      EXPECT_NEAR(h.score, best_score, 1e-5) << "seed " << seed << " lenpen " << lenpen;
      EXPECT_NEAR(h.log_prob, sequence_log_prob(model, src, h.tokens), 1e-5);
    }
  }
}

TEST(BeamSearch, GreedyIsTheArgmaxLoopAndBatchingChangesNothing) {
  const Seq2SeqConfig c = testing::tiny_config(testing::all_variants()[1]);
  const Seq2SeqModel model = Seq2SeqModel::random_init(c, 9);
  const std::vector<std::vector<int64_t>> sources = {{5, 6, 7, 8}, {9}, {4, 10, 4}};
  DecodeOptions o;
  o.beam = 1;
  o.max_len_b = 6;
  const ExecContext ctx{1, best_isa()};
  const auto batched = beam_search(model, sources, o, ctx);
  ASSERT_EQ(batched.size(), 3u);
  for (std::size_t i = 0; i < sources.size(); ++i) {
    // The argmax loop on the full forward: no padding, no eos at step 0, eos forced at the limit.
    std::vector<int64_t> y;
    for (int64_t step = 0;; ++step) {
      const Tensor logits = model.forward(make_seq2seq_batch({sources[i]}, {y}, c), ctx);
      const float* x = logits.data<float>() + static_cast<int64_t>(y.size()) * c.tgt_vocab_size;
      int64_t arg = -1;
      for (int64_t v = 0; v < c.tgt_vocab_size; ++v) {
        if (v == c.pad_token_id || (step == 0 && v == c.eos_token_id)) continue;
        if (arg < 0 || x[v] > x[arg]) arg = v;
      }
      if (arg == c.eos_token_id || step == o.max_len_b) break;
      y.push_back(arg);
    }
    EXPECT_EQ(batched[i].tokens, y) << "source " << i;
    const auto alone = beam_search(model, {sources[i]}, o, ctx)[0];
    EXPECT_EQ(alone.tokens, batched[i].tokens);
    EXPECT_NEAR(alone.score, batched[i].score, 1e-5);
  }
  // Beam 4, batched and alone.
  o.beam = 4;
  o.max_len_a = 1.0;
  o.max_len_b = 2;
  const auto wide = beam_search(model, sources, o, ctx);
  for (std::size_t i = 0; i < sources.size(); ++i) {
    const auto alone = beam_search(model, {sources[i]}, o, ctx)[0];
    EXPECT_EQ(alone.tokens, wide[i].tokens);
    EXPECT_LE(static_cast<double>(wide[i].tokens.size()), 1.0 * static_cast<double>(sources[i].size() + 1) + 2);
  }
  o.beam = 0;
  EXPECT_THROW(beam_search(model, sources, o, ctx), Error);
}

}  // namespace
}  // namespace roformer
