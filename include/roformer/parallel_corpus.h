#pragma once
// Sentence-aligned parallel text for translation: reading `source<TAB>target`
// files, a deterministic train/valid/test split, and length filtering.
//
// File format (what scripts/fetch_data.sh writes under data/corpora/mt/):
// UTF-8, one pair a line, exactly one TAB per line, '\n' or "\r\n" line ends,
// an optional UTF-8 byte-order mark at the start. Blank lines (empty or only
// whitespace) are skipped and counted. A line with no TAB, more than one TAB,
// an empty (or whitespace-only) field or invalid UTF-8 is an Error naming the
// file and line, unless `skip_malformed` is set: then it is skipped and counted.
// Fields are kept byte for byte (no trimming, no normalisation).
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace roformer {

struct SentencePair {
  std::string source;
  std::string target;
  int64_t line = 0;  // 1-based line in the file it came from (0 if built in memory)
};

struct ParallelReadOptions {
  bool skip_malformed = false;
  int64_t max_line_bytes = 1 << 20;  // longer lines are malformed: a guard against non-text input
};

struct ParallelCorpus {
  std::vector<SentencePair> pairs;
  int64_t blank_lines = 0;
  int64_t malformed_lines = 0;  // only with skip_malformed
};

// Throws Error naming the file (and line) on unreadable or malformed input.
ParallelCorpus read_parallel_tsv(const std::string& path, const ParallelReadOptions& options = {});
// The same on text in memory; `label` names it in errors.
ParallelCorpus parse_parallel_tsv(std::string_view text, const std::string& label = "<memory>",
                                  const ParallelReadOptions& options = {});

enum class SplitMethod {
  // Each pair goes by a seeded 64-bit hash of its source text: independent of
  // file order, and repeated sources always land in the same split (no
  // train/test leakage through duplicates). Split sizes match the fractions
  // only in expectation.
  Hash,
  // A seeded shuffle (DataRng): the sizes are exactly round(n * fraction).
  Shuffle,
};

struct SplitOptions {
  double valid_fraction = 0.05;
  double test_fraction = 0.05;
  uint64_t seed = 0;
  SplitMethod method = SplitMethod::Hash;
};

// Each split keeps the input order of its pairs.
struct ParallelSplits {
  std::vector<SentencePair> train, valid, test;
};

// Throws Error when a fraction is outside [0, 1] or they add up to more than 1.
ParallelSplits split_parallel(const std::vector<SentencePair>& pairs, const SplitOptions& options = {});

// Length in words: runs of characters between ASCII whitespace.
int64_t count_words(std::string_view text);

// Keeps pairs whose both sides have min_length..max_length units and, when
// max_ratio > 0, whose longer side is at most max_ratio times the shorter one
// (Moses' clean-corpus-n rule; 0 turns it off).
struct LengthFilter {
  int64_t min_length = 1;
  int64_t max_length = 250;
  double max_ratio = 0.0;
};

struct FilterResult {
  std::vector<SentencePair> kept;
  int64_t too_short = 0;
  int64_t too_long = 0;
  int64_t bad_ratio = 0;
};

// `length` measures one side (count_words by default; pass a tokenizer's count
// to filter by model tokens). The first failing rule is the one counted.
FilterResult filter_by_length(const std::vector<SentencePair>& pairs, const LengthFilter& filter,
                              const std::function<int64_t(std::string_view)>& length = count_words);

}  // namespace roformer
