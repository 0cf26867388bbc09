// Tokenizer::encode_batch: a list of texts encoded on several threads. A
// Tokenizer is immutable once built, so its texts need no coordination.
#include <string>

#include "core/parallel_items.h"
#include "roformer/error.h"
#include "roformer/tokenizer.h"

namespace roformer {

std::vector<Encoding> Tokenizer::encode_batch(std::span<const std::string> texts, std::span<const std::string> pairs,
                                              int threads, Truncation truncation, std::optional<int64_t> max_length,
                                              bool with_offsets) const {
  check(pairs.empty() || pairs.size() == texts.size(),
        "tokenizer: " + std::to_string(texts.size()) + " texts but " + std::to_string(pairs.size()) + " pairs");
  std::vector<Encoding> out(texts.size());
  for_each_item(
      static_cast<int64_t>(texts.size()), threads,
      [&](int64_t i) {
        const auto k = static_cast<std::size_t>(i);
        std::optional<std::string_view> pair;
        if (!pairs.empty()) pair = pairs[k];
        out[k] = encode(texts[k], pair, truncation, max_length, with_offsets);
      },
      [](int64_t i) { return "text " + std::to_string(i); });
  return out;
}

}  // namespace roformer
