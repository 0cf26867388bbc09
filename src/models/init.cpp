// A freshly initialised model, as HF's RoFormerPreTrainedModel._init_weights
// does it: Linear and Embedding weights ~ N(0, initializer_range), biases 0,
// LayerNorm 1 / 0, the padding row of the word embeddings 0, the sinusoidal
// table computed. The generator is our own, so a seed gives the same model
// on every platform.
#include <cmath>

#include "models/weights.h"
#include "roformer/data_rng.h"
#include "roformer/model.h"

namespace roformer {

RoFormerModel RoFormerModel::random_init(const RoFormerConfig& c, Task task, uint64_t seed) {
  c.validate();
  std::map<std::string, Tensor> t;
  DataRng rng(seed);
  auto normal = [&](const Shape& shape) {
    Tensor x = Tensor::zeros(shape);
    float* p = x.data<float>();
    for (int64_t i = 0; i < x.numel(); i += 2) {
      // Box-Muller: two normals from two uniforms.
      const double u1 = 1.0 - rng.uniform(), u2 = rng.uniform();
      const double r = std::sqrt(-2.0 * std::log(u1)) * c.initializer_range;
      p[i] = static_cast<float>(r * std::cos(2.0 * M_PI * u2));
      if (i + 1 < x.numel()) p[i + 1] = static_cast<float>(r * std::sin(2.0 * M_PI * u2));
    }
    return x;
  };
  auto filled = [](const Shape& shape, float v) {
    Tensor x = Tensor::zeros(shape);
    for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = v;
    return x;
  };
  auto linear = [&](const std::string& p, int64_t out, int64_t in) {
    t[p + ".weight"] = normal({out, in});
    t[p + ".bias"] = Tensor::zeros({out});
  };
  auto norm = [&](const std::string& p, int64_t n) {
    t[p + ".weight"] = filled({n}, 1.0f);
    t[p + ".bias"] = Tensor::zeros({n});
  };
  const std::string base = models::base_prefix(task);
  const int64_t V = c.vocab_size, E = c.embedding_dim(), H = c.hidden_size, I = c.intermediate_size;
  Tensor word = normal({V, E});
  for (int64_t k = 0; k < E; ++k) word.data<float>()[c.pad_token_id * E + k] = 0.0f;
  t[base + "embeddings.word_embeddings.weight"] = word;
  t[base + "embeddings.token_type_embeddings.weight"] = normal({c.type_vocab_size, E});
  norm(base + "embeddings.LayerNorm", E);
  if (E != H) linear(base + "embeddings_project", H, E);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = base + "encoder.layer." + std::to_string(l) + ".";
    linear(p + "attention.self.query", H, H);
    linear(p + "attention.self.key", H, H);
    linear(p + "attention.self.value", H, H);
    linear(p + "attention.output.dense", H, H);
    norm(p + "attention.output.LayerNorm", H);
    linear(p + "intermediate.dense", I, H);
    linear(p + "output.dense", H, I);
    norm(p + "output.LayerNorm", H);
  }
  switch (task) {
    case Task::Base: break;
    case Task::MaskedLM:
    case Task::CausalLM:
      linear("cls.predictions.transform.dense", E, H);
      norm("cls.predictions.transform.LayerNorm", E);
      t["cls.predictions.bias"] = Tensor::zeros({V});
      if (!c.tie_word_embeddings) t["cls.predictions.decoder.weight"] = normal({V, E});
      break;
    case Task::SequenceClassification:
      linear("classifier.dense", H, H);
      linear("classifier.out_proj", c.num_labels(), H);
      break;
    case Task::TokenClassification: linear("classifier", c.num_labels(), H); break;
    case Task::QuestionAnswering: linear("qa_outputs", 2, H); break;
    case Task::MultipleChoice: linear("classifier", 1, H); break;
  }
  // Drawn last, so RoPE models keep the same weights for a seed.
  if (c.position_embedding_type == "absolute")
    t[base + "embeddings.position_embeddings.weight"] = normal({c.max_position_embeddings, E});
  return from_tensors(c, task, t);
}

}  // namespace roformer
