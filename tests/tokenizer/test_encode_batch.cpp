// Tokenizer::encode_batch against encode() one text at a time: the golden
// cases' texts of every tokenizer set (jieba included where its dictionary is
// installed), as pairs, truncated and with offsets, on 1 to 3 threads; and
// its errors, which must not depend on the thread count.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "roformer/error.h"
#include "roformer/tokenizer.h"
#include "support/test_support.h"

namespace roformer {
namespace {

using nlohmann::json;

const json& golden_sets() {
  static const json sets = [] {
    std::ifstream in(testing::data_path("fixtures/tokenizer_cases.json"));
    std::stringstream ss;
    ss << in.rdbuf();
    return json::parse(ss.str()).at("sets");
  }();
  return sets;
}

std::vector<std::string> golden_texts(const std::string& set) {
  std::vector<std::string> texts;
  for (const json& c : golden_sets().at(set).at("cases")) texts.push_back(c.at("text").get<std::string>());
  return texts;
}

Tokenizer tokenizer_for(const std::string& set) {
  TokenizerOptions o;
  o.do_lower_case = set != "bert_cased";
  o.use_jieba = set == "roformer_jieba";
  return Tokenizer(Vocab::from_file(testing::data_path("fixtures/vocab.txt")), o);
}

void expect_same(const Encoding& got, const Encoding& want, const std::string& what) {
  EXPECT_EQ(got.tokens, want.tokens) << what;
  EXPECT_EQ(got.input_ids, want.input_ids) << what;
  EXPECT_EQ(got.token_type_ids, want.token_type_ids) << what;
  EXPECT_EQ(got.attention_mask, want.attention_mask) << what;
  EXPECT_EQ(got.offsets, want.offsets) << what;
}

TEST(EncodeBatch, EqualsEncodingOneTextAtATimeAtAnyThreadCount) {
  for (const std::string set : {"bert_uncased", "bert_cased", "roformer_jieba"}) {
    if (set == "roformer_jieba" && !std::filesystem::exists(default_jieba_dict_path())) continue;
    const Tokenizer tok = tokenizer_for(set);
    const std::vector<std::string> texts = golden_texts(set);
    ASSERT_GT(texts.size(), 50u) << set;
    // Each text paired with another, so pairs of every kind of text occur.
    std::vector<std::string> pairs(texts.rbegin(), texts.rend());
    for (int threads : {1, 2, 3}) {
      for (bool with_offsets : {false, true}) {
        const std::string where = set + ", " + std::to_string(threads) + " thread(s)" + (with_offsets ? ", offsets" : "");
        const auto singles = tok.encode_batch(texts, {}, threads, Truncation::None, std::nullopt, with_offsets);
        const auto paired = tok.encode_batch(texts, pairs, threads, Truncation::LongestFirst, 12, with_offsets);
        ASSERT_EQ(singles.size(), texts.size());
        ASSERT_EQ(paired.size(), texts.size());
        for (std::size_t i = 0; i < texts.size(); ++i) {
          expect_same(singles[i], tok.encode(texts[i], std::nullopt, Truncation::None, std::nullopt, with_offsets),
                      where + ": " + texts[i]);
          expect_same(paired[i], tok.encode(texts[i], pairs[i], Truncation::LongestFirst, 12, with_offsets),
                      where + ", paired: " + texts[i]);
        }
      }
    }
  }
}

TEST(EncodeBatch, TheFirstFailingTextIsReportedAtAnyThreadCount) {
  const Tokenizer tok = tokenizer_for("bert_uncased");
  std::vector<std::string> texts(200, "a plain text");
  texts[57] = "broken \xff here";
  texts[58] = "also \xc3 broken";
  texts[190] = "\xfe";
  for (int threads : {1, 2, 3}) {
    try {
      tok.encode_batch(texts, {}, threads);
      ADD_FAILURE() << "invalid UTF-8 accepted on " << threads << " thread(s)";
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.rfind("text 57: ", 0), 0u) << message;
      EXPECT_NE(message.find("UTF-8"), std::string::npos) << message;
    }
  }
  // A truncation that cannot be done is reported the same way. Text 120 is
  // long, so on several threads text 150 fails first in time; 120 must
  // still be the one reported.
  std::vector<std::string> fits(200, "fine");
  for (int i = 0; i < 20000; ++i) fits[120] += "the cat sat on the mat ";
  fits[150] = "a b c d e f g h";
  const std::vector<std::string> pairs(fits.size(), "b");
  const auto room = static_cast<int64_t>(tok.encode("fine", "b").input_ids.size());  // "fine" fits exactly
  for (int threads : {1, 2, 3}) {
    try {
      tok.encode_batch(fits, pairs, threads, Truncation::OnlySecond, room);
      ADD_FAILURE() << "impossible truncation accepted on " << threads << " thread(s)";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).rfind("text 120: ", 0), 0u) << e.what();
    }
  }
}

TEST(EncodeBatch, RejectsMismatchedPairsAndThreadCountsAndTakesEmptyLists) {
  const Tokenizer tok = tokenizer_for("bert_uncased");
  const std::vector<std::string> texts{"one", "two", "three"};
  const std::vector<std::string> two_pairs{"x", "y"};
  testing::expect_error([&] { tok.encode_batch(texts, two_pairs); }, "3 texts but 2 pairs");
  testing::expect_error([&] { tok.encode_batch(texts, {}, 0); }, "threads must be at least 1");
  EXPECT_TRUE(tok.encode_batch({}, {}, 2).empty());
  // An empty text encodes as encode("") does: [CLS] [SEP].
  const auto e = tok.encode_batch(std::vector<std::string>{""}, {}, 2);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].tokens, (std::vector<std::string>{"[CLS]", "[SEP]"}));
}

}  // namespace
}  // namespace roformer
