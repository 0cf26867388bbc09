// Position and RoPE variants selectable in the config (roformer.cpp's own
// keys): learned absolute and sinusoidal absolute positions checked against
// an independent evaluation of the embedding layer, no positions at all
// (the model becomes permutation-equivariant), RoPE base and scaling,
// finite-difference gradients, and HF-directory round trips.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "roformer/error.h"
#include "roformer/model.h"
#include "roformer/training.h"
#include "support/model_fixtures.h"
#include "support/test_support.h"

namespace roformer {
namespace {

using testing::max_abs;
using testing::max_abs_diff;
using testing::TempDir;

RoFormerConfig small_config(const std::string& positions) {
  RoFormerConfig c = testing::tiny_mlm_config();
  c.max_position_embeddings = 40;
  c.initializer_range = 0.2;  // large enough that positions visibly matter
  c.hidden_dropout_prob = c.attention_probs_dropout_prob = 0;
  c.position_embedding_type = positions;
  return c;
}

Tensor ids_tensor(const std::vector<int64_t>& v, int64_t B, int64_t T) {
  Tensor t = Tensor::zeros({B, T}, DType::I64);
  std::copy(v.begin(), v.end(), t.data<int64_t>());
  return t;
}

std::vector<int64_t> random_ids(int64_t n, uint32_t seed, int64_t vocab) {
  std::mt19937 rng(seed);
  std::vector<int64_t> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = 1 + static_cast<int64_t>(rng() % static_cast<uint32_t>(vocab - 1));
  return v;
}

std::map<std::string, Tensor> tensors_of(const RoFormerModel& m) {
  std::map<std::string, Tensor> t;
  for (const auto& [n, x] : m.named_tensors()) t[n] = x;
  return t;
}

// LayerNorm(word[id] + type[0] + pos(p)) computed here from the weights: the
// input of the first layer (E == H, so no projection).
std::vector<float> expected_embeddings(const RoFormerModel& m, const std::vector<int64_t>& ids,
                                       const std::function<double(int64_t, int64_t)>& pos) {
  const auto t = tensors_of(m);
  const int64_t E = m.config().embedding_dim();
  const float* word = t.at("roformer.embeddings.word_embeddings.weight").data<float>();
  const float* type = t.at("roformer.embeddings.token_type_embeddings.weight").data<float>();
  const float* g = t.at("roformer.embeddings.LayerNorm.weight").data<float>();
  const float* b = t.at("roformer.embeddings.LayerNorm.bias").data<float>();
  std::vector<float> out;
  for (std::size_t r = 0; r < ids.size(); ++r) {
    std::vector<double> x(static_cast<std::size_t>(E));
    double mean = 0;
    for (int64_t k = 0; k < E; ++k) {
      x[k] = double{word[ids[r] * E + k]} + type[k] + pos(static_cast<int64_t>(r), k);
      mean += x[k] / static_cast<double>(E);
    }
    double var = 0;
    for (double v : x) var += (v - mean) * (v - mean) / static_cast<double>(E);
    for (int64_t k = 0; k < E; ++k)
      out.push_back(static_cast<float>((x[k] - mean) / std::sqrt(var + m.config().layer_norm_eps) * g[k] + b[k]));
  }
  return out;
}

TEST(ModelVariants, ConfigKeysRoundTripAndStayOutOfHfConfigs) {
  RoFormerConfig c = small_config("absolute");
  c.rope_theta = 5000;
  c.rope_scaling_type = "ntk";
  c.rope_scaling_factor = 4;
  const RoFormerConfig back = RoFormerConfig::from_json_text(c.to_json_text());
  EXPECT_EQ(back.position_embedding_type, "absolute");
  EXPECT_EQ(back.rope_theta, 5000);
  EXPECT_EQ(back.rope_scaling_type, "ntk");
  EXPECT_EQ(back.rope_scaling_factor, 4);
  const std::string hf = RoFormerConfig::from_file(testing::data_path("fixtures/roformer-tiny-mlm/config.json")).to_json_text();
  for (const char* key : {"position_embedding_type", "rope_theta", "rope_scaling", "attention_type", "linear_feature_map"})
    EXPECT_EQ(hf.find(key), std::string::npos) << key << " must not appear in a plain RoFormer config";
  for (const char* bad : {R"({"position_embedding_type": "relative"})", R"({"rope_scaling": {"type": "yarn", "factor": 2}})",
                          R"({"rope_scaling": {"type": "linear", "factor": 0.5}})", R"({"rope_theta": 1})",
                          R"({"rotary_value": true, "position_embedding_type": "none"})"})
    EXPECT_THROW(RoFormerConfig::from_json_text(bad), Error) << bad;
}

TEST(ModelVariants, RopeScalingSpecs) {
  RoFormerConfig c = small_config("rope");  // head size 8
  EXPECT_EQ(c.rope_spec().base, 10000.0);
  EXPECT_EQ(c.rope_spec().position_scale, 1.0);
  c.rope_scaling_type = "linear";
  c.rope_scaling_factor = 4;
  EXPECT_EQ(c.rope_spec().position_scale, 0.25);
  c.rope_scaling_type = "ntk";
  EXPECT_NEAR(c.rope_spec().base, 10000.0 * std::pow(4.0, 8.0 / 6.0), 1e-6);
  EXPECT_EQ(c.rope_spec().position_scale, 1.0);
  // Position interpolation by 2: position 2m gets exactly the angles of m.
  RopeSpec plain{8}, half{8};
  half.position_scale = 0.5;
  std::vector<float> c1(4), s1(4), c2(4), s2(4);
  for (int64_t m : {0, 1, 7, 1000, 123456}) {
    rope_angles(plain, m, c1.data(), s1.data());
    rope_angles(half, 2 * m, c2.data(), s2.data());
    EXPECT_EQ(c1, c2);
    EXPECT_EQ(s1, s2);
  }
}

TEST(ModelVariants, AbsoluteAndSinusoidalEmbeddingsEqualAnIndependentEvaluation) {
  const int64_t T = 9;
  const auto ids = random_ids(T, 3, 97);
  ForwardOptions keep;
  keep.hidden_states = true;
  const ExecContext ctx{1, best_isa()};
  {
    const RoFormerModel m = RoFormerModel::random_init(small_config("absolute"), Task::MaskedLM, 1);
    const auto t = tensors_of(m);
    const float* table = t.at("roformer.embeddings.position_embeddings.weight").data<float>();
    const auto got = m.forward(Batch{ids_tensor(ids, 1, T), {}, {}}, keep, ctx).hidden_states[0].to_vector();
    const auto want = expected_embeddings(m, ids, [&](int64_t p, int64_t k) { return double{table[p * 32 + k]}; });
    EXPECT_LE(max_abs_diff(got, want), 1e-5);
  }
  {
    const RoFormerModel m = RoFormerModel::random_init(small_config("sinusoidal"), Task::MaskedLM, 1);
    const auto got = m.forward(Batch{ids_tensor(ids, 1, T), {}, {}}, keep, ctx).hidden_states[0].to_vector();
    const auto want = expected_embeddings(m, ids, [](int64_t p, int64_t k) {
      const double angle = static_cast<double>(p) * std::exp(-std::log(10000.0) * static_cast<double>(k / 2 * 2) / 32.0);
      return k % 2 == 0 ? std::sin(angle) : std::cos(angle);
    });
    EXPECT_LE(max_abs_diff(got, want), 1e-5);
  }
}

TEST(ModelVariants, WithoutPositionsTheEncoderIsPermutationEquivariant) {
  const int64_t T = 10;
  const auto ids = random_ids(T, 4, 97);
  std::vector<int64_t> perm(T);
  std::iota(perm.begin(), perm.end(), 0);
  std::reverse(perm.begin(), perm.end());
  std::swap(perm[0], perm[3]);
  std::vector<int64_t> shuffled(T);
  for (int64_t i = 0; i < T; ++i) shuffled[i] = ids[perm[i]];
  const ExecContext ctx{1, best_isa()};
  auto permutation_gap = [&](const std::string& positions) {
    const RoFormerModel m = RoFormerModel::random_init(small_config(positions), Task::MaskedLM, 2);
    const auto a = m.forward(Batch{ids_tensor(ids, 1, T), {}, {}}, {}, ctx).last_hidden_state.to_vector();
    const auto b = m.forward(Batch{ids_tensor(shuffled, 1, T), {}, {}}, {}, ctx).last_hidden_state.to_vector();
    double gap = 0;
    for (int64_t i = 0; i < T; ++i)
      for (int64_t k = 0; k < 32; ++k) gap = std::max(gap, double{std::fabs(b[i * 32 + k] - a[perm[i] * 32 + k])});
    return gap;
  };
  EXPECT_LE(permutation_gap("none"), 1e-5);
  for (const char* kind : {"rope", "absolute", "sinusoidal"}) EXPECT_GT(permutation_gap(kind), 1e-2) << kind;
}

TEST(ModelVariants, LearnedTableCannotGoPastItsLength) {
  const RoFormerModel m = RoFormerModel::random_init(small_config("absolute"), Task::MaskedLM, 1);
  const auto ids = random_ids(41, 5, 97);
  try {
    m.forward(Batch{ids_tensor(ids, 1, 41), {}, {}}, {}, {1, best_isa()});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("max_position_embeddings 40"), std::string::npos) << e.what();
  }
  // RoPE and sinusoidal positions have no such limit.
  for (const char* kind : {"rope", "sinusoidal"}) {
    const RoFormerModel ok = RoFormerModel::random_init(small_config(kind), Task::MaskedLM, 1);
    EXPECT_NO_THROW(ok.forward(Batch{ids_tensor(ids, 1, 41), {}, {}}, {}, {1, best_isa()})) << kind;
  }
}

TEST(ModelVariants, GradientsMatchFiniteDifferences) {
  const int64_t B = 2, T = 8;
  const auto ids = random_ids(B * T, 6, 97);
  std::vector<int64_t> mask(B * T, 1), labels(B * T, -100);
  mask[B * T - 1] = mask[B * T - 2] = 0;
  for (int64_t i : {1, 4, 6, 9, 12}) labels[i] = ids[(i * 7) % (B * T)];
  const Batch batch{ids_tensor(ids, B, T), ids_tensor(mask, B, T), {}};
  const TrainLabels lab{ids_tensor(labels, B, T), {}, {}};
  const ExecContext ctx{1, best_isa()};
  for (const char* kind : {"absolute", "sinusoidal", "none"}) {
    TrainableRoFormer trainer(RoFormerModel::random_init(small_config(kind), Task::MaskedLM, 9));
    trainer.forward_backward(batch, lab, ctx);
    std::mt19937 rng(11);
    int checked = 0;
    for (auto& p : trainer.parameters()) {
      const auto grad = p.grad.to_vector();
      const double gmax = max_abs(grad);
      if (gmax == 0) continue;
      const bool table = p.name.find("position_embeddings") != std::string::npos;
      std::vector<std::size_t> entries{static_cast<std::size_t>(
          std::max_element(grad.begin(), grad.end(), [](float a, float b) { return std::fabs(a) < std::fabs(b); }) -
          grad.begin())};
      entries.push_back(rng() % grad.size());
      for (std::size_t i : entries) {
        float* v = p.value.data<float>() + i;
        const float orig = *v, h = 1e-2f * std::max(1.0f, std::fabs(orig));
        *v = orig + h;
        const double up = trainer.evaluate(batch, lab, ctx).loss;
        *v = orig - h;
        const double down = trainer.evaluate(batch, lab, ctx).loss;
        *v = orig;
        EXPECT_NEAR(grad[i], (up - down) / (2.0 * h), 2e-2 * gmax + 1e-4) << kind << " " << p.name << "[" << i << "]";
        ++checked;
      }
      if (table) {
        // Rows of positions past the batch's length get no gradient.
        for (std::size_t i = static_cast<std::size_t>(T * 32); i < grad.size(); ++i) ASSERT_EQ(grad[i], 0.0f) << i;
      }
    }
    EXPECT_GT(checked, 30) << kind;
  }
}

// The paper's RoPE linear attention (eq. 19) inside the model: gradients
// through the whole network, causality of the decoder form, round trips and
// the clear errors where it has nothing to give (probabilities, KV cache).
TEST(LinearAttentionModels, GradientsMatchFiniteDifferences) {
  const int64_t B = 2, T = 7;
  const auto ids = random_ids(B * T, 12, 97);
  std::vector<int64_t> mask(B * T, 1), labels(B * T, -100);
  mask[B * T - 1] = 0;
  for (int64_t i : {0, 3, 5, 8, 11}) labels[i] = ids[(i * 5) % (B * T)];
  const Batch batch{ids_tensor(ids, B, T), ids_tensor(mask, B, T), {}};
  const TrainLabels lab{ids_tensor(labels, B, T), {}, {}};
  const ExecContext ctx{1, best_isa()};
  for (const char* map : {"elu", "favor"}) {
    for (bool decoder : {false, true}) {
      RoFormerConfig c = small_config("rope");
      c.attention_type = "linear";
      c.linear_feature_map = map;
      c.is_decoder = decoder;
      TrainableRoFormer trainer(RoFormerModel::random_init(c, decoder ? Task::CausalLM : Task::MaskedLM, 4));
      trainer.forward_backward(batch, lab, ctx);
      std::mt19937 rng(13);
      int checked = 0;
      for (auto& p : trainer.parameters()) {
        const auto grad = p.grad.to_vector();
        const double gmax = max_abs(grad);
        if (gmax == 0) continue;
        const std::size_t top = static_cast<std::size_t>(
            std::max_element(grad.begin(), grad.end(), [](float a, float b) { return std::fabs(a) < std::fabs(b); }) -
            grad.begin());
        for (std::size_t i : {top, static_cast<std::size_t>(rng() % grad.size())}) {
          float* v = p.value.data<float>() + i;
          const float orig = *v, h = 1e-2f * std::max(1.0f, std::fabs(orig));
          *v = orig + h;
          const double up = trainer.evaluate(batch, lab, ctx).loss;
          *v = orig - h;
          const double down = trainer.evaluate(batch, lab, ctx).loss;
          *v = orig;
          EXPECT_NEAR(grad[i], (up - down) / (2.0 * h), 2e-2 * gmax + 1e-4)
              << map << (decoder ? " causal " : " ") << p.name << "[" << i << "]";
          ++checked;
        }
      }
      EXPECT_GT(checked, 30);
    }
  }
}

TEST(LinearAttentionModels, CausalFormIgnoresTheFutureAndRoundTrips) {
  RoFormerConfig c = small_config("rope");
  c.attention_type = "linear";
  c.is_decoder = true;
  c.architectures = {"RoFormerForCausalLM"};
  const RoFormerModel m = RoFormerModel::random_init(c, Task::CausalLM, 5);
  const int64_t T = 12, V = 97;
  auto ids = random_ids(T, 14, V);
  const ExecContext ctx{1, best_isa()};
  const auto a = m.forward(Batch{ids_tensor(ids, 1, T), {}, {}}, {}, ctx).heads.at("logits").to_vector();
  for (int64_t t = 8; t < T; ++t) ids[t] = (ids[t] + 3) % V;
  const auto b = m.forward(Batch{ids_tensor(ids, 1, T), {}, {}}, {}, ctx).heads.at("logits").to_vector();
  EXPECT_EQ(std::vector<float>(a.begin(), a.begin() + 8 * V), std::vector<float>(b.begin(), b.begin() + 8 * V));
  EXPECT_NE(std::vector<float>(a.begin() + 8 * V, a.end()), std::vector<float>(b.begin() + 8 * V, b.end()));
  TempDir tmp;
  m.save_pretrained(tmp.file("m"));
  LoadOptions plain;  // the fp32 products of the original, for bit equality
  plain.packed_matmuls = false;
  const RoFormerModel back = RoFormerModel::from_pretrained(tmp.file("m"), plain);
  EXPECT_EQ(back.config().attention_type, "linear");
  EXPECT_EQ(back.forward(Batch{ids_tensor(ids, 1, T), {}, {}}, {}, ctx).heads.at("logits").to_vector(), b);
  ForwardOptions with_probs;
  with_probs.attentions = true;
  EXPECT_THROW(m.forward(Batch{ids_tensor(ids, 1, T), {}, {}}, with_probs, ctx), Error);
  KvCache cache;
  EXPECT_THROW(m.forward(Batch{ids_tensor(ids, 1, T), {}, {}}, {}, ctx, &cache), Error);
}

TEST(ModelVariants, SaveAndLoadKeepTheVariant) {
  TempDir tmp;
  RoFormerConfig c = small_config("absolute");
  c.rope_theta = 500;
  const RoFormerModel m = RoFormerModel::random_init(c, Task::MaskedLM, 3);
  m.save_pretrained(tmp.file("m"));
  LoadOptions plain;  // the fp32 products of the original, for bit equality
  plain.packed_matmuls = false;
  const RoFormerModel back = RoFormerModel::from_pretrained(tmp.file("m"), plain);
  EXPECT_EQ(back.config().position_embedding_type, "absolute");
  const auto ids = random_ids(12, 8, 97);
  const ExecContext ctx{1, best_isa()};
  EXPECT_EQ(m.forward(Batch{ids_tensor(ids, 1, 12), {}, {}}, {}, ctx).heads.at("logits").to_vector(),
            back.forward(Batch{ids_tensor(ids, 1, 12), {}, {}}, {}, ctx).heads.at("logits").to_vector());
  // A different RoPE base changes a RoPE model's outputs.
  RoFormerConfig r1 = small_config("rope"), r2 = small_config("rope");
  r2.rope_theta = 100;
  const auto a = RoFormerModel::random_init(r1, Task::MaskedLM, 3).forward(Batch{ids_tensor(ids, 1, 12), {}, {}}, {}, ctx);
  const auto b = RoFormerModel::random_init(r2, Task::MaskedLM, 3).forward(Batch{ids_tensor(ids, 1, 12), {}, {}}, {}, ctx);
  EXPECT_GT(max_abs_diff(a.heads.at("logits").to_vector(), b.heads.at("logits").to_vector()), 1e-3);
}

}  // namespace
}  // namespace roformer
