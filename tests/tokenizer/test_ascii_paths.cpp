// The tokenizer's shortcuts for ASCII text and its vocabulary index, each
// against the general path it stands in for: BasicTokenizer::tokenize_ascii
// against tokenize() on the widened text, and tokenize_utf8 (ASCII words on
// the byte loop, the others widened one at a time) against tokenize() on the
// whole text; lowercasing in UTF-8 against the widened loop; whole
// tokenizers against the same text pushed through the general split around
// added tokens; the vocabulary's open-addressing index against a plain map
// of the same lines.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "roformer/error.h"
#include "roformer/tokenizer.h"
#include "support/test_support.h"
#include "tokenizer/basic_tokenizer.h"
#include "tokenizer/unicode_text.h"
#include "tokenizer/wordpiece.h"

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

// Seeded texts of ASCII words and the non-ASCII characters the Unicode path
// treats specially: accented letters precomposed and not, a combining mark
// after a space, letters whose lower case or NFC differs in length or form
// (U+0130, final sigma, the Angstrom sign, Hangul jamo), CJK ideographs
// (unified, Extension A and B, a compatibility one NFC replaces, an
// unassigned one cleaning drops, one with a combining mark after it) and
// CJK punctuation, non-ASCII spaces (NBSP, ideographic, NEL), a zero-width space (dropped as a
// control), U+FFFD, punctuation, an emoji.
std::vector<std::string> mixed_texts(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  const std::vector<std::string> wide = {"\xc3\xa9",
                                        "\xc3\x89",
                                        "\xc3\xa9t\xc3\xa9",
                                        "Stra\xc3\x9f" "e",
                                        "na\xc3\xafve",
                                        "e\xcc\x81",
                                        " \xcc\x81",
                                        "\xc4\xb0stanbul",
                                        "\xce\x9f\xce\x94\xce\x9f\xce\xa3",
                                        "\xce\xa3",
                                        "\xe2\x84\xab",
                                        "\xe1\x84\x80\xe1\x85\xa1",
                                        "\xe4\xb8\xad\xe6\x96\x87",
                                        "\xe4\xb8\xad\xcc\x81",
                                        "\xe3\x90\x80\xe4\xb8\xad",
                                        "\xef\xa4\x80",
                                        "\xf0\xa0\x80\x80",
                                        "\xf0\xab\x9c\xb9",
                                        "\xef\xbc\x8c",
                                        "\xe3\x80\x82",
                                        "\xc2\xa0",
                                        "\xe3\x80\x80",
                                        "\xc2\x85",
                                        "\xe2\x80\x8b",
                                        "\xef\xbf\xbd",
                                        "\xe2\x80\x99",
                                        "\xc2\xbf",
                                        "\xf0\x9f\x99\x82"};
  const auto ascii = ascii_texts(n, seed + 1);
  std::uniform_int_distribution<int> count(0, 4), pick(0, static_cast<int>(wide.size()) - 1), kind(0, 2);
  std::vector<std::string> texts;
  for (int i = 0; i < n; ++i) {
    std::string t = ascii[static_cast<std::size_t>(i)];
    for (int k = count(rng); k > 0; --k) {
      // Inside a word, or a word of its own, at a random character boundary.
      std::size_t at = rng() % (t.size() + 1);
      while (at < t.size() && (static_cast<unsigned char>(t[at]) & 0xC0) == 0x80) --at;
      std::string w = wide[static_cast<std::size_t>(pick(rng))];
      if (kind(rng) == 0) w = " " + w + " ";
      t.insert(at, w);
    }
    texts.push_back(t);
  }
  return texts;
}

TEST(AsciiPaths, BasicTokenizerWordByWordEqualsTheWholeText) {
  const std::vector<std::string> extra_utf8 = {"[CLS]", "[MASK]", "Keep.Me", "\xc3\xa9t\xc3\xa9", "\xe4\xb8\xad"};
  std::set<std::u32string> extra_wide;
  std::set<std::string, std::less<>> extra;
  for (const std::string& s : extra_utf8) {
    extra_wide.insert(tok::decode_utf8(s, "test"));
    extra.insert(s);
  }
  auto texts = mixed_texts(3000, 5);
  texts.push_back("\xc3\xa9t\xc3\xa9 don't \xc3\x89T\xc3\x89");  // never_split words, both paths
  for (bool lower : {true, false}) {
    for (std::optional<bool> strip : {std::optional<bool>{}, std::optional<bool>{true}, std::optional<bool>{false}}) {
      for (bool cjk : {true, false}) {
        for (bool split_punc : {true, false}) {
          tok::BasicTokenizer::Options o;
          o.do_lower_case = lower;
          o.strip_accents = strip;
          o.tokenize_chinese_chars = cjk;
          o.do_split_on_punc = split_punc;
          const tok::BasicTokenizer basic(o, {"don't"});
          for (const std::string& t : texts) {
            std::vector<std::string> words;
            basic.tokenize_utf8(t, extra_wide, extra, words);
            ASSERT_EQ(words, basic.tokenize(tok::decode_utf8(t, "test"), extra_wide))
                << ::testing::PrintToString(t) << " lower " << lower << " cjk " << cjk << " split " << split_punc;
          }
        }
      }
    }
  }
}

// WordPiece takes BasicTokenizer's words without splitting them at
// whitespace again (wordpiece_tokenize_word), as HF's split would find none:
// BasicTokenizer ends with Python's str.split(). Every character str.isspace()
// holds, put inside words, under every option: no word keeps one.
TEST(AsciiPaths, BasicTokenizerWordsHoldNoWhitespace) {
  std::vector<std::string> spaces;
  for (char32_t c = 0; c < 0x3001; ++c)
    if (tok::is_py_space(c)) spaces.push_back(tok::to_utf8(std::u32string(1, c)));
  ASSERT_EQ(spaces.size(), 29u);  // Python 3's str.isspace(): 10 in ASCII, 19 beyond
  std::mt19937 rng(31);
  auto texts = mixed_texts(1500, 33);
  for (std::string& t : texts) {
    for (int k = static_cast<int>(rng() % 4); k > 0; --k) {
      std::size_t at = rng() % (t.size() + 1);
      while (at < t.size() && (static_cast<unsigned char>(t[at]) & 0xC0) == 0x80) --at;
      t.insert(at, spaces[rng() % spaces.size()]);
    }
  }
  const std::set<std::u32string> extra_wide = {U"[CLS]"};
  const std::set<std::string, std::less<>> extra = {"[CLS]"};
  std::size_t words_seen = 0;
  for (bool lower : {true, false}) {
    for (bool cjk : {true, false}) {
      tok::BasicTokenizer::Options o;
      o.do_lower_case = lower;
      o.tokenize_chinese_chars = cjk;
      const tok::BasicTokenizer basic(o, {"don't"});
      for (const std::string& t : texts) {
        std::vector<std::string> words;
        basic.tokenize_utf8(t, extra_wide, extra, words);
        for (const std::string& w : words) {
          ASSERT_FALSE(w.empty()) << ::testing::PrintToString(t);
          for (char32_t c : tok::decode_utf8(w, "test"))
            ASSERT_FALSE(tok::is_py_space(c)) << ::testing::PrintToString(w) << " from " << ::testing::PrintToString(t);
        }
        words_seen += words.size();
      }
    }
  }
  EXPECT_GT(words_seen, texts.size() * 4);
}

TEST(AsciiPaths, LowercasingEachCharacterInUtf8) {
  for (const std::string& t : mixed_texts(2000, 9)) {
    std::u32string lowered;
    for (char32_t c : tok::decode_utf8(t, "test")) tok::append_py_lower(lowered, c);
    ASSERT_EQ(tok::lower_each_char(t), tok::to_utf8(lowered)) << ::testing::PrintToString(t);
  }
  EXPECT_EQ(tok::lower_each_char("\xc4\xb0\xce\xa3" "A"), "i\xcc\x87\xcf\x83" "a");  // U+0130 in full, no final sigma
  // U+4000..U+9FFF go through as bytes (decoded without the general step):
  // every one of them against the general step, and their sequences cut short
  // still refused where they stop.
  for (char32_t c = 0x4000; c <= 0x9FFF; ++c) {
    std::u32string lowered;
    tok::append_py_lower(lowered, c);
    const std::string one = tok::to_utf8(std::u32string(1, c));
    ASSERT_EQ(tok::lower_each_char("A" + one), "a" + tok::to_utf8(lowered)) << static_cast<uint32_t>(c);
    ASSERT_EQ(tok::find_invalid_utf8(one + one), std::string::npos) << static_cast<uint32_t>(c);
    ASSERT_EQ(tok::decode_utf8("a" + one + one, "test"), (std::u32string{U'a', c, c})) << static_cast<uint32_t>(c);
    ASSERT_THROW(tok::decode_utf8(one + one.substr(0, 2), "test"), Error) << static_cast<uint32_t>(c);
    ASSERT_EQ(tok::find_invalid_utf8("ab" + one.substr(0, 2)), 2u) << static_cast<uint32_t>(c);
    ASSERT_THROW(tok::lower_each_char(one + one.substr(0, 2)), Error) << static_cast<uint32_t>(c);
  }
  // A continuation byte missing in the middle or at the end of a sequence.
  EXPECT_EQ(tok::find_invalid_utf8("\xe4\xb8\xad\xe4\x41\x80"), 3u);
  EXPECT_EQ(tok::find_invalid_utf8("\xe4\xb8\xad\xe9\xbf\x41x"), 3u);
  EXPECT_THROW(tok::lower_each_char("\xe9\xbf\x41x"), Error);
}

// The same text through the general split around added tokens: a leading
// "[MASK] " (a special token, so never lowercased) sends the text through the
// split's Unicode loop and adds only its own token (the space after it makes
// no token; words are tokenized one at a time).
std::vector<std::string> via_general_split(const Tokenizer& tok, const std::string& text) {
  auto tokens = tok.tokenize("[MASK] " + text);
  EXPECT_FALSE(tokens.empty());
  if (tokens.empty()) return tokens;
  EXPECT_EQ(tokens.front(), "[MASK]");
  tokens.erase(tokens.begin());
  return tokens;
}

TEST(AsciiPaths, TokenizersGiveTheGeneralSplitsTokens) {
  const Vocab vocab = Vocab::from_file(testing::data_path("fixtures/vocab.txt"));
  std::vector<TokenizerOptions> settings(5);
  settings[1].do_lower_case = false;
  settings[2].never_split = {"don't", "Keep.Me"};
  settings[3].strip_accents = false;
  settings[3].tokenize_chinese_chars = false;
  // An added token starting with a non-ASCII letter: no text with such a letter is plain.
  settings[4].added_tokens.emplace_back(vocab.size(), AddedToken{"\xc3\xa9t\xc3\xa9", false});
  auto texts = ascii_texts(2000, 11);
  for (std::string& t : mixed_texts(2000, 13)) texts.push_back(std::move(t));
  for (std::size_t s = 0; s < settings.size(); ++s) {
    const Tokenizer tok(vocab, settings[s]);
    for (const std::string& t : texts) {
      ASSERT_EQ(tok.tokenize(t), via_general_split(tok, t)) << "setting " << s << ": " << ::testing::PrintToString(t);
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

// WordPiece splits its input at Python's whitespace first. Printable ASCII
// and CJK ideographs skip that split (they hold none); any other character
// takes it, so non-ASCII spaces still part words and broken UTF-8 is still
// refused.
TEST(AsciiPaths, WordPieceSplitsAtNonAsciiWhitespaceOnly) {
  const Vocab vocab = Vocab::from_string("[UNK]\n\xe4\xb8\xad\n##\xe6\x96\x87\n\xe6\x96\x87\na\n##b\nb\n");
  const auto pieces = [&](const std::string& text) {
    std::vector<std::string> out;
    tok::wordpiece_tokenize(text, vocab, "[UNK]", 100, out);
    return out;
  };
  using V = std::vector<std::string>;
  const std::string zhong = "\xe4\xb8\xad", wen = "\xe6\x96\x87";
  EXPECT_EQ(pieces(zhong + wen), (V{zhong, "##" + wen}));
  EXPECT_EQ(pieces("ab"), (V{"a", "##b"}));
  EXPECT_EQ(pieces("ab" + zhong), (V{"[UNK]"}));  // "##" + zhong is no token: the word is unknown
  // U+3000, U+00A0, U+2003, U+0085 and U+001C are whitespace to Python.
  for (const std::string space : {"\xe3\x80\x80", "\xc2\xa0", "\xe2\x80\x83", "\xc2\x85", "\x1c"}) {
    EXPECT_EQ(pieces(zhong + space + wen), (V{zhong, wen})) << ::testing::PrintToString(space);
    EXPECT_EQ(pieces("ab" + space + "b"), (V{"a", "##b", "b"})) << ::testing::PrintToString(space);
  }
  // U+3001 (an ideographic comma, not a space) keeps the word whole: no token covers it.
  EXPECT_EQ(pieces(zhong + "\xe3\x80\x81" + wen), (V{"[UNK]"}));
  for (const std::string& broken : V{"\xe4\xb8", zhong + "\xe9", "\xe4\xb8\xe4\xb8\xad", "a\xff"}) {
    EXPECT_THROW(pieces(broken), Error) << ::testing::PrintToString(broken);
  }
}

// A word of one plain ideograph skips WordPiece's loop: it is its own token
// or unknown, unless never_split keeps it, or no word may be that long.
TEST(AsciiPaths, OneIdeographWordsAsWordPieceGivesThem) {
  const std::string zhong = "\xe4\xb8\xad", wen = "\xe6\x96\x87", compat = "\xef\xa4\x80";
  const Vocab vocab = Vocab::from_string("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n" + zhong + "\n\xe8\xb1\x88\n");
  using V = std::vector<std::string>;
  const std::string text = zhong + wen + " a" + zhong + compat;
  EXPECT_EQ(Tokenizer(vocab, TokenizerOptions{}).tokenize(text),
            (V{zhong, "[UNK]", "[UNK]", zhong, "\xe8\xb1\x88"}));  // U+F900 becomes U+8C48 under NFC
  TokenizerOptions keep;
  keep.never_split = {wen};
  EXPECT_EQ(Tokenizer(vocab, keep).tokenize(text), (V{zhong, wen, "[UNK]", zhong, "\xe8\xb1\x88"}));
  TokenizerOptions none_fit;
  none_fit.max_input_chars_per_word = 0;
  EXPECT_EQ(Tokenizer(vocab, none_fit).tokenize(text), (V{"[UNK]", "[UNK]", "[UNK]", "[UNK]", "[UNK]"}));
  // The byte test itself, on the edges of the plain blocks and on broken sequences.
  for (char32_t c : {U'\u3400', U'\u4DBF', U'\u4E00', U'\u9FFF'}) {
    const std::string after_a = std::string("a").append(tok::to_utf8(std::u32string(1, c)));
    EXPECT_TRUE(tok::is_plain_ideograph_at(after_a, 1)) << static_cast<uint32_t>(c);
  }
  for (const std::string& not_plain :
       V{"\xe3\x8f\xbf", "\xe4\xb7\x80", "\xea\x80\x80", compat, "\xe4\xb8\x41", "\xe4\x41\xad", "\xe4\xb8"}) {
    EXPECT_FALSE(tok::is_plain_ideograph_at(not_plain, 0)) << ::testing::PrintToString(not_plain);
  }
}

// The encoders' paths, ids straight from WordPiece's lookups (alone, and
// beside the strings for offsets), against the ids of tokenize()'s strings,
// in every setting that sends a token another way: never_split words, added tokens (new ids, a vocab line's id, stripping),
// WordPiece without BasicTokenizer, a word limit that makes [UNK], jieba.
TEST(AsciiPaths, TokenIdsEqualTheIdsOfTheTokens) {
  const Vocab vocab = Vocab::from_file(testing::data_path("fixtures/vocab.txt"));
  std::vector<TokenizerOptions> settings(7);
  settings[1].never_split = {"don't", "Keep.Me", "\xe4\xb8\xad"};
  settings[2].added_tokens.emplace_back(vocab.size(), AddedToken{"keep.me", false, true, true, true});
  settings[2].added_tokens.emplace_back(vocab.size() + 1, AddedToken{"\xc3\xa9t\xc3\xa9", false});
  settings[2].added_tokens.emplace_back(*vocab.find("the"), AddedToken{"the", false});
  settings[3].do_basic_tokenize = false;
  settings[4].max_input_chars_per_word = 3;
  settings[5].do_lower_case = false;
  settings[6].use_jieba = true;
  ASSERT_TRUE(std::filesystem::exists(default_jieba_dict_path()))
      << "no jieba dict.txt at " << default_jieba_dict_path();
  auto texts = ascii_texts(1500, 21);
  for (std::string& t : mixed_texts(1500, 23)) texts.push_back(std::move(t));
  // Chinese words from the vocabulary, some not in it, run together as jieba sees them.
  const std::vector<std::string> zh = {"\xe4\xb8\xad", "\xe6\x96\x87", "\xe4\xbb\x8a\xe5\xa4\xa9",
                                       "\xe5\xbe\x88\xe5\xa5\xbd", "\xe6\x94\xbf", "\xe9\x9d\xa2", "abc",
                                       "\xef\xbc\x8c", "[MASK]"};
  std::mt19937 rng(25);
  for (int i = 0; i < 500; ++i) {
    std::string t;
    for (int k = static_cast<int>(rng() % 12); k > 0; --k) t += zh[rng() % zh.size()];
    texts.push_back(t);
  }
  std::size_t unknown = 0, total = 0;
  for (std::size_t s = 0; s < settings.size(); ++s) {
    const Tokenizer tok(vocab, settings[s]);
    for (const std::string& t : texts) {
      const std::vector<int64_t> ids = tok.tokenize_to_ids(t);
      ASSERT_EQ(ids, tok.convert_tokens_to_ids(tok.tokenize(t)))
          << "setting " << s << ": " << ::testing::PrintToString(t);
      const TokenizedText with_offsets = tok.tokenize_with_offsets(t);
      ASSERT_EQ(with_offsets.ids, ids) << "setting " << s << ": " << ::testing::PrintToString(t);
      ASSERT_EQ(with_offsets.tokens, tok.tokenize(t));
      for (bool offsets : {false, true}) {
        const Encoding e = tok.encode(t, std::nullopt, Truncation::None, std::nullopt, offsets);
        ASSERT_EQ(e.input_ids.size(), ids.size() + 2);
        EXPECT_TRUE(std::equal(ids.begin(), ids.end(), e.input_ids.begin() + 1));
        // The tokens' strings, copied from the vocabulary where it has them, against id_to_token.
        ASSERT_EQ(e.tokens.size(), e.input_ids.size());
        for (std::size_t k = 0; k < e.tokens.size(); ++k) ASSERT_EQ(e.tokens[k], tok.id_to_token(e.input_ids[k]));
      }
      unknown += static_cast<std::size_t>(std::count(ids.begin(), ids.end(), tok.unk_id()));
      total += ids.size();
    }
  }
  // The texts reach both outcomes of WordPiece.
  EXPECT_GT(unknown, 100u);
  EXPECT_GT(total, 10 * unknown);
}

}  // namespace
}  // namespace roformer
