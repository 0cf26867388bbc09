// NLTK's word_tokenize (one sentence) against NLTK 3.8's own output on about
// 3,000 texts: hand-written cases for every rule and seeded random mixtures
// of quotes, brackets, contractions, numbers and non-ASCII letters
// (tests/data/nltk/make_goldens.py).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/test_support.h"
#include "tokenizer/treebank_words.h"
#include "tokenizer/unicode_text.h"

namespace roformer {
namespace {

std::vector<std::string> words_of(const std::string& text) {
  std::vector<std::string> out;
  for (const auto& w : tok::treebank_words(tok::decode_utf8(text, "text"))) out.push_back(tok::to_utf8(w));
  return out;
}

TEST(TreebankWords, MatchNltkOnEveryGolden) {
  const auto goldens = testing::read_jsonl("nltk/treebank_words.jsonl");
  int failures = 0;
  for (const auto& golden : goldens) {
    const std::string text = golden["text"];
    const auto want = golden["words"].get<std::vector<std::string>>();
    const auto got = words_of(text);
    if (got != want && ++failures <= 10) {
      ADD_FAILURE() << "text: " << nlohmann::json(text).dump() << "\n  want " << nlohmann::json(want).dump()
                    << "\n  got  " << nlohmann::json(got).dump();
    }
  }
  EXPECT_GT(goldens.size(), 3000u);
  EXPECT_EQ(failures, 0);
}

// A few rules spelled out, so a failure names what broke.
TEST(TreebankWords, TreebankRules) {
  using Words = std::vector<std::string>;
  EXPECT_EQ(words_of("Good muffins cost $3.88 in New York."),
            (Words{"Good", "muffins", "cost", "$", "3.88", "in", "New", "York", "."}));
  EXPECT_EQ(words_of("don't, I'm, cannot"), (Words{"do", "n't", ",", "I", "'m", ",", "can", "not"}));
  EXPECT_EQ(words_of("\"hi\" (there)"), (Words{"``", "hi", "''", "(", "there", ")"}));
  EXPECT_EQ(words_of("U.S. and e.g. stay whole..."), (Words{"U.S.", "and", "e.g.", "stay", "whole", "..."}));
  EXPECT_EQ(words_of("3:2 but a:b"), (Words{"3:2", "but", "a", ":", "b"}));
  EXPECT_EQ(words_of("   "), Words{});
}

}  // namespace
}  // namespace roformer
