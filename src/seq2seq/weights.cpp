#include "seq2seq/weights.h"

#include <cstring>

namespace roformer::seq2seq {

namespace {

using Fn = std::function<void(const std::string&, Tensor&, const Shape&, Slot)>;

void linear(const std::string& name, nn::Linear& l, int64_t out, int64_t in, const Fn& fn) {
  fn(name + ".weight", l.weight, {out, in}, Slot::ProjectionWeight);
  fn(name + ".bias", l.bias, {out}, Slot::Bias);
}

void norm(const std::string& name, nn::LayerNorm& n, int64_t C, float eps, const Fn& fn) {
  n.eps = eps;
  fn(name + ".weight", n.weight, {C}, Slot::NormWeight);
  fn(name + ".bias", n.bias, {C}, Slot::NormBias);
}

void self_attention(const std::string& name, nn::SelfAttention& a, const Seq2SeqConfig& c, const Fn& fn) {
  const int64_t C = c.d_model;
  a.heads = c.num_heads;
  a.use_rope = c.uses_rope();
  a.rotary_value = false;
  linear(name + ".q_proj", a.query, C, C, fn);
  linear(name + ".k_proj", a.key, C, C, fn);
  linear(name + ".v_proj", a.value, C, C, fn);
}

}  // namespace

void for_each_slot(const Seq2SeqConfig& c, Weights& w, const Fn& fn) {
  const int64_t C = c.d_model, F = c.ffn_dim;
  const auto eps = static_cast<float>(c.layer_norm_eps);
  fn("encoder.embed_tokens.weight", w.src_embed, {c.src_vocab_size, C}, Slot::Embedding);
  if (!c.share_all_embeddings) fn("decoder.embed_tokens.weight", w.tgt_embed, {c.tgt_vocab_size, C}, Slot::Embedding);
  if (!c.share_decoder_input_output_embed)
    fn("decoder.output_projection.weight", w.out_proj, {c.tgt_vocab_size, C}, Slot::Embedding);
  w.encoder.resize(static_cast<std::size_t>(c.encoder_layers));
  for (int64_t l = 0; l < c.encoder_layers; ++l) {
    EncoderLayer& L = w.encoder[static_cast<std::size_t>(l)];
    const std::string p = "encoder.layers." + std::to_string(l) + ".";
    self_attention(p + "self_attn", L.self_attn, c, fn);
    linear(p + "self_attn.out_proj", L.self_out, C, C, fn);
    norm(p + "self_attn_layer_norm", L.self_norm, C, eps, fn);
    linear(p + "fc1", L.fc1, F, C, fn);
    linear(p + "fc2", L.fc2, C, F, fn);
    norm(p + "final_layer_norm", L.ffn_norm, C, eps, fn);
  }
  w.decoder.resize(static_cast<std::size_t>(c.decoder_layers));
  for (int64_t l = 0; l < c.decoder_layers; ++l) {
    DecoderLayer& L = w.decoder[static_cast<std::size_t>(l)];
    const std::string p = "decoder.layers." + std::to_string(l) + ".";
    self_attention(p + "self_attn", L.self_attn, c, fn);
    linear(p + "self_attn.out_proj", L.self_out, C, C, fn);
    norm(p + "self_attn_layer_norm", L.self_norm, C, eps, fn);
    L.cross_attn.heads = c.num_heads;
    linear(p + "encoder_attn.q_proj", L.cross_attn.query, C, C, fn);
    linear(p + "encoder_attn.k_proj", L.cross_attn.key, C, C, fn);
    linear(p + "encoder_attn.v_proj", L.cross_attn.value, C, C, fn);
    linear(p + "encoder_attn.out_proj", L.cross_out, C, C, fn);
    norm(p + "encoder_attn_layer_norm", L.cross_norm, C, eps, fn);
    linear(p + "fc1", L.fc1, F, C, fn);
    linear(p + "fc2", L.fc2, C, F, fn);
    norm(p + "final_layer_norm", L.ffn_norm, C, eps, fn);
  }
  if (c.normalize_before) {
    norm("encoder.layer_norm", w.encoder_norm, C, eps, fn);
    norm("decoder.layer_norm", w.decoder_norm, C, eps, fn);
  }
}

void tie(const Seq2SeqConfig& c, Weights& w) {
  if (c.share_all_embeddings) w.tgt_embed = w.src_embed;
  if (c.share_decoder_input_output_embed) w.out_proj = w.tgt_embed;
}

Weights zeros_like(const Seq2SeqConfig& c) {
  Weights g;
  for_each_slot(c, g, [](const std::string&, Tensor& t, const Shape& shape, Slot) { t = Tensor::zeros(shape); });
  tie(c, g);
  return g;
}

Weights clone(const Seq2SeqConfig& c, const Weights& w) {
  Weights out;
  // Walk both structures in the same order: the i-th slot of one is the i-th of the other.
  std::vector<const Tensor*> src;
  for_each_slot(c, const_cast<Weights&>(w), [&](const std::string&, Tensor& t, const Shape&, Slot) { src.push_back(&t); });
  std::size_t i = 0;
  for_each_slot(c, out, [&](const std::string&, Tensor& t, const Shape&, Slot) { t = src[i++]->clone(); });
  tie(c, out);
  return out;
}

}  // namespace roformer::seq2seq
