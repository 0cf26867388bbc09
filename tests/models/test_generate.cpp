// Generation: the cached loop equals recomputing the full sequence, sampling
// is reproducible per seed and honours top-k / top-p.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
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

// A model with bf16 products (and a head size the bf16 attention takes)
// caches bf16 keys and values where the CPU has AVX512-BF16: the prompt's
// logits are the uncached forward's, bit for bit, and each later step's stay
// within the bf16 products' distance of recomputing the whole sequence. A
// cleared cache takes the next model's storage.
TEST(Generate, Bf16ModelsCacheBf16KeysAndValues) {
  RoFormerConfig c;
  c.vocab_size = 97;
  c.hidden_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;  // head size 32
  c.intermediate_size = 128;
  c.is_decoder = true;
  c.architectures = {"RoFormerForCausalLM"};
  RoFormerModel model = RoFormerModel::random_init(c, Task::CausalLM, 9);
  const ExecContext ctx{1, best_isa()};
  // bf16 keys wherever the products are vectorised: the bf16 tiles round K
  // and V, and CPUs without them round K and V in the layer.
  const bool pays = best_isa() != Isa::Scalar;
  KvCache cache;
  EXPECT_EQ(cache.dtype(), DType::F32) << "before the first forward";
  auto logits = [&](const std::vector<int64_t>& ids, KvCache* kv) {
    Tensor t = Tensor::zeros({1, static_cast<int64_t>(ids.size())}, DType::I64);
    std::copy(ids.begin(), ids.end(), t.data<int64_t>());
    return model.forward(Batch{t, {}, {}}, {}, ctx, kv).heads.at("logits");
  };
  std::vector<int64_t> seq;
  for (int64_t i = 0; i < 20; ++i) seq.push_back(3 + (i * 7) % 90);
  (void)logits(seq, &cache);
  EXPECT_EQ(cache.dtype(), DType::F32) << "fp32 products";
  cache.clear();
  model.set_bf16_matmuls(true);
  const Tensor cached = logits(seq, &cache);
  const Tensor full = logits(seq, nullptr);
  ASSERT_EQ(cached.numel(), full.numel());
  for (int64_t i = 0; i < full.numel(); ++i) ASSERT_EQ(cached.data<float>()[i], full.data<float>()[i]) << i;
  EXPECT_EQ(cache.dtype(), pays ? DType::BF16 : DType::F32);
  const Tensor keys = cache.keys(0, c.num_attention_heads);
  EXPECT_EQ(keys.shape(), (std::vector<int64_t>{1, 2, 20, 32}));
  if (pays) {
    for (int64_t i = 0; i < keys.numel(); ++i) {
      const float k = keys.data<float>()[i];
      ASSERT_EQ(bf16_to_f32(f32_to_bf16(k)), k) << "a cached key is not a bf16 value";
    }
  }
  const int64_t V = c.vocab_size;
  for (const std::vector<int64_t>& step : {std::vector<int64_t>{11}, {12}, {13, 14, 15}, {16, 17, 18, 19, 20, 21}}) {
    const Tensor got = logits(step, &cache);
    seq.insert(seq.end(), step.begin(), step.end());
    const Tensor want = logits(seq, nullptr);
    const auto n = static_cast<int64_t>(step.size()), total = static_cast<int64_t>(seq.size());
    double worst = 0, scale = 1;
    for (int64_t t = 0; t < n; ++t)
      for (int64_t v = 0; v < V; ++v) {
        const float w = want.data<float>()[(total - n + t) * V + v];
        worst = std::max(worst, static_cast<double>(std::fabs(got.data<float>()[t * V + v] - w)));
        scale = std::max(scale, static_cast<double>(std::fabs(w)));
      }
    EXPECT_LE(worst, 3e-2 * scale) << "step of " << n;
  }
  EXPECT_EQ(cache.length(), static_cast<int64_t>(seq.size()));
}

// One cache kept across prompts (as the CLI keeps it) gives each prompt the
// tokens a fresh cache gives, and holds the last sequence afterwards.
TEST(Generate, OneCacheServesPromptAfterPrompt) {
  RoFormerModel model = RoFormerModel::from_pretrained(testing::data_path("fixtures/roformer-tiny-causal"));
  const ExecContext ctx{1, best_isa()};
  GenerateOptions opt;
  opt.max_new_tokens = 6;
  KvCache kept;
  for (const std::vector<int64_t>& prompt : {std::vector<int64_t>{2, 100, 200, 300}, {2, 7}, {2, 50, 60, 70, 80, 90}}) {
    const auto reused = generate(model, prompt, opt, ctx, kept);
    EXPECT_EQ(reused, generate(model, prompt, opt, ctx));
    // The last new token is not fed back: the cache holds the prompt and all the others.
    EXPECT_EQ(kept.length(), static_cast<int64_t>(prompt.size() + reused.size()) - 1);
  }
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
