#include "tokenizer/wordpiece.h"

#include <cstring>
#include <optional>

#include "tokenizer/basic_tokenizer.h"
#include "tokenizer/unicode_text.h"

namespace roformer::tok {

namespace {

template <class Sink>
void wordpiece_word(std::string_view word, const Vocab& vocab, int max_chars, Sink& sink) {
  // Byte offset of each character, plus the end: candidates are character
  // ranges. An ASCII word's characters are its bytes and need no table. (One
  // buffer per thread: a word is too short to pay for a new one.)
  thread_local std::vector<std::size_t> offsets;
  const bool ascii = is_ascii(word);
  if (!ascii) {
    offsets.clear();
    for (std::size_t i = 0; i < word.size(); ++i) {
      if ((static_cast<unsigned char>(word[i]) & 0xC0) != 0x80) offsets.push_back(i);
    }
  }
  const std::size_t n_chars = ascii ? word.size() : offsets.size();
  if (n_chars > static_cast<std::size_t>(max_chars)) {
    sink.unknown();
    return;
  }
  if (!ascii) offsets.push_back(word.size());
  const auto at = [&](std::size_t c) { return ascii ? c : offsets[c]; };
  // Every candidate is a view. The first piece's are prefixes of the word;
  // for a later piece the word is copied once behind two spare bytes
  // (marked[i + 2] = word[i]), and a piece starting at byte s finds its "##"
  // written at marked[s] and marked[s + 1]: over the two bytes before s,
  // which earlier pieces consumed. (Most words are one piece: no copy.)
  thread_local std::string marked;
  bool copied = false;
  const std::size_t first_new = sink.size();
  const std::size_t longest = vocab.longest_token_bytes();
  std::size_t start = 0;
  while (start < n_chars) {
    const std::size_t from = at(start);
    const std::size_t prefix = start > 0 ? 2 : 0;  // "##"
    const char* piece = word.data();               // where this piece's candidates begin
    if (start > 0) {
      if (!copied) {
        marked.resize(word.size() + 2);
        std::memcpy(marked.data() + 2, word.data(), word.size());
        copied = true;
      }
      marked[from] = marked[from + 1] = '#';
      piece = marked.data() + from;
    }
    std::size_t end = n_chars;
    std::optional<int64_t> id;
    std::string_view candidate;
    while (start < end) {
      const std::size_t bytes = prefix + at(end) - from;
      // A candidate longer than every token cannot be one: skip the lookup.
      if (bytes <= longest) {
        candidate = std::string_view(piece, bytes);
        id = vocab.find(candidate);
        if (id) break;
      }
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

void wordpiece_tokenize_word(std::string_view word, const Vocab& vocab, int max_chars, WordPieceTokens& sink) {
  wordpiece_word(word, vocab, max_chars, sink);
}

void wordpiece_tokenize_word(std::string_view word, const Vocab& vocab, int max_chars, WordPieceIds& sink) {
  wordpiece_word(word, vocab, max_chars, sink);
}

void wordpiece_tokenize_word(std::string_view word, const Vocab& vocab, int max_chars, WordPieceTokensAndIds& sink) {
  wordpiece_word(word, vocab, max_chars, sink);
}

}  // namespace roformer::tok
