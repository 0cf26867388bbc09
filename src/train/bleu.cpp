// Corpus BLEU with sacreBLEU's defaults (see include/roformer/bleu.h).
// Text is processed as code points because the 13a rules are regular
// expressions over Python characters ([^0-9] matches one whole character).
#include "roformer/bleu.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <unordered_map>

#include "roformer/error.h"
#include "tokenizer/regex_rewrite.h"
#include "tokenizer/unicode_text.h"

namespace roformer {
namespace {

constexpr double kLogZero = -9999999999.0;  // sacreBLEU's floor for log(0)

bool is_digit(char32_t c) { return c >= U'0' && c <= U'9'; }

// mteval-v13a's first rule: the character class [\{-\~\[-\` -\&\(-\+\:-\@\/],
// i.e. all printable ASCII that is not a letter, a digit, or one of - . , '
bool is_v13a_symbol(char32_t c) {
  return (c >= 0x7B && c <= 0x7E) || (c >= 0x5B && c <= 0x60) || (c >= 0x20 && c <= 0x26) ||
         (c >= 0x28 && c <= 0x2B) || (c >= 0x3A && c <= 0x40) || c == U'/';
}

void replace_all(std::u32string& s, std::u32string_view from, std::u32string_view to) {
  if (s.find(from) == std::u32string::npos) return;
  std::u32string out;
  out.reserve(s.size());
  std::size_t pos = 0;
  for (std::size_t hit; (hit = s.find(from, pos)) != std::u32string::npos; pos = hit + from.size()) {
    out.append(s, pos, hit - pos);
    out.append(to);
  }
  out.append(s, pos, std::u32string::npos);
  s = std::move(out);
}

// Python's ' '.join(text.split()).
std::string join_words(const std::u32string& s) {
  std::string out;
  out.reserve(s.size());
  bool in_word = false;
  for (char32_t c : s) {
    if (tok::is_py_space(c)) {
      in_word = false;
      continue;
    }
    if (!in_word && !out.empty()) out.push_back(' ');
    in_word = true;
    tok::append_utf8(out, c);
  }
  return out;
}

// The 13a rules on code points: the same left-to-right, non-overlapping
// matching as Python's re.sub, one rule over the whole line at a time.
std::string tokenize_13a_chars(std::u32string line) {
  replace_all(line, U"<skipped>", U"");
  replace_all(line, U"-\n", U"");
  replace_all(line, U"\n", U" ");
  if (line.find(U'&') != std::u32string::npos) {  // unescaped in this order, like mteval
    replace_all(line, U"&quot;", U"\"");
    replace_all(line, U"&amp;", U"&");
    replace_all(line, U"&lt;", U"<");
    replace_all(line, U"&gt;", U">");
  }
  std::u32string s = U" " + line + U" ";

  std::u32string t;
  t.reserve(s.size() * 2);
  for (char32_t c : s) {
    if (is_v13a_symbol(c)) {
      t += U' ';
      t += c;
      t += U' ';
    } else {
      t += c;
    }
  }
  // Two-character rules; after a match scanning resumes behind both characters.
  const auto pair_rule = [](auto match, auto emit) {
    return [=](const std::u32string& in, std::size_t i, std::u32string& out) -> std::size_t {
      if (i + 1 >= in.size() || !match(in[i], in[i + 1])) return 0;
      emit(out, in[i], in[i + 1]);
      return 2;
    };
  };
  auto is_period_comma = [](char32_t c) { return c == U'.' || c == U','; };
  // period and comma unless preceded by a digit: "x." -> "x . "
  t = tok::substitute(t, pair_rule([&](char32_t a, char32_t b) { return !is_digit(a) && is_period_comma(b); },
                                   [](std::u32string& o, char32_t a, char32_t b) { o.append({a, U' ', b, U' '}); }));
  // period and comma unless followed by a digit: ".x" -> " . x"
  t = tok::substitute(t, pair_rule([&](char32_t a, char32_t b) { return is_period_comma(a) && !is_digit(b); },
                                   [](std::u32string& o, char32_t a, char32_t b) { o.append({U' ', a, U' ', b}); }));
  // dash preceded by a digit: "9-" -> "9 - "
  t = tok::substitute(t, pair_rule([](char32_t a, char32_t b) { return is_digit(a) && b == U'-'; },
                                   [](std::u32string& o, char32_t a, char32_t b) { o.append({a, U' ', b, U' '}); }));
  return join_words(t);
}

double smooth_value_or_default(const BleuOptions& o) {
  if (o.smooth_value >= 0.0) return o.smooth_value;
  return o.smoothing == BleuSmoothing::AddK ? 1.0 : 0.1;
}

void check_options(const BleuOptions& o) {
  check(o.max_ngram_order >= 1 && o.max_ngram_order <= 16,
        "bleu: max_ngram_order must be in 1..16, got " + std::to_string(o.max_ngram_order));
}

// Words of a preprocessed line (single spaces, no leading/trailing ones).
std::vector<std::string_view> split_words(std::string_view text) {
  std::vector<std::string_view> words;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find(' ', pos);
    if (end == std::string_view::npos) end = text.size();
    words.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return words;
}

// n-gram -> count for orders 1..max_order. Keys are substrings of `text`:
// with single spaces between words the n-gram "a b c" is its own text span.
using NgramCounts = std::unordered_map<std::string_view, int64_t>;

NgramCounts count_ngrams(std::string_view text, const std::vector<std::string_view>& words, int max_order) {
  NgramCounts counts;
  const std::size_t n_words = words.size();
  for (int n = 1; n <= max_order; ++n) {
    for (std::size_t i = 0; i + static_cast<std::size_t>(n) <= n_words; ++i) {
      const std::size_t begin = static_cast<std::size_t>(words[i].data() - text.data());
      const std::string_view& last = words[i + static_cast<std::size_t>(n) - 1];
      const std::size_t end = static_cast<std::size_t>(last.data() - text.data()) + last.size();
      ++counts[text.substr(begin, end - begin)];
    }
  }
  return counts;
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

}  // namespace

std::string tokenize_13a(std::string_view line) {
  return tokenize_13a_chars(tok::decode_utf8(line, "tokenize_13a"));
}

std::string bleu_preprocess(std::string_view line, const BleuOptions& options) {
  std::u32string text = tok::decode_utf8(line, "bleu");
  if (options.lowercase) text = tok::py_lower(text);
  while (!text.empty() && tok::is_py_space(text.back())) text.pop_back();  // sacreBLEU's rstrip()
  if (options.tokenize == BleuTokenize::V13a) return tokenize_13a_chars(std::move(text));
  return join_words(text);  // "none": words are what Python's split() sees
}

namespace {

// Statistics of one preprocessed hypothesis against its preprocessed references.
BleuStatistics sentence_statistics(const std::string& hyp, const std::vector<const std::string*>& refs, int max_order) {
  BleuStatistics st;
  st.counts.assign(static_cast<std::size_t>(max_order), 0);
  st.totals.assign(static_cast<std::size_t>(max_order), 0);
  const auto hyp_words = split_words(hyp);
  st.sys_len = static_cast<int64_t>(hyp_words.size());

  NgramCounts ref_max;
  int64_t closest_diff = -1;
  for (const std::string* ref : refs) {
    const auto words = split_words(*ref);
    const int64_t len = static_cast<int64_t>(words.size());
    const int64_t diff = std::abs(st.sys_len - len);
    if (closest_diff < 0 || diff < closest_diff) {
      closest_diff = diff;
      st.ref_len = len;
    } else if (diff == closest_diff && len < st.ref_len) {
      st.ref_len = len;  // ties go to the shorter reference
    }
    for (const auto& [gram, c] : count_ngrams(*ref, words, max_order)) {
      int64_t& m = ref_max[gram];
      m = std::max(m, c);
    }
  }
  for (const auto& [gram, c] : count_ngrams(hyp, hyp_words, max_order)) {
    const std::size_t order = static_cast<std::size_t>(std::count(gram.begin(), gram.end(), ' '));
    st.totals[order] += c;
    if (auto it = ref_max.find(gram); it != ref_max.end()) st.counts[order] += std::min(c, it->second);
  }
  return st;
}

void add_statistics(BleuStatistics& into, const BleuStatistics& s) {
  into.sys_len += s.sys_len;
  into.ref_len += s.ref_len;
  for (std::size_t i = 0; i < s.counts.size(); ++i) {
    into.counts[i] += s.counts[i];
    into.totals[i] += s.totals[i];
  }
}

}  // namespace

BleuStatistics bleu_statistics(std::string_view hypothesis, const std::vector<std::string_view>& references,
                               const BleuOptions& options) {
  check_options(options);
  check(!references.empty(), "bleu: a hypothesis needs at least one reference");
  const std::string hyp = bleu_preprocess(hypothesis, options);
  std::vector<std::string> refs;
  for (std::string_view r : references) refs.push_back(bleu_preprocess(r, options));
  std::vector<const std::string*> ptrs;
  for (const auto& r : refs) ptrs.push_back(&r);
  return sentence_statistics(hyp, ptrs, options.max_ngram_order);
}

BleuResult bleu_from_statistics(const BleuStatistics& stats, const BleuOptions& options, int nrefs) {
  check_options(options);
  const std::size_t orders = static_cast<std::size_t>(options.max_ngram_order);
  check(stats.counts.size() == orders && stats.totals.size() == orders,
        "bleu: statistics have " + std::to_string(stats.counts.size()) + " orders, expected " +
            std::to_string(orders));
  BleuResult r;
  r.counts = stats.counts;
  r.totals = stats.totals;
  r.sys_len = stats.sys_len;
  r.ref_len = stats.ref_len;
  r.ratio = stats.ref_len > 0 ? static_cast<double>(stats.sys_len) / static_cast<double>(stats.ref_len) : 0.0;
  r.signature = bleu_signature(options, nrefs);
  r.precisions.assign(orders, 0.0);
  if (stats.sys_len < stats.ref_len)
    r.bp = stats.sys_len > 0 ? std::exp(1.0 - static_cast<double>(stats.ref_len) / static_cast<double>(stats.sys_len))
                             : 0.0;

  // No match of any order: 0, whatever the smoothing (sacreBLEU does the same).
  if (std::all_of(stats.counts.begin(), stats.counts.end(), [](int64_t c) { return c == 0; })) return r;

  const double k = smooth_value_or_default(options);
  double smooth_mteval = 1.0;
  std::size_t eff_order = orders;
  for (std::size_t n = 1; n <= orders; ++n) {
    double correct = static_cast<double>(stats.counts[n - 1]);
    double total = static_cast<double>(stats.totals[n - 1]);
    if (options.smoothing == BleuSmoothing::AddK && n > 1) {
      correct += k;
      total += k;
    }
    if (total == 0.0) break;  // the remaining orders keep precision 0
    if (options.effective_order) eff_order = n;
    if (correct == 0.0) {
      if (options.smoothing == BleuSmoothing::Exp) {
        smooth_mteval *= 2.0;
        r.precisions[n - 1] = 100.0 / (smooth_mteval * total);
      } else if (options.smoothing == BleuSmoothing::Floor) {
        r.precisions[n - 1] = 100.0 * k / total;
      }
    } else {
      r.precisions[n - 1] = 100.0 * correct / total;
    }
  }
  double log_sum = 0.0;
  for (std::size_t n = 0; n < eff_order; ++n)
    log_sum += r.precisions[n] == 0.0 ? kLogZero : std::log(r.precisions[n]);
  r.score = r.bp * std::exp(log_sum / static_cast<double>(eff_order));
  return r;
}

BleuResult corpus_bleu_multiref(const std::vector<std::string>& hypotheses,
                                const std::vector<std::vector<std::string>>& reference_streams,
                                const BleuOptions& options) {
  check_options(options);
  check(!reference_streams.empty(), "corpus_bleu: no reference stream given");
  for (std::size_t s = 0; s < reference_streams.size(); ++s) {
    check(reference_streams[s].size() == hypotheses.size(),
          "corpus_bleu: " + std::to_string(hypotheses.size()) + " hypotheses but " +
              std::to_string(reference_streams[s].size()) + " references" +
              (reference_streams.size() > 1 ? " in stream " + std::to_string(s + 1) : std::string()));
  }
  BleuStatistics total;
  total.counts.assign(static_cast<std::size_t>(options.max_ngram_order), 0);
  total.totals = total.counts;
  std::vector<std::string> refs(reference_streams.size());
  std::vector<const std::string*> ptrs(reference_streams.size());
  for (std::size_t i = 0; i < hypotheses.size(); ++i) {
    std::string hyp;
    try {
      hyp = bleu_preprocess(hypotheses[i], options);
      for (std::size_t s = 0; s < reference_streams.size(); ++s) {
        refs[s] = bleu_preprocess(reference_streams[s][i], options);
        ptrs[s] = &refs[s];
      }
    } catch (const Error& e) {
      throw Error("corpus_bleu: line " + std::to_string(i + 1) + ": " + e.what());
    }
    add_statistics(total, sentence_statistics(hyp, ptrs, options.max_ngram_order));
  }
  return bleu_from_statistics(total, options, static_cast<int>(reference_streams.size()));
}

BleuResult corpus_bleu(const std::vector<std::string>& hypotheses, const std::vector<std::string>& references,
                       const BleuOptions& options) {
  return corpus_bleu_multiref(hypotheses, std::vector<std::vector<std::string>>{references}, options);
}

std::string bleu_signature(const BleuOptions& options, int nrefs) {
  std::string smooth;
  switch (options.smoothing) {
    case BleuSmoothing::None: smooth = "none"; break;
    case BleuSmoothing::Exp: smooth = "exp"; break;
    case BleuSmoothing::Floor: smooth = "floor[" + fixed(smooth_value_or_default(options), 2) + "]"; break;
    case BleuSmoothing::AddK: smooth = "add-k[" + fixed(smooth_value_or_default(options), 2) + "]"; break;
  }
  std::string sig = "nrefs:" + std::to_string(nrefs) + "|case:" + (options.lowercase ? "lc" : "mixed") +
                    "|eff:" + (options.effective_order ? "yes" : "no") +
                    "|tok:" + (options.tokenize == BleuTokenize::V13a ? "13a" : "none") + "|smooth:" + smooth;
  if (options.max_ngram_order != 4) sig += "|order:" + std::to_string(options.max_ngram_order);
  return sig + "|version:roformer.cpp";
}

std::string BleuResult::verbose() const {
  std::string s;
  for (std::size_t i = 0; i < precisions.size(); ++i) {
    if (i) s += '/';
    s += fixed(precisions[i], 1);
  }
  s += " (BP = ";
  s += fixed(bp, 3);
  s += " ratio = ";
  s += fixed(ratio, 3);
  s += " hyp_len = ";
  s += std::to_string(sys_len);
  s += " ref_len = ";
  s += std::to_string(ref_len);
  s += ')';
  return s;
}

}  // namespace roformer
