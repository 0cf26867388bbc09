// Parallel corpora: TSV reading, deterministic splits, length filtering.
#include "roformer/parallel_corpus.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <sstream>

#include "roformer/data_rng.h"
#include "roformer/error.h"
#include "tokenizer/unicode_text.h"

namespace roformer {
namespace {

bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

bool is_blank(std::string_view s) { return std::all_of(s.begin(), s.end(), is_ascii_space); }

// FNV-1a: a stable, platform-independent hash of the source text.
uint64_t fnv1a64(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace

ParallelCorpus parse_parallel_tsv(std::string_view text, const std::string& label, const ParallelReadOptions& options) {
  ParallelCorpus corpus;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  int64_t line_no = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (is_blank(line)) {
      ++corpus.blank_lines;
      continue;
    }
    std::string fault;
    const std::size_t tab = line.find('\t');
    if (static_cast<int64_t>(line.size()) > options.max_line_bytes) {
      fault = "line is longer than " + std::to_string(options.max_line_bytes) + " bytes";
    } else if (const std::size_t bad = tok::find_invalid_utf8(line); bad != std::string_view::npos) {
      fault = "invalid UTF-8 at byte " + std::to_string(bad);
    } else if (tab == std::string_view::npos) {
      fault = "no TAB between source and target";
    } else if (line.find('\t', tab + 1) != std::string_view::npos) {
      fault = "more than one TAB (expected source<TAB>target)";
    } else if (is_blank(line.substr(0, tab))) {
      fault = "empty source field";
    } else if (is_blank(line.substr(tab + 1))) {
      fault = "empty target field";
    }
    if (!fault.empty()) {
      if (!options.skip_malformed) throw Error(label + ":" + std::to_string(line_no) + ": " + fault);
      ++corpus.malformed_lines;
      continue;
    }
    corpus.pairs.push_back(SentencePair{std::string(line.substr(0, tab)), std::string(line.substr(tab + 1)), line_no});
  }
  return corpus;
}

ParallelCorpus read_parallel_tsv(const std::string& path, const ParallelReadOptions& options) {
  std::ifstream in(path, std::ios::binary);
  check(static_cast<bool>(in), "parallel corpus: cannot open " + path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  check(!in.bad(), "parallel corpus: cannot read " + path);
  return parse_parallel_tsv(buffer.str(), path, options);
}

ParallelSplits split_parallel(const std::vector<SentencePair>& pairs, const SplitOptions& options) {
  const double v = options.valid_fraction;
  const double t = options.test_fraction;
  check(v >= 0.0 && v <= 1.0 && t >= 0.0 && t <= 1.0 && v + t <= 1.0,
        "split_parallel: fractions must be in [0, 1] and add up to at most 1 (valid " + std::to_string(v) +
            ", test " + std::to_string(t) + ")");
  // 0 = train, 1 = valid, 2 = test for every pair.
  std::vector<uint8_t> where(pairs.size(), 0);
  if (options.method == SplitMethod::Hash) {
    for (std::size_t i = 0; i < pairs.size(); ++i) {
      const uint64_t h = derive_seed(options.seed, fnv1a64(pairs[i].source));
      const double u = static_cast<double>(h >> 11) * 0x1.0p-53;  // uniform in [0, 1)
      where[i] = u < t ? 2 : (u < t + v ? 1 : 0);
    }
  } else {
    std::vector<std::size_t> order(pairs.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    DataRng rng(options.seed);
    rng.shuffle(order);
    const auto n = static_cast<double>(pairs.size());
    const auto n_test = static_cast<std::size_t>(std::llround(n * t));
    const auto n_valid = std::min(order.size() - n_test, static_cast<std::size_t>(std::llround(n * v)));
    for (std::size_t k = 0; k < n_test + n_valid; ++k) where[order[k]] = k < n_test ? 2 : 1;
  }
  ParallelSplits splits;
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    auto& dest = where[i] == 0 ? splits.train : (where[i] == 1 ? splits.valid : splits.test);
    dest.push_back(pairs[i]);
  }
  return splits;
}

int64_t count_words(std::string_view text) {
  int64_t words = 0;
  bool in_word = false;
  for (char c : text) {
    const bool space = is_ascii_space(c);
    if (!space && !in_word) ++words;
    in_word = !space;
  }
  return words;
}

FilterResult filter_by_length(const std::vector<SentencePair>& pairs, const LengthFilter& filter,
                              const std::function<int64_t(std::string_view)>& length) {
  check(filter.min_length >= 0 && filter.max_length >= filter.min_length,
        "filter_by_length: need 0 <= min_length <= max_length (got " + std::to_string(filter.min_length) + ", " +
            std::to_string(filter.max_length) + ")");
  check(filter.max_ratio == 0.0 || filter.max_ratio >= 1.0,
        "filter_by_length: max_ratio must be 0 (off) or at least 1, got " + std::to_string(filter.max_ratio));
  FilterResult result;
  for (const SentencePair& p : pairs) {
    const int64_t a = length(p.source);
    const int64_t b = length(p.target);
    if (std::min(a, b) < filter.min_length) {
      ++result.too_short;
    } else if (std::max(a, b) > filter.max_length) {
      ++result.too_long;
    } else if (filter.max_ratio > 0.0 && static_cast<double>(std::max(a, b)) >
                                             filter.max_ratio * static_cast<double>(std::max<int64_t>(std::min(a, b), 1))) {
      ++result.bad_ratio;
    } else {
      result.kept.push_back(p);
    }
  }
  return result;
}

}  // namespace roformer
