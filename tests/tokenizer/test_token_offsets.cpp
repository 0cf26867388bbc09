// Token offsets (HF's offset_mapping) on hand-worked texts: spans counted in
// code points, "##" pieces, unknown words, dropped characters, accents in
// either normal form, special tokens in the text, pairs and truncation, and
// hostile text that must never give spans out of order.
#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "roformer/error.h"
#include "roformer/tokenizer.h"
#include "support/test_support.h"
#include "tokenizer/unicode_text.h"

namespace roformer {
namespace {

using Spans = std::vector<CharSpan>;
using V = std::vector<std::string>;

Tokenizer tiny(bool lower = true) {
  TokenizerOptions o;
  o.do_lower_case = lower;
  return Tokenizer(Vocab::from_string("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nplay\n##ing\n##ed\nthe\ncafe\ncafé\nCafé\n"
                                      "istanbul\n,\n!\n我\n爱\nσας\nhello\n"),
                   o);
}

// What each span covers, to read failures at a glance.
V covered(const std::string& text, const TokenizedText& t) {
  V out;
  for (const CharSpan& s : t.offsets) out.push_back(slice_code_points(text, s.start, s.end));
  return out;
}

TEST(TokenOffsets, WordsPiecesAndPunctuationCountCodePoints) {
  const Tokenizer tok = tiny();
  const std::string text = "The  playing, PLAYED!";
  const TokenizedText t = tok.tokenize_with_offsets(text);
  EXPECT_EQ(t.tokens, (V{"the", "play", "##ing", ",", "play", "##ed", "!"}));
  EXPECT_EQ(t.offsets, (Spans{{0, 3}, {5, 9}, {9, 12}, {12, 13}, {14, 18}, {18, 20}, {20, 21}}));
  // Code points, not bytes: the ideographs take 3 bytes each.
  const std::string cjk = "我爱 hello";
  const TokenizedText c = tok.tokenize_with_offsets(cjk);
  EXPECT_EQ(c.tokens, (V{"我", "爱", "hello"}));
  EXPECT_EQ(c.offsets, (Spans{{0, 1}, {1, 2}, {3, 8}}));
}

TEST(TokenOffsets, UnknownTokensCoverTheirWord) {
  const Tokenizer tok = tiny();
  const std::string text = "play xyzzy, qq! 我你";
  const TokenizedText t = tok.tokenize_with_offsets(text);
  EXPECT_EQ(t.tokens, (V{"play", "[UNK]", ",", "[UNK]", "!", "我", "[UNK]"}));
  EXPECT_EQ(covered(text, t), (V{"play", "xyzzy", ",", "qq", "!", "我", "你"}));
}

TEST(TokenOffsets, AccentsAndCaseInEitherNormalForm) {
  const Tokenizer lower = tiny(true), cased = tiny(false);
  // Precomposed é, and e followed by a combining acute. Where the tokenizer
  // keeps accents the mark joins the token; where it strips them the mark
  // belongs to no token (as in HF's fast tokenizers), while a precomposed é
  // is one character and stays whole.
  for (const std::string text : {"Café!", "Cafe\u0301!"}) {
    const TokenizedText u = lower.tokenize_with_offsets(text);
    EXPECT_EQ(u.tokens, (V{"cafe", "!"})) << text;
    EXPECT_EQ(covered(text, u), (V{text == "Café!" ? "Café" : "Cafe", "!"})) << text;
    const TokenizedText c = cased.tokenize_with_offsets(text);
    EXPECT_EQ(c.tokens, (V{"Café", "!"})) << text;
    EXPECT_EQ(covered(text, c), (V{text.substr(0, text.size() - 1), "!"})) << text;
  }
  // U+0130 lowercases to two code points, i and a combining dot, which are stripped.
  const std::string istanbul = "\u0130stanbul";
  const TokenizedText i = lower.tokenize_with_offsets(istanbul);
  EXPECT_EQ(i.tokens, (V{"istanbul"}));
  EXPECT_EQ(i.offsets, (Spans{{0, 8}}));
  // A final capital sigma lowercases to the final form, still one character.
  const TokenizedText s = cased.tokenize_with_offsets("ΣΑΣ");
  EXPECT_EQ(s.offsets.size(), 1u);
  EXPECT_EQ(s.offsets[0], (CharSpan{0, 3}));
}

// Keeping accents, every precomposed é decomposes into two code points, so
// the compared form outgrows the text again and again; the spans must still
// count the text's own characters.
TEST(TokenOffsets, DecomposedFormLongerThanTheText) {
  const Tokenizer cased = tiny(false);
  std::string text;
  Spans expected;
  V tokens;
  for (int64_t w = 0; w < 300; ++w) {
    const bool accented = w % 3 != 2;
    text += accented ? "Café " : "hello ";
    const int64_t start = expected.empty() ? 0 : expected.back().end + 1;
    expected.push_back({start, start + (accented ? 4 : 5)});
    tokens.push_back(accented ? "Café" : "hello");
  }
  const TokenizedText t = cased.tokenize_with_offsets(text);
  EXPECT_EQ(t.tokens, tokens);
  EXPECT_EQ(t.offsets, expected);
}

TEST(TokenOffsets, DroppedCharactersAndSpecialTokens) {
  const Tokenizer tok = tiny();
  // A control character inside a word is dropped but the word stays whole.
  const std::string text = "pl\x01" "ay [MASK]\tthe\u00a0cafe";
  const TokenizedText t = tok.tokenize_with_offsets(text);
  EXPECT_EQ(t.tokens, (V{"play", "[MASK]", "the", "cafe"}));
  EXPECT_EQ(t.offsets, (Spans{{0, 5}, {6, 12}, {13, 16}, {17, 21}}));
  EXPECT_TRUE(tok.tokenize_with_offsets("").tokens.empty());
  EXPECT_TRUE(tok.tokenize_with_offsets(" \t\x01 ").offsets.empty());
}

// Without BasicTokenizer nothing is cleaned or composed: control characters
// stay inside words, and a combining mark can be a piece of its own.
TEST(TokenOffsets, WithoutBasicTokenizationEveryCharacterCounts) {
  TokenizerOptions o;
  o.do_basic_tokenize = false;
  const Tokenizer tok(Vocab::from_string("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\ne\n##\u0301\na\n##\x01\n##b\n"), o);
  const std::string text = "e\u0301 a\x01" "b";
  const TokenizedText t = tok.tokenize_with_offsets(text);
  EXPECT_EQ(t.tokens, (V{"e", "##\u0301", "a", "##\x01", "##b"}));
  EXPECT_EQ(t.offsets, (Spans{{0, 1}, {1, 2}, {3, 4}, {4, 5}, {5, 6}}));
}

TEST(TokenOffsets, EncodePairsAndTruncationKeepSpansInStep) {
  const Tokenizer tok = tiny();
  const Encoding e = tok.encode("the playing", std::string_view("hello, cafe"), Truncation::None, std::nullopt, true);
  EXPECT_EQ(e.tokens, (V{"[CLS]", "the", "play", "##ing", "[SEP]", "hello", ",", "cafe", "[SEP]"}));
  EXPECT_EQ(e.offsets, (Spans{{0, 0}, {0, 3}, {4, 8}, {8, 11}, {0, 0}, {0, 5}, {5, 6}, {7, 11}, {0, 0}}));
  const Encoding cut = tok.encode("the playing", std::string_view("hello, cafe"), Truncation::LongestFirst, 7, true);
  EXPECT_EQ(cut.tokens, (V{"[CLS]", "the", "play", "[SEP]", "hello", ",", "[SEP]"}));
  EXPECT_EQ(cut.offsets, (Spans{{0, 0}, {0, 3}, {4, 8}, {0, 0}, {0, 5}, {5, 6}, {0, 0}}));
  EXPECT_TRUE(tok.encode("the playing").offsets.empty()) << "offsets only when asked for";
}

TEST(TokenOffsets, SliceCountsCodePointsAndClamps) {
  EXPECT_EQ(slice_code_points("我爱abc", 1, 3), "爱a");
  EXPECT_EQ(slice_code_points("abc", -4, 99), "abc");
  EXPECT_EQ(slice_code_points("abc", 2, 1), "");
  EXPECT_THROW(slice_code_points("a\xff", 0, 1), Error);
}

// Random text from an alphabet of every kind the aligner treats differently:
// spans must stay ordered, inside the text, and cover what the tokens say.
TEST(TokenOffsets, HostileTextGivesOrderedSpans) {
  const Tokenizer tok = tiny();
  const std::u32string alphabet = U"playedthe cafe\u0301\u0130\u03a3\u00df,!\u6211\u4f60\t\u0001\u200d\u00a0[MASK]##\U0001F600";
  std::mt19937 rng(7);
  for (int round = 0; round < 2000; ++round) {
    std::u32string wide;
    const int length = static_cast<int>(rng() % 24);
    for (int k = 0; k < length; ++k) wide.push_back(alphabet[rng() % alphabet.size()]);
    const std::string text = tok::to_utf8(wide);
    const TokenizedText t = tok.tokenize_with_offsets(text);
    ASSERT_EQ(t.offsets.size(), t.tokens.size());
    int64_t end = 0;
    for (std::size_t k = 0; k < t.offsets.size(); ++k) {
      ASSERT_LE(end, t.offsets[k].start) << text;
      ASSERT_LT(t.offsets[k].start, t.offsets[k].end) << text << " token " << t.tokens[k];
      end = t.offsets[k].end;
    }
    ASSERT_LE(end, static_cast<int64_t>(wide.size())) << text;
  }
}

// Against HF's fast BERT tokenizer itself (the `tokenizers` library, which
// computes offsets while it normalizes), uncased, cased and uncased keeping
// accents: the tokenizer cases of the goldens and 1,200 random texts with accents in both normal forms, CJK, control and
// zero-width characters, ligatures and characters outside the BMP
// (tests/data/hf_fast/make_offsets.js).
TEST(TokenOffsets, MatchHfFastTokenizers) {
  const auto goldens = testing::read_jsonl("hf_fast/offsets.jsonl");
  const Vocab vocab = Vocab::from_file(testing::data_path("fixtures/vocab.txt"));
  TokenizerOptions cased, accents;
  cased.do_lower_case = false;
  accents.strip_accents = false;
  const Tokenizer uncased_tok(vocab, TokenizerOptions{}), cased_tok(vocab, cased), accents_tok(vocab, accents);
  int failures = 0, not_nfc = 0;
  for (const auto& golden : goldens) {
    const Tokenizer& tok = golden["set"] == "bert_cased"             ? cased_tok
                           : golden["set"] == "bert_uncased_accents" ? accents_tok
                                                                     : uncased_tok;
    const bool keeps_accents = golden["set"] != "bert_uncased";
    const std::string text = golden["text"];
    Spans want;
    for (const auto& o : golden["offsets"]) want.push_back({o[0].get<int64_t>(), o[1].get<int64_t>()});
    const TokenizedText got = tok.tokenize_with_offsets(text);
    // The slow tokenizers (ours, and the goldens we match) compose the text
    // to NFC first; the fast ones do not, so one that keeps accents may read
    // a decomposed word differently. Only that may make the tokens differ.
    const std::u32string wide = tok::decode_utf8(text, "text");
    if (got.tokens != golden["tokens"].get<V>() && tok::nfc(wide) != wide && keeps_accents) {
      ++not_nfc;
      continue;
    }
    if ((got.tokens != golden["tokens"].get<V>() || got.offsets != want) && ++failures <= 10) {
      nlohmann::json got_offsets = nlohmann::json::array();
      for (const CharSpan& s : got.offsets) got_offsets.push_back({s.start, s.end});
      ADD_FAILURE() << golden["set"] << " " << nlohmann::json(text).dump() << "\n  want " << golden["tokens"].dump()
                    << " " << golden["offsets"].dump() << "\n  got  " << nlohmann::json(got.tokens).dump() << " "
                    << got_offsets.dump();
    }
  }
  const auto cases = static_cast<int>(goldens.size());
  std::printf("%d texts; %d read differently by a fast tokenizer keeping accents (not NFC)\n", cases, not_nfc);
  EXPECT_GT(cases, 1400);
  EXPECT_LT(not_nfc, cases / 10);
  EXPECT_EQ(failures, 0);
}

}  // namespace
}  // namespace roformer
