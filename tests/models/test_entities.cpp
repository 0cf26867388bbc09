// Entity grouping of token labels (HF's aggregation_strategy "simple") on
// hand-made label sequences.
#include <gtest/gtest.h>

#include "roformer/entities.h"

namespace roformer {
namespace {

TokenLabel label(const char* name, double score, int64_t start, int64_t end, int segment = 0) {
  return {name, score, {start, end}, false, segment};
}

TokenLabel special() { return {"O", 1.0, {0, 0}, true, 0}; }

TEST(Entities, BeginsContinuationsAndBareLabels) {
  // [CLS] John ##ny lives in new york city , paris [SEP]
  const std::vector<TokenLabel> tokens{special(),
                                       label("B-PER", 0.9, 0, 4),
                                       label("I-PER", 0.7, 4, 6),
                                       label("O", 0.99, 7, 12),
                                       label("O", 0.9, 13, 15),
                                       label("B-LOC", 0.8, 16, 19),
                                       label("I-LOC", 0.6, 20, 24),
                                       label("LOC", 0.5, 25, 29),  // no prefix: continues
                                       label("O", 0.9, 29, 30),
                                       label("B-LOC", 0.4, 31, 36),
                                       special()};
  const auto e = group_entities(tokens);
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].group, "PER");
  EXPECT_DOUBLE_EQ(e[0].score, 0.8);
  EXPECT_EQ(e[0].span, (CharSpan{0, 6}));
  EXPECT_EQ(e[0].first_token, 1);
  EXPECT_EQ(e[0].last_token, 2);
  EXPECT_EQ(e[1].group, "LOC");
  EXPECT_NEAR(e[1].score, (0.8 + 0.6 + 0.5) / 3, 1e-15);
  EXPECT_EQ(e[1].span, (CharSpan{16, 29}));
  EXPECT_EQ(e[2].group, "LOC");
  EXPECT_EQ(e[2].span, (CharSpan{31, 36}));
  EXPECT_EQ(e[2].first_token, 9);
}

TEST(Entities, TypeChangesSpecialsAndSegmentsEndAGroup) {
  const std::vector<TokenLabel> tokens{label("I-PER", 0.5, 0, 3),  // a group may open with I-
                                       label("I-LOC", 0.5, 4, 6),  // another type
                                       special(),
                                       label("I-LOC", 0.5, 0, 2),  // after a special
                                       label("I-LOC", 0.5, 3, 5, 1)};  // in the pair
  const auto e = group_entities(tokens);
  ASSERT_EQ(e.size(), 4u);
  EXPECT_EQ(e[0].group, "PER");
  EXPECT_EQ(e[1].span, (CharSpan{4, 6}));
  EXPECT_EQ(e[2].span, (CharSpan{0, 2}));
  EXPECT_EQ(e[3].segment, 1);
}

TEST(Entities, IgnoredTypesAreLeftOut) {
  const std::vector<TokenLabel> tokens{label("O", 0.9, 0, 2), label("B-PER", 0.9, 3, 5), label("B-MISC", 0.9, 6, 8)};
  EXPECT_EQ(group_entities(tokens).size(), 2u);
  const auto only_per = group_entities(tokens, {"O", "MISC"});
  ASSERT_EQ(only_per.size(), 1u);
  EXPECT_EQ(only_per[0].group, "PER");
  EXPECT_EQ(group_entities(tokens, {}).size(), 3u) << "with nothing ignored, O is a group too";
  EXPECT_TRUE(group_entities({}).empty());
}

}  // namespace
}  // namespace roformer
