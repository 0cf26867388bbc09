#pragma once
// BERT's masked-language-model corruption. Of the maskable tokens (not special,
// not padding), round(15%) are chosen (at least one); each chosen token becomes
// [MASK] with probability 80%, a random non-special token with 10%, and stays
// itself with 10%. Labels hold the original id at chosen positions and -100
// elsewhere (the ignore index of the MLM loss). With whole-word masking a word
// (a token and the "##" pieces that follow it) is chosen or left as a unit, and
// words that would overshoot the count are passed over, as in BERT's script.
// All randomness comes from the DataRng passed in, so results are reproducible.
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "roformer/data_rng.h"

namespace roformer {

class Tokenizer;

inline constexpr int64_t kIgnoreLabel = -100;

struct MlmMaskingOptions {
  double mask_probability = 0.15;       // share of maskable tokens chosen
  double mask_token_fraction = 0.8;     // chosen -> [MASK]
  double random_token_fraction = 0.1;   // chosen -> random token (the rest stay unchanged)
  bool whole_word = false;
  int64_t max_predictions = 0;          // cap on chosen tokens per sequence; 0 = none
};

// What the masker needs to know about the vocabulary.
struct MlmVocab {
  int64_t mask_id = 4;
  std::vector<bool> special;       // per id: never chosen, never drawn as a random token
  std::vector<bool> continuation;  // per id: a "##" piece (whole-word masking)
  int64_t size() const { return static_cast<int64_t>(special.size()); }
};
MlmVocab mlm_vocab(const Tokenizer& tokenizer);

// Working memory of apply(), reusable across calls so that steady-state
// batching does not allocate (one per thread).
struct MlmScratch {
  std::vector<std::pair<uint32_t, uint32_t>> units;
  std::vector<uint32_t> chosen;
};

class MlmMasker {
 public:
  MlmMasker(MlmVocab vocab, MlmMaskingOptions options);

  // Corrupts `ids` in place and writes `labels` (same length). Positions where
  // `attention_mask` (if given) is 0 are never chosen. Returns the number chosen.
  int64_t apply(std::span<int64_t> ids, std::span<int64_t> labels, DataRng& rng,
                std::span<const int64_t> attention_mask = {}) const;
  int64_t apply(std::span<int64_t> ids, std::span<int64_t> labels, DataRng& rng,
                std::span<const int64_t> attention_mask, MlmScratch& scratch) const;

  const MlmMaskingOptions& options() const { return options_; }
  const MlmVocab& vocab() const { return vocab_; }

 private:
  MlmVocab vocab_;
  MlmMaskingOptions options_;
  std::vector<int64_t> replacements_;  // ids a random replacement is drawn from
};

}  // namespace roformer
