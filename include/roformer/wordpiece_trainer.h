#pragma once
// Learns a BERT-style WordPiece vocabulary (vocab.txt) from text.
//
// Words are cut exactly as roformer::Tokenizer cuts them before WordPiece
// (lowercasing, accent stripping, punctuation split, CJK spacing: whatever
// TokenizerOptions say), so the vocabulary fits the tokenizer that will use it.
// The vocabulary is, in id order:
//   the special tokens ([PAD] [UNK] [CLS] [SEP] [MASK] at 0..4, then any
//   additional ones), every character seen (as itself, by code point), every
//   character as a continuation ("##c"), then merged pieces in merge order.
// Merging starts from characters and repeatedly joins the adjacent pair
// (a, b) with the best score until the vocabulary has the requested size:
//   Frequency:  count(ab)                          -- BPE's merge rule in WordPiece
//               format; what HF tokenizers' WordPieceTrainer does (it wraps
//               its BPE trainer). The default: frequent words end up whole.
//   Likelihood: count(ab) / (count(a) * count(b))  -- the score usually given for
//               WordPiece; it favours rare, tightly bound pairs (numbers, names)
//               and spells frequent words in more pieces at the same size.
// Ties go to the higher pair count, then to the pair of older symbols. All
// counting is exact and ordered, so the result depends only on the text.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "roformer/tokenizer.h"

namespace roformer {

enum class WordPieceScore { Likelihood, Frequency };

struct WordPieceTrainerOptions {
  int64_t vocab_size = 8000;
  // The tokenizer the vocabulary is for (lowercasing, special token names, ...).
  // Special tokens come from its pad/unk/cls/sep/mask and additional tokens.
  TokenizerOptions tokenizer;
  WordPieceScore score = WordPieceScore::Frequency;
  // Pairs seen fewer times are never merged (1-count pairs are noise: a typo or a
  // name merges into a whole token under the likelihood score).
  int64_t min_pair_count = 2;
  // Characters seen fewer times are left out, and words containing them are not
  // learned from (they become [UNK]). 1 keeps every character.
  int64_t min_char_count = 1;
};

struct WordPieceTrainerStats {
  int64_t words = 0;           // word occurrences counted
  int64_t distinct_words = 0;  // distinct words
  int64_t skipped_words = 0;   // occurrences of words the tokenizer maps to [UNK] (over-long, rare characters)
  int64_t alphabet = 0;        // distinct characters kept
  int64_t merges = 0;          // merge steps taken (some may re-create a known piece)
  int64_t vocab_size = 0;      // the size reached (< asked when the text runs out of pairs)
};

class WordPieceTrainer {
 public:
  explicit WordPieceTrainer(WordPieceTrainerOptions options);
  ~WordPieceTrainer();
  WordPieceTrainer(WordPieceTrainer&&) noexcept;
  WordPieceTrainer& operator=(WordPieceTrainer&&) noexcept;

  // Counts the words of `text` (any length; call once per line or paragraph).
  // Throws Error on invalid UTF-8.
  void add_text(std::string_view text);
  // Every line of a text file (errors name the file and line).
  void add_file(const std::string& path);

  // The vocabulary, in id order. May be called again after more add_text().
  std::vector<std::string> train();
  const WordPieceTrainerStats& stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// vocab.txt's text: one token per line.
std::string vocab_text(const std::vector<std::string>& tokens);
// Writes vocab.txt atomically (temporary file, fsync, rename).
void write_vocab_file(const std::string& path, const std::vector<std::string>& tokens);

}  // namespace roformer
