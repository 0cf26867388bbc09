#pragma once
// Tiny seq2seq configurations and batches shared by the seq2seq tests.
#include <ostream>
#include <string>
#include <vector>

#include "roformer/seq2seq.h"

namespace roformer::testing {

struct Variant {
  std::string name;
  bool pre_ln;
  std::string positions;
  bool share_all;
  bool tie_output;
};

inline void PrintTo(const Variant& v, std::ostream* os) { *os << v.name; }

inline std::vector<Variant> all_variants() {
  return {{"post_rope_shared", false, "rope", true, true},
          {"pre_rope_separate_untied", true, "rope", false, false},
          {"post_sinusoidal_tied", false, "sinusoidal", false, true},
          {"pre_sinusoidal_shared", true, "sinusoidal", true, true}};
}

// V = 13 (pad 0, bos 2, eos 3), C = 8, 2 heads of 4, FFN 12.
inline Seq2SeqConfig tiny_config(const Variant& v, int64_t layers = 2) {
  Seq2SeqConfig c;
  c.src_vocab_size = v.share_all ? 13 : 11;
  c.tgt_vocab_size = 13;
  c.d_model = 8;
  c.num_heads = 2;
  c.ffn_dim = 12;
  c.encoder_layers = layers;
  c.decoder_layers = layers;
  c.normalize_before = v.pre_ln;
  c.position_encoding = v.positions;
  c.share_all_embeddings = v.share_all;
  c.share_decoder_input_output_embed = v.tie_output;
  c.activation = "gelu";
  c.dropout = 0.1;
  c.init_std = 0.5;  // larger than fairseq's default, so that logits are far from uniform
  return c;
}

// Two pairs of different lengths (padding on both sides of the model).
inline Seq2SeqBatch tiny_batch(const Seq2SeqConfig& c) {
  return make_seq2seq_batch({{5, 6, 7, 8, 9}, {4, 10}}, {{7, 8, 9, 10}, {12, 5}}, c);
}

}  // namespace roformer::testing
