#pragma once
// HF's BasicTokenizer (v4.35.2): clean the text, space out CJK ideographs, NFC,
// split on whitespace, lowercase / strip accents, split off punctuation.
#include <array>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace roformer::tok {

class BasicTokenizer {
 public:
  struct Options {
    bool do_lower_case = true;
    bool tokenize_chinese_chars = true;
    std::optional<bool> strip_accents;  // nullopt: strip when lowercasing
    bool do_split_on_punc = true;
  };
  BasicTokenizer(Options options, const std::vector<std::string>& never_split);

  // tokenize(text, never_split=extra_never_split): UTF-8 words.
  std::vector<std::string> tokenize(std::u32string_view text, const std::set<std::u32string>& extra_never_split) const;
  // The same for text of ASCII characters only (checked by the caller), one
  // byte at a time: no character of it changes under NFC or accent
  // stripping, and lower case, controls, whitespace and punctuation are
  // fixed ranges. Appends the words to `out`; extra_never_split holds the
  // same words as tokenize()'s, in UTF-8.
  void tokenize_ascii(std::string_view text, const std::set<std::string, std::less<>>& extra_never_split,
                      std::vector<std::string>& out) const;
  // tokenize() of valid UTF-8 text, appended to `out`, widening only the
  // words that need it. Every step stays within the stretches between ASCII
  // whitespace bytes (cleaning, CJK spacing, case and accents go a character
  // or a word at a time; NFC composes and reorders nothing across a space,
  // tab or line break; words split there), so runs of ASCII words take
  // tokenize_ascii() and each other word tokenize(). The two sets hold the
  // same words.
  void tokenize_utf8(std::string_view text, const std::set<std::u32string>& extra_never_split,
                     const std::set<std::string, std::less<>>& extra_never_split_utf8,
                     std::vector<std::string>& out) const;
  // Whether `token` is in the tokenizer's own never_split list (the init
  // argument). Asked of every word, and the list is mostly empty: a table of
  // the entries' first bytes answers most words without the set.
  bool in_never_split(std::string_view token) const {
    return !token.empty() && never_split_first_[static_cast<unsigned char>(token.front())] &&
           never_split_utf8_.find(token) != never_split_utf8_.end();
  }

 private:
  // tokenize_utf8()'s step for one word (no ASCII whitespace) holding a
  // non-ASCII byte. The CJK spacing makes every ideograph a word of its own,
  // apart from the text around it: the plain ones (is_plain_ideograph) come
  // out as they are, and the runs between them take tokenize_ascii() or
  // tokenize() on their own, which gives the same words as the whole (NFC
  // neither composes nor reorders across the spaces put around an ideograph).
  void tokenize_non_ascii_word(std::string_view word, const std::set<std::u32string>& extra_never_split,
                               const std::set<std::string, std::less<>>& extra_never_split_utf8,
                               std::vector<std::string>& out) const;

  Options options_;
  std::set<std::u32string> never_split_;
  std::set<std::string, std::less<>> never_split_utf8_;
  std::array<bool, 256> never_split_first_{};  // the first bytes of never_split_utf8_'s entries
};

// Python's str.split() with no arguments: runs of str.isspace() characters separate words.
std::vector<std::u32string_view> split_py_whitespace(std::u32string_view text);

}  // namespace roformer::tok
