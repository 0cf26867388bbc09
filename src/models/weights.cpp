#include "models/weights.h"

#include <cmath>
#include <set>

#include "roformer/error.h"
#include "roformer/safetensors.h"

namespace roformer::models {

namespace {

// Looks tensors up by name, checks shapes, and remembers what was used so
// leftovers can be reported.
class Binder {
 public:
  Binder(const std::map<std::string, Tensor>& tensors) : tensors_(tensors) {}

  Tensor take(const std::string& name, const Shape& shape) {
    auto it = tensors_.find(name);
    ROFORMER_CHECK(it != tensors_.end(), "checkpoint: missing tensor " + name + " (expected shape " + shape_str(shape) + ")");
    ROFORMER_CHECK(it->second.shape() == shape, "checkpoint: tensor " + name + " has shape " + shape_str(it->second.shape()) +
                                           ", the config implies " + shape_str(shape));
    used_.insert(name);
    const Tensor& t = it->second;
    ROFORMER_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::BF16,
          "checkpoint: tensor " + name + " must be floating point");
    if (t.dtype() == DType::F32 && t.is_contiguous()) return t;
    return t.to(DType::F32);
  }
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  void mark_used(const std::string& name) { used_.insert(name); }

  nn::Linear linear(const std::string& prefix, int64_t out, int64_t in) {
    return nn::Linear{take(prefix + ".weight", {out, in}), take(prefix + ".bias", {out}), nullptr};
  }
  nn::LayerNorm norm(const std::string& prefix, int64_t n, double eps) {
    return nn::LayerNorm{take(prefix + ".weight", {n}), take(prefix + ".bias", {n}), static_cast<float>(eps)};
  }

  std::vector<std::string> unused() const {
    std::vector<std::string> out;
    for (const auto& [name, t] : tensors_)
      if (!used_.count(name)) out.push_back(name);
    return out;
  }

 private:
  const std::map<std::string, Tensor>& tensors_;
  std::set<std::string> used_;
};

bool equal_values(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return false;
  const auto va = a.to_vector(), vb = b.to_vector();
  return va == vb;
}

}  // namespace

std::string base_prefix(Task task) { return task == Task::Base ? "" : "roformer."; }

Tensor sinusoidal_table(int64_t max_positions, int64_t head_dim) {
  Tensor t = Tensor::zeros({max_positions, head_dim});
  float* p = t.data<float>();
  const int64_t half = head_dim / 2;
  for (int64_t pos = 0; pos < max_positions; ++pos) {
    for (int64_t i = 0; i < half; ++i) {
      // HF computes the table in float64 and stores float32: sines, then cosines.
      const double angle = static_cast<double>(pos) / std::pow(10000.0, 2.0 * static_cast<double>(i) / static_cast<double>(head_dim));
      p[pos * head_dim + i] = static_cast<float>(std::sin(angle));
      p[pos * head_dim + half + i] = static_cast<float>(std::cos(angle));
    }
  }
  return t;
}

void add_position_embeddings(const RoFormerConfig& c, const RoFormerWeights& w, const int64_t* positions, int64_t B,
                             int64_t T, float* e) {
  const int64_t E = c.embedding_dim();
  if (c.position_embedding_type == "absolute") {
    const float* table = w.position_embeddings.data<float>();
    for (int64_t t = 0; t < T; ++t) {
      const int64_t p = positions[t];
      ROFORMER_CHECK(p >= 0 && p < c.max_position_embeddings,
            "position " + std::to_string(p) + " is past the learned absolute position table (max_position_embeddings " +
                std::to_string(c.max_position_embeddings) + "); only RoPE and sinusoidal positions go further");
      for (int64_t b = 0; b < B; ++b)
        for (int64_t k = 0; k < E; ++k) e[(b * T + t) * E + k] += table[p * E + k];
    }
  } else if (c.position_embedding_type == "sinusoidal") {
    // Vaswani et al.: PE(p, 2i) = sin(p / 10000^(2i/E)), PE(p, 2i+1) = cos(same), in double.
    std::vector<float> row(static_cast<std::size_t>(E));
    for (int64_t t = 0; t < T; ++t) {
      const auto p = static_cast<double>(positions[t]);
      for (int64_t k = 0; k < E; ++k) {
        const double angle = p / std::pow(10000.0, static_cast<double>(k - k % 2) / static_cast<double>(E));
        row[static_cast<std::size_t>(k)] = static_cast<float>(k % 2 == 0 ? std::sin(angle) : std::cos(angle));
      }
      for (int64_t b = 0; b < B; ++b)
        for (int64_t k = 0; k < E; ++k) e[(b * T + t) * E + k] += row[static_cast<std::size_t>(k)];
    }
  }
}

RoFormerWeights bind_weights(const RoFormerConfig& c, Task task, const std::map<std::string, Tensor>& tensors,
                             bool ignore_other_heads) {
  c.validate();
  Binder bind(tensors);
  const std::string base = base_prefix(task);
  const int64_t V = c.vocab_size, E = c.embedding_dim(), H = c.hidden_size, I = c.intermediate_size;
  const double eps = c.layer_norm_eps;
  RoFormerWeights w;
  w.word_embeddings = bind.take(base + "embeddings.word_embeddings.weight", {V, E});
  w.token_type_embeddings = bind.take(base + "embeddings.token_type_embeddings.weight", {c.type_vocab_size, E});
  if (c.position_embedding_type == "absolute")
    w.position_embeddings = bind.take(base + "embeddings.position_embeddings.weight", {c.max_position_embeddings, E});
  w.embeddings_norm = bind.norm(base + "embeddings.LayerNorm", E, eps);
  if (E != H) w.embeddings_project = bind.linear(base + "embeddings_project", H, E);

  // The stored sinusoidal table must be the standard one: RoPE computes its
  // angles itself (at any position), so a different table would be ignored silently.
  const std::string table_name = base + "encoder.embed_positions.weight";
  w.sinusoidal_table = sinusoidal_table(c.max_position_embeddings, c.head_dim());
  if (bind.has(table_name)) {
    Tensor stored = bind.take(table_name, {c.max_position_embeddings, c.head_dim()});
    const auto a = stored.to_vector(), b = w.sinusoidal_table.to_vector();
    for (std::size_t i = 0; i < a.size(); ++i) {
      ROFORMER_CHECK(std::fabs(a[i] - b[i]) <= 1e-6f, "checkpoint: " + table_name +
                                                   " is not the standard sinusoidal table (entry " +
                                                   std::to_string(i) + "); custom position tables are not supported");
    }
  }

  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = base + "encoder.layer." + std::to_string(l) + ".";
    EncoderLayerWeights layer;
    layer.attention.query = bind.linear(p + "attention.self.query", H, H);
    layer.attention.key = bind.linear(p + "attention.self.key", H, H);
    layer.attention.value = bind.linear(p + "attention.self.value", H, H);
    layer.attention.heads = c.num_attention_heads;
    layer.attention.rotary_value = c.rotary_value;
    layer.attention.use_rope = c.uses_rope();
    if (c.attention_type == "linear") {
      nn::LinearAttentionConfig la;
      la.heads = c.num_attention_heads;
      la.head_dim = c.head_dim();
      la.feature_map = nn::parse_feature_map(c.linear_feature_map);
      la.causal = c.is_decoder;
      la.rope = c.uses_rope();
      la.rope_base = c.rope_spec().base;
      la.favor_features = c.favor_features;
      la.favor_seed = static_cast<uint64_t>(l);  // FAVOR's random features: fixed per layer
      layer.attention.linear = std::make_shared<const nn::LinearAttention>(la);
    }
    layer.attention_output = bind.linear(p + "attention.output.dense", H, H);
    layer.attention_norm = bind.norm(p + "attention.output.LayerNorm", H, eps);
    layer.intermediate = bind.linear(p + "intermediate.dense", I, H);
    layer.output = bind.linear(p + "output.dense", H, I);
    layer.output_norm = bind.norm(p + "output.LayerNorm", H, eps);
    w.layers.push_back(std::move(layer));
  }

  const int64_t labels = c.num_labels();
  if (task == Task::SequenceClassification || task == Task::TokenClassification) {
    ROFORMER_CHECK(labels >= 1, "config: a classification head needs at least one label, but id2label is empty");
  }
  switch (task) {
    case Task::Base: break;
    case Task::MaskedLM:
    case Task::CausalLM: {
      w.lm_transform = bind.linear("cls.predictions.transform.dense", E, H);
      w.lm_norm = bind.norm("cls.predictions.transform.LayerNorm", E, eps);
      w.lm_bias = bind.take("cls.predictions.bias", {V});
      if (c.tie_word_embeddings) {
        w.lm_decoder = w.word_embeddings;
        // torch .bin files also store the tied aliases; they must agree.
        for (const char* alias : {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}) {
          if (!bind.has(alias)) continue;
          const bool is_weight = std::string(alias).ends_with("weight");
          Tensor t = bind.take(alias, is_weight ? Shape{V, E} : Shape{V});
          ROFORMER_CHECK(equal_values(t, is_weight ? w.word_embeddings : w.lm_bias),
                std::string("checkpoint: ") + alias + " differs from the tensor it is tied to");
        }
      } else {
        w.lm_decoder = bind.take("cls.predictions.decoder.weight", {V, E});
        if (bind.has("cls.predictions.decoder.bias")) bind.take("cls.predictions.decoder.bias", {V});
      }
      break;
    }
    case Task::SequenceClassification:
      w.classifier_dense = bind.linear("classifier.dense", H, H);
      w.classifier = bind.linear("classifier.out_proj", labels, H);
      break;
    case Task::TokenClassification: w.classifier = bind.linear("classifier", labels, H); break;
    case Task::QuestionAnswering: w.classifier = bind.linear("qa_outputs", 2, H); break;
    case Task::MultipleChoice: w.classifier = bind.linear("classifier", 1, H); break;
  }

  for (const auto& name : bind.unused()) {
    const bool encoder = name.starts_with(base + "embeddings") || name.starts_with(base + "encoder");
    if (ignore_other_heads && !encoder) continue;
    throw Error("checkpoint: unexpected tensor " + name + " for " + std::string(task_name(task)));
  }
  return w;
}

void visit_tensors(const RoFormerConfig& c, Task task, RoFormerWeights& w,
                   const std::function<void(const std::string&, Tensor&)>& fn) {
  const std::string base = base_prefix(task);
  auto linear = [&](const std::string& p, nn::Linear& l) {
    fn(p + ".weight", l.weight);
    fn(p + ".bias", l.bias);
  };
  auto norm = [&](const std::string& p, nn::LayerNorm& n) {
    fn(p + ".weight", n.weight);
    fn(p + ".bias", n.bias);
  };
  fn(base + "embeddings.word_embeddings.weight", w.word_embeddings);
  if (c.position_embedding_type == "absolute") fn(base + "embeddings.position_embeddings.weight", w.position_embeddings);
  fn(base + "embeddings.token_type_embeddings.weight", w.token_type_embeddings);
  norm(base + "embeddings.LayerNorm", w.embeddings_norm);
  if (w.embeddings_project) linear(base + "embeddings_project", *w.embeddings_project);
  fn(base + "encoder.embed_positions.weight", w.sinusoidal_table);
  for (std::size_t l = 0; l < w.layers.size(); ++l) {
    const std::string p = base + "encoder.layer." + std::to_string(l) + ".";
    auto& L = w.layers[l];
    linear(p + "attention.self.query", L.attention.query);
    linear(p + "attention.self.key", L.attention.key);
    linear(p + "attention.self.value", L.attention.value);
    linear(p + "attention.output.dense", L.attention_output);
    norm(p + "attention.output.LayerNorm", L.attention_norm);
    linear(p + "intermediate.dense", L.intermediate);
    linear(p + "output.dense", L.output);
    norm(p + "output.LayerNorm", L.output_norm);
  }
  switch (task) {
    case Task::Base: break;
    case Task::MaskedLM:
    case Task::CausalLM:
      fn("cls.predictions.bias", w.lm_bias);
      linear("cls.predictions.transform.dense", w.lm_transform);
      norm("cls.predictions.transform.LayerNorm", w.lm_norm);
      if (!c.tie_word_embeddings) fn("cls.predictions.decoder.weight", w.lm_decoder);
      break;
    case Task::SequenceClassification:
      linear("classifier.dense", w.classifier_dense);
      linear("classifier.out_proj", w.classifier);
      break;
    case Task::TokenClassification:
    case Task::MultipleChoice: linear("classifier", w.classifier); break;
    case Task::QuestionAnswering: linear("qa_outputs", w.classifier); break;
  }
}

std::vector<std::pair<std::string, Tensor>> state_dict(const RoFormerConfig& c, Task task, const RoFormerWeights& w) {
  std::vector<std::pair<std::string, Tensor>> out;
  // visit_tensors takes mutable references; the tensors are only copied (shared storage) here.
  visit_tensors(c, task, const_cast<RoFormerWeights&>(w), [&](const std::string& n, Tensor& t) { out.emplace_back(n, t); });
  return out;
}

namespace {

RoFormerWeights map_weights(const RoFormerConfig& c, Task task, const RoFormerWeights& w,
                            const std::function<Tensor(const Tensor&)>& f) {
  RoFormerWeights out = w;
  set_packed_matmuls(task, out, std::nullopt);  // the copy is plain fp32 (training reads `weight`)
  visit_tensors(c, task, out, [&](const std::string&, Tensor& t) { t = f(t); });
  if ((task == Task::MaskedLM || task == Task::CausalLM) && c.tie_word_embeddings) out.lm_decoder = out.word_embeddings;
  return out;
}

}  // namespace

void set_packed_matmuls(Task task, RoFormerWeights& w, std::optional<kernels::MatmulPrecision> precision,
                        kernels::Bf16Kernel bf16_kernel) {
  // Once packed, the fp32 weights are not read by inference: pages of a
  // memory-mapped checkpoint go back to the kernel (re-read from the file if
  // training, saving or a plain-GEMM forward touches them), so packed fp32
  // holds the weights once, bf16 about half of them and int8 a quarter.
  auto release = [](const Tensor& t) {
    release_mapped_pages(t.data<float>(), static_cast<std::size_t>(t.numel()) * sizeof(float));
  };
  auto apply = [precision, bf16_kernel, &release](nn::Linear& l) {
    if (!l.weight.defined() || l.weight.numel() == 0) return;
    if (precision) {
      l.pack(*precision, bf16_kernel);
      release(l.weight);
    } else {
      l.packed.reset();
    }
  };
  if (w.embeddings_project) apply(*w.embeddings_project);
  for (auto& L : w.layers) {
    for (nn::Linear* l : {&L.attention.query, &L.attention.key, &L.attention.value, &L.attention_output,
                          &L.intermediate, &L.output})
      apply(*l);
  }
  w.lm_decoder_packed.reset();
  switch (task) {
    case Task::MaskedLM:
    case Task::CausalLM:
      apply(w.lm_transform);
      if (precision) {
        w.lm_decoder_packed = std::make_shared<const kernels::PackedMatmul>(
            w.lm_decoder.data<float>(), w.lm_decoder.size(0), w.lm_decoder.size(1), *precision, false, bf16_kernel);
        release(w.lm_decoder);  // tied: the embedding lookup pages back in only the rows it reads
      }
      break;
    case Task::SequenceClassification: apply(w.classifier_dense); apply(w.classifier); break;
    case Task::TokenClassification:
    case Task::QuestionAnswering:
    case Task::MultipleChoice: apply(w.classifier); break;
    case Task::Base: break;
  }
}

std::optional<kernels::MatmulPrecision> packed_matmuls(const RoFormerWeights& w) {
  if (w.layers.empty() || !w.layers.front().intermediate.packed) return std::nullopt;
  return w.layers.front().intermediate.packed->precision();
}

RoFormerWeights clone_weights(const RoFormerConfig& c, Task task, const RoFormerWeights& w) {
  return map_weights(c, task, w, [](const Tensor& t) { return t.clone(); });
}

RoFormerWeights zeros_like(const RoFormerConfig& c, Task task, const RoFormerWeights& w) {
  return map_weights(c, task, w, [](const Tensor& t) { return Tensor::zeros(t.shape(), t.dtype()); });
}

}  // namespace roformer::models
