#include "tokenizer/treebank_words.h"

#include <array>
#include <cstring>

#include "tokenizer/basic_tokenizer.h"
#include "tokenizer/regex_rewrite.h"
#include "tokenizer/unicode_text.h"

namespace roformer::tok {
namespace {

using Text = std::u32string;

// Python's \w: str.isalnum() or '_' (letters and numbers of every script).
bool is_word(char32_t c) {
  if (c == U'_') return true;
  const char* cat = category_name(c);
  return cat[0] == 'L' || cat[0] == 'N';
}
bool is_decimal(char32_t c) { return std::strcmp(category_name(c), "Nd") == 0; }
bool one_of(char32_t c, std::u32string_view set) { return set.find(c) != std::u32string_view::npos; }

// `word` (ASCII lower case) at s[i], letters compared case-insensitively.
bool starts_with_folded(const Text& s, std::size_t i, std::u32string_view word) {
  if (i > s.size() || s.size() - i < word.size()) return false;
  for (std::size_t k = 0; k < word.size(); ++k)
    if (ascii_lower(s[i + k]) != word[k]) return false;
  return true;
}

// Every character of `set` as " c ".
Text pad_each(const Text& s, std::u32string_view set) {
  return substitute(s, [&](const Text& t, std::size_t i, Text& out) -> std::size_t {
    if (!one_of(t[i], set)) return 0;
    out += U' ';
    out += t[i];
    out += U' ';
    return 1;
  });
}

// Every occurrence of `literal` as " literal ".
Text pad_literal(const Text& s, std::u32string_view literal) {
  return substitute(s, [&](const Text& t, std::size_t i, Text& out) -> std::size_t {
    if (t.compare(i, literal.size(), literal) != 0) return 0;
    out += U' ';
    out += literal;
    out += U' ';
    return literal.size();
  });
}

// The final period: ([^.])(\.)([closers]*)\s*$ -> "\1 \2 \3 " (or "\1 \2\3 ").
// Only the last '.' can match: everything after it must be closers, then
// whitespace to the end; the trailing whitespace is dropped.
Text split_final_period(const Text& s, std::u32string_view closers, bool space_after_period) {
  const std::size_t dot = s.rfind(U'.');
  if (dot == Text::npos || dot == 0 || s[dot - 1] == U'.') return s;
  std::size_t end = dot + 1;
  while (end < s.size() && one_of(s[end], closers)) ++end;
  for (std::size_t k = end; k < s.size(); ++k)
    if (!is_py_space(s[k])) return s;
  Text out = s.substr(0, dot);
  out += U" .";
  if (space_after_period) out += U' ';
  out += s.substr(dot + 1, end - dot - 1);
  out += U' ';
  return out;
}

Text starting_quotes(Text s) {
  // ([«“‘„]|[`]+) -> " \1 "
  s = substitute(s, [](const Text& t, std::size_t i, Text& out) -> std::size_t {
    std::size_t n = 0;
    if (one_of(t[i], U"«“‘„")) {
      n = 1;
    } else {
      while (i + n < t.size() && t[i + n] == U'`') ++n;
    }
    if (n == 0) return 0;
    out += U' ';
    out.append(t, i, n);
    out += U' ';
    return n;
  });
  // ^" -> ``
  if (!s.empty() && s[0] == U'"') s.replace(0, 1, U"``");
  s = pad_literal(s, U"``");
  // ([ ([{<])("|'') -> "\1 `` "
  s = substitute(s, [](const Text& t, std::size_t i, Text& out) -> std::size_t {
    if (!one_of(t[i], U" ([{<") || i + 1 >= t.size()) return 0;
    std::size_t n = 0;
    if (t[i + 1] == U'"') {
      n = 2;
    } else if (t[i + 1] == U'\'' && i + 2 < t.size() && t[i + 2] == U'\'') {
      n = 3;
    }
    if (n == 0) return 0;
    out += t[i];
    out += U" `` ";
    return n;
  });
  // (?i)(')(?!re|ve|ll|m|t|s|d|n)(\w)\b -> "\1 \2": an opening quote before a
  // one-character word. (The two-letter exceptions cannot precede a boundary
  // one character on, so only the one-letter ones matter.)
  return substitute(s, [](const Text& t, std::size_t i, Text& out) -> std::size_t {
    if (t[i] != U'\'' || i + 1 >= t.size() || !is_word(t[i + 1])) return 0;
    if (i + 2 < t.size() && is_word(t[i + 2])) return 0;
    if (one_of(ascii_lower(t[i + 1]), U"mtsdn")) return 0;
    out += U"' ";
    out += t[i + 1];
    return 2;
  });
}

Text punctuation(Text s) {
  s = split_final_period(s, U"])}>\"' »”’", true);
  // ([:,])([^\d]) -> " \1 \2"
  s = substitute(s, [](const Text& t, std::size_t i, Text& out) -> std::size_t {
    if (!one_of(t[i], U":,") || i + 1 >= t.size() || is_decimal(t[i + 1])) return 0;
    out += U' ';
    out += t[i];
    out += U' ';
    out += t[i + 1];
    return 2;
  });
  // ([:,])$ -> " \1 "; Python's $ also matches before a final newline.
  if (!s.empty()) {
    std::size_t last = s.size() - 1;
    if (s[last] == U'\n' && last > 0) --last;
    if (one_of(s[last], U":,")) s.replace(last, 1, Text{U' ', s[last], U' '});
  }
  // \.{2,} -> " \g<0> "
  s = substitute(s, [](const Text& t, std::size_t i, Text& out) -> std::size_t {
    std::size_t n = 0;
    while (i + n < t.size() && t[i + n] == U'.') ++n;
    if (n < 2) return 0;
    out += U' ';
    out.append(n, U'.');
    out += U' ';
    return n;
  });
  s = pad_each(s, U";@#$%&");
  s = split_final_period(s, U"])}>\"'", false);
  s = pad_each(s, U"?!");
  // ([^'])' -> "\1 ' "
  s = substitute(s, [](const Text& t, std::size_t i, Text& out) -> std::size_t {
    if (t[i] == U'\'' || i + 2 >= t.size() || t[i + 1] != U'\'' || t[i + 2] != U' ') return 0;
    out += t[i];
    out += U" ' ";
    return 3;
  });
  return pad_each(s, U"*");
}

Text ending_quotes(Text s) {
  s = pad_each(s, U"»”’");
  s = pad_literal(s, U"''");
  // " -> " '' "
  s = substitute(s, [](const Text& t, std::size_t i, Text& out) -> std::size_t {
    if (t[i] != U'"') return 0;
    out += U" '' ";
    return 1;
  });
  // ([^' ])('[sS]|'[mM]|'[dD]|') -> "\1 \2 "
  s = substitute(s, [](const Text& t, std::size_t i, Text& out) -> std::size_t {
    if (one_of(t[i], U"' ") || i + 2 >= t.size() || t[i + 1] != U'\'') return 0;
    std::size_t quote = 0;  // length of group 2
    if (one_of(t[i + 2], U"sSmMdD") && i + 3 < t.size() && t[i + 3] == U' ') {
      quote = 2;
    } else if (t[i + 2] == U' ') {
      quote = 1;
    }
    if (quote == 0) return 0;
    out += t[i];
    out += U' ';
    out.append(t, i + 1, quote);
    out += U' ';
    return 2 + quote;
  });
  // ([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) -> "\1 \2 "
  static constexpr std::array<std::u32string_view, 8> kClitics = {U"'ll", U"'LL", U"'re", U"'RE",
                                                                  U"'ve", U"'VE", U"n't", U"N'T"};
  return substitute(s, [](const Text& t, std::size_t i, Text& out) -> std::size_t {
    if (one_of(t[i], U"' ")) return 0;
    for (const auto clitic : kClitics) {
      if (t.compare(i + 1, clitic.size(), clitic) == 0 && i + 1 + clitic.size() < t.size() &&
          t[i + 1 + clitic.size()] == U' ') {
        out += t[i];
        out += U' ';
        out += clitic;
        out += U' ';
        return clitic.size() + 2;
      }
    }
    return 0;
  });
}

// \b(first)(second)\b, case-insensitively, -> " \1 \2 "; with
// `space_follows` the end is (?=\s) instead of \b.
Text split_contraction(const Text& s, std::u32string_view first, std::u32string_view second,
                       bool space_follows = false) {
  return substitute(s, [&](const Text& t, std::size_t i, Text& out) -> std::size_t {
    if (i > 0 && is_word(t[i - 1])) return 0;
    const std::size_t n = first.size() + second.size();
    if (!starts_with_folded(t, i, first) || !starts_with_folded(t, i + first.size(), second)) return 0;
    if (space_follows ? !(i + n < t.size() && is_py_space(t[i + n])) : (i + n < t.size() && is_word(t[i + n])))
      return 0;
    out += U' ';
    out.append(t, i, first.size());
    out += U' ';
    out.append(t, i + first.size(), second.size());
    out += U' ';
    return n;
  });
}

// (?i) ('t)(is|was)\b -> " \1 \2 "
Text split_t_is(const Text& s, std::u32string_view verb) {
  return substitute(s, [&](const Text& t, std::size_t i, Text& out) -> std::size_t {
    if (t[i] != U' ' || !starts_with_folded(t, i + 1, U"'t") || !starts_with_folded(t, i + 3, verb)) return 0;
    const std::size_t n = 3 + verb.size();
    if (i + n < t.size() && is_word(t[i + n])) return 0;
    out += U' ';
    out.append(t, i + 1, 2);
    out += U' ';
    out.append(t, i + 3, verb.size());
    out += U' ';
    return n;
  });
}

}  // namespace

std::vector<std::u32string> treebank_words(std::u32string_view text) {
  Text s = starting_quotes(Text(text));
  s = punctuation(std::move(s));
  s = pad_each(s, U"[](){}<>");
  s = pad_literal(s, U"--");
  s = ending_quotes(U" " + s + U" ");
  for (const auto& [first, second] : std::array<std::pair<std::u32string_view, std::u32string_view>, 7>{
           {{U"can", U"not"}, {U"d", U"'ye"}, {U"gim", U"me"}, {U"gon", U"na"}, {U"got", U"ta"}, {U"lem", U"me"},
            {U"more", U"'n"}}})
    s = split_contraction(s, first, second);
  s = split_contraction(s, U"wan", U"na", true);
  s = split_t_is(s, U"is");
  s = split_t_is(s, U"was");

  std::vector<std::u32string> words;
  for (const std::u32string_view word : split_py_whitespace(s)) words.emplace_back(word);
  return words;
}

}  // namespace roformer::tok
