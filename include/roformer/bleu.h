#pragma once
// Corpus-level BLEU (Papineni et al., 2002) computed the way sacreBLEU 2.x
// computes it by default, so that scores can be compared with published ones:
//
//   - tokenisation "13a" (mteval-v13a.pl's rules, see tokenize_13a below);
//   - clipped n-gram counts for n = 1..4 summed over the corpus, then the
//     geometric mean of the four precisions times the brevity penalty
//     BP = exp(1 - r/c) when c < r (c = hypothesis words, r = reference words);
//   - smoothing "exp" (sacreBLEU's default for corpus BLEU, mteval's NIST
//     smoothing): the k-th order whose match count is 0 gets precision
//     1 / (2^k * total) instead of 0. A corpus with no match at all scores 0.
//     With smoothing None a zero precision makes the score 0 (sacreBLEU floors
//     log(0) at -9999999999);
//   - score on the 0..100 scale; every component is returned.
//
// Input lines are UTF-8 (checked); trailing whitespace is stripped as
// sacreBLEU does. With several reference streams each n-gram is clipped by its
// largest count in any reference and the reference length is the closest one
// (the shorter on a tie), as in sacreBLEU.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace roformer {

enum class BleuTokenize { V13a, None };  // sacreBLEU's "13a" and "none"
enum class BleuSmoothing { None, Exp, Floor, AddK };

struct BleuOptions {
  BleuTokenize tokenize = BleuTokenize::V13a;
  BleuSmoothing smoothing = BleuSmoothing::Exp;
  // Floor: the numerator used for a zero count (sacreBLEU default 0.1);
  // AddK: k added to counts and totals of orders >= 2 (default 1). < 0 = default.
  double smooth_value = -1.0;
  bool lowercase = false;       // Python's str.lower() (full Unicode mapping)
  bool effective_order = false;  // average only over orders that have n-grams (sentence BLEU)
  int max_ngram_order = 4;
};

// Sufficient statistics: everything the score is computed from.
struct BleuStatistics {
  int64_t sys_len = 0;          // hypothesis words
  int64_t ref_len = 0;          // reference words (closest reference per sentence)
  std::vector<int64_t> counts;  // clipped matches per order 1..N
  std::vector<int64_t> totals;  // hypothesis n-grams per order 1..N
};

struct BleuResult {
  double score = 0.0;               // 0..100
  std::vector<int64_t> counts;      // clipped matches per order (before any add-k)
  std::vector<int64_t> totals;      // hypothesis n-grams per order
  std::vector<double> precisions;   // per order, 0..100, after smoothing
  double bp = 1.0;                  // brevity penalty
  double ratio = 0.0;               // sys_len / ref_len (0 when ref_len is 0)
  int64_t sys_len = 0;
  int64_t ref_len = 0;
  std::string signature;            // e.g. nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:...

  // sacreBLEU's verbose line: "82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)".
  std::string verbose() const;
};

// mteval-v13a tokenisation, as sacreBLEU's "13a": removes "<skipped>", joins
// "-\n" line breaks, unescapes &quot; &amp; &lt; &gt;, then puts spaces around
//   - every ASCII punctuation/symbol except - . , and ' ;
//   - '.' and ',' unless preceded by a digit, and again unless followed by one
//     (so "3.5" and "1,000" stay whole, "end." splits);
//   - '-' when preceded by a digit ("1990-2000" -> "1990 - 2000", "e-mail" stays);
// and collapses whitespace (Python's definition) to single spaces.
// Throws Error on invalid UTF-8.
std::string tokenize_13a(std::string_view line);

// The tokenisation `options` select, applied to one line (after lowercasing and
// stripping trailing whitespace, as corpus_bleu does).
std::string bleu_preprocess(std::string_view line, const BleuOptions& options = {});

// One reference per hypothesis. Throws Error on different counts or invalid UTF-8.
BleuResult corpus_bleu(const std::vector<std::string>& hypotheses, const std::vector<std::string>& references,
                       const BleuOptions& options = {});
// Several reference streams, each as long as `hypotheses` (sacreBLEU's layout).
// A separate name: with brace-initialised arguments an overload would be ambiguous.
BleuResult corpus_bleu_multiref(const std::vector<std::string>& hypotheses,
                                const std::vector<std::vector<std::string>>& reference_streams,
                                const BleuOptions& options = {});

// Sentence statistics (for accumulating over a corpus, or a bootstrap).
BleuStatistics bleu_statistics(std::string_view hypothesis, const std::vector<std::string_view>& references,
                               const BleuOptions& options = {});
// The score from (summed) statistics; `nrefs` only goes into the signature.
BleuResult bleu_from_statistics(const BleuStatistics& stats, const BleuOptions& options = {}, int nrefs = 1);

// sacreBLEU's signature format for these options.
std::string bleu_signature(const BleuOptions& options, int nrefs);

}  // namespace roformer
