#include "tokenizer/unicode_text.h"

#include <utf8proc.h>

#include <algorithm>
#include <iterator>

#include "roformer/error.h"

namespace roformer::tok {

namespace {

// Code points that utf8proc (Unicode 15.0) knows but Python 3.11's unicodedata
// (Unicode 14.0) reports as unassigned. Generated once by comparing the two over
// every code point; nothing else (categories, lowercase, decompositions,
// combining classes) differs between them apart from U+0130's full lowercase.
struct Range {
  char32_t first, last;
};
constexpr Range kAssignedAfterUnicode14[] = {
    {0xCF3, 0xCF3},       {0xECE, 0xECE},       {0x10EFD, 0x10EFF},   {0x1123F, 0x11241},
    {0x11B00, 0x11B09},   {0x11F00, 0x11F10},   {0x11F12, 0x11F3A},   {0x11F3E, 0x11F59},
    {0x1342F, 0x1342F},   {0x13439, 0x13455},   {0x1B132, 0x1B132},   {0x1B155, 0x1B155},
    {0x1D2C0, 0x1D2D3},   {0x1DF25, 0x1DF2A},   {0x1E030, 0x1E06D},   {0x1E08F, 0x1E08F},
    {0x1E4D0, 0x1E4F9},   {0x1F6DC, 0x1F6DC},   {0x1F774, 0x1F776},   {0x1F77B, 0x1F77F},
    {0x1F7D9, 0x1F7D9},   {0x1FA75, 0x1FA77},   {0x1FA87, 0x1FA88},   {0x1FAAD, 0x1FAAF},
    {0x1FABB, 0x1FABD},   {0x1FABF, 0x1FABF},   {0x1FACE, 0x1FACF},   {0x1FADA, 0x1FADB},
    {0x1FAE8, 0x1FAE8},   {0x1FAF7, 0x1FAF8},   {0x2B739, 0x2B739},   {0x31350, 0x323AF},
};

bool assigned_after_unicode14(char32_t c) {
  if (c < 0xCF3) return false;  // fast path: everything below is settled
  const auto* end = std::end(kAssignedAfterUnicode14);
  const auto* it = std::upper_bound(std::begin(kAssignedAfterUnicode14), end, c,
                                    [](char32_t v, const Range& r) { return v < r.first; });
  if (it == std::begin(kAssignedAfterUnicode14)) return false;
  --it;
  return c <= it->last;
}

// CJK Unified Ideographs and Extension A, the bulk of Chinese text: all
// assigned by Unicode 14, all Lo, without case or decomposition, combining
// class 0, and part of no composition, so every question below has one
// answer for them and needs no table.
bool is_cjk_unified(char32_t c) { return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF); }

utf8proc_category_t category(char32_t c) {
  if (is_cjk_unified(c)) return UTF8PROC_CATEGORY_LO;
  if (c > 0x10FFFF || assigned_after_unicode14(c)) return UTF8PROC_CATEGORY_CN;
  return utf8proc_category(static_cast<utf8proc_int32_t>(c));
}

// Decoded length of the UTF-8 sequence starting at s[i], or 0 when it is invalid.
// Accepts exactly what Python's strict "utf-8" codec accepts.
std::size_t sequence_length(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c0 = b(i);
  if (c0 < 0x80) return 1;
  const std::size_t left = s.size() - i;
  const auto cont = [&](std::size_t k, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return k < left && b(i + k) >= lo && b(i + k) <= hi;
  };
  if (c0 >= 0xC2 && c0 <= 0xDF) return cont(1) ? 2 : 0;
  if (c0 >= 0xE0 && c0 <= 0xEF) {
    const unsigned char lo = c0 == 0xE0 ? 0xA0 : 0x80;  // no overlongs
    const unsigned char hi = c0 == 0xED ? 0x9F : 0xBF;  // no surrogates
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (c0 >= 0xF0 && c0 <= 0xF4) {
    const unsigned char lo = c0 == 0xF0 ? 0x90 : 0x80;  // no overlongs
    const unsigned char hi = c0 == 0xF4 ? 0x8F : 0xBF;  // nothing above U+10FFFF
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

// The code point of the valid n-byte sequence at s[i].
char32_t decode_sequence(std::string_view s, std::size_t i, std::size_t n) {
  const auto b = [&](std::size_t k) { return static_cast<char32_t>(static_cast<unsigned char>(s[i + k])); };
  switch (n) {
    case 1: return b(0);
    case 2: return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
    case 3: return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    default: return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  }
}

// Unicode's Cased and Case_Ignorable, as far as Python's Final_Sigma rule can tell
// them apart (checked against Python 3.11 for every code point).
bool is_cased(char32_t c) {
  switch (category(c)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
      return true;
    default:
      break;
  }
  const auto cp = static_cast<utf8proc_int32_t>(c);
  if (utf8proc_tolower(cp) != cp || utf8proc_toupper(cp) != cp) return true;
  // Other_Lowercase / Other_Uppercase characters without a case mapping (the
  // modifier letters among them are case-ignorable, which is checked first).
  return c == 0xAA || c == 0xBA || (c >= 0x1F130 && c <= 0x1F149) || (c >= 0x1F150 && c <= 0x1F169) ||
         (c >= 0x1F170 && c <= 0x1F189);
}

bool is_case_ignorable(char32_t c) {
  switch (category(c)) {
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_SK:
      return true;
    default:
      break;
  }
  // Word_Break MidLetter, MidNumLet and Single_Quote.
  switch (c) {
    case 0x27: case 0x2E: case 0x3A: case 0xB7: case 0x387: case 0x55F: case 0x5F4:
    case 0x2018: case 0x2019: case 0x2024: case 0x2027: case 0xFE13: case 0xFE52:
    case 0xFE55: case 0xFF07: case 0xFF0E: case 0xFF1A:
      return true;
    default:
      return false;
  }
}

// Canonical decomposition of one code point, appended to `out`.
void append_decomposed(std::u32string& out, char32_t c) {
  if (c < 0xC0 || assigned_after_unicode14(c)) {  // nothing below U+00C0 decomposes
    out.push_back(c);
    return;
  }
  utf8proc_int32_t buf[32];
  int boundclass = 0;
  const utf8proc_ssize_t n =
      utf8proc_decompose_char(static_cast<utf8proc_int32_t>(c), buf, 32, UTF8PROC_DECOMPOSE, &boundclass);
  if (n <= 0 || n > 32) {  // cannot happen for valid code points; keep the character
    out.push_back(c);
    return;
  }
  for (utf8proc_ssize_t k = 0; k < n; ++k) out.push_back(static_cast<char32_t>(buf[k]));
}

int combining_class(char32_t c) {
  if (c < 0x300 || assigned_after_unicode14(c)) return 0;
  return utf8proc_get_property(static_cast<utf8proc_int32_t>(c))->combining_class;
}

// NFD of a run: decompose, then put each run of non-starters in canonical order.
std::u32string nfd_run(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t c : text) append_decomposed(out, c);
  std::size_t i = 0;
  while (i < out.size()) {
    if (combining_class(out[i]) == 0) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < out.size() && combining_class(out[j]) != 0) ++j;
    std::stable_sort(out.begin() + static_cast<std::ptrdiff_t>(i), out.begin() + static_cast<std::ptrdiff_t>(j),
                     [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
    i = j;
  }
  return out;
}

std::u32string nfc_run(std::u32string_view text) {
  std::u32string out = nfd_run(text);
  if (out.empty()) return out;
  static_assert(sizeof(char32_t) == sizeof(utf8proc_int32_t));
  auto* buf = reinterpret_cast<utf8proc_int32_t*>(out.data());
  const utf8proc_ssize_t n =
      utf8proc_normalize_utf32(buf, static_cast<utf8proc_ssize_t>(out.size()), static_cast<utf8proc_option_t>(UTF8PROC_COMPOSE | UTF8PROC_STABLE));
  check(n >= 0, "NFC normalization failed");
  out.resize(static_cast<std::size_t>(n));
  return out;
}

// Python treats code points assigned after Unicode 14 as unassigned starters that
// never combine, so we normalize the pieces between them on their own.
// `unchanged_below`: code points under it are left alone by the normalization
// (U+00C0 for NFD, the first decomposable one; U+0300 for NFC, the first combining mark),
// like the CJK unified ideographs.
template <typename Fn>
std::u32string normalize_pieces(std::u32string_view text, char32_t unchanged_below, Fn run) {
  bool simple = true;
  for (char32_t c : text) {
    if (c >= unchanged_below && !is_cjk_unified(c)) {
      simple = false;
      break;
    }
  }
  if (simple) return std::u32string(text);
  std::u32string out;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    if (i < text.size() && !assigned_after_unicode14(text[i])) continue;
    out += run(text.substr(start, i - start));
    if (i < text.size()) out.push_back(text[i]);
    start = i + 1;
  }
  return out;
}

}  // namespace

std::size_t find_invalid_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {  // most text: no call per byte
      ++i;
      continue;
    }
    if (is_common_cjk_sequence(text, i)) {
      i += 3;
      continue;
    }
    const std::size_t n = sequence_length(text, i);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

namespace {

[[noreturn]] void invalid_utf8(std::string_view what, std::size_t at) {
  throw Error(std::string(what) + ": invalid UTF-8 at byte " + std::to_string(at));
}

}  // namespace

void check_utf8(std::string_view text, std::string_view what) {
  if (const std::size_t bad = find_invalid_utf8(text); bad != std::string_view::npos) invalid_utf8(what, bad);
}

std::u32string decode_utf8(std::string_view text, std::string_view what) {
  // Never more code points than bytes: written in place, then cut to length.
  std::u32string out(text.size(), U'\0');
  std::size_t i = 0, o = 0;
  while (i < text.size()) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      out[o++] = static_cast<char32_t>(text[i++]);
      continue;
    }
    if (is_common_cjk_sequence(text, i)) {
      out[o++] = decode_sequence(text, i, 3);
      i += 3;
      continue;
    }
    const std::size_t n = sequence_length(text, i);
    if (n == 0) invalid_utf8(what, i);
    out[o++] = decode_sequence(text, i, n);
    i += n;
  }
  out.resize(o);
  return out;
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::string to_utf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) append_utf8(out, c);
  return out;
}

const char* category_name(char32_t c) {
  return utf8proc_category_string(static_cast<utf8proc_int32_t>(
      category(c) == UTF8PROC_CATEGORY_CN ? 0x378 /* an unassigned code point */ : c));
}

// ASCII answers below come from its fixed categories (Cc: 0x00-0x1F and 0x7F;
// Zs: the space; no marks), without a table lookup.
bool is_mark_nonspacing(char32_t c) { return c >= 0x80 && category(c) == UTF8PROC_CATEGORY_MN; }

bool is_py_space(char32_t c) {
  if (c <= 0x20) return c == 0x20 || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
  if (c < 0x85) return false;
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

bool is_bert_whitespace(char32_t c) {
  if (c == ' ' || c == '\t' || c == '\n' || c == '\r') return true;
  return c >= 0x80 && category(c) == UTF8PROC_CATEGORY_ZS;
}

bool is_bert_control(char32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  if (c < 0x80) return c < 0x20 || c == 0x7F;
  switch (category(c)) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
      return true;
    default:
      return false;
  }
}

bool is_bert_punctuation(char32_t c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return true;
  if (c < 0x80) return false;  // ASCII's punctuation all lies in the ranges above
  switch (category(c)) {
    case UTF8PROC_CATEGORY_PC:
    case UTF8PROC_CATEGORY_PD:
    case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI:
    case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
      return true;
    default:
      return false;
  }
}

bool is_cjk_ideograph(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

void append_py_lower(std::u32string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(ascii_lower(c));
    return;
  }
  // The one unconditional full lowercase mapping in SpecialCasing.txt.
  if (c == 0x130) {
    out.push_back(U'i');
    out.push_back(0x307);
    return;
  }
  if (is_cjk_unified(c) || assigned_after_unicode14(c)) {
    out.push_back(c);
    return;
  }
  out.push_back(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
}

std::string lower_each_char(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::u32string lowered;
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c0 = static_cast<unsigned char>(text[i]);
    if (c0 < 0x80) {
      out.push_back(ascii_lower(text[i]));
      ++i;
      continue;
    }
    if (is_common_cjk_sequence(text, i)) {  // no case: the bytes as they are
      out.append(text.substr(i, 3));
      i += 3;
      continue;
    }
    const std::size_t n = sequence_length(text, i);
    if (n == 0) invalid_utf8("lower_each_char", i);
    lowered.clear();
    append_py_lower(lowered, decode_sequence(text, i, n));
    for (char32_t c : lowered) append_utf8(out, c);
    i += n;
  }
  return out;
}

std::u32string py_lower(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char32_t c = text[i];
    if (c != 0x3A3) {
      append_py_lower(out, c);
      continue;
    }
    // Final_Sigma: a cased letter before (skipping case-ignorables) and none after.
    std::size_t j = i;
    while (j > 0 && is_case_ignorable(text[j - 1])) --j;
    bool final_sigma = j > 0 && is_cased(text[j - 1]);
    if (final_sigma) {
      std::size_t k = i + 1;
      while (k < text.size() && is_case_ignorable(text[k])) ++k;
      final_sigma = k == text.size() || !is_cased(text[k]);
    }
    out.push_back(final_sigma ? 0x3C2 : 0x3C3);
  }
  return out;
}

std::u32string nfd(std::u32string_view text) { return normalize_pieces(text, 0xC0, nfd_run); }

std::u32string nfc(std::u32string_view text) { return normalize_pieces(text, 0x300, nfc_run); }

std::u32string strip_accents(std::u32string_view text) {
  std::u32string decomposed = nfd(text);
  std::u32string out;
  out.reserve(decomposed.size());
  for (char32_t c : decomposed) {
    if (!is_mark_nonspacing(c)) out.push_back(c);
  }
  return out;
}

}  // namespace roformer::tok
