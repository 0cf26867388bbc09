// libFuzzer: tokenizer_config.json + special_tokens_map.json (the input, split
// at its first 0xFF byte) through Tokenizer::options_from_json, then a
// Tokenizer over the fixture vocabulary with those options. Each step must
// succeed or throw Error; a tokenizer that builds must tokenize, encode and
// decode fixed valid text without error, with every id inside its id space.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.h"
#include "roformer/error.h"
#include "roformer/tokenizer.h"

using roformer::fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const roformer::Vocab vocab = roformer::Vocab::from_file(ROFORMER_FUZZ_TEST_DATA "/fixtures/vocab.txt");
  std::string_view config(reinterpret_cast<const char*>(data), size);
  std::string_view special_map;
  if (const std::size_t sep = config.find('\xFF'); sep != std::string_view::npos) {
    special_map = config.substr(sep + 1);
    config = config.substr(0, sep);
  }

  roformer::TokenizerOptions options;
  try {
    options = roformer::Tokenizer::options_from_json(config, special_map, "fuzz");
  } catch (const roformer::Error&) {
    return 0;
  }
  options.jieba_dict_path = ROFORMER_FUZZ_DIR "/jieba_dict.txt";
  std::vector<int64_t> added_ids;
  for (const auto& [id, token] : options.added_tokens) added_ids.push_back(id);

  std::optional<roformer::Tokenizer> tok;
  try {
    tok.emplace(vocab, std::move(options));
  } catch (const roformer::Error&) {
    return 0;
  }
  const std::string_view text = "Hello [MASK] wörld, unaffable 北京大学 <s> [CLS]x\t[SEP] hello";
  const roformer::Encoding e = tok->encode(text, std::string_view("[UNK] a b"));
  require(e.tokens.size() == e.input_ids.size(), "encoding sizes");
  for (int64_t id : e.input_ids) require(id >= 0 && id < tok->id_space(), "ids inside the id space");
  (void)tok->decode(e.input_ids);
  (void)tok->decode(e.input_ids, /*skip_special_tokens=*/true, /*clean_up_tokenization_spaces=*/true);
  (void)tok->decode(added_ids);
  for (const int64_t id : {tok->unk_id(), tok->sep_id(), tok->pad_id(), tok->cls_id(), tok->mask_id()}) {
    require(tok->is_special_id(id) && tok->token_to_id(tok->id_to_token(id)) == id, "special tokens map back");
  }
  return 0;
}
