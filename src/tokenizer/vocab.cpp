// vocab.txt, read the way HF's load_vocab reads it.
#include <string>

#include "roformer/error.h"
#include "roformer/tokenizer.h"
#include "tokenizer/text_file.h"
#include "tokenizer/unicode_text.h"

namespace roformer {

namespace {
constexpr std::size_t kMaxVocabBytes = std::size_t{1} << 30;
}

Vocab Vocab::from_file(const std::string& path) {
  return from_string(tok::read_file(path, kMaxVocabBytes, "vocab file"), "vocab file '" + path + "'");
}

Vocab Vocab::from_string(std::string_view text, const std::string& source) {
  if (const std::size_t bad = tok::find_invalid_utf8(text); bad != std::string_view::npos) {
    throw Error(source + ": invalid UTF-8 at byte " + std::to_string(bad));
  }
  if (text.empty()) throw Error(source + ": empty vocabulary");
  Vocab v;
  // Python's text mode ends lines at \n, \r\n and \r; readlines() keeps no empty tail.
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find_first_of("\r\n", start);
    std::size_t next;
    if (end == std::string_view::npos) {
      end = next = text.size();
    } else {
      next = end + 1;
      if (text[end] == '\r' && next < text.size() && text[next] == '\n') ++next;
    }
    const auto id = static_cast<int64_t>(v.id_to_token_.size());
    std::string token(text.substr(start, end - start));
    auto [it, inserted] = v.token_to_id_.try_emplace(token, id);
    if (!inserted) {
      // collections.OrderedDict assignment: the last line wins, the earlier id is orphaned.
      const auto old = static_cast<std::size_t>(it->second);
      v.has_token_[old] = false;
      v.id_to_token_[old].clear();
      it->second = id;
    }
    v.id_to_token_.push_back(std::move(token));
    v.has_token_.push_back(true);
    start = next;
  }
  return v;
}

std::optional<int64_t> Vocab::find(std::string_view token) const {
  const auto it = token_to_id_.find(token);
  if (it == token_to_id_.end()) return std::nullopt;
  return it->second;
}

const std::string* Vocab::token(int64_t id) const {
  if (id < 0 || id >= size()) return nullptr;
  const auto i = static_cast<std::size_t>(id);
  return has_token_[i] ? &id_to_token_[i] : nullptr;
}

}  // namespace roformer
