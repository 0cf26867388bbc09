// The Unicode layer: strict UTF-8, Python-compatible character classes, case and normalization.
#include <gtest/gtest.h>
#include <utf8proc.h>

#include <cstdlib>
#include <iterator>
#include <string>

#include "roformer/error.h"
#include "tokenizer/unicode_text.h"

namespace roformer::tok {
namespace {

std::string error_of(std::string_view bytes) {
  try {
    decode_utf8(bytes, "input");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(UnicodeText, DecodesAndEncodesUtf8) {
  const std::string s = "a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80";  // a é 中 😀
  EXPECT_EQ(decode_utf8(s, "t"), (std::u32string{U'a', 0xE9, 0x4E2D, 0x1F600}));
  EXPECT_EQ(to_utf8(decode_utf8(s, "t")), s);
  EXPECT_EQ(find_invalid_utf8(s), std::string_view::npos);
}

TEST(UnicodeText, RejectsInvalidUtf8WithByteOffset) {
  EXPECT_EQ(error_of("abc\xFF"), "input: invalid UTF-8 at byte 3");
  EXPECT_EQ(error_of("\xC0\xAF"), "input: invalid UTF-8 at byte 0");           // overlong '/'
  EXPECT_EQ(error_of("x\xE0\x80\xAF"), "input: invalid UTF-8 at byte 1");      // overlong, 3 bytes
  EXPECT_EQ(error_of("ab\xED\xA0\x80"), "input: invalid UTF-8 at byte 2");     // surrogate U+D800
  EXPECT_EQ(error_of("\xF4\x90\x80\x80"), "input: invalid UTF-8 at byte 0");   // above U+10FFFF
  EXPECT_EQ(error_of("\xE4\xB8"), "input: invalid UTF-8 at byte 0");           // truncated
  EXPECT_EQ(error_of("\x80"), "input: invalid UTF-8 at byte 0");               // stray continuation
  EXPECT_EQ(error_of("ok\xF0\x9F\x98"), "input: invalid UTF-8 at byte 2");     // truncated emoji
  EXPECT_EQ(error_of(std::string("a\0b", 3)), "");                              // NUL is valid UTF-8
}

TEST(UnicodeText, PythonLowercase) {
  std::u32string out;
  append_py_lower(out, 0x130);  // İ -> i + combining dot above (SpecialCasing)
  EXPECT_EQ(out, (std::u32string{U'i', 0x307}));
  // One character at a time, capital sigma is never final; a whole string applies Final_Sigma.
  out.clear();
  append_py_lower(out, 0x3A3);
  EXPECT_EQ(out, std::u32string{0x3C3});
  EXPECT_EQ(py_lower(U"ΟΔΟΣ"), U"οδος");
  EXPECT_EQ(py_lower(U"ΣΑ"), U"σα");
  EXPECT_EQ(py_lower(U"Σ"), U"σ");
  EXPECT_EQ(py_lower(U"ǅ"), U"ǆ");  // titlecase -> lowercase
  EXPECT_EQ(py_lower(U"ﬁ"), U"ﬁ");  // no lowercase of its own
  EXPECT_EQ(py_lower(U"ABCxyz"), U"abcxyz");
}

TEST(UnicodeText, CharacterClassesFollowHf) {
  EXPECT_TRUE(is_bert_whitespace(U' '));
  EXPECT_TRUE(is_bert_whitespace(0xA0));     // NBSP is Zs
  EXPECT_TRUE(is_bert_whitespace(0x3000));   // ideographic space
  EXPECT_FALSE(is_bert_whitespace(0x2028));  // line separator is Zl
  EXPECT_TRUE(is_bert_control(0x200B));      // zero-width space is Cf
  EXPECT_TRUE(is_bert_control(0x85));        // NEL is Cc
  EXPECT_FALSE(is_bert_control(U'\n'));
  EXPECT_TRUE(is_bert_punctuation(U'$'));    // ASCII symbol counted as punctuation
  EXPECT_TRUE(is_bert_punctuation(0x3002));  // 。
  EXPECT_FALSE(is_bert_punctuation(0x221E)); // ∞ is Sm
  EXPECT_TRUE(is_cjk_ideograph(0x4E2D));
  EXPECT_FALSE(is_cjk_ideograph(0x3042));    // hiragana
  EXPECT_TRUE(is_py_space(0x1C));
  EXPECT_TRUE(is_py_space(0x2028));
  EXPECT_FALSE(is_py_space(0x200B));
  EXPECT_STREQ(category_name(U'A'), "Lu");
  EXPECT_STREQ(category_name(0x301), "Mn");
}

TEST(UnicodeText, CodePointsNewerThanUnicode14AreUnassigned) {
  // Python 3.11 (Unicode 14) calls these Cn, whatever utf8proc's newer tables say.
  for (char32_t c : {char32_t{0x1E4EC}, char32_t{0x31350}, char32_t{0x1FAE8}, char32_t{0xCF3}}) {
    EXPECT_STREQ(category_name(c), "Cn") << std::hex << static_cast<uint32_t>(c);
    EXPECT_TRUE(is_bert_control(c));
  }
  // U+1E4EC has combining class 232 in Unicode 15; as an unassigned code point it is not reordered.
  EXPECT_EQ(nfd(U"a\U0001E4EC\u0301"), U"a\U0001E4EC\u0301");
}

TEST(UnicodeText, KnownUnicodeVersion) {
  // The table of code points assigned after Unicode 14 covers utf8proc up to Unicode 15.0.
  const std::string v = utf8proc_unicode_version();
  EXPECT_TRUE(v == "15.0.0" || v == "14.0.0" || v == "13.0.0")
      << "utf8proc reports Unicode " << v << ": extend kAssignedAfterUnicode14 in unicode_text.cpp";
}

TEST(UnicodeText, Normalization) {
  EXPECT_EQ(nfc(U"cafe\u0301"), U"caf\u00E9");
  EXPECT_EQ(nfd(U"caf\u00E9"), U"cafe\u0301");
  EXPECT_EQ(nfd(U"\u00C5"), U"A\u030A");
  EXPECT_EQ(nfc(U"\u212B"), U"\u00C5");                // Angstrom sign -> Å (singleton)
  EXPECT_EQ(nfd(U"a\u0301\u0327"), U"a\u0327\u0301");  // canonical order: cedilla (202) before acute (230)
  EXPECT_EQ(nfc(U"\u1100\u1161"), U"\uAC00");          // Hangul jamo compose
  EXPECT_EQ(nfd(U"\uAC00"), U"\u1100\u1161");
  EXPECT_EQ(strip_accents(U"naïve résumé Ångström"), U"naive resume Angstrom");
  EXPECT_EQ(strip_accents(U"\u0301"), U"");
  EXPECT_EQ(nfc(U""), U"");
}

// CJK unified ideographs take shortcuts past utf8proc (category, case,
// normalization); utf8proc itself, asked directly, is the reference.
std::string utf8proc_normalized(const std::u32string& text, bool compose) {
  const std::string bytes = to_utf8(text);
  utf8proc_uint8_t* out = compose ? utf8proc_NFC(reinterpret_cast<const utf8proc_uint8_t*>(bytes.c_str()))
                                  : utf8proc_NFD(reinterpret_cast<const utf8proc_uint8_t*>(bytes.c_str()));
  std::string result(reinterpret_cast<const char*>(out));
  std::free(out);
  return result;
}

TEST(UnicodeText, CjkIdeographShortcutsAgreeWithUtf8proc) {
  for (char32_t lo : {U'\u3400', U'\u4E00'}) {
    const char32_t hi = lo == U'\u3400' ? U'\u4DBF' : U'\u9FFF';
    for (char32_t c = lo; c <= hi; ++c) {
      const auto cp = static_cast<utf8proc_int32_t>(c);
      ASSERT_STREQ(category_name(c), utf8proc_category_string(cp)) << std::hex << static_cast<uint32_t>(c);
      ASSERT_EQ(py_lower(std::u32string(1, c)), std::u32string(1, static_cast<char32_t>(utf8proc_tolower(cp))));
      const std::u32string alone(1, c);
      ASSERT_EQ(to_utf8(nfc(alone)), utf8proc_normalized(alone, true));
      ASSERT_EQ(to_utf8(nfd(alone)), utf8proc_normalized(alone, false));
      ASSERT_FALSE(is_bert_control(c) || is_bert_whitespace(c) || is_bert_punctuation(c) || is_mark_nonspacing(c));
    }
  }
  // Mixed texts: ideographs beside letters that compose or decompose, marks
  // after ideographs, Hangul jamo that compose, a compatibility ideograph.
  const std::u32string parts[] = {U"\u4E2D", U"\u6587", U"\u3400", U"\u9FFF", U"e", U"\u0301", U"\u00E9", U"A",
                                  U"\u030A", U"\u1100", U"\u1161", U"\uF900", U" ", U"\u3002", U"\u0327"};
  uint32_t state = 12345;
  for (int n = 0; n < 3000; ++n) {
    std::u32string text;
    const int k = 1 + static_cast<int>((state = state * 1664525u + 1013904223u) >> 29);
    for (int j = 0; j < k; ++j) text += parts[((state = state * 1664525u + 1013904223u) >> 16) % std::size(parts)];
    ASSERT_EQ(to_utf8(nfc(text)), utf8proc_normalized(text, true)) << to_utf8(text);
    ASSERT_EQ(to_utf8(nfd(text)), utf8proc_normalized(text, false)) << to_utf8(text);
  }
}

}  // namespace
}  // namespace roformer::tok
