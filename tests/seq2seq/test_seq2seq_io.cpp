// Saving and loading the seq2seq model as an HF-style directory: every
// tensor and the config come back bit-identically, tied tensors are stored
// once, and broken directories are clear errors.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "roformer/error.h"
#include "roformer/safetensors.h"
#include "roformer/seq2seq.h"
#include "seq2seq_test_util.h"
#include "support/test_support.h"

namespace roformer {
namespace {

class Seq2SeqSaveLoad : public ::testing::TestWithParam<testing::Variant> {};

TEST_P(Seq2SeqSaveLoad, RoundTripsBitIdentically) {
  const Seq2SeqConfig c = testing::tiny_config(GetParam());
  const Seq2SeqModel model = Seq2SeqModel::random_init(c, 21);
  testing::TempDir tmp;
  model.save_pretrained(tmp.file("m"));
  const Seq2SeqModel back = Seq2SeqModel::from_pretrained(tmp.file("m"));
  EXPECT_EQ(back.config().to_json_text(), c.to_json_text());
  const auto a = model.named_tensors(), b = back.named_tensors();
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    ASSERT_EQ(a[i].second.shape(), b[i].second.shape()) << a[i].first;
    EXPECT_EQ(std::memcmp(a[i].second.raw(), b[i].second.raw(), a[i].second.nbytes()), 0) << a[i].first;
  }
  // Tied tensors are stored once.
  const SafeTensors st = SafeTensors::open(tmp.file("m/model.safetensors"));
  EXPECT_EQ(st.contains("decoder.embed_tokens.weight"), !c.share_all_embeddings);
  EXPECT_EQ(st.contains("decoder.output_projection.weight"), !c.share_decoder_input_output_embed);
  const ExecContext ctx{1, best_isa()};
  const Seq2SeqBatch batch = testing::tiny_batch(c);
  const Tensor la = model.forward(batch, ctx), lb = back.forward(batch, ctx);
  EXPECT_EQ(std::memcmp(la.raw(), lb.raw(), la.nbytes()), 0);
  const auto cfg = nlohmann::json::parse(std::ifstream(tmp.file("m/config.json")));
  EXPECT_EQ(cfg["model_type"], "roformer_seq2seq");
  EXPECT_EQ(cfg["position_encoding"], GetParam().positions);
}

INSTANTIATE_TEST_SUITE_P(Variants, Seq2SeqSaveLoad, ::testing::ValuesIn(testing::all_variants()),
                         [](const auto& param_info) { return param_info.param.name; });

TEST(Seq2SeqSaveLoadErrors, BrokenDirectoriesAreClearErrors) {
  const Seq2SeqConfig c = testing::tiny_config(testing::all_variants()[0]);
  const Seq2SeqModel model = Seq2SeqModel::random_init(c, 1);
  testing::TempDir tmp;
  auto expect_error = [](const std::function<void()>& f, const std::string& needle) {
    try {
      f();
      ADD_FAILURE() << "no error; expected one mentioning " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error([&] { Seq2SeqModel::from_pretrained(tmp.file("nothing")); }, "not a directory");
  model.save_pretrained(tmp.file("m"));
  // Another model type.
  std::ofstream(tmp.file("m/config.json")) << R"({"model_type": "roformer"})";
  expect_error([&] { Seq2SeqModel::from_pretrained(tmp.file("m")); }, "model_type");
  // A config the weights do not fit.
  Seq2SeqConfig wider = c;
  wider.ffn_dim = 16;
  std::ofstream(tmp.file("m/config.json")) << wider.to_json_text();
  expect_error([&] { Seq2SeqModel::from_pretrained(tmp.file("m")); }, "fc1.weight");
  // A bad value.
  std::ofstream(tmp.file("m/config.json")) << R"({"model_type": "roformer_seq2seq", "d_model": "wide"})";
  expect_error([&] { Seq2SeqModel::from_pretrained(tmp.file("m")); }, "d_model");
  // Untying the output asks for a tensor the file lacks.
  Seq2SeqConfig untied = c;
  untied.share_decoder_input_output_embed = false;
  std::ofstream(tmp.file("m/config.json")) << untied.to_json_text();
  expect_error([&] { Seq2SeqModel::from_pretrained(tmp.file("m")); }, "output_projection");
  // An extra tensor.
  auto tensors = model.named_tensors();
  tensors.emplace_back("decoder.extra", Tensor::zeros({2}));
  expect_error([&] { Seq2SeqModel::from_tensors(c, tensors); }, "unexpected tensor decoder.extra");
}

}  // namespace
}  // namespace roformer
