// vocab.txt, read the way HF's load_vocab reads it.
#include <algorithm>
#include <string>

#include "roformer/error.h"
#include "roformer/tokenizer.h"
#include "tokenizer/text_file.h"
#include "tokenizer/unicode_text.h"

namespace roformer {

namespace {
constexpr std::size_t kMaxVocabBytes = std::size_t{1} << 30;
constexpr std::size_t kMaxTokens = std::size_t{1} << 30;  // ids are int32 in the index
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
    check(v.id_to_token_.size() < kMaxTokens, source + ": more than " + std::to_string(kMaxTokens) + " lines");
    v.id_to_token_.emplace_back(text.substr(start, end - start));
    v.has_token_.push_back(true);
    v.longest_ = std::max(v.longest_, v.id_to_token_.back().size());
    start = next;
  }
  std::size_t capacity = 16;
  while (capacity < 2 * v.id_to_token_.size()) capacity *= 2;
  v.slots_.resize(capacity);
  for (std::size_t id = 0; id < v.id_to_token_.size(); ++id) v.index(static_cast<int64_t>(id));
  return v;
}

std::size_t Vocab::slot_of(std::string_view token, uint64_t h) const {
  const std::size_t mask = slots_.size() - 1;
  const auto tag = static_cast<uint32_t>(h >> 32);
  for (std::size_t i = h & mask;; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (s.id < 0 || (s.hash == tag && id_to_token_[static_cast<std::size_t>(s.id)] == token)) return i;
  }
}

void Vocab::index(int64_t id) {
  const std::string& token = id_to_token_[static_cast<std::size_t>(id)];
  const uint64_t h = hash(token);
  Slot* s = &slots_[slot_of(token, h)];
  if (s->id >= 0) {
    // collections.OrderedDict assignment: the last line wins, the earlier id is orphaned.
    const auto old = static_cast<std::size_t>(s->id);
    has_token_[old] = false;
    id_to_token_[old].clear();
  } else {
    ++unique_;
  }
  *s = Slot{static_cast<uint32_t>(h >> 32), static_cast<int32_t>(id)};
}

}  // namespace roformer
