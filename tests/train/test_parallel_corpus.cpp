// Parallel corpora: TSV parsing and its errors, deterministic splits, length filters.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "roformer/error.h"
#include "roformer/parallel_corpus.h"
#include "support/test_support.h"

namespace roformer {
namespace {

std::string tsv_error_of(const std::string& text, const ParallelReadOptions& o = {}) {
  try {
    parse_parallel_tsv(text, "t.tsv", o);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::vector<SentencePair> numbered_pairs(int n) {
  std::vector<SentencePair> pairs;
  for (int i = 0; i < n; ++i)
    pairs.push_back(SentencePair{"source sentence " + std::to_string(i), "target " + std::to_string(i), i + 1});
  return pairs;
}

TEST(ParallelTsv, ReadsPairsAndSkipsBlankLines) {
  const ParallelCorpus c = parse_parallel_tsv("\xEF\xBB\xBFHallo Welt.\tHello world.\r\n\n  \nGuten Tag!\tGood day!");
  ASSERT_EQ(c.pairs.size(), 2u);
  EXPECT_EQ(c.pairs[0].source, "Hallo Welt.");  // BOM and CR removed
  EXPECT_EQ(c.pairs[0].target, "Hello world.");
  EXPECT_EQ(c.pairs[0].line, 1);
  EXPECT_EQ(c.pairs[1].source, "Guten Tag!");
  EXPECT_EQ(c.pairs[1].target, "Good day!");  // no final newline needed
  EXPECT_EQ(c.pairs[1].line, 4);
  EXPECT_EQ(c.blank_lines, 2);
  EXPECT_EQ(c.malformed_lines, 0);
}

TEST(ParallelTsv, FieldsAreKeptByteForByte) {
  const ParallelCorpus c = parse_parallel_tsv(" Straße \t«street» \n");
  ASSERT_EQ(c.pairs.size(), 1u);
  EXPECT_EQ(c.pairs[0].source, " Straße ");
  EXPECT_EQ(c.pairs[0].target, "«street» ");
}

TEST(ParallelTsv, MalformedLinesAreErrorsNamingFileAndLine) {
  EXPECT_NE(tsv_error_of("a\tb\nno tab here\n").find("t.tsv:2: no TAB"), std::string::npos);
  EXPECT_NE(tsv_error_of("a\tb\tc\n").find("t.tsv:1: more than one TAB"), std::string::npos);
  EXPECT_NE(tsv_error_of("\tb\n").find("t.tsv:1: empty source"), std::string::npos);
  EXPECT_NE(tsv_error_of("a\t  \n").find("t.tsv:1: empty target"), std::string::npos);
  EXPECT_NE(tsv_error_of("ok\tok\n\nbad\xff\tx\n").find("t.tsv:3: invalid UTF-8 at byte 3"), std::string::npos);
  ParallelReadOptions small;
  small.max_line_bytes = 8;
  EXPECT_NE(tsv_error_of("0123456789\tx\n", small).find("longer than 8 bytes"), std::string::npos);
}

TEST(ParallelTsv, SkipMalformedCountsInsteadOfThrowing) {
  ParallelReadOptions o;
  o.skip_malformed = true;
  const ParallelCorpus c = parse_parallel_tsv("a\tb\nno tab\nx\ty\tz\n\tq\nc\td\n", "t.tsv", o);
  ASSERT_EQ(c.pairs.size(), 2u);
  EXPECT_EQ(c.pairs[1].source, "c");
  EXPECT_EQ(c.pairs[1].line, 5);
  EXPECT_EQ(c.malformed_lines, 3);
}

TEST(ParallelTsv, ReadsFilesAndReportsMissingOnes) {
  testing::TempDir dir;
  std::ofstream(dir.file("p.tsv"), std::ios::binary) << "eins\tone\nzwei\ttwo\n";
  const ParallelCorpus c = read_parallel_tsv(dir.file("p.tsv"));
  ASSERT_EQ(c.pairs.size(), 2u);
  EXPECT_EQ(c.pairs[1].target, "two");
  try {
    read_parallel_tsv(dir.file("missing.tsv"));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.tsv"), std::string::npos);
  }
}

TEST(ParallelTsv, CommittedSampleIsWellFormed) {
  const std::string path = testing::data_path("../../data/sample/mt_de_en.tsv");
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "no data/sample/mt_de_en.tsv";
  const ParallelCorpus c = read_parallel_tsv(path);
  EXPECT_EQ(c.pairs.size(), 3000u);
  EXPECT_EQ(c.blank_lines, 0);
}

TEST(SplitParallel, HashSplitIsDeterministicOrderFreeAndKeepsDuplicatesTogether) {
  std::vector<SentencePair> pairs = numbered_pairs(4000);
  pairs.push_back(SentencePair{"source sentence 7", "another target", 0});  // a repeated source
  SplitOptions o;
  o.valid_fraction = 0.1;
  o.test_fraction = 0.2;
  const ParallelSplits a = split_parallel(pairs, o);
  EXPECT_EQ(a.train.size() + a.valid.size() + a.test.size(), pairs.size());
  // Sizes follow the fractions in expectation (binomial, sd ~ 25 for test).
  EXPECT_NEAR(static_cast<double>(a.test.size()), 800.0, 100.0);
  EXPECT_NEAR(static_cast<double>(a.valid.size()), 400.0, 80.0);

  // The same sources land in the same splits whatever the file order.
  std::vector<SentencePair> reversed(pairs.rbegin(), pairs.rend());
  const ParallelSplits b = split_parallel(reversed, o);
  auto sources = [](const std::vector<SentencePair>& v) {
    std::multiset<std::string> s;
    for (const auto& p : v) s.insert(p.source + "\t" + p.target);
    return s;
  };
  EXPECT_EQ(sources(a.test), sources(b.test));
  EXPECT_EQ(sources(a.valid), sources(b.valid));

  // Both pairs with the repeated source are in one split.
  int in_test = 0, in_valid = 0, in_train = 0;
  for (const auto& p : a.test) in_test += p.source == "source sentence 7";
  for (const auto& p : a.valid) in_valid += p.source == "source sentence 7";
  for (const auto& p : a.train) in_train += p.source == "source sentence 7";
  EXPECT_TRUE(in_test == 2 || in_valid == 2 || in_train == 2) << in_train << " " << in_valid << " " << in_test;

  // Another seed gives another split; each split keeps input order.
  o.seed = 1;
  const ParallelSplits c = split_parallel(pairs, o);
  EXPECT_NE(sources(a.test), sources(c.test));
  for (std::size_t i = 1; i < a.train.size(); ++i) {
    if (a.train[i].line != 0 && a.train[i - 1].line != 0) {
      EXPECT_LT(a.train[i - 1].line, a.train[i].line);
    }
  }
}

TEST(SplitParallel, ShuffleSplitHasExactSizes) {
  const std::vector<SentencePair> pairs = numbered_pairs(1001);
  SplitOptions o;
  o.method = SplitMethod::Shuffle;
  o.valid_fraction = 0.05;
  o.test_fraction = 0.1;
  o.seed = 42;
  const ParallelSplits a = split_parallel(pairs, o);
  EXPECT_EQ(a.test.size(), 100u);  // round(100.1)
  EXPECT_EQ(a.valid.size(), 50u);  // round(50.05)
  EXPECT_EQ(a.train.size(), 851u);
  const ParallelSplits b = split_parallel(pairs, o);
  ASSERT_EQ(a.test.size(), b.test.size());
  for (std::size_t i = 0; i < a.test.size(); ++i) EXPECT_EQ(a.test[i].source, b.test[i].source);
  for (std::size_t i = 1; i < a.test.size(); ++i) EXPECT_LT(a.test[i - 1].line, a.test[i].line);
  o.seed = 43;
  const ParallelSplits c = split_parallel(pairs, o);
  ASSERT_EQ(c.test.size(), a.test.size());
  bool differs = false;
  for (std::size_t i = 0; i < a.test.size(); ++i) differs |= a.test[i].source != c.test[i].source;
  EXPECT_TRUE(differs);
}

TEST(SplitParallel, ExtremeAndInvalidFractions) {
  const std::vector<SentencePair> pairs = numbered_pairs(50);
  SplitOptions all_test;
  all_test.valid_fraction = 0.0;
  all_test.test_fraction = 1.0;
  EXPECT_EQ(split_parallel(pairs, all_test).test.size(), 50u);
  all_test.method = SplitMethod::Shuffle;
  EXPECT_EQ(split_parallel(pairs, all_test).test.size(), 50u);
  SplitOptions bad;
  bad.valid_fraction = 0.6;
  bad.test_fraction = 0.5;
  EXPECT_THROW(split_parallel(pairs, bad), Error);
  bad.valid_fraction = -0.1;
  bad.test_fraction = 0.1;
  EXPECT_THROW(split_parallel(pairs, bad), Error);
}

TEST(LengthFilter, CountsWordsAndAppliesEachRule) {
  EXPECT_EQ(count_words("  zwei  Wörter\t"), 2);
  EXPECT_EQ(count_words(""), 0);
  const std::vector<SentencePair> pairs = {
      {"a b c", "x y z", 1},                    // kept
      {"a", "x y", 2},                          // too short (min 2)
      {"a b c d e f", "x y", 3},                // too long (max 5)
      {"a b c d e", "x y", 4},                  // ratio 2.5 > 2
      {"a b c d", "w x", 5},                    // ratio 2: kept
  };
  LengthFilter f;
  f.min_length = 2;
  f.max_length = 5;
  f.max_ratio = 2.0;
  const FilterResult r = filter_by_length(pairs, f);
  ASSERT_EQ(r.kept.size(), 2u);
  EXPECT_EQ(r.kept[0].line, 1);
  EXPECT_EQ(r.kept[1].line, 5);
  EXPECT_EQ(r.too_short, 1);
  EXPECT_EQ(r.too_long, 1);
  EXPECT_EQ(r.bad_ratio, 1);
  // A custom length (characters here) replaces word counts.
  LengthFilter chars;
  chars.max_length = 4;
  const FilterResult c = filter_by_length(pairs, chars, [](std::string_view s) { return static_cast<int64_t>(s.size()); });
  EXPECT_EQ(c.kept.size(), 1u);  // only "a" / "x y"
  LengthFilter bad;
  bad.min_length = 5;
  bad.max_length = 4;
  EXPECT_THROW(filter_by_length(pairs, bad), Error);
}

}  // namespace
}  // namespace roformer
