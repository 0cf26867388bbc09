// BERT MLM masking: rates (statistically), specials and padding untouched,
// whole words kept together, determinism.
#include <gtest/gtest.h>

#include <cmath>

#include "data_test_util.h"
#include "roformer/error.h"
#include "roformer/mlm_masking.h"

namespace roformer {
namespace {

// A toy vocabulary: 0..4 special ([MASK] = 4), 5..99 word starts, 100..199 "##" pieces.
MlmVocab toy_vocab() {
  MlmVocab v;
  v.mask_id = 4;
  v.special.assign(200, false);
  v.continuation.assign(200, false);
  for (int i = 0; i < 5; ++i) v.special[static_cast<std::size_t>(i)] = true;
  for (int i = 100; i < 200; ++i) v.continuation[static_cast<std::size_t>(i)] = true;
  return v;
}

// [CLS] words... [SEP] [PAD]...; words are a start token plus 0-2 pieces.
std::vector<int64_t> toy_sequence(DataRng& rng, int64_t length, int64_t padding) {
  std::vector<int64_t> ids{2};
  while (static_cast<int64_t>(ids.size()) < length - padding - 1) {
    ids.push_back(5 + static_cast<int64_t>(rng.below(95)));
    const auto pieces = rng.below(3);
    for (uint64_t p = 0; p < pieces && static_cast<int64_t>(ids.size()) < length - padding - 1; ++p) {
      ids.push_back(100 + static_cast<int64_t>(rng.below(100)));
    }
  }
  ids.push_back(3);
  while (static_cast<int64_t>(ids.size()) < length) ids.push_back(0);
  return ids;
}

// Binomial tolerance: 5 standard deviations.
double tolerance(double n, double p) { return 5.0 * std::sqrt(n * p * (1 - p)); }

TEST(DataMlmMasking, RatesMatchBert) {
  const MlmMasker masker(toy_vocab(), MlmMaskingOptions{});
  DataRng data(1), rng(2);
  int64_t maskable = 0, chosen = 0, masked = 0, random = 0, kept = 0;
  for (int s = 0; s < 2000; ++s) {
    auto ids = toy_sequence(data, 128, 10);
    const auto original = ids;
    std::vector<int64_t> mask(ids.size(), 1), labels(ids.size());
    for (std::size_t i = ids.size() - 10; i < ids.size(); ++i) mask[i] = 0;
    const int64_t n = masker.apply(ids, labels, rng, mask);
    int64_t here = 0, chosen_here = 0;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const bool special = original[i] < 5;
      here += !special;
      if (labels[i] == kIgnoreLabel) {
        EXPECT_EQ(ids[i], original[i]) << "only chosen positions change";
        continue;
      }
      ++chosen_here;
      EXPECT_FALSE(special) << "specials and padding are never chosen";
      EXPECT_EQ(labels[i], original[i]);
      if (ids[i] == 4) {
        ++masked;
      } else if (ids[i] == original[i]) {
        ++kept;
      } else {
        ++random;
        EXPECT_GE(ids[i], 5) << "random replacements are ordinary tokens";
      }
    }
    EXPECT_EQ(n, chosen_here);
    // Exactly round(15%) of the maskable tokens: 117 * 0.15 = 17.55 -> 18.
    EXPECT_EQ(chosen_here, std::llround(here * 0.15));
    maskable += here;
    chosen += chosen_here;
  }
  const double c = static_cast<double>(chosen);
  EXPECT_NEAR(c / static_cast<double>(maskable), 0.15, 0.005);
  EXPECT_NEAR(static_cast<double>(masked), 0.8 * c, tolerance(c, 0.8));
  // A random draw can hit the original token (1 in 195): it then counts as kept.
  const double p_random = 0.1 * (1 - 1.0 / 195);
  EXPECT_NEAR(static_cast<double>(random), p_random * c, tolerance(c, p_random));
  EXPECT_NEAR(static_cast<double>(kept), (1 - 0.8 - p_random) * c, tolerance(c, 0.1));
}

TEST(DataMlmMasking, WholeWordsAreChosenTogether) {
  MlmMaskingOptions o;
  o.whole_word = true;
  const MlmMasker masker(toy_vocab(), o);
  DataRng data(3), rng(4);
  int64_t chosen = 0, maskable = 0;
  for (int s = 0; s < 1000; ++s) {
    auto ids = toy_sequence(data, 128, 0);
    const auto original = ids;
    std::vector<int64_t> labels(ids.size());
    masker.apply(ids, labels, rng);
    // Every word is either wholly labelled or wholly not.
    for (std::size_t i = 1; i + 1 < ids.size(); ++i) {
      const bool piece = original[i] >= 100;
      if (piece && original[i - 1] >= 5) {
        EXPECT_EQ(labels[i] == kIgnoreLabel, labels[i - 1] == kIgnoreLabel) << "position " << i;
      }
      maskable += 1;
      chosen += labels[i] != kIgnoreLabel;
    }
  }
  // Never more than the target; words that would overshoot are passed over, so a little less.
  EXPECT_LE(static_cast<double>(chosen) / static_cast<double>(maskable), 0.151);
  EXPECT_GT(static_cast<double>(chosen) / static_cast<double>(maskable), 0.14);
}

TEST(DataMlmMasking, DeterministicForTheSameRngState) {
  const MlmMasker masker(toy_vocab(), MlmMaskingOptions{});
  DataRng data(5);
  const auto ids = toy_sequence(data, 256, 0);
  auto a = ids, b = ids, c = ids;
  std::vector<int64_t> la(ids.size()), lb(ids.size()), lc(ids.size());
  DataRng r1(77), r2(77), r3(78);
  masker.apply(a, la, r1);
  masker.apply(b, lb, r2);
  masker.apply(c, lc, r3);
  EXPECT_EQ(a, b);
  EXPECT_EQ(la, lb);
  EXPECT_NE(la, lc);
}

TEST(DataMlmMasking, EdgeCasesAndOptions) {
  MlmMaskingOptions o;
  o.max_predictions = 3;
  const MlmMasker capped(toy_vocab(), o);
  DataRng data(6), rng(7);
  auto ids = toy_sequence(data, 200, 0);
  std::vector<int64_t> labels(ids.size());
  EXPECT_EQ(capped.apply(ids, labels, rng), 3);
  // Only specials: nothing to choose. One ordinary token: it is chosen.
  std::vector<int64_t> specials{2, 3, 0, 0}, l4(4);
  EXPECT_EQ(capped.apply(specials, l4, rng), 0);
  std::vector<int64_t> one{2, 50, 3}, l3(3);
  EXPECT_EQ(capped.apply(one, l3, rng), 1);
  EXPECT_EQ(l3[1], 50);
  // Bad input.
  std::vector<int64_t> out_of_range{2, 500, 3};
  EXPECT_THROW(capped.apply(out_of_range, l3, rng), Error);
  std::vector<int64_t> short_labels(2);
  EXPECT_THROW(capped.apply(one, short_labels, rng), Error);
  MlmMaskingOptions bad;
  bad.mask_token_fraction = 0.95;
  EXPECT_THROW(MlmMasker(toy_vocab(), bad), Error);
  bad = MlmMaskingOptions{};
  bad.mask_probability = 1.5;
  EXPECT_THROW(MlmMasker(toy_vocab(), bad), Error);
}

TEST(DataMlmMasking, VocabFromTokenizer) {
  const auto& tok = data_test::sample_tokenizer();
  const auto v = mlm_vocab(tok);
  EXPECT_EQ(v.size(), tok.id_space());
  EXPECT_EQ(v.mask_id, tok.mask_id());
  for (int64_t id : {tok.pad_id(), tok.unk_id(), tok.cls_id(), tok.sep_id(), tok.mask_id()}) {
    EXPECT_TRUE(v.special[static_cast<std::size_t>(id)]) << id;
  }
  const int64_t piece = tok.token_to_id("##s");
  ASSERT_NE(piece, tok.unk_id());
  EXPECT_TRUE(v.continuation[static_cast<std::size_t>(piece)]);
  EXPECT_FALSE(v.continuation[static_cast<std::size_t>(tok.token_to_id("the"))]);
}

}  // namespace
}  // namespace roformer
