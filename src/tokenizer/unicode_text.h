#pragma once
// Unicode helpers for the tokenizers. Text is handled as UTF-32 code points,
// because every rule we reproduce (HF's BasicTokenizer, Python's str methods,
// jieba) is defined one Python character (= code point) at a time.
//
// Character data comes from utf8proc, pinned to what Python 3.11's unicodedata
// (Unicode 14.0) answers, since that is what produced the goldens: code points
// assigned after Unicode 14 behave as unassigned (category Cn, no case, no
// decomposition).
#include <cstddef>
#include <string>
#include <string_view>

namespace roformer::tok {

// ---- UTF-8 <-> UTF-32 ----
// Strict decoding (no overlongs, surrogates or code points above U+10FFFF).
// Throws Error("<what>: invalid UTF-8 at byte N") on the first bad byte.
std::u32string decode_utf8(std::string_view text, std::string_view what);
// Byte offset of the first invalid sequence, or npos when `text` is valid UTF-8.
std::size_t find_invalid_utf8(std::string_view text);
// Whether every byte is ASCII (then every character is one byte).
inline bool is_ascii(std::string_view text) {
  for (char c : text)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}
// Throws decode_utf8()'s error when `text` is not valid UTF-8.
void check_utf8(std::string_view text, std::string_view what);
void append_utf8(std::string& out, char32_t c);
std::string to_utf8(std::u32string_view text);

// ---- character classes ----
// Unicode general category as Python's unicodedata.category() spells it ("Lu", "Mn", ...).
const char* category_name(char32_t c);
bool is_mark_nonspacing(char32_t c);  // category Mn
// Python's str.isspace() for one character.
bool is_py_space(char32_t c);
// HF BasicTokenizer's definitions (tokenization_utils.py).
bool is_bert_whitespace(char32_t c);   // ' ', \t, \n, \r or category Zs
bool is_bert_control(char32_t c);      // category C*, except \t \n \r
bool is_bert_punctuation(char32_t c);  // ASCII non-alphanumerics or category P*
bool is_cjk_ideograph(char32_t c);     // BasicTokenizer._is_chinese_char
// The CJK Unified Ideographs and their Extension A, all assigned by Unicode
// 14: each is a word of its own after BERT's CJK spacing, and no later step
// of a tokenizer changes it (no case, no decomposition, no mark, no
// punctuation, never a control character or a space). The other ideographs
// BERT spaces out are not all so plain: the compatibility ones decompose
// under NFC, and the later extensions have unassigned code points, which
// cleaning drops.
constexpr bool is_plain_ideograph(char32_t c) { return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF); }

// ---- three-byte shortcuts for CJK text (no utf8proc, no call per character) ----
// Whether s[i] starts a three-byte sequence of U+4000..U+9FFF: lead byte
// E4..E9, then any two continuation bytes, which is always well formed. The
// bulk of the CJK ideographs; none of these code points has a case or a
// decomposition, or is a space.
inline bool is_common_cjk_sequence(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  return b(0) >= 0xE4 && b(0) <= 0xE9 && i + 2 < s.size() && (b(1) & 0xC0) == 0x80 && (b(2) & 0xC0) == 0x80;
}
// Whether s[i] starts the three well-formed bytes of a plain ideograph
// (is_plain_ideograph; leads E3..E9).
inline bool is_plain_ideograph_at(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  return b(0) >= 0xE3 && b(0) <= 0xE9 && i + 2 < s.size() && (b(1) & 0xC0) == 0x80 && (b(2) & 0xC0) == 0x80 &&
         is_plain_ideograph(static_cast<char32_t>((b(0) & 0x0F) << 12 | (b(1) & 0x3F) << 6 | (b(2) & 0x3F)));
}

// ---- case and normalization ----
// Python's str.lower() of a one-character string (full mapping: U+0130 -> "i\u0307").
void append_py_lower(std::u32string& out, char32_t c);
// A-Z to a-z, everything else as it is: all of lowercasing for ASCII text.
constexpr char32_t ascii_lower(char32_t c) { return c >= U'A' && c <= U'Z' ? c + 32 : c; }
constexpr char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }
// append_py_lower() of every character of valid UTF-8 text, in UTF-8: each
// character lowercased on its own (no Final_Sigma), as HF's lowercasing of
// text before it splits out added tokens does.
std::string lower_each_char(std::string_view text);
// Python's str.lower() of a whole string (adds the Final_Sigma rule for U+03A3).
std::u32string py_lower(std::u32string_view text);
std::u32string nfd(std::u32string_view text);
std::u32string nfc(std::u32string_view text);
// BasicTokenizer._run_strip_accents: NFD, then drop category Mn.
std::u32string strip_accents(std::u32string_view text);

}  // namespace roformer::tok
