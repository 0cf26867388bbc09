// libFuzzer: Vocab::from_string (vocab.txt) on arbitrary bytes must load or
// throw Error, and throw exactly when the bytes are empty or not UTF-8. A
// loaded vocabulary must map every token back to its id; a tokenizer over it
// must build or throw Error, and tokenize without crashing.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_support.h"
#include "roformer/error.h"
#include "roformer/tokenizer.h"

using roformer::fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const bool loadable = size > 0 && roformer::fuzz::valid_utf8(text);
  roformer::Vocab vocab;
  try {
    vocab = roformer::Vocab::from_string(text, "fuzz");
  } catch (const roformer::Error&) {
    require(!loadable, "non-empty UTF-8 text loads as a vocabulary");
    return 0;
  }
  require(loadable, "empty or invalid UTF-8 text is refused");
  require(vocab.size() > 0 && vocab.unique_size() <= vocab.size(), "sizes");
  for (int64_t id = 0; id < vocab.size(); ++id) {
    if (const std::string* token = vocab.token(id)) require(vocab.find(*token) == id, "token(id) maps back to id");
  }
  require(vocab.token(vocab.size()) == nullptr && vocab.token(-1) == nullptr, "ids outside the vocabulary");

  try {
    const roformer::Tokenizer tok(std::move(vocab), roformer::TokenizerOptions{});
    const roformer::Encoding e =
        tok.encode("Hello, wörld! unaffable [MASK] 北京大学 ##x", std::string_view("x y"), roformer::Truncation::LongestFirst, 16);
    require(e.input_ids.size() <= 16 && e.tokens.size() == e.input_ids.size(), "encoding sizes");
    (void)tok.decode(e.input_ids, /*skip_special_tokens=*/true);
  } catch (const roformer::Error&) {
  }
  return 0;
}
