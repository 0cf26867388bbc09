#include "tokenizer/token_offsets.h"

#include <algorithm>

#include "tokenizer/unicode_text.h"

namespace roformer::tok {

namespace {

// How far past the expected place a token is looked for before it is given
// up on (folded code points); keeps hostile text linear.
constexpr std::size_t kSearchWindow = 256;

bool is_space(char32_t c) { return is_py_space(c) || is_bert_whitespace(c); }
// What BasicTokenizer's _clean_text removes.
bool is_cleaned_away(char32_t c) { return c == 0 || c == 0xFFFD || is_bert_control(c); }
bool is_mark(char32_t c) { return c >= 0x80 && category_name(c)[0] == 'M'; }

// The form tokens and text are compared in: lowercased, canonically
// decomposed, marks dropped when the tokenizer strips accents, final sigma as
// sigma. Every step the tokenizer takes (lowercasing, NFC, accent stripping)
// leaves this form unchanged, so a token's form is a run of its text's form.
void append_folded(std::u32string& out, std::u32string_view piece, bool strip_accents) {
  // ASCII and the plain ideographs: already decomposed, no marks, no sigma;
  // only ASCII's case folds.
  if (std::all_of(piece.begin(), piece.end(), [](char32_t c) { return c < 0x80 || is_plain_ideograph(c); })) {
    for (char32_t c : piece) out.push_back(ascii_lower(c));
    return;
  }
  std::u32string lowered;
  for (char32_t c : piece) append_py_lower(lowered, c);
  for (char32_t c : nfd(lowered)) {
    if (strip_accents && is_mark_nonspacing(c)) continue;
    out.push_back(c == U'\u03C2' ? U'\u03C3' : c);
  }
}

// The text's folded form, with the character each folded code point came from.
class FoldedText {
 public:
  FoldedText(std::u32string_view text, const AlignmentRules& rules) : text_(text), strip_accents_(rules.strip_accents) {
    const std::size_t n = text.size();
    // Sized for the common case, one folded code point per character, and
    // written by index: most characters take the ASCII step, where a
    // push_back's capacity check per character was a tenth of the work.
    folded_.resize(n);
    origin_.resize(n);
    std::size_t nf = 0;
    std::u32string piece_folded;
    std::size_t i = 0;
    while (i < n) {
      // An ASCII letter, digit or mark of punctuation, or a plain ideograph,
      // with no mark after it (most text) folds to itself, lowercased.
      if (const char32_t c = text[i];
          ((c > 0x20 && c < 0x7F) || is_plain_ideograph(c)) &&
          (i + 1 == n || text[i + 1] < 0x80 || is_plain_ideograph(text[i + 1]))) {
        folded_[nf] = ascii_lower(c);
        origin_[nf] = static_cast<int64_t>(i);
        ++nf;
        ++i;
        continue;
      }
      if (is_space(text[i]) || (rules.basic && is_cleaned_away(text[i]))) {
        ++i;
        continue;
      }
      // A base character and the marks after it decompose and reorder together.
      std::size_t end = i + 1;
      while (end < n && is_mark(text[end])) ++end;
      piece_folded.clear();
      append_folded(piece_folded, text.substr(i, end - i), rules.strip_accents);
      // Decomposition can outgrow the text: room for this piece and the
      // characters still to come.
      if (const std::size_t need = nf + piece_folded.size() + (n - end); need > folded_.size()) {
        folded_.resize(need);
        origin_.resize(need);
      }
      for (std::size_t k = 0; k < piece_folded.size(); ++k, ++nf) {
        folded_[nf] = piece_folded[k];
        origin_[nf] = static_cast<int64_t>(k == 0 ? i : end - 1);
      }
      i = end;
    }
    folded_.resize(nf);
    origin_.resize(nf);
    first_at_.resize(n + 1);
    std::size_t f = 0;
    for (std::size_t c = 0; c <= n; ++c) {
      while (f < folded_.size() && origin_[f] < static_cast<int64_t>(c)) ++f;
      first_at_[c] = f;
    }
  }

  std::size_t size() const { return folded_.size(); }
  bool matches(std::size_t f, const std::u32string& key) const {
    return !key.empty() && f + key.size() <= folded_.size() && folded_.compare(f, key.size(), key) == 0;
  }
  // The character at folded position f (the text's length past the end).
  int64_t char_at(std::size_t f) const {
    return f < folded_.size() ? origin_[f] : static_cast<int64_t>(text_.size());
  }
  // The first folded position at or after character c.
  std::size_t folded_at(int64_t c) const { return first_at_[static_cast<std::size_t>(c)]; }
  // Characters [char_at(f), ...) covering folded [f, g), with the marks that
  // follow unless what comes next (from g on) is made of them. A mark the
  // tokenizer strips is no part of any token, as in HF's fast tokenizers.
  CharSpan span(std::size_t f, std::size_t g) const {
    auto end = origin_[g - 1] + 1;
    while (static_cast<std::size_t>(end) < text_.size() && kept_mark(text_[static_cast<std::size_t>(end)]) &&
           char_at(g) > end) {
      ++end;
    }
    return {origin_[f], end};
  }
  // A mark that stays in the tokens (not one accent stripping removes).
  bool kept_mark(char32_t c) const { return is_mark(c) && !(strip_accents_ && is_mark_nonspacing(c)); }

 private:
  std::u32string_view text_;
  bool strip_accents_;
  std::u32string folded_;
  std::vector<int64_t> origin_;
  std::vector<std::size_t> first_at_;  // per character, plus one for the end
};

}  // namespace

std::vector<CharSpan> align_tokens(std::u32string_view text, const std::vector<std::string>& tokens,
                                   const AlignmentRules& rules) {
  const FoldedText folded(text, rules);
  const auto n = static_cast<int64_t>(text.size());
  // The forms a token may take in the text: a continuation without its "##"
  // first. Written into `keys`, whose strings keep their buffers from token
  // to token.
  std::u32string wide;
  const auto keys_of = [&](const std::string& token, std::vector<std::u32string>& keys) {
    const bool continuation = token.size() > 2 && token.compare(0, 2, "##") == 0;
    keys.resize(continuation ? 2 : 1);
    if (is_ascii(token)) {  // most tokens: lowercasing is their whole fold
      const auto fold_ascii = [](std::string_view from, std::u32string& key) {
        key.resize(from.size());
        for (std::size_t k = 0; k < from.size(); ++k) key[k] = ascii_lower(static_cast<char32_t>(from[k]));
      };
      if (continuation) fold_ascii(std::string_view(token).substr(2), keys.front());
      fold_ascii(token, keys.back());
      return;
    }
    wide = decode_utf8(token, "token");
    for (std::u32string& k : keys) k.clear();
    if (continuation) append_folded(keys.front(), std::u32string_view(wide).substr(2), rules.strip_accents);
    append_folded(keys.back(), wide, rules.strip_accents);
  };
  const auto matching_key = [&](const std::vector<std::u32string>& keys, std::size_t f) -> const std::u32string* {
    for (const std::u32string& k : keys)
      if (folded.matches(f, k)) return &k;
    return nullptr;
  };
  const auto is_word_break = [&](char32_t c) {
    return is_space(c) || (rules.basic && is_bert_punctuation(c)) || (rules.cjk_words && is_cjk_ideograph(c));
  };
  const auto is_ascii_alnum = [](char32_t c) {
    return (c >= U'0' && c <= U'9') || (c >= U'a' && c <= U'z') || (c >= U'A' && c <= U'Z');
  };
  // One past the last character of the word that starts at `start`.
  const auto word_end = [&](int64_t start) {
    const char32_t first = text[static_cast<std::size_t>(start)];
    int64_t end = start + 1;
    if (rules.jieba_words) {
      if (is_ascii_alnum(first)) {
        while (end < n && is_ascii_alnum(text[static_cast<std::size_t>(end)])) ++end;
      }
    } else if (!is_word_break(first)) {
      while (end < n && !is_word_break(text[static_cast<std::size_t>(end)])) ++end;
    }
    return end;
  };

  std::vector<CharSpan> spans;
  spans.reserve(tokens.size());
  std::size_t f = 0;
  int64_t last_end = 0;
  std::vector<std::u32string> keys, next;
  for (std::size_t t = 0; t < tokens.size(); ++t) {
    keys_of(tokens[t], keys);
    if (const std::u32string* key = matching_key(keys, f)) {
      spans.push_back(folded.span(f, f + key->size()));
      f += key->size();
    } else if (tokens[t] == rules.unk_token && f < folded.size()) {
      // The word the unknown token replaced. Where the next token is not found
      // right after it, the word ended earlier.
      const int64_t start = folded.char_at(f);
      int64_t end = word_end(start);
      if (t + 1 < tokens.size() && tokens[t + 1] != rules.unk_token) {
        keys_of(tokens[t + 1], next);
        if (!matching_key(next, folded.folded_at(end))) {
          for (std::size_t g = f + 1; g < folded.folded_at(end); ++g) {
            if (matching_key(next, g)) {
              end = folded.char_at(g);
              break;
            }
          }
        }
      }
      // Marks after it belong to it unless the next token is made of them.
      while (end < n && folded.kept_mark(text[static_cast<std::size_t>(end)]) &&
             folded.folded_at(end) == folded.folded_at(end + 1)) {
        ++end;
      }
      // What the tokenizer removed at its end (stripped accents, control and
      // zero-width characters) belongs to no token, as in HF's fast tokenizers.
      while (end > start + 1 && folded.folded_at(end - 1) == folded.folded_at(end)) --end;
      spans.push_back({start, end});
      f = folded.folded_at(end);
    } else {
      // Not where expected: look a little further, else leave an empty span.
      bool found = false;
      for (std::size_t g = f + 1; g < folded.size() && g <= f + kSearchWindow && !found; ++g) {
        if (const std::u32string* later = matching_key(keys, g)) {
          spans.push_back(folded.span(g, g + later->size()));
          f = g + later->size();
          found = true;
        }
      }
      if (!found) spans.push_back({last_end, last_end});
    }
    // A token that ends inside a character shares it with the next one; the
    // spans stay in order all the same.
    CharSpan& s = spans.back();
    s.start = std::max(s.start, last_end);
    s.end = std::max(s.end, s.start);
    last_end = s.end;
  }
  return spans;
}

}  // namespace roformer::tok
