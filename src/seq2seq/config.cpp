// Seq2SeqConfig <-> config.json.
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "roformer/error.h"
#include "roformer/seq2seq.h"

namespace roformer {

namespace {

using nlohmann::json;

constexpr const char* kModelType = "roformer_seq2seq";

template <typename T>
void read_key(const json& j, const char* key, T& out, const std::string& label) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  if constexpr (std::is_same_v<T, int64_t>) {
    ROFORMER_CHECK(it->is_number_integer(), label + ": key \"" + key + "\" must be an integer");
  } else if constexpr (std::is_same_v<T, bool>) {
    ROFORMER_CHECK(it->is_boolean(), label + ": key \"" + key + "\" must be true or false");
  } else if constexpr (std::is_same_v<T, double>) {
    ROFORMER_CHECK(it->is_number(), label + ": key \"" + key + "\" must be a number");
  } else {
    ROFORMER_CHECK(it->is_string(), label + ": key \"" + key + "\" must be a string");
  }
  out = it->get<T>();
}

}  // namespace

void Seq2SeqConfig::validate() const {
  auto positive = [](int64_t v, const char* key) {
    ROFORMER_CHECK(v > 0 && v <= (int64_t{1} << 31),
                   std::string("seq2seq config: ") + key + " must be positive, got " + std::to_string(v));
  };
  positive(src_vocab_size, "src_vocab_size");
  positive(tgt_vocab_size, "tgt_vocab_size");
  positive(d_model, "d_model");
  positive(encoder_layers, "encoder_layers");
  positive(decoder_layers, "decoder_layers");
  positive(num_heads, "num_heads");
  positive(ffn_dim, "ffn_dim");
  ROFORMER_CHECK(d_model % num_heads == 0, "seq2seq config: d_model " + std::to_string(d_model) +
                                               " is not a multiple of num_heads " + std::to_string(num_heads));
  ROFORMER_CHECK(head_dim() % 2 == 0, "seq2seq config: the head size " + std::to_string(head_dim()) +
                                          " is odd; RoPE rotates pairs and the sinusoids come in pairs");
  ROFORMER_CHECK(d_model % 2 == 0, "seq2seq config: d_model must be even");
  ROFORMER_CHECK(activation == "relu" || activation == "gelu" || activation == "gelu_new",
                 "seq2seq config: activation \"" + activation + "\" is not supported (relu, gelu, gelu_new)");
  ROFORMER_CHECK(position_encoding == "rope" || position_encoding == "sinusoidal",
                 "seq2seq config: position_encoding \"" + position_encoding + "\" is not supported (rope, sinusoidal)");
  ROFORMER_CHECK(std::isfinite(rope_theta) && rope_theta > 1, "seq2seq config: rope_theta must be a number > 1");
  ROFORMER_CHECK(!share_all_embeddings || src_vocab_size == tgt_vocab_size,
                 "seq2seq config: share_all_embeddings needs src_vocab_size == tgt_vocab_size");
  ROFORMER_CHECK(dropout >= 0 && dropout < 1, "seq2seq config: dropout must be in [0, 1)");
  ROFORMER_CHECK(layer_norm_eps > 0 && layer_norm_eps < 1, "seq2seq config: layer_norm_eps must be in (0, 1)");
  ROFORMER_CHECK(std::isfinite(init_std) && init_std >= 0, "seq2seq config: init_std must be >= 0");
  const int64_t V = std::min(src_vocab_size, tgt_vocab_size);
  for (auto [v, key] : {std::pair{pad_token_id, "pad_token_id"}, {bos_token_id, "bos_token_id"}, {eos_token_id, "eos_token_id"}})
    ROFORMER_CHECK(v >= 0 && v < V, std::string("seq2seq config: ") + key + " " + std::to_string(v) + " is outside the vocabulary");
  ROFORMER_CHECK(pad_token_id != eos_token_id && pad_token_id != bos_token_id,
                 "seq2seq config: pad_token_id must differ from bos_token_id and eos_token_id");
}

Seq2SeqConfig Seq2SeqConfig::from_json_text(const std::string& text, const std::string& label) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(label + ": not valid JSON: " + e.what());
  }
  ROFORMER_CHECK(j.is_object(), label + ": the top level must be a JSON object");
  auto mt = j.find("model_type");
  ROFORMER_CHECK(mt != j.end() && mt->is_string() && *mt == kModelType,
                 label + ": model_type must be \"" + kModelType + "\" (a sequence-to-sequence RoFormer)");
  Seq2SeqConfig c;
  read_key(j, "src_vocab_size", c.src_vocab_size, label);
  read_key(j, "tgt_vocab_size", c.tgt_vocab_size, label);
  read_key(j, "d_model", c.d_model, label);
  read_key(j, "encoder_layers", c.encoder_layers, label);
  read_key(j, "decoder_layers", c.decoder_layers, label);
  read_key(j, "num_heads", c.num_heads, label);
  read_key(j, "ffn_dim", c.ffn_dim, label);
  read_key(j, "activation", c.activation, label);
  read_key(j, "normalize_before", c.normalize_before, label);
  read_key(j, "position_encoding", c.position_encoding, label);
  read_key(j, "rope_theta", c.rope_theta, label);
  read_key(j, "share_all_embeddings", c.share_all_embeddings, label);
  read_key(j, "share_decoder_input_output_embed", c.share_decoder_input_output_embed, label);
  read_key(j, "scale_embedding", c.scale_embedding, label);
  read_key(j, "dropout", c.dropout, label);
  read_key(j, "layer_norm_eps", c.layer_norm_eps, label);
  read_key(j, "init_std", c.init_std, label);
  read_key(j, "pad_token_id", c.pad_token_id, label);
  read_key(j, "bos_token_id", c.bos_token_id, label);
  read_key(j, "eos_token_id", c.eos_token_id, label);
  try {
    c.validate();
  } catch (const Error& e) {
    throw Error(label + ": " + e.what());
  }
  return c;
}

Seq2SeqConfig Seq2SeqConfig::from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ROFORMER_CHECK(static_cast<bool>(in), "cannot open " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return from_json_text(ss.str(), path);
}

std::string Seq2SeqConfig::to_json_text() const {
  const json j{{"model_type", kModelType},
               {"architectures", {"RoFormerSeq2Seq"}},
               {"src_vocab_size", src_vocab_size},
               {"tgt_vocab_size", tgt_vocab_size},
               {"d_model", d_model},
               {"encoder_layers", encoder_layers},
               {"decoder_layers", decoder_layers},
               {"num_heads", num_heads},
               {"ffn_dim", ffn_dim},
               {"activation", activation},
               {"normalize_before", normalize_before},
               {"position_encoding", position_encoding},
               {"rope_theta", rope_theta},
               {"share_all_embeddings", share_all_embeddings},
               {"share_decoder_input_output_embed", share_decoder_input_output_embed},
               {"scale_embedding", scale_embedding},
               {"dropout", dropout},
               {"layer_norm_eps", layer_norm_eps},
               {"init_std", init_std},
               {"pad_token_id", pad_token_id},
               {"bos_token_id", bos_token_id},
               {"eos_token_id", eos_token_id}};
  return j.dump(2) + "\n";
}

}  // namespace roformer
