#pragma once
// The parameters of the sequence-to-sequence RoFormer, one structure walked
// by one visitor (for_each_slot) that drives initialisation, binding from a
// checkpoint, saving, gradient buffers and the optimizer's parameter list.
// Shape letters: C model width, F FFN width, V vocabulary.
#include <functional>
#include <string>
#include <vector>

#include "nn/linear.h"
#include "nn/self_attention.h"
#include "roformer/seq2seq.h"
#include "seq2seq/cross_attention.h"

namespace roformer::seq2seq {

struct EncoderLayer {
  nn::SelfAttention self_attn;  // RoPE (or no rotation in the sinusoidal variant)
  nn::Linear self_out;
  nn::LayerNorm self_norm;
  nn::Linear fc1, fc2;  // C -> F -> C
  nn::LayerNorm ffn_norm;
};

struct DecoderLayer {
  nn::SelfAttention self_attn;  // causal, RoPE
  nn::Linear self_out;
  nn::LayerNorm self_norm;
  CrossAttention cross_attn;  // never rotated
  nn::Linear cross_out;
  nn::LayerNorm cross_norm;
  nn::Linear fc1, fc2;
  nn::LayerNorm ffn_norm;
};

struct Weights {
  Tensor src_embed;  // (V_src, C)
  Tensor tgt_embed;  // (V_tgt, C): src_embed itself when shared
  Tensor out_proj;   // (V_tgt, C): tgt_embed itself when tied
  std::vector<EncoderLayer> encoder;
  std::vector<DecoderLayer> decoder;
  nn::LayerNorm encoder_norm, decoder_norm;  // pre-LN only
};

// What a tensor is, for initialisation.
enum class Slot { Embedding, ProjectionWeight, Bias, NormWeight, NormBias };

// fn(name, tensor slot, shape, kind) for every stored tensor, in a fixed
// order; aliases (shared embeddings, tied output) are not visited: tie()
// sets them afterwards. Also sets every layer's non-tensor fields (heads,
// eps, use_rope).
void for_each_slot(const Seq2SeqConfig& c, Weights& w,
                   const std::function<void(const std::string&, Tensor&, const Shape&, Slot)>& fn);
// Points the aliased tensors at their owners.
void tie(const Seq2SeqConfig& c, Weights& w);
// Every tensor zero, tied like the config says (gradient buffers).
Weights zeros_like(const Seq2SeqConfig& c);
// Deep copy.
Weights clone(const Seq2SeqConfig& c, const Weights& w);

}  // namespace roformer::seq2seq
