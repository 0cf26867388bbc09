// libFuzzer: the tokenizers on arbitrary text. Four fixed tokenizers over the
// fixture vocabulary (BERT uncased, BERT cased, RoFormer with jieba and a small
// dictionary, and one with added tokens and no basic tokenizer) are built once.
// Input: byte 0 picks the tokenizer, truncation, pair and decode flags; byte 1
// is max_length (0: none); the rest is the text, and after its first 0xFF byte
// (never valid UTF-8) the pair. Must hold: tokenize throws Error exactly on
// invalid UTF-8; token offsets are ordered spans inside the text; the ids of
// tokenize_to_ids and of the offsets' tokens are convert_tokens_to_ids(tokens); encode
// succeeds on valid text unless truncation cannot reach max_length (then
// Error), and its result is consistent and within max_length; decode of the
// ids succeeds; out-of-range ids are an Error; NLTK-style word splitting of
// valid text gives non-empty words without whitespace.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.h"
#include "roformer/error.h"
#include "roformer/tokenizer.h"
#include "tokenizer/treebank_words.h"
#include "tokenizer/unicode_text.h"

using roformer::fuzz::require;
using roformer::fuzz::valid_utf8;

namespace {

roformer::Vocab fixture_vocab() { return roformer::Vocab::from_file(ROFORMER_FUZZ_TEST_DATA "/fixtures/vocab.txt"); }

std::vector<roformer::Tokenizer> make_tokenizers() {
  std::vector<roformer::Tokenizer> t;
  t.emplace_back(fixture_vocab(), roformer::TokenizerOptions{});

  roformer::TokenizerOptions cased;
  cased.do_lower_case = false;
  cased.strip_accents = true;
  t.emplace_back(fixture_vocab(), cased);

  roformer::TokenizerOptions jieba = roformer::Tokenizer::options_from_json(
      R"({"tokenizer_class": "RoFormerTokenizer", "model_max_length": 128})", "");
  jieba.jieba_dict_path = ROFORMER_FUZZ_DIR "/jieba_dict.txt";
  t.emplace_back(fixture_vocab(), jieba);

  roformer::TokenizerOptions added;
  added.do_basic_tokenize = false;
  added.tokenize_chinese_chars = false;
  added.max_input_chars_per_word = 8;
  added.never_split = {"hello"};
  added.added_tokens = {
      {1054, {"<x>", /*special=*/false, /*lstrip=*/true, /*rstrip=*/true, /*normalized=*/true}},
      {1055, {"\xC4\xB0", /*special=*/false, false, false, /*normalized=*/false}},  // U+0130 lowercases to two chars
      {1056, {"<s>", /*special=*/true, false, true, false}},
  };
  added.additional_special_tokens = {"<s>"};
  t.emplace_back(fixture_vocab(), added);
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const std::vector<roformer::Tokenizer> tokenizers = make_tokenizers();
  if (size < 2) return 0;
  const uint8_t flags = data[0];
  const roformer::Tokenizer& tok = tokenizers[flags & 3];
  const auto truncation = static_cast<roformer::Truncation>((flags >> 2) & 3);
  const bool has_pair = (flags & 0x10) != 0;
  const bool skip_special = (flags & 0x20) != 0;
  const std::optional<bool> cleanup = (flags & 0x40) ? std::optional<bool>((flags & 0x80) != 0) : std::nullopt;
  const std::optional<int64_t> max_length = data[1] ? std::optional<int64_t>(data[1]) : std::nullopt;

  std::string_view text(reinterpret_cast<const char*>(data + 2), size - 2);
  std::optional<std::string_view> pair;
  if (const std::size_t sep = text.find('\xFF'); sep != std::string_view::npos) {
    if (has_pair) pair = text.substr(sep + 1);
    text = text.substr(0, sep);
  } else if (has_pair) {
    pair = std::string_view();
  }
  const bool valid = valid_utf8(text) && (!pair || valid_utf8(*pair));

  // tokenize: Error exactly on invalid UTF-8; every token is a known or unknown piece.
  bool threw = false;
  try {
    for (const std::string& t : tok.tokenize(text)) {
      require(!t.empty() && valid_utf8(t), "tokens are non-empty UTF-8");
    }
  } catch (const roformer::Error&) {
    threw = true;
  }
  require(threw != valid_utf8(text), "tokenize throws exactly on invalid UTF-8");

  // Offsets: the same tokens, spans in order inside the text, each non-empty
  // unless the aligner gave up on a token (then empty, where the last ended).
  if (!threw) {
    const roformer::TokenizedText t = tok.tokenize_with_offsets(text);
    require(t.tokens == tok.tokenize(text) && t.offsets.size() == t.tokens.size(), "offsets: one span per token");
    // The ids the encoders take from WordPiece's lookups are those of the tokens.
    const std::vector<int64_t> ids = tok.convert_tokens_to_ids(t.tokens);
    require(t.ids == ids && tok.tokenize_to_ids(text) == ids, "token ids: the ids of the tokens");
    const auto chars = static_cast<int64_t>(
        std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<uint8_t>(c) & 0xC0) != 0x80; }));
    int64_t end = 0;
    for (const roformer::CharSpan& s : t.offsets) {
      require(end <= s.start && s.start <= s.end && s.end <= chars, "offsets: ordered spans inside the text");
      end = s.end;
    }
  }

  // NLTK-style English words (CMRC scoring): non-empty, whitespace-free.
  if (!threw) {
    for (const std::u32string& w : roformer::tok::treebank_words(roformer::tok::decode_utf8(text, "text"))) {
      require(!w.empty() && std::none_of(w.begin(), w.end(), roformer::tok::is_py_space), "treebank words");
    }
  }

  roformer::Encoding e;
  try {
    e = tok.encode(text, pair, truncation, max_length);
  } catch (const roformer::Error&) {
    // Only invalid text, or a truncation that cannot reach max_length (the model's, without one), may fail.
    require(!valid || truncation != roformer::Truncation::None, "encode of valid text without truncation succeeds");
    return 0;
  }
  require(valid, "encode refuses invalid UTF-8");
  const std::size_t n = e.input_ids.size();
  require(n >= (pair ? 3u : 2u) && e.tokens.size() == n && e.token_type_ids.size() == n && e.attention_mask.size() == n,
          "encoding fields have one entry per token");
  require(e.input_ids.front() == tok.cls_id() && e.input_ids.back() == tok.sep_id(), "[CLS] ... [SEP]");
  const std::optional<int64_t> limit = max_length ? max_length : tok.options().model_max_length;
  if (truncation != roformer::Truncation::None && limit) {
    require(static_cast<int64_t>(n) <= *limit, "truncation reaches max_length");
  }
  for (int64_t id : e.input_ids) require(id >= 0 && id < tok.id_space(), "ids inside the id space");

  const std::string decoded = tok.decode(e.input_ids, skip_special, cleanup);
  require(valid_utf8(decoded), "decode gives UTF-8");

  // Ids from the input bytes, some outside the id space: decode or Error.
  std::vector<int64_t> ids;
  for (std::size_t i = 0; i + 1 < text.size() && ids.size() < 64; i += 2) {
    ids.push_back(static_cast<int64_t>(static_cast<uint8_t>(text[i]) | (static_cast<uint8_t>(text[i + 1]) << 8)) % 1100);
  }
  try {
    (void)tok.decode(ids, skip_special, cleanup);
    for (int64_t id : ids) require(id < tok.id_space(), "decode refuses ids outside the id space");
  } catch (const roformer::Error&) {
  }
  return 0;
}
