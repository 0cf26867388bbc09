// WordPiece vocabulary training: layout, exact size, determinism, and that the
// real tokenizer with the learned vocabulary spells the training text back.
#include <gtest/gtest.h>

#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

#include "roformer/error.h"
#include "roformer/tokenizer.h"
#include "roformer/wordpiece_trainer.h"
#include "support/test_support.h"

namespace roformer {
namespace {

std::string sample_path(const std::string& name) { return testing::data_path("../../data/sample/" + name); }

std::vector<std::string> read_lines(const std::string& path, std::size_t max_lines = SIZE_MAX) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  std::string line;
  while (lines.size() < max_lines && std::getline(in, line)) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// BERT's normalisation of ASCII text, written independently of the tokenizer:
// lowercase, split at whitespace, every ASCII punctuation mark its own word.
std::vector<std::string> ascii_words(const std::string& text) {
  std::vector<std::string> words;
  std::string word;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isspace(u) || std::ispunct(u)) {
      if (!word.empty()) words.push_back(word);
      word.clear();
      if (std::ispunct(u)) words.emplace_back(1, c);
    } else {
      word += static_cast<char>(std::tolower(u));
    }
  }
  if (!word.empty()) words.push_back(word);
  return words;
}

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

std::vector<std::string> train_on(const std::vector<std::string>& lines, WordPieceTrainerOptions options) {
  WordPieceTrainer trainer(std::move(options));
  for (const auto& l : lines) trainer.add_text(l);
  return trainer.train();
}

TEST(DataWordPiece, LayoutSpecialsThenCharactersThenPieces) {
  WordPieceTrainerOptions o;
  o.vocab_size = 40;
  o.min_pair_count = 1;
  const auto vocab = train_on({"low lower lowest", "new newer newest", "wide wider widest"}, o);
  ASSERT_EQ(vocab.size(), 40u);
  const std::vector<std::string> specials = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  for (std::size_t i = 0; i < specials.size(); ++i) EXPECT_EQ(vocab[i], specials[i]);
  // Characters in code point order, then the same characters as continuations.
  const std::string chars = "deilnorstw";
  for (std::size_t i = 0; i < chars.size(); ++i) {
    EXPECT_EQ(vocab[5 + i], std::string(1, chars[i]));
    EXPECT_EQ(vocab[5 + chars.size() + i], "##" + std::string(1, chars[i]));
  }
  std::set<std::string> unique(vocab.begin(), vocab.end());
  EXPECT_EQ(unique.size(), vocab.size()) << "no token twice";
  for (std::size_t i = 5 + 2 * chars.size(); i < vocab.size(); ++i) {
    EXPECT_GT(vocab[i].size(), vocab[i].rfind("##", 0) == 0 ? 3u : 1u) << vocab[i] << " is a merged piece";
  }
}

TEST(DataWordPiece, LikelihoodPrefersAssociatedPairsFrequencyPrefersCommonOnes) {
  // "q" is always followed by "u" (strong association, few occurrences); "e r"
  // is the most frequent pair but e and r are common everywhere.
  std::vector<std::string> lines;
  for (int i = 0; i < 3; ++i) lines.push_back("quiz");
  for (int i = 0; i < 20; ++i) lines.push_back("her were there rest tree");
  WordPieceTrainerOptions o;
  o.min_pair_count = 1;
  o.vocab_size = 5 + 2 * 10 + 1;  // specials + 10 characters twice + one merge
  o.score = WordPieceScore::Likelihood;
  EXPECT_EQ(train_on(lines, o).back(), "qu");
  o.score = WordPieceScore::Frequency;
  EXPECT_EQ(train_on(lines, o).back(), "##er");
}

TEST(DataWordPiece, ExactSizeAndDeterministicOnTheSample) {
  const auto lines = read_lines(sample_path("en_train.txt"));
  ASSERT_GT(lines.size(), 100u) << "the committed sample is missing";
  WordPieceTrainerOptions o;
  o.vocab_size = 3000;
  const auto a = train_on(lines, o);
  const auto b = train_on(lines, o);
  EXPECT_EQ(a.size(), 3000u);
  EXPECT_EQ(a, b);
  // Reversed line order: the same counts, so the same vocabulary.
  const auto c = train_on(std::vector<std::string>(lines.rbegin(), lines.rend()), o);
  EXPECT_EQ(a, c);
  // Frequent English words end up whole.
  const std::set<std::string> vocab(a.begin(), a.end());
  for (const char* w : {"the", "and", "of", "was"}) EXPECT_TRUE(vocab.count(w)) << w;
}

TEST(DataWordPiece, TrainedVocabRoundTripsTheTrainingText) {
  const auto lines = read_lines(sample_path("en_train.txt"), 400);
  WordPieceTrainerOptions o;
  o.vocab_size = 2000;
  const auto tokens = train_on(lines, o);
  Tokenizer tok(Vocab::from_string(vocab_text(tokens)), TokenizerOptions{});
  ASSERT_EQ(tok.vocab().size(), 2000);
  int64_t pieces = 0;
  for (const auto& line : lines) {
    const auto enc = tok.encode(line);
    for (int64_t id : enc.input_ids) ASSERT_NE(id, tok.unk_id()) << line;
    pieces += static_cast<int64_t>(enc.input_ids.size()) - 2;
    const std::string back = tok.decode(enc.input_ids, /*skip_special_tokens=*/true, /*clean_up=*/false);
    ASSERT_EQ(back, join(ascii_words(line))) << line;
  }
  // Sub-word units, not characters: far fewer pieces than letters.
  int64_t letters = 0;
  for (const auto& line : lines) letters += static_cast<int64_t>(line.size());
  EXPECT_LT(pieces * 3, letters);
}

TEST(DataWordPiece, CasedAndAccentedTextFollowsTheTokenizerOptions) {
  const std::vector<std::string> lines = {"Café NAÏVE déjà-vu Ωmega", "ÉCOLE école Straße", "İstanbul ǅemal"};
  for (bool lower : {true, false}) {
    WordPieceTrainerOptions o;
    o.vocab_size = 200;
    o.min_pair_count = 1;
    o.tokenizer.do_lower_case = lower;
    WordPieceTrainer trainer(o);
    for (const auto& l : lines) trainer.add_text(l);
    const auto vocab = trainer.train();
    EXPECT_EQ(trainer.stats().skipped_words, 0);
    Tokenizer tok(Vocab::from_string(vocab_text(vocab)), o.tokenizer);
    for (const auto& l : lines) {
      for (const auto& t : tok.tokenize(l)) EXPECT_NE(t, "[UNK]") << l << " lower=" << lower;
    }
    const std::set<std::string> set(vocab.begin(), vocab.end());
    EXPECT_EQ(set.count("E"), lower ? 0u : 1u);
    EXPECT_EQ(set.count("é"), lower ? 0u : 1u) << "accents are stripped with lowercasing";
  }
}

TEST(DataWordPiece, SpecialTokensInTextAreNotWords) {
  WordPieceTrainerOptions o;
  o.vocab_size = 100;
  o.min_pair_count = 1;
  WordPieceTrainer t(o);
  t.add_text("hello [MASK] world [SEP] again");
  const auto vocab = t.train();
  EXPECT_EQ(t.stats().words, 3);
  EXPECT_EQ(std::count(vocab.begin(), vocab.end(), "[MASK]"), 1);
  EXPECT_EQ(std::count(vocab.begin(), vocab.end(), "["), 0);
}

TEST(DataWordPiece, StopsWhenPairsRunOutAndRejectsTooSmallSizes) {
  WordPieceTrainerOptions o;
  o.vocab_size = 1000;
  o.min_pair_count = 1;
  WordPieceTrainer t(o);
  t.add_text("abc abc");
  const auto vocab = t.train();
  // 5 specials + 3 characters twice + "ab"/"abc" (or "##bc"/"abc"): the text allows no more.
  EXPECT_EQ(vocab.size(), 13u);
  EXPECT_EQ(t.stats().vocab_size, 13);
  EXPECT_EQ(vocab.back(), "abc");

  o.vocab_size = 8;
  WordPieceTrainer small(o);
  small.add_text("abc");
  EXPECT_THROW(small.train(), Error);
  o.vocab_size = 0;
  EXPECT_THROW(WordPieceTrainer{o}, Error);
}

TEST(DataWordPiece, RareCharactersCanBeLeftOut) {
  WordPieceTrainerOptions o;
  o.vocab_size = 100;
  o.min_pair_count = 1;
  o.min_char_count = 2;
  WordPieceTrainer t(o);
  t.add_text("aa bb ab z");
  const auto vocab = t.train();
  EXPECT_EQ(std::count(vocab.begin(), vocab.end(), "z"), 0);
  EXPECT_EQ(t.stats().skipped_words, 1);
}

TEST(DataWordPiece, WritesVocabFileAtomically) {
  testing::TempDir dir;
  write_vocab_file(dir.file("vocab.txt"), {"[PAD]", "[UNK]", "a"});
  std::ifstream in(dir.file("vocab.txt"));
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), "[PAD]\n[UNK]\na\n");
  EXPECT_THROW(write_vocab_file(dir.file("bad.txt"), {"a\nb"}), Error);
  EXPECT_THROW(write_vocab_file(dir.file("missing/vocab.txt"), {"a"}), Error);
}

TEST(DataWordPiece, EightThousandPiecesFromAFewMegabytes) {
  // ~1.8 MB of text: the sample three times over, the second and third copies
  // marked by a word of their own on every line. (How fast this runs is
  // bench/bench_wordpiece.cpp's business.)
  const auto lines = read_lines(sample_path("en_train.txt"));
  ASSERT_GT(lines.size(), 100u) << "the committed sample is missing";
  WordPieceTrainerOptions o;
  o.vocab_size = 8000;
  WordPieceTrainer once(o);
  for (const auto& l : lines) once.add_text(l);
  once.train();  // counts the words
  WordPieceTrainer t(o);
  for (int rep = 0; rep < 3; ++rep) {
    for (const auto& l : lines) t.add_text(rep == 0 ? l : l + " qx" + std::to_string(rep));
  }
  const auto vocab = t.train();
  EXPECT_EQ(vocab.size(), 8000u);
  EXPECT_EQ(std::set<std::string>(vocab.begin(), vocab.end()).size(), vocab.size()) << "a piece appears twice";
  // Every occurrence counted: three copies plus one marker a line in two of them.
  const auto n = static_cast<int64_t>(lines.size());
  EXPECT_EQ(t.stats().words, 3 * once.stats().words + 2 * n);
  EXPECT_EQ(t.stats().distinct_words, once.stats().distinct_words + 2);
  // The markers are among the commonest words, so they end up whole.
  const std::set<std::string> pieces(vocab.begin(), vocab.end());
  EXPECT_TRUE(pieces.count("qx1"));
  EXPECT_TRUE(pieces.count("qx2"));
}

}  // namespace
}  // namespace roformer
