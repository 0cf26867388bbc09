#pragma once
// The training forward and backward of the seq2seq model, llm.c style: every
// activation backward needs is kept in buffers that are reused from step to
// step. Shape letters: B batch, S source length, T target length, C width,
// F FFN width, V target vocabulary, L layers.
#include <cstdint>
#include <optional>
#include <vector>

#include "nn/self_attention.h"
#include "roformer/rope.h"
#include "roformer/seq2seq.h"
#include "seq2seq/blocks.h"
#include "seq2seq/cross_attention.h"
#include "seq2seq/weights.h"

namespace roformer::seq2seq {

struct FfnActs {
  std::vector<float> pre, act;  // (N, F): before and after the activation
};

struct EncoderActs {
  BlockActs attn_block, ffn_block;
  nn::AttentionSaved attn;
  std::vector<float> context;  // (B, S, C)
  FfnActs ffn;
  std::vector<float> mid;      // (B, S, C): after the attention block
};

struct DecoderActs {
  BlockActs self_block, cross_block, ffn_block;
  nn::AttentionSaved self;
  std::vector<float> self_context;   // (B, T, C)
  CrossAttentionSaved cross;
  std::vector<float> cross_context;  // (B, T, C)
  FfnActs ffn;
  std::vector<float> mid1, mid2;     // (B, T, C): after self-attention, after cross-attention
};

struct Graph {
  int64_t B = 0, S = 0, T = 0;
  std::vector<int64_t> src, tgt_in, tgt_out;  // (B, S), (B, T), (B, T)
  std::vector<uint8_t> src_valid, tgt_valid;  // 1 = not padding
  Tensor src_pos, tgt_pos;                    // I64 (S), (T): 0, 1, ...
  std::optional<RopeTable> rope;
  std::vector<std::vector<float>> enc_h, dec_h;  // L + 1 layer inputs/outputs each
  std::vector<float> enc_out, enc_mean, enc_rstd;  // pre-LN: the final LayerNorm's output and statistics
  std::vector<float> dec_out, dec_mean, dec_rstd;
  std::vector<EncoderActs> enc;
  std::vector<DecoderActs> dec;
  std::vector<float> logits, dlogits;  // (B * T, V)
  std::vector<uint8_t> src_keep, tgt_keep;  // embedding dropout masks
  // Backward scratch.
  std::vector<float> d, dmem, s1, s2, dctx, dI;

  // Dropout (training only).
  float drop_p = 0.0f;
  uint64_t drop_seed = 0, drop_step = 0;

  // Checks and copies the batch (shapes, id ranges, empty rows).
  void prepare(const Seq2SeqConfig& c, const Seq2SeqBatch& batch, bool need_labels);
  // Up to the logits.
  void forward(const Seq2SeqConfig& c, const Weights& w, const ExecContext& ctx);
  // From dlogits into g (accumulating).
  void backward(const Seq2SeqConfig& c, const Weights& w, const Weights& g, const ExecContext& ctx);

  const float* memory(const Seq2SeqConfig& c) const { return c.normalize_before ? enc_out.data() : enc_h.back().data(); }
  Dropout dropout(uint64_t site, uint64_t layer) const;
};

}  // namespace roformer::seq2seq
