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
};

// Returns the last hidden state (B, T, H); fills out.hidden_states /
// out.attentions when asked. caches: one per layer (causal decoding) or null.
Tensor encoder_forward(const RoFormerConfig& config, const RoFormerWeights& w, const EncoderInput& in,
                       std::vector<nn::LayerKvCache>* caches, const ForwardOptions& options, ModelOutput& out,
                       const ExecContext& ctx);

}  // namespace roformer::models
