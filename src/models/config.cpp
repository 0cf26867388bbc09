#include "roformer/config.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "roformer/error.h"

namespace roformer {

namespace {

using nlohmann::json;

template <typename T>
void read_key(const json& j, const char* key, T& out, const std::string& label) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  try {
    out = it->get<T>();
  } catch (const json::exception&) {
    throw Error(label + ": key \"" + key + "\" has the wrong type (" + it->type_name() + ")");
  }
}

void read_int(const json& j, const char* key, int64_t& out, const std::string& label) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  ROFORMER_CHECK(it->is_number_integer(), label + ": key \"" + key + "\" must be an integer");
  out = it->get<int64_t>();
}

// nlohmann's dump() and copies recurse once per nesting level, so a deeply
// nested file would overflow the stack; HF configs nest a few levels.
constexpr int kMaxJsonDepth = 64;

json parse_json(const std::string& text, const std::string& label) {
  bool too_deep = false;
  json j;
  try {
    j = json::parse(text, [&](int depth, json::parse_event_t, json&) {
      if (depth > kMaxJsonDepth) too_deep = true;
      return !too_deep;  // stop building once too deep
    });
  } catch (const json::exception& e) {
    throw Error(label + ": not valid JSON: " + e.what());
  }
  ROFORMER_CHECK(!too_deep, label + ": JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  return j;
}

}  // namespace

void RoFormerConfig::validate() const {
  auto positive = [](int64_t v, const char* key) {
    ROFORMER_CHECK(v > 0 && v <= (int64_t{1} << 31),
          std::string("config: ") + key + " must be positive, got " + std::to_string(v));
  };
  positive(vocab_size, "vocab_size");
  positive(hidden_size, "hidden_size");
  positive(num_hidden_layers, "num_hidden_layers");
  positive(num_attention_heads, "num_attention_heads");
  positive(intermediate_size, "intermediate_size");
  positive(type_vocab_size, "type_vocab_size");
  positive(max_position_embeddings, "max_position_embeddings");
  ROFORMER_CHECK(embedding_size >= 0, "config: embedding_size must be positive");
  ROFORMER_CHECK(hidden_size % num_attention_heads == 0,
        "config: hidden_size " + std::to_string(hidden_size) + " is not a multiple of num_attention_heads " +
            std::to_string(num_attention_heads));
  ROFORMER_CHECK(head_dim() % 2 == 0, "config: head size " + std::to_string(head_dim()) + " is odd; RoPE rotates pairs");
  ROFORMER_CHECK(hidden_act == "gelu" || hidden_act == "gelu_new" || hidden_act == "relu",
        "config: hidden_act \"" + hidden_act + "\" is not supported (gelu, gelu_new, relu)");
  ROFORMER_CHECK(layer_norm_eps > 0 && layer_norm_eps < 1, "config: layer_norm_eps must be in (0, 1)");
  ROFORMER_CHECK(pad_token_id >= 0 && pad_token_id < vocab_size, "config: pad_token_id outside the vocabulary");
  ROFORMER_CHECK(summary_type == "last" || summary_type == "first" || summary_type == "mean",
        "config: summary_type \"" + summary_type + "\" is not supported (last, first, mean)");
  ROFORMER_CHECK(position_embedding_type == "rope" || position_embedding_type == "absolute" ||
            position_embedding_type == "sinusoidal" || position_embedding_type == "none",
        "config: position_embedding_type \"" + position_embedding_type +
            "\" is not supported (rope, absolute, sinusoidal, none)");
  ROFORMER_CHECK(!rotary_value || uses_rope(), "config: rotary_value needs position_embedding_type rope");
  ROFORMER_CHECK(std::isfinite(rope_theta) && rope_theta > 1, "config: rope_theta must be a number > 1");
  ROFORMER_CHECK(rope_scaling_type.empty() || rope_scaling_type == "linear" || rope_scaling_type == "ntk",
        "config: rope_scaling type \"" + rope_scaling_type + "\" is not supported (linear, ntk)");
  ROFORMER_CHECK(std::isfinite(rope_scaling_factor) && rope_scaling_factor >= 1,
        "config: rope_scaling factor must be a number >= 1");
  // ntk's base theta·s^(d/(d-2)) is infinite for d = 2 or on overflow: refuse it here, not at the first forward.
  ROFORMER_CHECK(rope_scaling_type != "ntk" || std::isfinite(rope_spec().base),
        "config: rope_scaling ntk with factor " + std::to_string(rope_scaling_factor) + " and head size " +
            std::to_string(head_dim()) + " gives an infinite RoPE base");
  ROFORMER_CHECK(attention_type == "softmax" || attention_type == "linear",
        "config: attention_type \"" + attention_type + "\" is not supported (softmax, linear)");
  ROFORMER_CHECK(linear_feature_map == "elu" || linear_feature_map == "relu" || linear_feature_map == "favor",
        "config: linear_feature_map \"" + linear_feature_map + "\" is not supported (elu, relu, favor)");
  ROFORMER_CHECK(favor_features >= 0 && favor_features % 2 == 0 && favor_features <= 65536,
        "config: favor_features must be even and in [0, 65536]");
  ROFORMER_CHECK(attention_type == "softmax" || !rotary_value, "config: rotary_value is not supported with linear attention");
  ROFORMER_CHECK(attention_type == "softmax" || rope_scaling_type != "linear",
        "config: rope_scaling linear (position interpolation) is not supported with linear attention; use ntk");
}

RopeSpec RoFormerConfig::rope_spec() const {
  RopeSpec s{head_dim(), 0, rope_theta, RopeLayout::Interleaved};
  if (rope_scaling_type == "linear") s.position_scale = 1.0 / rope_scaling_factor;
  if (rope_scaling_type == "ntk") {
    const auto d = static_cast<double>(head_dim());
    s.base = rope_theta * std::pow(rope_scaling_factor, d / (d - 2));
  }
  return s;
}

RoFormerConfig RoFormerConfig::from_json_text(const std::string& text, const std::string& label) {
  const json j = parse_json(text, label);
  ROFORMER_CHECK(j.is_object(), label + ": the top level must be a JSON object");
  if (auto it = j.find("model_type"); it != j.end() && it->is_string()) {
    ROFORMER_CHECK(*it == "roformer", label + ": model_type is \"" + it->get<std::string>() + "\", expected \"roformer\"");
  }
  RoFormerConfig c;
  read_int(j, "vocab_size", c.vocab_size, label);
  read_int(j, "embedding_size", c.embedding_size, label);
  read_int(j, "hidden_size", c.hidden_size, label);
  read_int(j, "num_hidden_layers", c.num_hidden_layers, label);
  read_int(j, "num_attention_heads", c.num_attention_heads, label);
  read_int(j, "intermediate_size", c.intermediate_size, label);
  read_key(j, "hidden_act", c.hidden_act, label);
  read_key(j, "hidden_dropout_prob", c.hidden_dropout_prob, label);
  read_key(j, "attention_probs_dropout_prob", c.attention_probs_dropout_prob, label);
  read_int(j, "max_position_embeddings", c.max_position_embeddings, label);
  read_int(j, "type_vocab_size", c.type_vocab_size, label);
  read_key(j, "initializer_range", c.initializer_range, label);
  read_key(j, "layer_norm_eps", c.layer_norm_eps, label);
  read_int(j, "pad_token_id", c.pad_token_id, label);
  read_key(j, "rotary_value", c.rotary_value, label);
  read_key(j, "use_cache", c.use_cache, label);
  read_key(j, "is_decoder", c.is_decoder, label);
  read_key(j, "tie_word_embeddings", c.tie_word_embeddings, label);
  read_key(j, "architectures", c.architectures, label);
  read_key(j, "summary_type", c.summary_type, label);
  read_key(j, "position_embedding_type", c.position_embedding_type, label);
  read_key(j, "rope_theta", c.rope_theta, label);
  if (auto it = j.find("rope_scaling"); it != j.end() && !it->is_null()) {
    ROFORMER_CHECK(it->is_object(), label + ": rope_scaling must be an object {\"type\", \"factor\"}");
    read_key(*it, "type", c.rope_scaling_type, label);
    read_key(*it, "factor", c.rope_scaling_factor, label);
    ROFORMER_CHECK(!c.rope_scaling_type.empty(), label + ": rope_scaling needs a type");
  }
  read_key(j, "attention_type", c.attention_type, label);
  read_key(j, "linear_feature_map", c.linear_feature_map, label);
  read_int(j, "favor_features", c.favor_features, label);
  if (auto it = j.find("problem_type"); it != j.end() && it->is_string()) c.problem_type = it->get<std::string>();
  if (auto it = j.find("summary_use_proj"); it != j.end() && it->is_boolean()) {
    ROFORMER_CHECK(!it->get<bool>(), label + ": summary_use_proj=true is not supported");
  }

  // HF: id2label wins; otherwise num_labels labels named LABEL_i; default 2.
  int64_t num_labels = 2;
  read_int(j, "num_labels", num_labels, label);
  if (auto it = j.find("id2label"); it != j.end() && it->is_object()) {
    for (const auto& [k, v] : it->items()) {
      int64_t id = -1;
      std::size_t used = 0;
      try {
        id = std::stoll(k, &used);
      } catch (...) {
        used = 0;
      }
      ROFORMER_CHECK(used == k.size() && used > 0, label + ": id2label key \"" + k + "\" is not an integer");
      ROFORMER_CHECK(v.is_string(), label + ": id2label values must be strings");
      c.id2label[id] = v.get<std::string>();
    }
    for (int64_t i = 0; i < static_cast<int64_t>(c.id2label.size()); ++i) {
      ROFORMER_CHECK(c.id2label.count(i) == 1, label + ": id2label ids must be 0..n-1");
    }
  } else {
    ROFORMER_CHECK(num_labels >= 1 && num_labels <= 1000000, label + ": num_labels out of range");
    for (int64_t i = 0; i < num_labels; ++i) c.id2label.emplace_hint(c.id2label.end(), i, "LABEL_" + std::to_string(i));
  }
  c.extra_json = j.dump();
  c.validate();
  return c;
}

RoFormerConfig RoFormerConfig::with_overrides(const std::string& text) const {
  const json overrides = parse_json(text, "config overrides");
  ROFORMER_CHECK(overrides.is_object(), "config overrides: expected a JSON object");
  json j = json::parse(to_json_text());
  for (const auto& [k, v] : overrides.items()) j[k] = v;
  return from_json_text(j.dump(), "config overrides");
}

RoFormerConfig RoFormerConfig::from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ROFORMER_CHECK(static_cast<bool>(in), "cannot open config file " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  ROFORMER_CHECK(ss.str().size() < (std::size_t{16} << 20), path + ": config file is implausibly large");
  return from_json_text(ss.str(), path);
}

std::string RoFormerConfig::to_json_text() const {
  json j = json::parse(extra_json);
  j["model_type"] = "roformer";
  j["vocab_size"] = vocab_size;
  if (embedding_size > 0) j["embedding_size"] = embedding_size;
  j["hidden_size"] = hidden_size;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_attention_heads"] = num_attention_heads;
  j["intermediate_size"] = intermediate_size;
  j["hidden_act"] = hidden_act;
  j["hidden_dropout_prob"] = hidden_dropout_prob;
  j["attention_probs_dropout_prob"] = attention_probs_dropout_prob;
  j["max_position_embeddings"] = max_position_embeddings;
  j["type_vocab_size"] = type_vocab_size;
  j["initializer_range"] = initializer_range;
  j["layer_norm_eps"] = layer_norm_eps;
  j["pad_token_id"] = pad_token_id;
  j["rotary_value"] = rotary_value;
  j["use_cache"] = use_cache;
  j["is_decoder"] = is_decoder;
  j["tie_word_embeddings"] = tie_word_embeddings;
  if (!architectures.empty()) j["architectures"] = architectures;
  json id2 = json::object(), l2id = json::object();
  for (const auto& [id, name] : id2label) {
    id2[std::to_string(id)] = name;
    l2id[name] = id;
  }
  j["id2label"] = id2;
  j["label2id"] = l2id;
  j.erase("num_labels");
  if (problem_type) j["problem_type"] = *problem_type;
  // Our extensions, only where they differ from the defaults.
  const RoFormerConfig defaults;
  auto put = [&](const char* key, const auto& value, const auto& fallback) {
    if (value == fallback) j.erase(key);
    else j[key] = value;
  };
  put("position_embedding_type", position_embedding_type, defaults.position_embedding_type);
  put("rope_theta", rope_theta, defaults.rope_theta);
  put("attention_type", attention_type, defaults.attention_type);
  if (attention_type == "linear") j["linear_feature_map"] = linear_feature_map;  // only meaningful there
  else j.erase("linear_feature_map");
  put("favor_features", favor_features, defaults.favor_features);
  // HF's SequenceSummary (the multiple-choice head) reads it too.
  put("summary_type", summary_type, defaults.summary_type);
  if (rope_scaling_type.empty()) j.erase("rope_scaling");
  else j["rope_scaling"] = json{{"type", rope_scaling_type}, {"factor", rope_scaling_factor}};
  return j.dump(2) + "\n";
}

}  // namespace roformer
