#pragma once
// The parameters of a RoFormer model with its head, bound from an HF state
// dict by name, with every shape checked against the config.
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nn/linear.h"
#include "nn/self_attention.h"
#include "roformer/config.h"
#include "roformer/model.h"

namespace roformer::models {

struct EncoderLayerWeights {
  nn::SelfAttention attention;
  nn::Linear attention_output;
  nn::LayerNorm attention_norm;
  nn::Linear intermediate;
  nn::Linear output;
  nn::LayerNorm output_norm;
};

struct RoFormerWeights {
  Tensor word_embeddings;        // (V, E)
  Tensor token_type_embeddings;  // (type_vocab, E)
  Tensor position_embeddings;    // (max_pos, E): position_embedding_type "absolute" only
  nn::LayerNorm embeddings_norm;
  std::optional<nn::Linear> embeddings_project;  // E -> H when E != H
  Tensor sinusoidal_table;                       // (max_pos, head_dim), kept for saving
  std::vector<EncoderLayerWeights> layers;

  // Heads (only the task's are set).
  nn::Linear lm_transform;  // MLM / causal: H -> E
  nn::LayerNorm lm_norm;
  Tensor lm_decoder;        // (V, E): the word embeddings unless untied
  std::shared_ptr<const kernels::PackedMatmul> lm_decoder_packed;  // set: the decoder product reads packed weights
  Tensor lm_bias;           // (V)
  nn::Linear classifier_dense;  // sequence classification: H -> H
  nn::Linear classifier;        // out_proj / token classifier / MC (H -> 1) / qa_outputs (H -> 2)
};

// HF prefix of the encoder weights: "roformer." for head models, "" for RoFormerModel.
std::string base_prefix(Task task);

// Binds `tensors` (converted to contiguous F32). Missing, unexpected or
// mis-shaped tensors throw Error naming the tensor. With ignore_other_heads,
// tensors of other heads (outside the encoder) are skipped instead.
RoFormerWeights bind_weights(const RoFormerConfig& config, Task task, const std::map<std::string, Tensor>& tensors,
                             bool ignore_other_heads);

// Calls fn(name, tensor&) for every tensor in HF's state-dict names and
// order; the tied decoder weight is left out (as HF's safetensors save does),
// the sinusoidal table is included.
void visit_tensors(const RoFormerConfig& config, Task task, RoFormerWeights& w,
                   const std::function<void(const std::string&, Tensor&)>& fn);

std::vector<std::pair<std::string, Tensor>> state_dict(const RoFormerConfig& config, Task task,
                                                       const RoFormerWeights& w);

// Inference with packed weights: every matrix product with a weight matrix
// (projections, FFN, heads, the LM decoder) reads them packed in this
// precision; nullopt drops the packs (products read the fp32 `weight`s).
void set_packed_matmuls(Task task, RoFormerWeights& w, std::optional<kernels::MatmulPrecision> precision,
                        kernels::Bf16Kernel bf16_kernel = kernels::Bf16Kernel::Auto);
// The precision the products are packed in (nullopt: not packed).
std::optional<kernels::MatmulPrecision> packed_matmuls(const RoFormerWeights& w);

// A deep copy in owned memory (writable), keeping the decoder tied to the
// word embeddings when the config ties them.
RoFormerWeights clone_weights(const RoFormerConfig& config, Task task, const RoFormerWeights& w);
// Same structure, every tensor zero (gradient buffers); tied like clone_weights.
RoFormerWeights zeros_like(const RoFormerConfig& config, Task task, const RoFormerWeights& w);

// The sinusoidal table HF stores as roformer.encoder.embed_positions.weight.
Tensor sinusoidal_table(int64_t max_positions, int64_t head_dim);

// Adds the absolute position term of the config's position_embedding_type
// to embeddings e (B rows of T positions, E wide): the learned table's row
// ("absolute"; a position past the table is an error) or the Transformer's
// sinusoid ("sinusoidal", any position); nothing for "rope" and "none".
void add_position_embeddings(const RoFormerConfig& config, const RoFormerWeights& w, const int64_t* positions,
                             int64_t B, int64_t T, float* e);

}  // namespace roformer::models
