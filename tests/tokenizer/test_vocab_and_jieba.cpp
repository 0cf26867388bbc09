// vocab.txt and jieba dictionary parsing (hostile inputs included), and jieba's cut.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>

#include "roformer/error.h"
#include "roformer/tokenizer.h"
#include "support/test_support.h"

namespace roformer {
namespace {

using testing::expect_error;
using testing::write_file;
using V = std::vector<std::string>;

// ---------------------------------------------------------------- vocab

TEST(Vocab, FixtureVocab) {
  const Vocab v = Vocab::from_file(testing::data_path("fixtures/vocab.txt"));
  EXPECT_EQ(v.size(), 1054);
  EXPECT_EQ(v.find("[PAD]"), 0);
  EXPECT_EQ(v.find("[MASK]"), 4);
  EXPECT_EQ(*v.token(129), "hello");
  EXPECT_FALSE(v.find("not-a-token").has_value());
  EXPECT_EQ(v.token(-1), nullptr);
  EXPECT_EQ(v.token(1054), nullptr);
}

TEST(Vocab, DuplicateTokenMapsToItsLastLine) {
  const Vocab v = Vocab::from_string("[PAD]\nx\ny\nx\n");
  EXPECT_EQ(v.size(), 4);
  EXPECT_EQ(v.unique_size(), 3);
  EXPECT_EQ(v.find("x"), 3);
  EXPECT_EQ(v.token(1), nullptr);  // the orphaned first line
  EXPECT_EQ(*v.token(3), "x");
}

TEST(Vocab, UniversalNewlines) {
  // Python's text mode: \r\n and a lone \r end lines too; no empty last line.
  const Vocab v = Vocab::from_string("a\r\nb\rc\n\nd");
  EXPECT_EQ(v.size(), 5);
  EXPECT_EQ(v.find("a"), 0);
  EXPECT_EQ(v.find("b"), 1);
  EXPECT_EQ(v.find("c"), 2);
  EXPECT_EQ(v.find(""), 3);
  EXPECT_EQ(v.find("d"), 4);
  // Other Unicode line breaks are part of tokens.
  EXPECT_EQ(Vocab::from_string("a\xE2\x80\xA8z\n").size(), 1);
}

TEST(Vocab, HostileFiles) {
  expect_error([] { Vocab::from_string(""); }, "empty vocabulary");
  expect_error([] { Vocab::from_string("ok\nbad\xFF\n", "v.txt"); }, "v.txt: invalid UTF-8 at byte 6");
  expect_error([] { Vocab::from_file("/nonexistent/vocab.txt"); }, "file not found");
  testing::TempDir dir;
  expect_error([&] { Vocab::from_file(dir.path()); }, "not a regular file");
}

// ---------------------------------------------------------------- jieba dictionary

std::shared_ptr<const JiebaDictionary> dict(const std::string& text) {
  return JiebaDictionary::from_string(text, "dict.txt");
}

TEST(JiebaDictionary, PrefixesAndTotals) {
  const auto d = dict("北京大学 2053 nt\n北京 34488 ns\r\nab 5\nab 7\n");
  EXPECT_EQ(d->frequency("北京大学"), 2053);
  EXPECT_EQ(d->frequency("北京大"), 0);  // a prefix only
  EXPECT_EQ(d->frequency("北京"), 34488);
  EXPECT_EQ(d->frequency("北"), 0);
  EXPECT_EQ(d->frequency("ab"), 7);  // the last listing wins...
  EXPECT_EQ(d->total(), 2053 + 34488 + 5 + 7);  // ...but both count in the total
  EXPECT_FALSE(d->frequency("大").has_value());
  EXPECT_FALSE(d->frequency("").has_value());
  EXPECT_EQ(d->entries(), 6u);  // 北京大学 北京大 北京 北 ab a
}

// Python's gen_pfdict, line by line: the table is built otherwise (all
// words, then the prefixes), sized up front and grown when the prefixes
// outrun it, and must end with the same entries.
TEST(JiebaDictionary, TableAgreesWithGenPfdictLineByLine) {
  std::mt19937 rng(7);
  // Three letters (1, 2 and 3 UTF-8 bytes) for many shared prefixes and
  // repeated lines; 3000 letters for long words whose prefixes are mostly new.
  const std::vector<std::string> few = {"a", "\xC3\xA9", "\xE4\xB8\xAD"};
  std::vector<std::string> many;
  for (char32_t c = 0x4E00; c < 0x4E00 + 3000; ++c) {
    many.push_back({static_cast<char>(0xE0 | (c >> 12)), static_cast<char>(0x80 | ((c >> 6) & 0x3F)),
                    static_cast<char>(0x80 | (c & 0x3F))});
  }
  struct Case {
    const std::vector<std::string>* letters;
    int max_len, lines;
  };
  for (const Case& c : {Case{&few, 6, 3000}, Case{&many, 12, 2000}}) {
    std::map<std::string, int64_t> model;
    int64_t total = 0;
    std::string text;
    const auto random_word = [&] {
      std::string w;
      for (int n = 1 + static_cast<int>(rng() % c.max_len); n > 0; --n) w += (*c.letters)[rng() % c.letters->size()];
      return w;
    };
    for (int i = 0; i < c.lines; ++i) {
      const std::string w = random_word();
      const int64_t freq = static_cast<int64_t>(rng() % 5);  // zeros too
      text += w + " " + std::to_string(freq) + " n\n";
      model[w] = freq;
      total += freq;
      for (std::size_t k = 1; k < w.size(); ++k)
        if ((static_cast<unsigned char>(w[k]) & 0xC0) != 0x80) model.emplace(w.substr(0, k), 0);
    }
    const auto d = dict(text);
    EXPECT_EQ(d->entries(), model.size());
    EXPECT_EQ(d->total(), total);
    for (const auto& [w, f] : model) ASSERT_EQ(d->frequency(w), f) << w;
    for (int i = 0; i < 3000; ++i) {
      const std::string w = random_word() + random_word();
      EXPECT_EQ(d->frequency(w).has_value(), model.count(w) == 1) << w;
    }
  }
}

TEST(JiebaDictionary, HostileLinesNameTheLine) {
  expect_error([] { dict("a 1\nword\n"); }, "dict.txt: invalid entry at line 2");
  expect_error([] { dict("a 1\nb x\n"); }, "line 2: frequency 'x'");
  expect_error([] { dict("a -3\n"); }, "line 1: negative frequency");
  expect_error([] { dict("a 1\n\nb 2\n"); }, "line 2");  // jieba rejects blank lines too
  expect_error([] { dict("a 1\nb  2\n"); }, "line 2");   // two spaces: empty frequency field
  expect_error([] { dict("a 99999999999999999999\n"); }, "line 1");
  expect_error([] { dict("a 9223372036854775807\nb 1\n"); }, "line 2: total frequency overflows");
  expect_error([] { dict("a 1\nb\xC3\x28 2\n"); }, "line 2: invalid UTF-8");
  expect_error([] { dict(""); }, "empty dictionary");
  expect_error([] { dict("a 0\n"); }, "sum to 0");
  // Tags and surrounding ASCII whitespace are fine, as in jieba.
  EXPECT_EQ(dict("  x 3 n extra  \n")->frequency("x"), 3);
  EXPECT_EQ(dict("x +4\n")->frequency("x"), 4);
}

TEST(JiebaDictionary, LoadIsCachedPerFile) {
  testing::TempDir dir;
  const std::string path = dir.file("dict.txt");
  write_file(path, "x 1\n");
  const auto a = JiebaDictionary::load(path);
  const auto b = JiebaDictionary::load(path);
  EXPECT_EQ(a.get(), b.get());
  std::filesystem::remove(path);
  write_file(path, "x 1\ny 22\n");  // a changed file is read again
  const auto c = JiebaDictionary::load(path);
  EXPECT_NE(a.get(), c.get());
  EXPECT_EQ(c->frequency("y"), 22);
  expect_error([&] { JiebaDictionary::load(dir.file("missing.txt")); }, "file not found");
}

TEST(JiebaDictionary, ConcurrentLoadsShareOneCopy) {
  testing::TempDir dir;
  const std::string path = dir.file("dict.txt");
  write_file(path, "x 1\n");
  std::vector<std::shared_ptr<const JiebaDictionary>> got(4);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < got.size(); ++i) threads.emplace_back([&, i] { got[i] = JiebaDictionary::load(path); });
  for (auto& t : threads) t.join();
  for (const auto& d : got) EXPECT_EQ(d.get(), got[0].get());
}

TEST(JiebaDictionary, DebianDictionary) {
  const std::string path = default_jieba_dict_path();
  ASSERT_TRUE(std::filesystem::exists(path)) << "no jieba dict.txt at " << path;
  const auto d = JiebaDictionary::load(path);
  // The numbers Python jieba 0.42.1's gen_pfdict gives for its dict.txt.
  EXPECT_EQ(d->entries(), 498113u);
  EXPECT_EQ(d->total(), 60101967);
}

// ---------------------------------------------------------------- jieba cut

TEST(JiebaSegmenter, BlocksWhitespaceAndAsciiRuns) {
  const JiebaSegmenter seg(dict("北京 100\n大学 50\n北京大学 200\n"));
  EXPECT_EQ(seg.cut("北京大学"), V({"北京大学"}));
  // Non-han text: one character at a time, except \r\n; ASCII letters/digits are glued.
  EXPECT_EQ(seg.cut("ab12 北京!\r\n\t大学x"), V({"ab12", " ", "北京", "!", "\r\n", "\t", "大学", "x"}));
  EXPECT_EQ(seg.cut("e-mail 3.5%"), V({"e", "-", "mail", " ", "3", ".", "5", "%"}));
  EXPECT_EQ(seg.cut(""), V{});
  EXPECT_EQ(seg.cut("\r\r\n"), V({"\r", "\r\n"}));
  EXPECT_THROW(seg.cut("bad\xFF"), Error);
}

TEST(JiebaSegmenter, EqualScoresGoToTheLargerEnd) {
  // 甲+乙丙 and 甲乙+丙 both score (log 3 - log T) + (log 5 - log T), bit for bit; Python's
  // max over (score, end) tuples then takes the larger end, so 甲乙 is cut first.
  const JiebaSegmenter seg(dict("甲 3\n甲乙 5\n乙丙 5\n丙 3\n"));
  EXPECT_EQ(seg.cut("甲乙丙"), std::vector<std::string>({"甲乙", "丙"}));
  // A zero-frequency prefix is not a word: 乙 alone scores as frequency 1.
  EXPECT_EQ(seg.cut("乙"), std::vector<std::string>({"乙"}));
}

}  // namespace
}  // namespace roformer
