#pragma once
// Decoding a Seq2SeqModel: an incremental decoder (one token per step, with
// a key/value cache per decoder self-attention layer and the cross-attention
// keys/values of the source computed once), and batched greedy / beam search
// with fairseq's conventions:
//   score of a finished hypothesis = sum of token log-probabilities / len^lenpen,
//   len counting the generated tokens including eos;
//   max length per sentence = max_len_a * src_len + max_len_b (src_len with
//   its eos); at that length eos is forced; padding is never generated;
//   a sentence is done when `beam` hypotheses have ended.
#include <cstdint>
#include <memory>
#include <vector>

#include "roformer/seq2seq.h"

namespace roformer {

// The decoder state of N = B * beams rows over B encoded sources.
class IncrementalDecoder {
 public:
  // Encodes src (B, S) (right-padded, rows end with eos) and prepares
  // `beams` decoder rows per source (row r decodes source r / beams).
  IncrementalDecoder(const Seq2SeqModel& model, const Tensor& src, int64_t beams, const ExecContext& ctx);
  ~IncrementalDecoder();
  IncrementalDecoder(IncrementalDecoder&&) noexcept;
  IncrementalDecoder& operator=(IncrementalDecoder&&) noexcept;

  int64_t rows() const;
  int64_t steps() const;  // tokens fed so far
  // Feeds one token per row (N values) at position steps(); returns the
  // logits (N, V), valid until the next call.
  const float* step(const std::vector<int64_t>& tokens);
  // Row r continues the history of row from[r] (beam reordering): the
  // self-attention caches are permuted; cross-attention keys stay (a row
  // only ever takes over a row of the same source).
  void reorder(const std::vector<int64_t>& from);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct DecodeOptions {
  int64_t beam = 4;        // 1: greedy
  double lenpen = 0.6;     // alpha of score / len^alpha (fairseq --lenpen; 0.6 in the paper)
  double max_len_a = 0.0;  // max length = a * src_len + b
  int64_t max_len_b = 200;
  int64_t min_len = 1;     // eos is not allowed before this many tokens
};

struct Hypothesis {
  std::vector<int64_t> tokens;  // without bos and eos
  double score = 0;             // normalised as above
  double log_prob = 0;          // sum of log-probabilities (with eos)
};

// The best hypothesis of each source (token lists without specials).
// Batching changes nothing but rounding (padding is masked exactly).
std::vector<Hypothesis> beam_search(const Seq2SeqModel& model, const std::vector<std::vector<int64_t>>& sources,
                                    const DecodeOptions& options, const ExecContext& ctx);

}  // namespace roformer
