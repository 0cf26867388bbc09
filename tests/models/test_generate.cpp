// Generation: the cached loop equals recomputing the full sequence, sampling
// is reproducible per seed and honours top-k / top-p.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "roformer/error.h"
#include "roformer/generate.h"
#include "support/test_support.h"

namespace roformer {
namespace {

TEST(Generate, GreedyWithCacheEqualsFullRecompute) {
  RoFormerModel model = RoFormerModel::from_pretrained(testing::data_path("fixtures/roformer-tiny-causal"));
  const ExecContext ctx{1, best_isa()};
  const std::vector<int64_t> prompt = {2, 100, 200, 300};
  GenerateOptions opt;
  opt.max_new_tokens = 8;
  const auto fast = generate(model, prompt, opt, ctx);
  ASSERT_EQ(fast.size(), 8u);
  // Reference: no cache, argmax over the whole sequence's last row each step.
  std::vector<int64_t> seq = prompt;
  const int64_t V = model.config().vocab_size;
  for (int step = 0; step < 8; ++step) {
    Tensor ids = Tensor::zeros({1, static_cast<int64_t>(seq.size())}, DType::I64);
    std::copy(seq.begin(), seq.end(), ids.data<int64_t>());
    auto out = model.forward(Batch{ids, {}, {}}, {}, ctx);
    const float* last = out.heads.at("logits").data<float>() + (ids.size(1) - 1) * V;
    const int64_t best = std::max_element(last, last + V) - last;
    EXPECT_EQ(fast[static_cast<std::size_t>(step)], best) << "step " << step;
    seq.push_back(best);
  }
}

// A reserved cache holds the same keys and values as one that grows by
// doubling: every step's logits are the same bits.
TEST(Generate, ReservingTheCacheChangesNoOutput) {
  RoFormerModel model = RoFormerModel::from_pretrained(testing::data_path("fixtures/roformer-tiny-causal"));
  const ExecContext ctx{1, best_isa()};
  KvCache grown, reserved;
  reserved.reserve(40);
  EXPECT_THROW(reserved.reserve(-1), Error);
  Tensor ids = Tensor::zeros({1, 3}, DType::I64);
  for (int64_t i = 0; i < 3; ++i) ids.data<int64_t>()[i] = 2 + 50 * i;
  for (int step = 0; step < 9; ++step) {
    const Tensor a = model.forward(Batch{ids, {}, {}}, {}, ctx, &grown).heads.at("logits");
    const Tensor b = model.forward(Batch{ids, {}, {}}, {}, ctx, &reserved).heads.at("logits");
    ASSERT_EQ(a.numel(), b.numel());
    for (int64_t i = 0; i < a.numel(); ++i) ASSERT_EQ(a.data<float>()[i], b.data<float>()[i]) << "step " << step;
    ids = Tensor::zeros({1, 1}, DType::I64);
    ids.data<int64_t>()[0] = 7 + 11 * step;
  }
  EXPECT_EQ(reserved.length(), 3 + 8);
  EXPECT_EQ(reserved.keys(0, model.config().num_attention_heads).shape(),
            grown.keys(0, model.config().num_attention_heads).shape());
}

// A cleared cache starts a new sequence as a fresh one does, for the same or
// another batch size, while keeping its buffers.
TEST(Generate, AClearedCacheServesTheNextSequence) {
  RoFormerModel model = RoFormerModel::from_pretrained(testing::data_path("fixtures/roformer-tiny-causal"));
  const ExecContext ctx{1, best_isa()};
  auto run = [&](KvCache& cache, int64_t batch) {
    Tensor ids = Tensor::zeros({batch, 4}, DType::I64);
    for (int64_t i = 0; i < ids.numel(); ++i) ids.data<int64_t>()[i] = 2 + 13 * i;
    std::vector<float> all;
    for (int step = 0; step < 3; ++step) {
      const Tensor l = model.forward(Batch{ids, {}, {}}, {}, ctx, &cache).heads.at("logits");
      all.insert(all.end(), l.data<float>(), l.data<float>() + l.numel());
      ids = Tensor::zeros({batch, 1}, DType::I64);
      for (int64_t b = 0; b < batch; ++b) ids.data<int64_t>()[b] = 30 + step + b;
    }
    return all;
  };
  KvCache used;
  const std::vector<float> first = run(used, 1);
  EXPECT_EQ(used.length(), 6);
  used.clear();
  EXPECT_EQ(used.length(), 0);
  EXPECT_EQ(run(used, 1), first);
  used.clear();
  KvCache fresh;
  EXPECT_EQ(run(used, 2), run(fresh, 2));
  // Without clear(), another batch size is still an error.
  Tensor two = Tensor::zeros({3, 1}, DType::I64);
  EXPECT_THROW(model.forward(Batch{two, {}, {}}, {}, ctx, &used), Error);
}

TEST(Generate, SamplingIsSeededAndVaries) {
  RoFormerModel model = RoFormerModel::from_pretrained(testing::data_path("fixtures/roformer-tiny-causal"));
  const ExecContext ctx{1, best_isa()};
  GenerateOptions opt;
  opt.max_new_tokens = 12;
  opt.sample = true;
  opt.temperature = 1.5;
  opt.seed = 7;
  const auto a = generate(model, {2, 50}, opt, ctx), b = generate(model, {2, 50}, opt, ctx);
  EXPECT_EQ(a, b);
  opt.seed = 8;
  const auto c = generate(model, {2, 50}, opt, ctx);
  EXPECT_NE(a, c);
}

TEST(Generate, StopsAtEos) {
  RoFormerModel model = RoFormerModel::from_pretrained(testing::data_path("fixtures/roformer-tiny-causal"));
  GenerateOptions opt;
  opt.max_new_tokens = 10;
  const auto free_run = generate(model, {2, 100}, opt, ExecContext{1, best_isa()});
  opt.eos_token_id = free_run[2];
  const auto stopped = generate(model, {2, 100}, opt, ExecContext{1, best_isa()});
  ASSERT_LE(stopped.size(), 3u);
  EXPECT_EQ(stopped.back(), free_run[2]);
}

TEST(Sampler, TopKAndTopPRestrictTheCandidates) {
  const std::vector<float> logits = {0.0f, 5.0f, 4.9f, 1.0f, -3.0f, 4.8f};
  GenerateOptions opt;
  opt.sample = true;
  opt.top_k = 2;
  std::set<int64_t> seen;
  for (uint64_t s = 0; s < 300; ++s) {
    opt.seed = s;
    seen.insert(TokenSampler(opt).pick(logits.data(), 6));
  }
  EXPECT_EQ(seen, (std::set<int64_t>{1, 2}));
  opt.top_k = 0;
  opt.top_p = 0.01;  // only the single most likely token survives
  for (uint64_t s = 0; s < 50; ++s) {
    opt.seed = s;
    EXPECT_EQ(TokenSampler(opt).pick(logits.data(), 6), 1);
  }
  // Empirical frequencies follow softmax(logits / T) within sampling noise.
  opt.top_p = 1.0;
  opt.temperature = 2.0;
  std::vector<int> counts(6, 0);
  TokenSampler sampler(opt);
  const int n = 20000;
  for (int i = 0; i < n; ++i) ++counts[static_cast<std::size_t>(sampler.pick(logits.data(), 6))];
  double z = 0;
  for (float l : logits) z += std::exp(l / 2.0);
  for (int i = 0; i < 6; ++i) {
    const double p = std::exp(logits[static_cast<std::size_t>(i)] / 2.0) / z;
    EXPECT_NEAR(counts[static_cast<std::size_t>(i)] / double(n), p, 4 * std::sqrt(p * (1 - p) / n) + 1e-3) << i;
  }
}

TEST(Generate, RejectsNonCausalModelsAndBadOptions) {
  RoFormerModel mlm = RoFormerModel::from_pretrained(testing::data_path("fixtures/roformer-tiny-mlm"));
  auto message = [](const RoFormerModel& m) {
    try {
      generate(m, {2, 3}, {}, ExecContext{1, best_isa()});
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(mlm).find("needs a causal LM"), std::string::npos) << message(mlm);
  // The masked LM's head loaded as a causal LM's (the same weights): the
  // error names what is wrong, the bidirectional config.
  LoadOptions as_causal;
  as_causal.task = Task::CausalLM;
  RoFormerModel encoder = RoFormerModel::from_pretrained(testing::data_path("fixtures/roformer-tiny-mlm"), as_causal);
  EXPECT_NE(message(encoder).find("is_decoder: false"), std::string::npos) << message(encoder);
  RoFormerModel causal = RoFormerModel::from_pretrained(testing::data_path("fixtures/roformer-tiny-causal"));
  EXPECT_THROW(generate(causal, {}, {}, ExecContext{1, best_isa()}), Error);
  GenerateOptions bad;
  bad.top_p = 0;
  EXPECT_THROW(TokenSampler{bad}, Error);
}

}  // namespace
}  // namespace roformer
