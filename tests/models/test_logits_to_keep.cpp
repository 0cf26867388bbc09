// ForwardOptions::logits_to_keep: the language-model heads score only the
// last k positions of each row, and those logits are the full forward's.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "roformer/error.h"
#include "roformer/model.h"
#include "support/test_support.h"

namespace roformer {
namespace {

Batch two_rows(int64_t T, int64_t vocab) {
  Tensor ids = Tensor::zeros({2, T}, DType::I64), mask = Tensor::zeros({2, T}, DType::I64);
  for (int64_t i = 0; i < 2 * T; ++i) {
    ids.data<int64_t>()[i] = 3 + (i * 37) % (vocab - 3);
    mask.data<int64_t>()[i] = i < T || i % T < T - 2 ? 1 : 0;  // the second row padded at its end
  }
  return Batch{ids, mask, {}};
}

// The kept logits against the matching rows of the full logits, for every
// precision of the products (the vocabulary product has a packed path in each).
void expect_last_rows_match(const std::string& fixture) {
  for (const char* precision : {"f32", "bf16"}) {
    LoadOptions load;
    load.bf16_matmuls = std::string(precision) == "bf16";
    const RoFormerModel model = RoFormerModel::from_pretrained(testing::data_path("fixtures/" + fixture), load);
    const ExecContext ctx{1, best_isa()};
    const int64_t T = 7, V = model.config().vocab_size;
    const Batch batch = two_rows(T, V);
    const Tensor full = model.forward(batch, {}, ctx).heads.at("logits");
    for (int64_t keep : {int64_t{1}, int64_t{3}, T, T + 5}) {
      ForwardOptions options;
      options.logits_to_keep = keep;
      const Tensor part = model.forward(batch, options, ctx).heads.at("logits");
      const int64_t k = std::min(keep, T);
      ASSERT_EQ(part.shape(), (std::vector<int64_t>{2, k, V})) << fixture << " keep " << keep;
      double worst = 0, scale = 1;
      for (int64_t b = 0; b < 2; ++b)
        for (int64_t t = 0; t < k; ++t)
          for (int64_t v = 0; v < V; ++v) {
            const float want = full.data<float>()[(b * T + T - k + t) * V + v];
            worst = std::max(worst, static_cast<double>(std::fabs(part.data<float>()[(b * k + t) * V + v] - want)));
            scale = std::max(scale, static_cast<double>(std::fabs(want)));
          }
      // Products over fewer rows may block their sums differently.
      EXPECT_LE(worst, 1e-5 * scale) << fixture << " " << precision << " keep " << keep;
    }
  }
}

TEST(LogitsToKeep, CausalLmScoresTheLastPositionsOnly) { expect_last_rows_match("roformer-tiny-causal"); }

TEST(LogitsToKeep, MaskedLmScoresTheLastPositionsOnly) { expect_last_rows_match("roformer-tiny-mlm"); }

TEST(LogitsToKeep, CacheStepsKeepTheirLastLogits) {
  const RoFormerModel model = RoFormerModel::from_pretrained(testing::data_path("fixtures/roformer-tiny-causal"));
  const ExecContext ctx{1, best_isa()};
  const int64_t V = model.config().vocab_size;
  Tensor prompt = Tensor::zeros({1, 5}, DType::I64);
  for (int64_t i = 0; i < 5; ++i) prompt.data<int64_t>()[i] = 10 + 7 * i;
  ForwardOptions last;
  last.logits_to_keep = 1;
  KvCache full_cache, kept_cache;
  const Tensor full = model.forward(Batch{prompt, {}, {}}, {}, ctx, &full_cache).heads.at("logits");
  const Tensor kept = model.forward(Batch{prompt, {}, {}}, last, ctx, &kept_cache).heads.at("logits");
  ASSERT_EQ(kept.shape(), (std::vector<int64_t>{1, 1, V}));
  for (int64_t v = 0; v < V; ++v) EXPECT_NEAR(kept.data<float>()[v], full.data<float>()[4 * V + v], 1e-5);
  // The cache holds every prompt position either way: the next step agrees.
  Tensor next = Tensor::zeros({1, 1}, DType::I64);
  next.data<int64_t>()[0] = 42;
  const Tensor a = model.forward(Batch{next, {}, {}}, {}, ctx, &full_cache).heads.at("logits");
  const Tensor b = model.forward(Batch{next, {}, {}}, last, ctx, &kept_cache).heads.at("logits");
  EXPECT_EQ(kept_cache.length(), 6);
  for (int64_t v = 0; v < V; ++v) EXPECT_NEAR(b.data<float>()[v], a.data<float>()[v], 1e-5);
}

TEST(LogitsToKeep, RejectsNegativeCountsAndOtherHeads) {
  const ExecContext ctx{1, best_isa()};
  const RoFormerModel mlm = RoFormerModel::from_pretrained(testing::data_path("fixtures/roformer-tiny-mlm"));
  const Batch batch = two_rows(4, mlm.config().vocab_size);
  ForwardOptions negative;
  negative.logits_to_keep = -1;
  EXPECT_THROW(mlm.forward(batch, negative, ctx), Error);
  const RoFormerModel cls = RoFormerModel::from_pretrained(testing::data_path("fixtures/roformer-tiny-cls"));
  ForwardOptions one;
  one.logits_to_keep = 1;
  try {
    cls.forward(two_rows(4, cls.config().vocab_size), one, ctx);
    ADD_FAILURE() << "no error for a classification head";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("language-model heads"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace roformer
