#include "tokenizer/wordpiece.h"

#include "tokenizer/basic_tokenizer.h"
#include "tokenizer/unicode_text.h"

namespace roformer::tok {

namespace {

void wordpiece_word(std::string_view word, const Vocab& vocab, const std::string& unk_token, int max_chars,
                    std::vector<std::string>& out) {
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
    out.push_back(unk_token);
    return;
  }
  const std::size_t first_new = out.size();
  const std::size_t longest = vocab.longest_token_bytes();
  std::string candidate;
  std::size_t start = 0;
  while (start < n_chars) {
    std::size_t end = n_chars;
    bool found = false;
    while (start < end) {
      const std::size_t prefix = start > 0 ? 2 : 0;  // "##"
      // A candidate longer than every token cannot be one: skip the lookup.
      if (prefix + offsets[end] - offsets[start] > longest) {
        --end;
        continue;
      }
      candidate.assign(start > 0 ? "##" : "");
      candidate.append(word.substr(offsets[start], offsets[end] - offsets[start]));
      if (vocab.contains(candidate)) {
        found = true;
        break;
      }
      --end;
    }
    if (!found) {
      out.resize(first_new);
      out.push_back(unk_token);
      return;
    }
    out.push_back(candidate);
    start = end;
  }
}

}  // namespace

void wordpiece_tokenize(std::string_view text, const Vocab& vocab, const std::string& unk_token, int max_chars,
                        std::vector<std::string>& out) {
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
    wordpiece_word(text, vocab, unk_token, max_chars, out);
    return;
  }
  const std::u32string wide = decode_utf8(text, "wordpiece input");
  for (std::u32string_view word : split_py_whitespace(wide)) {
    wordpiece_word(to_utf8(word), vocab, unk_token, max_chars, out);
  }
}

}  // namespace roformer::tok
