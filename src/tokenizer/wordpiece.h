#pragma once
// HF's WordpieceTokenizer: greedy longest-match-first sub-words, "##" marking
// continuations; a word with more than max_chars characters, or with a part no
// vocab entry covers, becomes the unknown token.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "roformer/tokenizer.h"

namespace roformer::tok {

// Where the pieces go: their strings (tokenize()), or their ids (encoding),
// which the vocabulary lookup of each candidate has found already, so the
// encoders neither copy the strings nor look them up a second time.
struct WordPieceTokens {
  std::vector<std::string>& out;
  const std::string& unk_token;
  std::size_t size() const { return out.size(); }
  void truncate(std::size_t n) { out.resize(n); }
  void known(std::string_view token, int64_t /*id*/) { out.emplace_back(token); }
  void unknown() { out.push_back(unk_token); }
};

struct WordPieceIds {
  std::vector<int64_t>& out;
  int64_t unk_id;
  std::size_t size() const { return out.size(); }
  void truncate(std::size_t n) { out.resize(n); }
  void known(std::string_view /*token*/, int64_t id) { out.push_back(id); }
  void unknown() { out.push_back(unk_id); }
};

// Both at once (tokens with offsets, whose ids the encoders need too).
struct WordPieceTokensAndIds {
  std::vector<std::string>& tokens;
  std::vector<int64_t>& ids;
  const std::string& unk_token;
  int64_t unk_id;
  std::size_t size() const { return ids.size(); }
  void truncate(std::size_t n) {
    tokens.resize(n);
    ids.resize(n);
  }
  void known(std::string_view token, int64_t id) {
    tokens.emplace_back(token);
    ids.push_back(id);
  }
  void unknown() {
    tokens.push_back(unk_token);
    ids.push_back(unk_id);
  }
};

// whitespace_tokenize(text), then WordpieceTokenizer.tokenize of each word,
// into one of the sinks above.
void wordpiece_tokenize(std::string_view text, const Vocab& vocab, int max_chars, WordPieceTokens& sink);
void wordpiece_tokenize(std::string_view text, const Vocab& vocab, int max_chars, WordPieceIds& sink);
void wordpiece_tokenize(std::string_view text, const Vocab& vocab, int max_chars, WordPieceTokensAndIds& sink);

// WordpieceTokenizer.tokenize of one word of valid UTF-8 that holds no
// whitespace (Python's str.isspace()), as every word of BasicTokenizer's
// output: wordpiece_tokenize(word) without the whitespace split, which would
// scan the word again to find nothing.
void wordpiece_tokenize_word(std::string_view word, const Vocab& vocab, int max_chars, WordPieceTokens& sink);
void wordpiece_tokenize_word(std::string_view word, const Vocab& vocab, int max_chars, WordPieceIds& sink);
void wordpiece_tokenize_word(std::string_view word, const Vocab& vocab, int max_chars, WordPieceTokensAndIds& sink);

inline void wordpiece_tokenize(std::string_view text, const Vocab& vocab, const std::string& unk_token, int max_chars,
                               std::vector<std::string>& out) {
  WordPieceTokens sink{out, unk_token};
  wordpiece_tokenize(text, vocab, max_chars, sink);
}

}  // namespace roformer::tok
