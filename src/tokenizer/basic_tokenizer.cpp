#include "tokenizer/basic_tokenizer.h"

#include <array>

#include "tokenizer/unicode_text.h"

namespace roformer::tok {

namespace {

// _clean_text: drop NUL, U+FFFD and control characters; whitespace becomes ' '.
std::u32string clean_text(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    if (c == 0 || c == 0xFFFD || is_bert_control(c)) continue;
    out.push_back(is_bert_whitespace(c) ? U' ' : c);
  }
  return out;
}

std::u32string space_cjk(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    if (is_cjk_ideograph(c)) {
      out.push_back(U' ');
      out.push_back(c);
      out.push_back(U' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// What the ASCII loop needs to know of a byte, as bits: whitespace (words
// split there), a control byte (_clean_text drops it), punctuation (split off
// on its own) and upper case (lowered). Built once from the general tests, so
// it cannot drift from them.
enum AsciiBits : uint8_t { kAsciiSpace = 1, kAsciiDropped = 2, kAsciiPunct = 4, kAsciiUpper = 8 };

const std::array<uint8_t, 128>& ascii_bits() {
  static const std::array<uint8_t, 128> bits = [] {
    std::array<uint8_t, 128> c{};
    for (char32_t b = 0; b < 128; ++b) {
      if (is_bert_whitespace(b)) c[b] = kAsciiSpace;
      else if (is_bert_control(b)) c[b] = kAsciiDropped;
      else if (is_bert_punctuation(b)) c[b] = kAsciiPunct;
      else if (ascii_lower(static_cast<char>(b)) != static_cast<char>(b)) c[b] = kAsciiUpper;
    }
    return c;
  }();
  return bits;
}

}  // namespace

std::vector<std::u32string_view> split_py_whitespace(std::u32string_view text) {
  std::vector<std::u32string_view> words;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_py_space(text[i])) ++i;
    const std::size_t start = i;
    while (i < text.size() && !is_py_space(text[i])) ++i;
    if (i > start) words.push_back(text.substr(start, i - start));
  }
  return words;
}

BasicTokenizer::BasicTokenizer(Options options, const std::vector<std::string>& never_split) : options_(options) {
  for (const std::string& s : never_split) {
    never_split_.insert(decode_utf8(s, "never_split"));
    never_split_utf8_.insert(s);
    if (!s.empty()) never_split_first_[static_cast<unsigned char>(s.front())] = true;
  }
}

std::vector<std::string> BasicTokenizer::tokenize(std::u32string_view text,
                                                  const std::set<std::u32string>& extra_never_split) const {
  const auto never_split = [&](const std::u32string& t) {
    return never_split_.count(t) != 0 || extra_never_split.count(t) != 0;
  };
  std::u32string cleaned = clean_text(text);
  if (options_.tokenize_chinese_chars) cleaned = space_cjk(cleaned);
  const std::u32string normalized = nfc(cleaned);

  std::vector<std::string> out;
  const auto emit = [&](std::u32string_view piece) {
    // The final whitespace_tokenize(" ".join(split_tokens)) drops empty pieces.
    for (std::u32string_view w : split_py_whitespace(piece)) out.push_back(to_utf8(w));
  };
  for (std::u32string_view word : split_py_whitespace(normalized)) {
    std::u32string token(word);
    const bool keep = never_split(token);
    if (!keep) {
      if (options_.do_lower_case) {
        token = py_lower(token);
        if (options_.strip_accents.value_or(true)) token = strip_accents(token);
      } else if (options_.strip_accents.value_or(false)) {
        token = strip_accents(token);
      }
    }
    // _run_split_on_punc checks never_split again, on the lowercased token.
    if (!options_.do_split_on_punc || keep || never_split(token)) {
      emit(token);
      continue;
    }
    // _run_split_on_punc: every punctuation character is a word of its own.
    std::size_t start = 0;
    for (std::size_t i = 0; i < token.size(); ++i) {
      if (!is_bert_punctuation(token[i])) continue;
      if (i > start) emit(std::u32string_view(token).substr(start, i - start));
      emit(std::u32string_view(token).substr(i, 1));
      start = i + 1;
    }
    if (start < token.size()) emit(std::u32string_view(token).substr(start));
  }
  return out;
}

void BasicTokenizer::tokenize_ascii(std::string_view text, const std::set<std::string, std::less<>>& extra_never_split,
                                    std::vector<std::string>& out) const {
  // The call's set is searched only for words starting as one of its entries
  // does (in_never_split keeps such a table for the tokenizer's own).
  std::array<bool, 128> extra_first{};
  for (const std::string& s : extra_never_split) {
    const auto c = s.empty() ? 128u : static_cast<unsigned char>(s.front());
    if (c < 128) extra_first[c] = true;
  }
  const auto never_split = [&](std::string_view t) {
    return in_never_split(t) ||
           (extra_first[static_cast<unsigned char>(t.front())] && extra_never_split.find(t) != extra_never_split.end());
  };
  // _clean_text drops the control bytes (NUL among them), and turns \t, \n and \r
  // (whitespace to BERT) into the spaces words split at. A word is the text
  // between spaces, copied once, without its control bytes if it has any.
  const auto& table = ascii_bits();
  const auto bits_of = [&](char ch) { return table[static_cast<unsigned char>(ch)]; };
  const auto finish_word = [&](std::string token) {
    if (token.empty()) return;
    const bool keep = never_split(token);
    // Accents: no ASCII character has any, so only the case changes.
    if (!keep && options_.do_lower_case) {
      for (char& ch : token) ch = ascii_lower(ch);
    }
    if (!options_.do_split_on_punc || keep || never_split(token)) {
      out.push_back(std::move(token));
    } else {
      std::size_t start = 0;
      for (std::size_t i = 0; i < token.size(); ++i) {
        if ((bits_of(token[i]) & kAsciiPunct) == 0) continue;
        if (i > start) out.emplace_back(token, start, i - start);
        out.emplace_back(1, token[i]);
        start = i + 1;
      }
      if (start < token.size()) out.emplace_back(token, start);
    }
  };
  // A word with nothing to drop, lower or split off is itself the output
  // (most words of prose), whether never_split holds it or not.
  const uint8_t work = kAsciiDropped | (options_.do_lower_case ? kAsciiUpper : 0) |
                       (options_.do_split_on_punc ? kAsciiPunct : 0);
  std::size_t i = 0;
  while (i < text.size()) {
    if (bits_of(text[i]) & kAsciiSpace) {
      ++i;
      continue;
    }
    const std::size_t start = i;
    uint8_t seen = 0;
    for (; i < text.size() && (bits_of(text[i]) & kAsciiSpace) == 0; ++i) seen |= bits_of(text[i]);
    const std::string_view run = text.substr(start, i - start);
    if ((seen & work) == 0) {
      out.emplace_back(run);
    } else if ((seen & kAsciiDropped) == 0) {
      finish_word(std::string(run));
    } else {
      std::string kept;
      for (char ch : run) {
        if ((bits_of(ch) & kAsciiDropped) == 0) kept.push_back(ch);
      }
      finish_word(std::move(kept));
    }
  }
}

void BasicTokenizer::tokenize_utf8(std::string_view text, const std::set<std::u32string>& extra_never_split,
                                   const std::set<std::string, std::less<>>& extra_never_split_utf8,
                                   std::vector<std::string>& out) const {
  if (is_ascii(text)) {  // most text: one run, found by the cheapest scan
    tokenize_ascii(text, extra_never_split_utf8, out);
    return;
  }
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  std::size_t ascii_from = 0;  // the ASCII words from here on are not tokenized yet
  std::size_t i = 0;
  while (i < text.size()) {
    if (is_space(text[i])) {
      ++i;
      continue;
    }
    const std::size_t start = i;
    bool ascii = true;
    for (; i < text.size() && !is_space(text[i]); ++i) ascii = ascii && static_cast<unsigned char>(text[i]) < 0x80;
    if (ascii) continue;
    if (start > ascii_from) tokenize_ascii(text.substr(ascii_from, start - ascii_from), extra_never_split_utf8, out);
    tokenize_non_ascii_word(text.substr(start, i - start), extra_never_split, extra_never_split_utf8, out);
    ascii_from = i;
  }
  if (ascii_from < text.size()) tokenize_ascii(text.substr(ascii_from), extra_never_split_utf8, out);
}

void BasicTokenizer::tokenize_non_ascii_word(std::string_view word, const std::set<std::u32string>& extra_never_split,
                                             const std::set<std::string, std::less<>>& extra_never_split_utf8,
                                             std::vector<std::string>& out) const {
  const auto general = [&](std::string_view run) {
    if (is_ascii(run)) return tokenize_ascii(run, extra_never_split_utf8, out);
    for (std::string& w : tokenize(decode_utf8(run, "text"), extra_never_split)) out.push_back(std::move(w));
  };
  if (!options_.tokenize_chinese_chars) return general(word);
  std::size_t run_from = 0;  // the characters from here on are not tokenized yet
  std::size_t i = 0;
  while (i < word.size()) {
    if (is_plain_ideograph_at(word, i)) {
      if (i > run_from) general(word.substr(run_from, i - run_from));
      out.emplace_back(word.substr(i, 3));
      run_from = i + 3;
      i += 3;
      continue;
    }
    const auto lead = static_cast<unsigned char>(word[i]);
    i += lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;  // valid UTF-8: the lead gives the length
  }
  if (run_from < word.size()) general(word.substr(run_from));
}

}  // namespace roformer::tok
