#pragma once
// The RoFormer encoder stack as HF builds it: embeddings (word + token type,
// LayerNorm, optional projection E -> H), then post-LN layers with RoPE
// self-attention. No absolute position table: positions enter through RoPE
// (unless the config selects another position_embedding_type).
#include <vector>

#include "models/weights.h"
#include "roformer/model.h"

namespace roformer::models {

struct EncoderInput {
  const int64_t* input_ids = nullptr;       // (B, T)
  const int64_t* token_type_ids = nullptr;  // (B, T) or null for zeros
  int64_t batch = 0, length = 0;
  Tensor positions;                          // I64 (T): absolute positions
  nn::AttentionMask mask;
  // Right-padded rows run packed (ForwardOptions::skip_padding): row b's
  // real tokens are its first sequence_starts[b + 1] - sequence_starts[b].
  // Empty: the padded (B, T) layout.
  std::vector<int64_t> sequence_starts;
};

// The starts of right-padded rows packed back to back (B + 1 values: row b's
// real tokens become rows [starts[b], starts[b + 1])), from the (B, T) key
// flags of a forward without a cache. Empty when a row is not of the form
// 1…1 0…0 or when no row has padding (nothing to skip).
std::vector<int64_t> packed_row_starts(const uint8_t* valid, int64_t B, int64_t T);

// Returns the last hidden state (B, T, H; zeros at padding when packed);
// fills out.hidden_states / out.attentions when asked. caches: one per layer
// (causal decoding) or null.
Tensor encoder_forward(const RoFormerConfig& config, const RoFormerWeights& w, const EncoderInput& in,
                       std::vector<nn::LayerKvCache>* caches, const ForwardOptions& options, ModelOutput& out,
                       const ExecContext& ctx);

}  // namespace roformer::models
