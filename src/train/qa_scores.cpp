#include "roformer/qa_scores.h"

#include <algorithm>
#include <cctype>
#include <map>

#include "roformer/error.h"
#include "tokenizer/treebank_words.h"
#include "tokenizer/unicode_text.h"

namespace roformer {

QaScoring parse_qa_scoring(std::string_view name) {
  if (name == "squad") return QaScoring::Squad;
  if (name == "cmrc2018" || name == "cmrc") return QaScoring::Cmrc2018;
  throw Error("QA scoring must be squad or cmrc2018, not '" + std::string(name) + "'");
}

const char* qa_scoring_name(QaScoring scoring) { return scoring == QaScoring::Squad ? "squad" : "cmrc2018"; }

namespace {

// SQuAD v1.1's answer words: lower case, ASCII punctuation removed (joining
// what it separated: "cat's" -> "cats"), the articles a / an / the dropped,
// split on whitespace. Chinese has no spaces between words, so each CJK
// ideograph counts as a word and CJK / fullwidth punctuation is removed too,
// as Chinese reading-comprehension scoring counts characters.
std::vector<std::string> squad_words(std::string_view text) {
  const std::u32string chars = tok::decode_utf8(text, "answer");
  std::vector<std::string> words;
  std::string word;
  auto flush = [&] {
    if (!word.empty() && word != "a" && word != "an" && word != "the") words.push_back(word);
    word.clear();
  };
  for (const char32_t c : chars) {
    if (c < 128 && std::ispunct(static_cast<int>(c))) continue;
    if ((c >= 0x3000 && c <= 0x303F) || (c >= 0xFF00 && c <= 0xFFEF)) {  // CJK symbols, fullwidth forms
      if (tok::is_bert_punctuation(c)) continue;
    }
    if (tok::is_py_space(c)) {
      flush();
    } else if (tok::is_cjk_ideograph(c)) {
      flush();
      tok::append_utf8(word, c);
      flush();
    } else {
      std::u32string lower;
      tok::append_py_lower(lower, c);
      word += tok::to_utf8(lower);
    }
  }
  flush();
  return words;
}

}  // namespace

std::string squad_normalize(std::string_view text) {
  std::string out;
  for (const auto& w : squad_words(text)) out += (out.empty() ? "" : " ") + w;
  return out;
}

double squad_f1(std::string_view prediction, std::string_view answer) {
  const auto p = squad_words(prediction), g = squad_words(answer);
  if (p.empty() || g.empty()) return p == g ? 1.0 : 0.0;
  std::map<std::string, int64_t> left;
  for (const auto& w : g) ++left[w];
  int64_t common = 0;
  for (const auto& w : p)
    if (left[w] > 0) {
      --left[w];
      ++common;
    }
  if (common == 0) return 0.0;
  const double precision = static_cast<double>(common) / static_cast<double>(p.size());
  const double recall = static_cast<double>(common) / static_cast<double>(g.size());
  return 2 * precision * recall / (precision + recall);
}

namespace {

// cmrc2018_evaluate.py's sp_char, one character each (its "……" entry is two
// characters, so a lone "…" never matches it there and is kept here too).
bool is_cmrc_punctuation(char32_t c) {
  static constexpr std::u32string_view kMarks = U"-:_*^/\\~`+=\uFF0C\u3002\uFF1A\uFF1F\uFF01\u201C\u201D\uFF1B\u2019"
                                                U"\u300A\u300B\u00B7\u3001\u300C\u300D\uFF08\uFF09\uFF0D\uFF5E\u300E\u300F";
  return kMarks.find(c) != std::u32string_view::npos;
}

bool is_cmrc_hanzi(char32_t c) { return c >= 0x4E00 && c <= 0x9FA5; }

// Python's str.lower().strip() on UTF-8.
std::u32string lowered_and_stripped(std::string_view text) {
  const std::u32string chars = tok::decode_utf8(text, "answer");
  std::size_t begin = 0, end = chars.size();
  while (begin < end && tok::is_py_space(chars[begin])) ++begin;
  while (end > begin && tok::is_py_space(chars[end - 1])) --end;
  return tok::py_lower(std::u32string_view(chars).substr(begin, end - begin));
}

// The words of a run without hanzi, as the script's nltk.word_tokenize splits
// them (one sentence: Punkt's sentence model is not reproduced).
void append_words(std::u32string_view run, std::vector<std::string>& out) {
  for (const std::u32string& word : tok::treebank_words(run)) out.push_back(tok::to_utf8(word));
}

}  // namespace

std::vector<std::string> cmrc_segments(std::string_view text) {
  std::vector<std::string> out;
  std::u32string run;
  for (const char32_t c : lowered_and_stripped(text)) {
    if (is_cmrc_punctuation(c)) continue;  // dropped without ending the run, as the script does
    if (is_cmrc_hanzi(c)) {
      append_words(run, out);
      run.clear();
      out.emplace_back();
      tok::append_utf8(out.back(), c);
    } else {
      run.push_back(c);
    }
  }
  append_words(run, out);
  return out;
}

double cmrc_f1(std::string_view prediction, std::string_view answer) {
  const auto p = cmrc_segments(prediction), a = cmrc_segments(answer);
  // Longest common run: run[j] is the common run ending at a[i - 1] and p[j - 1].
  std::vector<std::size_t> run(p.size() + 1, 0), next(p.size() + 1, 0);
  std::size_t longest = 0;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= p.size(); ++j) {
      next[j] = a[i - 1] == p[j - 1] ? run[j - 1] + 1 : 0;
      longest = std::max(longest, next[j]);
    }
    std::swap(run, next);
  }
  if (longest == 0) return 0.0;
  const double precision = static_cast<double>(longest) / static_cast<double>(p.size());
  const double recall = static_cast<double>(longest) / static_cast<double>(a.size());
  return 2 * precision * recall / (precision + recall);
}

bool cmrc_exact_match(std::string_view prediction, std::string_view answer) {
  const auto without_marks = [](std::string_view text) {
    std::u32string kept;
    for (const char32_t c : lowered_and_stripped(text))
      if (!is_cmrc_punctuation(c)) kept.push_back(c);
    return kept;
  };
  return without_marks(prediction) == without_marks(answer);
}

double qa_exact_match(QaScoring scoring, std::string_view prediction, std::string_view answer) {
  if (scoring == QaScoring::Cmrc2018) return cmrc_exact_match(prediction, answer) ? 1.0 : 0.0;
  return squad_normalize(prediction) == squad_normalize(answer) ? 1.0 : 0.0;
}

double qa_f1(QaScoring scoring, std::string_view prediction, std::string_view answer) {
  return scoring == QaScoring::Cmrc2018 ? cmrc_f1(prediction, answer) : squad_f1(prediction, answer);
}

}  // namespace roformer
