// Every case of tests/data/fixtures/tokenizer_cases.json, for all three sets
// (bert_uncased, bert_cased, roformer_jieba), compared field by field.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "roformer/tokenizer.h"
#include "support/test_support.h"
#include "tokenizer/basic_tokenizer.h"
#include "tokenizer/unicode_text.h"

namespace roformer {
namespace {

using nlohmann::json;

const json& cases_file() {
  static const json j = [] {
    std::ifstream in(testing::data_path("fixtures/tokenizer_cases.json"));
    std::stringstream ss;
    ss << in.rdbuf();
    return json::parse(ss.str());
  }();
  return j;
}

Tokenizer make_tokenizer(const json& set) {
  const json& init = set.at("init");
  TokenizerOptions o;
  o.do_lower_case = init.at("do_lower_case").get<bool>();
  o.tokenize_chinese_chars = init.at("tokenize_chinese_chars").get<bool>();
  if (!init.at("strip_accents").is_null()) o.strip_accents = init.at("strip_accents").get<bool>();
  o.unk_token = init.at("unk_token").get<std::string>();
  o.sep_token = init.at("sep_token").get<std::string>();
  o.pad_token = init.at("pad_token").get<std::string>();
  o.cls_token = init.at("cls_token").get<std::string>();
  o.mask_token = init.at("mask_token").get<std::string>();
  o.use_jieba = set.at("tokenizer_class").get<std::string>() == "RoFormerTokenizer";
  return Tokenizer(Vocab::from_file(testing::data_path("fixtures/vocab.txt")), o);
}

// The lists jieba returned, one per call: one call per piece between special tokens.
std::vector<std::vector<std::string>> jieba_calls(const Tokenizer& t, const std::string& text) {
  std::vector<std::vector<std::string>> calls;
  for (const TextPiece& piece : t.split_added_tokens(text)) {
    if (!piece.added) calls.push_back(t.segmenter()->cut(piece.text));
  }
  return calls;
}

std::string show(const std::string& s) { return json(s).dump(); }

class TokenizerGoldens : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerGoldens, AllCasesMatch) {
  const json& set = cases_file().at("sets").at(GetParam());
  if (set.at("tokenizer_class") == "RoFormerTokenizer") {
    ASSERT_TRUE(std::filesystem::exists(default_jieba_dict_path())) << "jieba dict.txt not found at " << default_jieba_dict_path()
                 << " (install python3-jieba or set ROFORMER_JIEBA_DICT)";
  }
  const Tokenizer tok = make_tokenizer(set);
  int passed = 0, total = 0;
  for (const json& c : set.at("cases")) {
    ++total;
    const std::string text = c.at("text").get<std::string>();
    std::optional<std::string> pair;
    if (c.contains("text_pair")) pair = c.at("text_pair").get<std::string>();
    Truncation trunc = Truncation::None;
    std::optional<int64_t> max_length;
    if (c.contains("truncation")) {
      const json& t = c.at("truncation");
      if (t.is_boolean()) {
        trunc = t.get<bool>() ? Truncation::LongestFirst : Truncation::None;
      } else if (t == "only_first") {
        trunc = Truncation::OnlyFirst;
      } else if (t == "only_second") {
        trunc = Truncation::OnlySecond;
      } else {
        trunc = Truncation::LongestFirst;
      }
      max_length = c.at("max_length").get<int64_t>();
    }
    const std::string label = "[" + GetParam() + "] text " + show(text) + (pair ? " pair " + show(*pair) : "");
    bool ok = true;
    const auto expect = [&](bool good, const std::string& field) {
      EXPECT_TRUE(good) << label << ": " << field << " differs";
      ok = ok && good;
    };
    try {
      expect(tok.tokenize(text) == c.at("wordpieces").get<std::vector<std::string>>(), "wordpieces");
      if (pair) {
        expect(tok.tokenize(*pair) == c.at("wordpieces_pair").get<std::vector<std::string>>(), "wordpieces_pair");
      }
      if (tok.segmenter()) {
        using Calls = std::vector<std::vector<std::string>>;
        expect(jieba_calls(tok, text) == c.at("jieba_cut").get<Calls>(), "jieba_cut");
        if (pair) expect(jieba_calls(tok, *pair) == c.at("jieba_cut_pair").get<Calls>(), "jieba_cut_pair");
      }
      const Encoding e =
          pair ? tok.encode(text, std::string_view(*pair), trunc, max_length) : tok.encode(text, std::nullopt, trunc, max_length);
      expect(e.tokens == c.at("tokens").get<std::vector<std::string>>(), "tokens");
      expect(e.input_ids == c.at("input_ids").get<std::vector<int64_t>>(), "input_ids");
      expect(e.token_type_ids == c.at("token_type_ids").get<std::vector<int64_t>>(), "token_type_ids");
      expect(e.attention_mask == c.at("attention_mask").get<std::vector<int64_t>>(), "attention_mask");
    } catch (const std::exception& ex) {
      ADD_FAILURE() << label << ": threw " << ex.what();
      ok = false;
    }
    passed += ok ? 1 : 0;
  }
  std::printf("[%s] %d / %d golden cases match\n", GetParam().c_str(), passed, total);
  EXPECT_EQ(total, 82);
  EXPECT_EQ(passed, total);
}

// Offsets have no HF golden here (the slow tokenizers have none), so every
// span is checked against the tokenizer's own normalization: the text a span
// covers, normalized as BasicTokenizer normalizes a word, is the token
// (without "##"); an unknown token covers a word that is unknown alone;
// what no span covers is text the tokenizer drops.
TEST_P(TokenizerGoldens, OffsetsPointAtEachTokensOwnText) {
  const json& set = cases_file().at("sets").at(GetParam());
  const Tokenizer tok = make_tokenizer(set);
  const bool lower = tok.options().do_lower_case;
  const auto normalized = [&](std::u32string_view s) {
    std::u32string kept;
    for (char32_t c : s)
      if (c != 0 && c != 0xFFFD && !tok::is_bert_control(c)) kept.push_back(c);
    kept = tok::nfc(kept);
    return tok::to_utf8(lower ? tok::strip_accents(tok::py_lower(kept)) : kept);
  };
  int spans = 0, unknown = 0;
  for (const json& c : set.at("cases")) {
    for (const char* field : {"text", "text_pair"}) {
      if (!c.contains(field)) continue;
      const std::string text = c.at(field).get<std::string>();
      const std::u32string wide = tok::decode_utf8(text, "case");
      const TokenizedText t = tok.tokenize_with_offsets(text);
      ASSERT_EQ(t.tokens, tok.tokenize(text)) << show(text);
      ASSERT_EQ(t.offsets.size(), t.tokens.size()) << show(text);
      std::vector<bool> covered(wide.size(), false);
      int64_t previous_end = 0;
      for (std::size_t k = 0; k < t.tokens.size(); ++k) {
        const CharSpan s = t.offsets[k];
        const std::string where = show(text) + " token " + std::to_string(k) + " " + show(t.tokens[k]);
        ASSERT_TRUE(previous_end <= s.start && s.start < s.end && s.end <= static_cast<int64_t>(wide.size())) << where;
        previous_end = s.end;
        std::fill(covered.begin() + s.start, covered.begin() + s.end, true);
        const std::u32string_view piece = std::u32string_view(wide).substr(static_cast<std::size_t>(s.start),
                                                                           static_cast<std::size_t>(s.end - s.start));
        const std::string& token = t.tokens[k];
        if (token == "[UNK]") {
          ++unknown;
          // The word it stands for is unknown on its own too.
          EXPECT_EQ(tok.tokenize(tok::to_utf8(piece)), std::vector<std::string>{"[UNK]"})
              << where << ": covers " << show(tok::to_utf8(piece));
        } else if (tok.is_special_id(tok.token_to_id(token))) {
          EXPECT_EQ(tok::to_utf8(piece), token) << where;
        } else {
          const bool continuation = token.size() > 2 && token.compare(0, 2, "##") == 0;
          // jieba's vocabulary words are lowercased text, accents kept.
          const std::string own = continuation ? token.substr(2) : token;
          EXPECT_TRUE(normalized(piece) == own || (tok.segmenter() && tok::to_utf8(tok::py_lower(piece)) == own))
              << where << ": covers " << show(tok::to_utf8(piece));
        }
        ++spans;
      }
      for (std::size_t i = 0; i < wide.size(); ++i) {
        const char32_t ch = wide[i];
        const bool dropped = tok::is_py_space(ch) || tok::is_bert_whitespace(ch) || tok::is_bert_control(ch) ||
                             ch == 0 || ch == 0xFFFD || (lower && tok::is_mark_nonspacing(ch));
        EXPECT_TRUE(covered[i] || dropped) << show(text) << ": character " << i << " is in no token";
      }
    }
  }
  std::printf("[%s] %d spans checked, %d of unknown tokens\n", GetParam().c_str(), spans, unknown);
  EXPECT_GT(spans, 500);
}

INSTANTIATE_TEST_SUITE_P(Sets, TokenizerGoldens, ::testing::Values("bert_uncased", "bert_cased", "roformer_jieba"),
                         [](const auto& p) { return p.param; });

}  // namespace
}  // namespace roformer
