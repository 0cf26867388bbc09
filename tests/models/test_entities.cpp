// Entity grouping of token labels (HF's aggregation strategies) on hand-made
// label sequences.
#include <gtest/gtest.h>

#include "roformer/entities.h"
#include "roformer/error.h"

namespace roformer {
namespace {

TokenLabel label(const char* name, double score, int64_t start, int64_t end, int segment = 0) {
  return {name, score, {start, end}, false, segment, false, {}};
}

TokenLabel special() { return {"O", 1.0, {0, 0}, true, 0, false, {}}; }

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
  const auto only_per = group_entities(tokens, Aggregation::Simple, {}, {"O", "MISC"});
  ASSERT_EQ(only_per.size(), 1u);
  EXPECT_EQ(only_per[0].group, "PER");
  EXPECT_EQ(group_entities(tokens, Aggregation::Simple, {}, {}).size(), 3u) << "with nothing ignored, O is a group too";
  EXPECT_TRUE(group_entities({}).empty());
}

// Word strategies: "John" + "##ny" is one word, labelled by its first token,
// its surest token, or the best class of the averaged probabilities.
TEST(Entities, WordStrategiesNeverSplitAWord) {
  const std::vector<std::string> names{"O", "B-PER", "I-PER", "B-LOC", "I-LOC"};
  TokenLabel john = label("B-PER", 0.9, 0, 4);
  john.probs = {0.05, 0.9, 0.02, 0.01, 0.02};
  TokenLabel ny = label("I-LOC", 0.95, 4, 6);
  ny.subword = true;
  ny.probs = {0.0, 0.01, 0.02, 0.02, 0.95};
  TokenLabel lives = label("O", 0.8, 7, 12);
  lives.probs = {0.8, 0.05, 0.05, 0.05, 0.05};
  const std::vector<TokenLabel> tokens{special(), john, ny, lives, special()};

  const auto simple = group_entities(tokens);
  ASSERT_EQ(simple.size(), 2u) << "token by token, the word splits into PER and LOC";

  const auto first = group_entities(tokens, Aggregation::First, names);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].group, "PER");
  EXPECT_DOUBLE_EQ(first[0].score, 0.9);
  EXPECT_EQ(first[0].span, (CharSpan{0, 6}));
  EXPECT_EQ(first[0].first_token, 1);
  EXPECT_EQ(first[0].last_token, 2);

  const auto max = group_entities(tokens, Aggregation::Max, names);
  ASSERT_EQ(max.size(), 1u);
  EXPECT_EQ(max[0].group, "LOC");
  EXPECT_DOUBLE_EQ(max[0].score, 0.95);

  // Mean probabilities: I-LOC (0.02 + 0.95) / 2 = 0.485 beats B-PER (0.9 + 0.01) / 2 = 0.455.
  const auto average = group_entities(tokens, Aggregation::Average, names);
  ASSERT_EQ(average.size(), 1u);
  EXPECT_EQ(average[0].group, "LOC");
  EXPECT_DOUBLE_EQ(average[0].score, 0.485);
  EXPECT_EQ(average[0].span, (CharSpan{0, 6}));

  // A piece after a special token or in the pair starts a word of its own.
  TokenLabel orphan = ny;
  orphan.segment = 1;
  EXPECT_EQ(group_entities({john, orphan}, Aggregation::First, names).size(), 2u);
  TokenLabel bare = john;
  bare.probs.clear();
  EXPECT_THROW(group_entities({bare}, Aggregation::Average, names), Error);
  EXPECT_EQ(parse_aggregation("average"), Aggregation::Average);
  EXPECT_THROW(parse_aggregation("mean"), Error);
}

}  // namespace
}  // namespace roformer
