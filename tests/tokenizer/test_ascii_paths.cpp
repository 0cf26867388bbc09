// The tokenizer's shortcuts for ASCII text and its vocabulary index, each
// against the general path it stands in for: BasicTokenizer::tokenize_ascii
// against tokenize() on the widened text; whole tokenizers on ASCII text
// against the same text pushed through the Unicode paths; the vocabulary's
// open-addressing index against a plain map of the same lines.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "roformer/tokenizer.h"
#include "support/test_support.h"
#include "tokenizer/basic_tokenizer.h"
#include "tokenizer/unicode_text.h"

namespace roformer {
namespace {

// Seeded ASCII texts weighted towards what makes words: letters of both
// cases, digits, every punctuation mark, the four spaces _clean_text keeps,
// the control bytes it drops, and words the never_split lists hold.
std::vector<std::string> ascii_texts(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  const std::vector<std::string> pieces = {"the", "The", "CAT", "don't", "U.S.A.", "e-mail", "x1", "[CLS]", "[MASK]",
                                           "Keep.Me", "keep.me", "unaffable", "running", "(a)", "42.5%", "\x7f", "\x01",
                                           "\x0b", "\x0c", "\x1c", "\x1f", "\t", "\n", "\r", " ", "  ", "!", "?!", "##"};
  std::uniform_int_distribution<int> count(0, 12), piece(0, static_cast<int>(pieces.size()) - 1), byte(0, 127),
      kind(0, 3);
  std::vector<std::string> texts;
  for (int i = 0; i < n; ++i) {
    std::string t;
    const int k = count(rng);
    for (int j = 0; j < k; ++j) {
      if (kind(rng) == 0) {
        t += static_cast<char>(byte(rng));  // any ASCII byte, NUL included
      } else {
        t += pieces[static_cast<std::size_t>(piece(rng))];
        if (kind(rng) != 0) t += ' ';
      }
    }
    texts.push_back(t);
  }
  return texts;
}

TEST(AsciiPaths, BasicTokenizerAsciiLoopEqualsTheUnicodeOne) {
  const std::vector<std::string> extra_utf8 = {"[CLS]", "[SEP]", "[MASK]", "Keep.Me"};
  std::set<std::u32string> extra_wide;
  std::set<std::string, std::less<>> extra;
  for (const std::string& s : extra_utf8) {
    extra_wide.insert(tok::decode_utf8(s, "test"));
    extra.insert(s);
  }
  const auto texts = ascii_texts(3000, 7);
  for (bool lower : {true, false}) {
    for (std::optional<bool> strip : {std::optional<bool>{}, std::optional<bool>{true}, std::optional<bool>{false}}) {
      for (bool split_punc : {true, false}) {
        for (const std::vector<std::string>& never : {std::vector<std::string>{}, std::vector<std::string>{"don't", "x1"}}) {
          tok::BasicTokenizer::Options o;
          o.do_lower_case = lower;
          o.strip_accents = strip;
          o.do_split_on_punc = split_punc;
          const tok::BasicTokenizer basic(o, never);
          for (const std::string& t : texts) {
            std::vector<std::string> fast;
            basic.tokenize_ascii(t, extra, fast);
            ASSERT_EQ(fast, basic.tokenize(tok::decode_utf8(t, "test"), extra_wide))
                << ::testing::PrintToString(t) << " lower " << lower << " split " << split_punc;
          }
        }
      }
    }
  }
}

// The same text through the general paths: a last word of one non-ASCII
// letter sends the whole text through the Unicode loops and adds only that
// word's own tokens at the end (words are tokenized one at a time).
std::vector<std::string> via_unicode(const Tokenizer& tok, const std::string& text) {
  const std::string marker = "\xc3\xa9";  // é
  auto tokens = tok.tokenize(text + " " + marker);
  const auto tail = tok.tokenize(marker);
  EXPECT_GE(tokens.size(), tail.size());
  EXPECT_TRUE(std::equal(tail.begin(), tail.end(), tokens.end() - static_cast<std::ptrdiff_t>(tail.size())));
  tokens.resize(tokens.size() - tail.size());
  return tokens;
}

TEST(AsciiPaths, TokenizersGiveTheUnicodePathsTokensOnAsciiText) {
  const Vocab vocab = Vocab::from_file(testing::data_path("fixtures/vocab.txt"));
  std::vector<TokenizerOptions> settings(4);
  settings[1].do_lower_case = false;
  settings[2].never_split = {"don't", "Keep.Me"};
  settings[3].strip_accents = false;
  settings[3].tokenize_chinese_chars = false;
  const auto texts = ascii_texts(2000, 11);
  for (std::size_t s = 0; s < settings.size(); ++s) {
    const Tokenizer tok(vocab, settings[s]);
    for (const std::string& t : texts) {
      ASSERT_EQ(tok.tokenize(t), via_unicode(tok, t)) << "setting " << s << ": " << ::testing::PrintToString(t);
    }
  }
}

TEST(AsciiPaths, VocabularyIndexAgreesWithAMapOfItsLines) {
  // 60,000 lines: short and long tokens, "##" pieces, an empty line, and
  // every tenth token listed again later (its earlier line loses it).
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> letter('a', 'z'), length(1, 24);
  std::vector<std::string> lines;
  for (int i = 0; i < 60000; ++i) {
    std::string t = i % 7 == 0 ? "##" : "";
    const int n = length(rng);
    for (int j = 0; j < n; ++j) t += static_cast<char>(letter(rng));
    lines.push_back(t);
    if (i % 10 == 0 && i > 0) lines.push_back(lines[lines.size() / 2]);
  }
  lines.insert(lines.begin() + 100, "");
  std::string text;
  std::map<std::string, int64_t> last;  // what HF's OrderedDict keeps
  for (std::size_t i = 0; i < lines.size(); ++i) {
    text += lines[i] + "\n";
    last[lines[i]] = static_cast<int64_t>(i);
  }
  const Vocab v = Vocab::from_string(text);
  ASSERT_EQ(v.size(), static_cast<int64_t>(lines.size()));
  EXPECT_EQ(v.unique_size(), static_cast<int64_t>(last.size()));
  std::size_t longest = 0;
  for (const auto& [token, id] : last) {
    ASSERT_EQ(v.find(token), id) << token;
    longest = std::max(longest, token.size());
  }
  EXPECT_EQ(v.longest_token_bytes(), longest);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string* t = v.token(static_cast<int64_t>(i));
    if (last[lines[i]] == static_cast<int64_t>(i)) {
      ASSERT_NE(t, nullptr);
      EXPECT_EQ(*t, lines[i]);
    } else {
      EXPECT_EQ(t, nullptr) << "line " << i << " was listed again later";
    }
  }
  // Strings that are not tokens: prefixes, extensions, other cases.
  int absent = 0;
  for (const auto& [token, id] : last) {
    for (const std::string& other : {token + "q", "Q" + token, token.empty() ? "x" : token.substr(1)}) {
      if (last.count(other) == 0) {
        EXPECT_FALSE(v.find(other).has_value()) << other;
        ++absent;
      }
    }
  }
  EXPECT_GT(absent, 100000);
}

TEST(AsciiPaths, WordPieceStillFindsTokensOfTheLongestLength) {
  // The longest token, "##naffable", is 10 bytes; candidates longer than it
  // are skipped without a lookup, and it must itself still be found.
  std::string text = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nunaffable\n##naffable\n";
  for (char c = 'a'; c <= 'z'; ++c) text += std::string(1, c) + "\n##" + std::string(1, c) + "\n";
  const Tokenizer tok(Vocab::from_string(text), TokenizerOptions{});
  ASSERT_EQ(tok.vocab().longest_token_bytes(), 10u);
  EXPECT_EQ(tok.tokenize("unaffable"), (std::vector<std::string>{"unaffable"}));
  EXPECT_EQ(tok.tokenize("uunaffable"), (std::vector<std::string>{"u", "##u", "##naffable"}));
  EXPECT_EQ(tok.tokenize("unaffables"), (std::vector<std::string>{"unaffable", "##s"}));
}

}  // namespace
}  // namespace roformer
