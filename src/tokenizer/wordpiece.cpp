#include "tokenizer/wordpiece.h"

#include <optional>

#include "tokenizer/basic_tokenizer.h"
#include "tokenizer/unicode_text.h"

namespace roformer::tok {

namespace {

template <class Sink>
void wordpiece_word(std::string_view word, const Vocab& vocab, int max_chars, Sink& sink) {
  // Byte offset of each character, plus the end: candidates are character
  // ranges. (One buffer per thread: a word is too short to pay for a new one.)
  thread_local std::vector<std::size_t> offsets;
  offsets.clear();
  for (std::size_t i = 0; i < word.size(); ++i) {
    if ((static_cast<unsigned char>(word[i]) & 0xC0) != 0x80) offsets.push_back(i);
  }
  const std::size_t n_chars = offsets.size();
  offsets.push_back(word.size());
  if (n_chars > static_cast<std::size_t>(max_chars)) {
    sink.unknown();
    return;
  }
  const std::size_t first_new = sink.size();
  const std::size_t longest = vocab.longest_token_bytes();
  std::string candidate;
  std::size_t start = 0;
  while (start < n_chars) {
    std::size_t end = n_chars;
    std::optional<int64_t> id;
    while (start < end) {
      const std::size_t prefix = start > 0 ? 2 : 0;  // "##"
      // A candidate longer than every token cannot be one: skip the lookup.
      if (prefix + offsets[end] - offsets[start] > longest) {
        --end;
        continue;
      }
      candidate.assign(start > 0 ? "##" : "");
      candidate.append(word.substr(offsets[start], offsets[end] - offsets[start]));
      id = vocab.find(candidate);
      if (id) break;
      --end;
    }
    if (!id) {
      sink.truncate(first_new);
      sink.unknown();
      return;
    }
    sink.known(candidate, *id);
    start = end;
  }
}

template <class Sink>
void wordpiece_words(std::string_view text, const Vocab& vocab, int max_chars, Sink& sink) {
  // whitespace_tokenize(text) first, as HF does (a no-op for BasicTokenizer
  // output). Text of printable ASCII and of U+4000..U+9FFF
  // (is_common_cjk_sequence, which also proves it well formed) holds no
  // whitespace: one word. Anything else may, and takes the general path.
  bool plain = !text.empty();
  for (std::size_t i = 0; i < text.size() && plain;) {
    const auto b = static_cast<unsigned char>(text[i]);
    if (b > 0x20 && b < 0x80) {
      ++i;
    } else {
      plain = is_common_cjk_sequence(text, i);
      i += 3;
    }
  }
  if (plain) {
    wordpiece_word(text, vocab, max_chars, sink);
    return;
  }
  const std::u32string wide = decode_utf8(text, "wordpiece input");
  for (std::u32string_view word : split_py_whitespace(wide)) wordpiece_word(to_utf8(word), vocab, max_chars, sink);
}

}  // namespace

void wordpiece_tokenize(std::string_view text, const Vocab& vocab, int max_chars, WordPieceTokens& sink) {
  wordpiece_words(text, vocab, max_chars, sink);
}

void wordpiece_tokenize(std::string_view text, const Vocab& vocab, int max_chars, WordPieceIds& sink) {
  wordpiece_words(text, vocab, max_chars, sink);
}

void wordpiece_tokenize(std::string_view text, const Vocab& vocab, int max_chars, WordPieceTokensAndIds& sink) {
  wordpiece_words(text, vocab, max_chars, sink);
}

}  // namespace roformer::tok
