#pragma once
// Word counting for the WordPiece trainer, with the tokenizer's own
// pre-tokenization. The tokenizer's public API has no "words only" call, so we
// ask it for WordPiece tokens under a probe vocabulary that holds every single
// character both as "c" and as "##c": every word then comes back one character
// a token, and joining a token with its "##" followers gives the word exactly
// as the real tokenizer will see it (lowercased, accents stripped, split at
// punctuation). The probe's alphabet is grown from the text before each call.
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "roformer/tokenizer.h"

namespace roformer::data {

class WordCounter {
 public:
  explicit WordCounter(TokenizerOptions options);

  void add_text(std::string_view text);

  const std::unordered_map<std::string, int64_t>& counts() const { return counts_; }
  int64_t words() const { return words_; }
  int64_t skipped() const { return skipped_; }  // words the probe could not spell ([UNK])
  // The special tokens of the options, in vocabulary order ([PAD] [UNK] [CLS] [SEP] [MASK], extras).
  const std::vector<std::string>& special_tokens() const { return specials_; }

 private:
  void grow_alphabet(std::string_view lowered);
  void rebuild_probe();

  TokenizerOptions options_;
  std::vector<std::string> specials_;
  std::set<char32_t> alphabet_;
  bool alphabet_changed_ = true;
  std::unique_ptr<Tokenizer> probe_;
  std::unordered_map<std::string, int64_t> counts_;
  int64_t words_ = 0;
  int64_t skipped_ = 0;
};

// UTF-8 helpers for valid text (the tokenizer has checked it).
std::vector<char32_t> utf8_code_points(std::string_view text);
void append_utf8(std::string& out, char32_t cp);

}  // namespace roformer::data
