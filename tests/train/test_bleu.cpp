// Corpus BLEU and the 13a tokeniser: hand-computed cases, the rules one by
// one, and the published values of sacreBLEU's README and test suite.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "roformer/bleu.h"
#include "roformer/error.h"

namespace roformer {
namespace {

using Lines = std::vector<std::string>;

// ---- 13a tokenisation, rule by rule ----

TEST(Tokenize13a, SplitsAsciiSymbolsButNotApostropheOrDash) {
  EXPECT_EQ(tokenize_13a("Hello, world!"), "Hello , world !");
  EXPECT_EQ(tokenize_13a("A+B=C*D/E%F<G>H?I;J'K"), "A + B = C * D / E % F < G > H ? I ; J'K");
  EXPECT_EQ(tokenize_13a("a_b [c] {d} |e| ~f ^g `h` \\i"), "a _ b [ c ] { d } | e | ~ f ^ g ` h ` \\ i");
  EXPECT_EQ(tokenize_13a("user@example.com: #1"), "user @ example . com : # 1");
}

TEST(Tokenize13a, QuotesAndParentheses) {
  EXPECT_EQ(tokenize_13a("He said \"don't\" (twice)."), "He said \" don't \" ( twice ) .");
}

TEST(Tokenize13a, PeriodAndCommaStayInsideNumbers) {
  EXPECT_EQ(tokenize_13a("It costs $3.50, or 1,000.5 yen."), "It costs $ 3.50 , or 1,000.5 yen .");
  EXPECT_EQ(tokenize_13a("3."), "3 .");       // followed by the added space, not a digit
  EXPECT_EQ(tokenize_13a("1."), "1 .");
  EXPECT_EQ(tokenize_13a(".5"), ". 5");       // preceded by the added space, not a digit
  EXPECT_EQ(tokenize_13a(",5,"), ", 5 ,");
  EXPECT_EQ(tokenize_13a("v.2"), "v . 2");    // preceded by a letter
  EXPECT_EQ(tokenize_13a("a.b"), "a . b");
  // Matches do not overlap: the second '.' is consumed by the first match's neighbour.
  EXPECT_EQ(tokenize_13a("Wait..."), "Wait . . .");
}

TEST(Tokenize13a, DashSplitOnlyAfterADigit) {
  EXPECT_EQ(tokenize_13a("e-mail 1990-2000 -5"), "e-mail 1990 - 2000 -5");
  EXPECT_EQ(tokenize_13a("1-2-3"), "1 - 2 - 3");
  EXPECT_EQ(tokenize_13a("x-1"), "x-1");
  EXPECT_EQ(tokenize_13a("10,- Euro"), "10 , - Euro");
  EXPECT_EQ(tokenize_13a("2-3."), "2 - 3 .");
}

TEST(Tokenize13a, EntitiesSkippedMarkersAndLineBreaks) {
  EXPECT_EQ(tokenize_13a("a &amp; b &lt;c&gt; &quot;q&quot;"), "a & b < c > \" q \"");
  // Unescaped once, in mteval's order: &amp;quot; becomes &quot;, not a quote.
  EXPECT_EQ(tokenize_13a("&amp;quot;"), "& quot ;");
  EXPECT_EQ(tokenize_13a("foo <skipped> bar"), "foo bar");
  EXPECT_EQ(tokenize_13a("hyphen-\nated"), "hyphenated");
  EXPECT_EQ(tokenize_13a("two\nlines"), "two lines");
}

TEST(Tokenize13a, NonAsciiTextAndWhitespace) {
  EXPECT_EQ(tokenize_13a("Straße, über."), "Straße , über .");
  EXPECT_EQ(tokenize_13a("„Hallo“, sagte er."), "„Hallo“ , sagte er .");  // non-ASCII quotes stay attached
  EXPECT_EQ(tokenize_13a("«Ja»—nein"), "«Ja»—nein");
  EXPECT_EQ(tokenize_13a("\u0663."), "\u0663 .");  // an Arabic-Indic digit is not [0-9]
  // Python's whitespace: NBSP and TAB separate words, ZERO WIDTH SPACE does not.
  EXPECT_EQ(tokenize_13a("a\u00a0b\u200bc\td"), "a b\u200bc d");
  EXPECT_EQ(tokenize_13a("  spaced   out  "), "spaced out");
  EXPECT_EQ(tokenize_13a(""), "");
}

TEST(Tokenize13a, RejectsInvalidUtf8) {
  EXPECT_THROW(tokenize_13a("ab\xff"), Error);
  EXPECT_THROW(tokenize_13a("\xc0\xaf"), Error);  // overlong '/'
}

// ---- hand-computed scores ----

TEST(CorpusBleu, PerfectMatchIs100) {
  const BleuResult r = corpus_bleu(Lines{"the cat sat on the mat .", "a dog barked"}, Lines{"the cat sat on the mat .", "a dog barked"});
  EXPECT_NEAR(r.score, 100.0, 1e-9);
  EXPECT_EQ(r.counts, r.totals);
  EXPECT_EQ(r.totals, (std::vector<int64_t>{10, 8, 6, 4}));
  EXPECT_DOUBLE_EQ(r.bp, 1.0);
  EXPECT_EQ(r.sys_len, 10);
  EXPECT_EQ(r.ref_len, 10);
}

TEST(CorpusBleu, NoOverlapIsZeroWithAnySmoothing) {
  for (auto s : {BleuSmoothing::Exp, BleuSmoothing::None, BleuSmoothing::Floor, BleuSmoothing::AddK}) {
    BleuOptions o;
    o.smoothing = s;
    const BleuResult r = corpus_bleu({"a b c d"}, {"e f g h"}, o);
    EXPECT_EQ(r.score, 0.0);
    EXPECT_EQ(r.counts, (std::vector<int64_t>{0, 0, 0, 0}));
    EXPECT_EQ(r.totals, (std::vector<int64_t>{4, 3, 2, 1}));
  }
}

TEST(CorpusBleu, BrevityPenaltyByHand) {
  // Every n-gram of the 4-word hypothesis matches the 6-word reference:
  // precisions are 100, BP = exp(1 - 6/4).
  const BleuResult r = corpus_bleu({"the cat sat on"}, {"the cat sat on the mat"});
  EXPECT_EQ(r.counts, (std::vector<int64_t>{4, 3, 2, 1}));
  EXPECT_NEAR(r.bp, std::exp(-0.5), 1e-15);
  EXPECT_NEAR(r.score, 100.0 * std::exp(-0.5), 1e-9);
  EXPECT_NEAR(r.ratio, 4.0 / 6.0, 1e-15);
  // A longer hypothesis is not penalised.
  EXPECT_DOUBLE_EQ(corpus_bleu({"the cat sat on the mat"}, {"the cat sat on"}).bp, 1.0);
}

TEST(CorpusBleu, ClippedCountsAndExpSmoothingByHand) {
  // hyp "a b c d e" vs ref "a b x d e": unigrams 4/5, bigrams (a b, d e) 2/4,
  // trigrams 0/3, 4-grams 0/2. exp smoothing: the first zero order gets
  // 1/(2*3), the second 1/(4*2).
  const BleuResult r = corpus_bleu({"a b c d e"}, {"a b x d e"});
  EXPECT_EQ(r.counts, (std::vector<int64_t>{4, 2, 0, 0}));
  EXPECT_EQ(r.totals, (std::vector<int64_t>{5, 4, 3, 2}));
  const std::vector<double> p{80.0, 50.0, 100.0 / 6.0, 100.0 / 8.0};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(r.precisions[static_cast<std::size_t>(i)], p[static_cast<std::size_t>(i)], 1e-12);
  EXPECT_NEAR(r.score, std::pow(p[0] * p[1] * p[2] * p[3], 0.25), 1e-9);
  EXPECT_NEAR(r.score, 30.213753973567677, 1e-9);  // sacreBLEU 2.6 gives the same

  BleuOptions none;
  none.smoothing = BleuSmoothing::None;
  EXPECT_EQ(corpus_bleu({"a b c d e"}, {"a b x d e"}, none).score, 0.0);

  BleuOptions floor;
  floor.smoothing = BleuSmoothing::Floor;  // 0.1 / total for the zero orders
  const BleuResult f = corpus_bleu({"a b c d e"}, {"a b x d e"}, floor);
  EXPECT_NEAR(f.score, std::pow(80.0 * 50.0 * (10.0 / 3.0) * 5.0, 0.25), 1e-9);
  EXPECT_EQ(f.signature, "nrefs:1|case:mixed|eff:no|tok:13a|smooth:floor[0.10]|version:roformer.cpp");

  BleuOptions addk;
  addk.smoothing = BleuSmoothing::AddK;  // +1 to counts and totals of orders >= 2
  EXPECT_NEAR(corpus_bleu({"a b c d e"}, {"a b x d e"}, addk).score, std::pow(80.0 * 60.0 * 25.0 * (100.0 / 3.0), 0.25),
              1e-9);
}

TEST(CorpusBleu, CountsAreClippedByTheReference) {
  // "the" six times against a reference with two: unigram precision 2/6.
  const BleuResult r = corpus_bleu({"the the the the the the"}, {"the cat is on the mat"});
  EXPECT_EQ(r.counts[0], 2);
  EXPECT_EQ(r.totals[0], 6);
  EXPECT_EQ(r.counts[1], 0);
}

TEST(CorpusBleu, StatisticsAreSummedOverTheCorpus) {
  const BleuResult r = corpus_bleu(Lines{"a b c d", "x y"}, Lines{"a b c d", "x z"});
  EXPECT_EQ(r.counts, (std::vector<int64_t>{5, 3, 2, 1}));
  EXPECT_EQ(r.totals, (std::vector<int64_t>{6, 4, 2, 1}));
  EXPECT_EQ(r.sys_len, 6);
  EXPECT_EQ(r.ref_len, 6);
  EXPECT_NEAR(r.score, 100.0 * std::pow((5.0 / 6.0) * (3.0 / 4.0), 0.25), 1e-9);
}

TEST(CorpusBleu, TokenisationLowercaseAndTrailingWhitespace) {
  // 13a splits the final period, so "sat." matches "sat .".
  EXPECT_NEAR(corpus_bleu({"the cat sat."}, {"the cat sat ."}).score, 100.0, 1e-9);
  BleuOptions raw;
  raw.tokenize = BleuTokenize::None;
  EXPECT_LT(corpus_bleu({"the cat sat."}, {"the cat sat ."}, raw).score, 100.0);
  EXPECT_LT(corpus_bleu({"The Cat sat."}, {"the cat sat."}).score, 100.0);
  BleuOptions lc;
  lc.lowercase = true;
  const BleuResult l = corpus_bleu({"The Cat sat."}, {"the cat sat."}, lc);
  EXPECT_NEAR(l.score, 100.0, 1e-9);
  EXPECT_EQ(l.signature, "nrefs:1|case:lc|eff:no|tok:13a|smooth:exp|version:roformer.cpp");
  EXPECT_NEAR(corpus_bleu({"a b c d \t\r"}, {"a b c d"}).score, 100.0, 1e-9);
}

TEST(CorpusBleu, ShortHypothesesScoreZeroWithoutEffectiveOrder) {
  // No 4-grams at all: the missing order has precision 0, so BLEU is 0 ...
  EXPECT_EQ(corpus_bleu({"hello"}, {"hello world"}).score, 0.0);
  // ... unless only the orders present are averaged (sacreBLEU: exp(1 - 2/1) * 100).
  BleuOptions eff;
  eff.effective_order = true;
  EXPECT_NEAR(corpus_bleu({"hello"}, {"hello world"}, eff).score, 36.78794411714425, 1e-9);
}

TEST(CorpusBleu, EmptyHypothesesScoreZero) {
  const BleuResult r = corpus_bleu(Lines{"", ""}, Lines{"a b", "c d"});
  EXPECT_EQ(r.score, 0.0);
  EXPECT_EQ(r.bp, 0.0);
  EXPECT_EQ(r.sys_len, 0);
}

TEST(CorpusBleu, ClearErrors) {
  try {
    corpus_bleu({"a", "b"}, Lines{"a"});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("2 hypotheses but 1 references"), std::string::npos) << e.what();
  }
  try {
    corpus_bleu({"ok", "bad \xe2\x82"}, Lines{"ok", "ok"});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("UTF-8"), std::string::npos) << e.what();
  }
  BleuOptions bad;
  bad.max_ngram_order = 0;
  EXPECT_THROW(corpus_bleu({"a"}, Lines{"a"}, bad), Error);
}

TEST(CorpusBleu, VerboseLineAndSignature) {
  const BleuResult r = corpus_bleu({"the cat sat on"}, {"the cat sat on the mat"});
  EXPECT_EQ(r.verbose(), "100.0/100.0/100.0/100.0 (BP = 0.607 ratio = 0.667 hyp_len = 4 ref_len = 6)");
  EXPECT_EQ(r.signature, "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:roformer.cpp");
}

// ---- published values (sacreBLEU's README and test/test_bleu.py) ----

const Lines kReadmeHyps = {"The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."};
const std::vector<Lines> kReadmeRefs = {
    {"The dog bit the man.", "It was not unexpected.", "The man bit him first."},
    {"The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."},
};

TEST(CorpusBleuPublished, ReadmeExampleTwoReferences) {
  // README: "BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)";
  // test_bleu.py: 48.530827 (default, tokenize 13a, and smooth none alike).
  const BleuResult r = corpus_bleu_multiref(kReadmeHyps, kReadmeRefs);
  EXPECT_NEAR(r.score, 48.530827, 1e-6);
  EXPECT_EQ(r.verbose(), "82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)");
  EXPECT_EQ(r.signature.substr(0, 7), "nrefs:2");
  BleuOptions none;
  none.smoothing = BleuSmoothing::None;
  EXPECT_NEAR(corpus_bleu_multiref(kReadmeHyps, kReadmeRefs, none).score, 48.530827, 1e-6);
  BleuOptions raw;
  raw.tokenize = BleuTokenize::None;
  EXPECT_NEAR(corpus_bleu_multiref(kReadmeHyps, kReadmeRefs, raw).score, 49.1919566, 1e-6);
  EXPECT_EQ(corpus_bleu_multiref({"", "", ""}, kReadmeRefs).score, 0.0);
}

TEST(CorpusBleuPublished, MaxNgramOrder) {
  // test_bleu.py's test_max_ngram_order, to two decimals.
  const double expected[] = {77.65, 60.50, 53.93, 48.53, 46.14, 43.28};
  for (int order = 1; order <= 6; ++order) {
    BleuOptions o;
    o.max_ngram_order = order;
    EXPECT_NEAR(corpus_bleu_multiref(kReadmeHyps, kReadmeRefs, o).score, expected[order - 1], 0.005) << "order " << order;
  }
}

TEST(CorpusBleuPublished, SingleReferenceStreams) {
  // The README example scored against each reference stream alone (sacreBLEU 2.6).
  const BleuResult a = corpus_bleu(kReadmeHyps, kReadmeRefs[0]);
  EXPECT_NEAR(a.score, 45.06750632106114, 1e-9);
  EXPECT_EQ(a.counts, (std::vector<int64_t>{12, 6, 4, 3}));
  EXPECT_EQ(a.totals, (std::vector<int64_t>{17, 14, 11, 8}));
  const BleuResult b = corpus_bleu(kReadmeHyps, kReadmeRefs[1]);
  EXPECT_NEAR(b.score, 28.330553664429278, 1e-9);
  EXPECT_EQ(b.ref_len, 19);
}

TEST(CorpusBleuPublished, SufficientStatistics) {
  // test_case_statistics: counts [4, 2, 1, 0], totals [6, 5, 4, 3].
  const BleuStatistics s = bleu_statistics("am I am a character sequence", {"I am a symbol string sequence a a"});
  EXPECT_EQ(s.counts, (std::vector<int64_t>{4, 2, 1, 0}));
  EXPECT_EQ(s.totals, (std::vector<int64_t>{6, 5, 4, 3}));
  EXPECT_EQ(s.sys_len, 6);
  EXPECT_EQ(s.ref_len, 8);
  // test_case_scoring: counts [9, 7, 5, 3], totals [10, 8, 6, 4], lengths 11/11 -> 0.8375922397 (no smoothing).
  BleuOptions none;
  none.smoothing = BleuSmoothing::None;
  const BleuResult r = bleu_from_statistics(BleuStatistics{11, 11, {9, 7, 5, 3}, {10, 8, 6, 4}}, none);
  EXPECT_NEAR(r.score / 100.0, 0.8375922397, 1e-9);
}

TEST(CorpusBleuPublished, ClosestReferenceLengthPrefersTheShorterOnATie) {
  // A 3-word hypothesis between a 2-word and a 4-word reference: r = 2.
  const BleuStatistics s = bleu_statistics("a b c", {"a b c d", "a b"});
  EXPECT_EQ(s.ref_len, 2);
  const BleuStatistics t = bleu_statistics("a b c", {"a b c d e", "a b"});
  EXPECT_EQ(t.ref_len, 2);
  const BleuStatistics u = bleu_statistics("a b c", {"a b c d", "a"});
  EXPECT_EQ(u.ref_len, 4);
}

}  // namespace
}  // namespace roformer
