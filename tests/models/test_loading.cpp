// Config semantics, weight binding errors, and export round trips.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "roformer/config.h"
#include "roformer/error.h"
#include "roformer/model.h"
#include "roformer/safetensors.h"
#include "support/test_support.h"

namespace roformer {
namespace {

using testing::data_path;
using testing::TempDir;

TEST(Config, HfDefaultsForMissingKeys) {
  const RoFormerConfig c = RoFormerConfig::from_json_text(R"({"model_type": "roformer"})");
  EXPECT_EQ(c.vocab_size, 50000);
  EXPECT_EQ(c.hidden_size, 768);
  EXPECT_EQ(c.embedding_dim(), 768);  // embedding_size defaults to hidden_size
  EXPECT_EQ(c.max_position_embeddings, 1536);
  EXPECT_DOUBLE_EQ(c.layer_norm_eps, 1e-12);
  EXPECT_FALSE(c.rotary_value);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_FALSE(c.is_decoder);
  EXPECT_EQ(c.num_labels(), 2);
  EXPECT_EQ(c.head_dim(), 64);
}

TEST(Config, FixtureValuesAndLabels) {
  const auto c = RoFormerConfig::from_file(data_path("fixtures/roformer-tiny-cls/config.json"));
  EXPECT_EQ(c.embedding_dim(), 64);
  EXPECT_TRUE(c.rotary_value);
  ASSERT_EQ(c.num_labels(), 3);
  EXPECT_EQ(c.id2label.at(2), "positive");
  const auto m = RoFormerConfig::from_file(data_path("fixtures/roformer-tiny-mlm/config.json"));
  EXPECT_EQ(m.embedding_dim(), 48);
  EXPECT_EQ(m.max_position_embeddings, 128);
}

TEST(Config, UnsupportedValuesAreClearErrors) {
  auto error_of = [](const std::string& text) {
    try {
      RoFormerConfig::from_json_text(text);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of(R"({"hidden_act": "swish"})").find("hidden_act"), std::string::npos);
  EXPECT_NE(error_of(R"({"hidden_size": 60, "num_attention_heads": 4})").find("odd"), std::string::npos);
  EXPECT_NE(error_of(R"({"hidden_size": 64, "num_attention_heads": 5})").find("multiple"), std::string::npos);
  EXPECT_NE(error_of(R"({"vocab_size": "big"})").find("vocab_size"), std::string::npos);
  EXPECT_NE(error_of(R"({"model_type": "bert"})").find("model_type"), std::string::npos);
  EXPECT_NE(error_of("[1, 2]").find("object"), std::string::npos);
  EXPECT_NE(error_of("{not json").find("JSON"), std::string::npos);
  EXPECT_NE(error_of(R"({"id2label": {"x": "a"}})").find("id2label"), std::string::npos);
}

// Found by fuzz_config: a deeply nested unknown key overflowed the stack when
// the config was saved back (nlohmann's dump recurses per level).
TEST(Config, DeeplyNestedJsonIsAClearError) {
  const auto nested = [](int depth) {
    return R"({"model_type": "roformer", "extra": )" + std::string(depth, '[') + std::string(depth, ']') + "}";
  };
  try {
    RoFormerConfig::from_json_text(nested(200000));
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nested deeper than"), std::string::npos) << e.what();
  }
  EXPECT_THROW(RoFormerConfig{}.with_overrides(nested(200000)), Error);
  // Modest nesting in keys we do not model still survives a save.
  const RoFormerConfig c = RoFormerConfig::from_json_text(nested(20));
  EXPECT_EQ(RoFormerConfig::from_json_text(c.to_json_text()).to_json_text(), c.to_json_text());
}

// HF's multiple-choice summary reads summary_type from config.json: the
// value in the config is what is written; the default stays implicit, as in HF's files.
TEST(Config, SummaryTypeIsSaved) {
  RoFormerConfig set;  // as a new multiple-choice head sets it
  set.summary_type = "first";
  EXPECT_EQ(RoFormerConfig::from_json_text(set.to_json_text()).summary_type, "first");
  // Changed back after loading: the file's old value does not linger.
  RoFormerConfig loaded = RoFormerConfig::from_json_text(R"({"summary_type": "first"})");
  loaded.summary_type = "last";
  EXPECT_EQ(RoFormerConfig::from_json_text(loaded.to_json_text()).summary_type, "last");
  EXPECT_EQ(RoFormerConfig{}.to_json_text().find("summary_type"), std::string::npos);
}

// Found by fuzz_config: these validated, then failed at the first forward.
TEST(Config, NtkScalingMustGiveAFiniteRopeBase) {
  for (const char* bad : {R"({"hidden_size": 2, "num_attention_heads": 1, "rope_scaling": {"type": "ntk", "factor": 2}})",
                          R"({"rope_theta": 1e300, "rope_scaling": {"type": "ntk", "factor": 1e10}})"}) {
    try {
      RoFormerConfig::from_json_text(bad);
      ADD_FAILURE() << "no error for " << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("infinite RoPE base"), std::string::npos) << e.what();
    }
  }
  // Factor 1 leaves a head size of 2 alone (1^inf = 1).
  const auto c = RoFormerConfig::from_json_text(
      R"({"hidden_size": 2, "num_attention_heads": 1, "rope_scaling": {"type": "ntk", "factor": 1}})");
  EXPECT_EQ(c.rope_spec().base, 10000.0);
}

std::map<std::string, Tensor> fixture_tensors(const std::string& dir) {
  SafeTensors st = SafeTensors::open(data_path("fixtures/" + dir + "/model.safetensors"));
  std::map<std::string, Tensor> m;
  for (const auto& n : st.names()) m.emplace(n, st.get(n).clone());
  return m;
}

std::string bind_error(const RoFormerConfig& c, Task task, const std::map<std::string, Tensor>& t) {
  try {
    RoFormerModel::from_tensors(c, task, t);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(Loading, MissingUnexpectedAndMisshapedTensorsAreNamed) {
  const auto c = RoFormerConfig::from_file(data_path("fixtures/roformer-tiny-mlm/config.json"));
  auto t = fixture_tensors("roformer-tiny-mlm");
  EXPECT_EQ(bind_error(c, Task::MaskedLM, t), "no error");

  auto missing = t;
  missing.erase("roformer.encoder.layer.1.attention.self.key.bias");
  EXPECT_NE(bind_error(c, Task::MaskedLM, missing).find("missing tensor roformer.encoder.layer.1.attention.self.key.bias"),
            std::string::npos);

  auto extra = t;
  extra.emplace("roformer.encoder.layer.7.surprise", Tensor::zeros({2}));
  EXPECT_NE(bind_error(c, Task::MaskedLM, extra).find("unexpected tensor roformer.encoder.layer.7.surprise"),
            std::string::npos);

  auto shaped = t;
  shaped["roformer.embeddings.LayerNorm.weight"] = Tensor::zeros({47});
  EXPECT_NE(bind_error(c, Task::MaskedLM, shaped).find("roformer.embeddings.LayerNorm.weight has shape [47]"),
            std::string::npos);

  // id2label {} means zero labels (HF: num_labels = len(id2label)): no classifier can be built.
  EXPECT_EQ(RoFormerConfig::from_json_text(R"({"hidden_size": 8, "num_attention_heads": 2, "id2label": {}})").num_labels(), 0);
  auto no_labels = c;
  no_labels.id2label.clear();
  EXPECT_NE(bind_error(no_labels, Task::SequenceClassification, t).find("at least one label"), std::string::npos);
  EXPECT_NE(bind_error(no_labels, Task::TokenClassification, t).find("at least one label"), std::string::npos);

  auto table = t;
  table["roformer.encoder.embed_positions.weight"].data<float>()[5] += 0.5f;
  EXPECT_NE(bind_error(c, Task::MaskedLM, table).find("embed_positions"), std::string::npos);

  // A head model read for another head: its own head is simply ignored,
  // a missing one is an error.
  const std::string mlm_dir = data_path("fixtures/roformer-tiny-mlm");
  RoFormerModel base = RoFormerModel::from_pretrained(mlm_dir, LoadOptions{Task::Base, "", ""});
  EXPECT_EQ(base.task(), Task::Base);
  try {
    RoFormerModel::from_pretrained(mlm_dir, LoadOptions{Task::SequenceClassification, "", ""});
    ADD_FAILURE() << "loading an MLM checkpoint as a classifier must fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing tensor classifier.dense.weight"), std::string::npos) << e.what();
  }
}

TEST(Loading, TiedAliasMustAgree) {
  const auto c = RoFormerConfig::from_file(data_path("fixtures/roformer-tiny-mlm/config.json"));
  auto t = fixture_tensors("roformer-tiny-mlm");
  t.emplace("cls.predictions.decoder.weight", t.at("roformer.embeddings.word_embeddings.weight").clone());
  EXPECT_EQ(bind_error(c, Task::MaskedLM, t), "no error");
  t["cls.predictions.decoder.weight"].data<float>()[0] += 1.0f;
  EXPECT_NE(bind_error(c, Task::MaskedLM, t).find("differs from the tensor it is tied to"), std::string::npos);
}

TEST(Export, SavedDirectoryLoadsBackBitIdentical) {
  for (const char* dir : {"roformer-tiny-mlm", "roformer-tiny-cls", "roformer-tiny-causal", "roformer-tiny-mc"}) {
    RoFormerModel model = RoFormerModel::from_pretrained(data_path(std::string("fixtures/") + dir));
    TempDir tmp;
    model.save_pretrained(tmp.path());
    RoFormerModel back = RoFormerModel::from_pretrained(tmp.path());
    EXPECT_EQ(back.task(), model.task());
    EXPECT_EQ(back.config().to_json_text(), model.config().to_json_text());
    const auto a = model.named_tensors(), b = back.named_tensors();
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].first, b[i].first);
      EXPECT_EQ(a[i].second.to_vector(), b[i].second.to_vector()) << a[i].first;
    }
    // The saved file holds exactly HF's key set (the fixture's model.safetensors).
    SafeTensors ours = SafeTensors::open(tmp.file("model.safetensors"));
    SafeTensors hf = SafeTensors::open(data_path(std::string("fixtures/") + dir + "/model.safetensors"));
    auto on = ours.names(), hn = hf.names();
    std::sort(on.begin(), on.end());
    std::sort(hn.begin(), hn.end());
    EXPECT_EQ(on, hn) << dir;
    for (const auto& n : hn) {
      EXPECT_EQ(ours.info(n).shape, hf.info(n).shape) << n;
      EXPECT_EQ(ours.get(n).to_vector(), hf.get(n).to_vector()) << n;
    }
  }
}

TEST(Loading, BadDirectoriesAreClearErrors) {
  EXPECT_THROW(RoFormerModel::from_pretrained("/nonexistent/model"), Error);
  TempDir tmp;
  EXPECT_THROW(RoFormerModel::from_pretrained(tmp.path()), Error);  // no config.json
  std::ofstream(tmp.file("config.json")) << R"({"model_type": "roformer", "vocab_size": 10, "hidden_size": 8,
    "num_attention_heads": 2, "num_hidden_layers": 1, "intermediate_size": 16})";
  EXPECT_THROW(RoFormerModel::from_pretrained(tmp.path()), Error);  // no weights
  std::ofstream(tmp.file("model.safetensors")) << "garbage";
  EXPECT_THROW(RoFormerModel::from_pretrained(tmp.path()), Error);
}

TEST(Forward, BadInputsAreClearErrors) {
  RoFormerModel model = RoFormerModel::from_pretrained(data_path("fixtures/roformer-tiny-cls"));
  const ExecContext ctx{1, best_isa()};
  Tensor ids = Tensor::zeros({1, 4}, DType::I64);
  ids.data<int64_t>()[2] = 5000;  // outside the vocabulary
  EXPECT_THROW(model.forward(Batch{ids, {}, {}}, {}, ctx), Error);
  EXPECT_THROW(model.forward(Batch{Tensor::zeros({1, 0}, DType::I64), {}, {}}, {}, ctx), Error);
  EXPECT_THROW(model.forward(Batch{Tensor::zeros({4}, DType::I64), {}, {}}, {}, ctx), Error);
  EXPECT_THROW(model.forward(Batch{Tensor::zeros({1, 4}), {}, {}}, {}, ctx), Error);  // float ids
  EXPECT_THROW(model.forward(Batch{Tensor::zeros({1, 4}, DType::I64), Tensor::zeros({1, 3}, DType::I64), {}}, {}, ctx),
               Error);
  Tensor types = Tensor::zeros({1, 4}, DType::I64);
  types.data<int64_t>()[0] = 2;
  EXPECT_THROW(model.forward(Batch{Tensor::zeros({1, 4}, DType::I64), {}, types}, {}, ctx), Error);
  KvCache cache;
  EXPECT_THROW(model.forward(Batch{Tensor::zeros({1, 4}, DType::I64), {}, {}}, {}, ctx, &cache), Error);
}

TEST(Forward, LongerThanMaxPositionsWorksWithWarning) {
  RoFormerModel model = RoFormerModel::from_pretrained(data_path("fixtures/roformer-tiny-mlm"));
  Tensor ids = Tensor::zeros({1, 300}, DType::I64);
  for (int64_t i = 0; i < 300; ++i) ids.data<int64_t>()[i] = 5 + i % 900;
  ModelOutput out = model.forward(Batch{ids, {}, {}}, {}, ExecContext{1, best_isa()});
  ASSERT_EQ(out.warnings.size(), 1u);
  EXPECT_NE(out.warnings[0].find("max_position_embeddings"), std::string::npos);
  for (float v : out.heads.at("logits").to_vector()) ASSERT_TRUE(std::isfinite(v));
}

}  // namespace
}  // namespace roformer

namespace roformer {
namespace {

TEST(RandomInit, FollowsHfSchemeAndIsSeeded) {
  RoFormerConfig c = RoFormerConfig::from_json_text(R"({"vocab_size": 300, "hidden_size": 32, "embedding_size": 16,
    "num_attention_heads": 4, "num_hidden_layers": 2, "intermediate_size": 64, "initializer_range": 0.05})");
  RoFormerModel a = RoFormerModel::random_init(c, Task::MaskedLM, 1);
  RoFormerModel b = RoFormerModel::random_init(c, Task::MaskedLM, 1);
  RoFormerModel other = RoFormerModel::random_init(c, Task::MaskedLM, 2);
  const auto ta = a.named_tensors(), tb = b.named_tensors(), to = other.named_tensors();
  bool differs = false;
  for (std::size_t i = 0; i < ta.size(); ++i) {
    const auto va = ta[i].second.to_vector();
    EXPECT_EQ(va, tb[i].second.to_vector()) << ta[i].first;
    differs |= va != to[i].second.to_vector();
    const std::string& n = ta[i].first;
    if (n.ends_with("LayerNorm.weight")) {
      for (float v : va) ASSERT_EQ(v, 1.0f) << n;
    } else if (n.ends_with("bias")) {
      for (float v : va) ASSERT_EQ(v, 0.0f) << n;
    } else if (n.ends_with("word_embeddings.weight")) {
      for (int k = 0; k < 16; ++k) ASSERT_EQ(va[static_cast<std::size_t>(k)], 0.0f) << "padding row";
      double sum = 0, sq = 0;
      for (std::size_t k = 16; k < va.size(); ++k) {
        sum += va[k];
        sq += double(va[k]) * va[k];
      }
      const double n_ = static_cast<double>(va.size() - 16);
      EXPECT_NEAR(sum / n_, 0.0, 0.005);
      EXPECT_NEAR(std::sqrt(sq / n_), 0.05, 0.003);
    }
  }
  EXPECT_TRUE(differs);
  // It runs.
  Tensor ids = Tensor::zeros({1, 5}, DType::I64);
  for (int64_t i = 0; i < 5; ++i) ids.data<int64_t>()[i] = 7 + i;
  const auto out = a.forward(Batch{ids, {}, {}}, {}, ExecContext{1, best_isa()});
  EXPECT_EQ(out.heads.at("logits").shape(), (Shape{1, 5, 300}));
}

}  // namespace
}  // namespace roformer
