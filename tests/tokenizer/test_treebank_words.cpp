// NLTK's word_tokenize (one sentence) against NLTK 3.8's own output on about
// 3,000 texts: hand-written cases for every rule and seeded random mixtures
// of quotes, brackets, contractions, numbers and non-ASCII letters
// (tests/data/nltk/make_goldens.py).
#include <gtest/gtest.h>

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
  EXPECT_GT(testing::expect_word_goldens("nltk/treebank_words.jsonl", "words", words_of), 3000u);
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
