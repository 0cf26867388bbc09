#pragma once
// RoFormerConfig as HuggingFace transformers defines it (v4.35), read from and
// written to config.json. Keys HF leaves out of a saved config take HF's
// defaults; keys we do not model are kept verbatim so a saved config loads
// back the same.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "roformer/rope.h"

namespace roformer {

struct RoFormerConfig {
  int64_t vocab_size = 50000;
  int64_t embedding_size = 0;  // 0: equal to hidden_size (HF: embedding_size=None)
  int64_t hidden_size = 768;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 3072;
  std::string hidden_act = "gelu";
  double hidden_dropout_prob = 0.1;
  double attention_probs_dropout_prob = 0.1;
  int64_t max_position_embeddings = 1536;
  int64_t type_vocab_size = 2;
  double initializer_range = 0.02;
  double layer_norm_eps = 1e-12;
  int64_t pad_token_id = 0;
  bool rotary_value = false;
  bool use_cache = true;
  bool is_decoder = false;
  bool tie_word_embeddings = true;
  std::vector<std::string> architectures;
  std::map<int64_t, std::string> id2label;  // num_labels = its size (HF default: 2 labels)
  std::optional<std::string> problem_type;
  // Multiple choice: HF's SequenceSummary options.
  std::string summary_type = "last";

  // Extensions of roformer.cpp (not HF keys; written to config.json only when
  // they differ from these defaults, so HF's own configs round-trip unchanged).
  std::string position_embedding_type = "rope";  // rope; absolute (learned table, BERT); sinusoidal (added); none
  double rope_theta = 10000.0;                   // RoPE base
  std::string rope_scaling_type;                 // "": none; "linear" (position interpolation); "ntk" (NTK-aware base)
  double rope_scaling_factor = 1.0;              // how much longer than training the inputs may be
  std::string attention_type = "softmax";        // softmax, or linear (the paper's eq. 19)
  std::string linear_feature_map = "elu";        // linear attention's feature map: elu (elu+1), relu, favor
  int64_t favor_features = 0;                    // favor: random features per head (0: the head size)

  // Every key of the source JSON, so unknown keys survive a save (serialised text).
  std::string extra_json = "{}";

  int64_t embedding_dim() const { return embedding_size > 0 ? embedding_size : hidden_size; }
  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  int64_t num_labels() const { return static_cast<int64_t>(id2label.size()); }
  bool uses_rope() const { return position_embedding_type == "rope"; }
  // The rotation the attention applies: head size, base and, with rope_scaling,
  // interpolated positions (linear: angle m/s·θ_i) or a larger base
  // (ntk: base·s^(d/(d-2))).
  RopeSpec rope_spec() const;

  // Throws Error naming the key when a value is out of range or unsupported.
  void validate() const;

  static RoFormerConfig from_json_text(const std::string& text, const std::string& label = "config.json");
  static RoFormerConfig from_file(const std::string& path);
  // config.json text in HF's layout (sorted keys, 2-space indent).
  std::string to_json_text() const;
  // This config with the keys of a JSON object replaced (validated like a file).
  RoFormerConfig with_overrides(const std::string& json_object) const;
};

}  // namespace roformer
