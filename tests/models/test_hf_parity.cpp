// Parity with HuggingFace transformers: every fixture checkpoint, every
// hidden state, the first layer's attention probabilities, the head outputs
// and the cached decode steps, within the fixtures' stated tolerance
// max|ours - ref| <= 1e-5 * max(1, max|ref|) per tensor (1e-5 absolute for
// probabilities).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "roformer/model.h"
#include "roformer/safetensors.h"
#include "support/model_fixtures.h"
#include "support/test_support.h"

namespace roformer {
namespace {

using testing::fixture_batch;
using testing::data_path;
using testing::max_abs;
using testing::max_abs_diff;

void expect_close(const Tensor& ours, const Tensor& ref, const std::string& what, bool probabilities = false) {
  ASSERT_EQ(ours.shape(), ref.shape()) << what;
  const auto a = ours.to_vector(), b = ref.to_vector();
  const double tol = probabilities ? 1e-5 : 1e-5 * std::max(1.0, max_abs(b));
  const double diff = max_abs_diff(a, b);
  EXPECT_LE(diff, tol) << what << ": max|diff| " << diff << " over tolerance " << tol;
}

using Case = testing::TaskFixture;

class HfParity : public ::testing::TestWithParam<Case> {};

TEST_P(HfParity, EveryOutputMatches) {
  const Case& c = GetParam();
  const std::string dir = data_path("fixtures/" + c.dir);
  SafeTensors expected = SafeTensors::open(dir + "/expected.safetensors");
  Batch batch = fixture_batch(expected);
  // Both checkpoint formats, and 1 and 2 threads.
  for (const char* file : {"model.safetensors", "pytorch_model.bin"})
  for (int threads : {1, 2}) {
    SCOPED_TRACE(std::string(file) + ", threads " + std::to_string(threads));
    RoFormerModel model = RoFormerModel::from_pretrained(dir, LoadOptions{std::nullopt, dir + "/" + file, ""});
    ASSERT_EQ(model.task(), c.task);
    ModelOutput out = model.forward(batch, ForwardOptions{true, true}, ExecContext{threads, best_isa()});
    const int64_t L = model.config().num_hidden_layers;
    ASSERT_EQ(static_cast<int64_t>(out.hidden_states.size()), L + 1);
    for (int64_t l = 0; l <= L; ++l) {
      expect_close(out.hidden_states[l], expected.get("hidden_states." + std::to_string(l)),
                   c.dir + " hidden_states." + std::to_string(l));
    }
    expect_close(out.last_hidden_state, expected.get("last_hidden_state"), c.dir + " last_hidden_state");
    expect_close(out.attentions.at(0), expected.get("attentions.0"), c.dir + " attentions.0", true);
    for (const char* head : {"logits", "start_logits", "end_logits"}) {
      if (!expected.contains(head)) continue;
      ASSERT_TRUE(out.heads.count(head)) << c.dir << " lacks " << head;
      expect_close(out.heads.at(head), expected.get(head), c.dir + " " + head);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, HfParity,
                         ::testing::Values(Case{"roformer-tiny-mlm", Task::MaskedLM},
                                           Case{"roformer-tiny-cls", Task::SequenceClassification},
                                           Case{"roformer-tiny-tok", Task::TokenClassification},
                                           Case{"roformer-tiny-causal", Task::CausalLM},
                                           Case{"roformer-tiny-qa", Task::QuestionAnswering},
                                           Case{"roformer-tiny-mc", Task::MultipleChoice}),
                         [](const auto& param_info) {
                           std::string n = param_info.param.dir.substr(std::string("roformer-tiny-").size());
                           return n;
                         });

// Slices columns [from, to) of an I64 (B, T) tensor.
Tensor columns(const Tensor& t, int64_t from, int64_t to) {
  const int64_t B = t.size(0), T = t.size(1);
  Tensor out = Tensor::zeros({B, to - from}, DType::I64);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = from; j < to; ++j) out.data<int64_t>()[b * (to - from) + j - from] = t.data<int64_t>()[b * T + j];
  return out;
}

TEST(HfParityDecode, CachedStepsMatchHf) {
  const std::string dir = data_path("fixtures/roformer-tiny-causal");
  RoFormerModel model = RoFormerModel::from_pretrained(dir);
  SafeTensors expected = SafeTensors::open(dir + "/expected.safetensors");
  const Tensor ids = expected.get("decode.input_ids");
  const int64_t heads = model.config().num_attention_heads;
  const ExecContext ctx{1, best_isa()};

  KvCache cache;
  ModelOutput prefix = model.forward(Batch{columns(ids, 0, 10), {}, {}}, {}, ctx, &cache);
  expect_close(prefix.heads.at("logits"), expected.get("decode.prefix_logits"), "decode.prefix_logits");
  ASSERT_EQ(cache.length(), 10);
  for (int64_t l = 0; l < model.config().num_hidden_layers; ++l) {
    const std::string p = "decode.prefix_past." + std::to_string(l);
    expect_close(cache.keys(l, heads), expected.get(p + ".key"), p + ".key (rotated)");
    expect_close(cache.values(l, heads), expected.get(p + ".value"), p + ".value");
  }
  for (int s = 0; s < 5; ++s) {
    ModelOutput step = model.forward(Batch{columns(ids, 10 + s, 11 + s), {}, {}}, {}, ctx, &cache);
    expect_close(step.heads.at("logits"), expected.get("decode.step." + std::to_string(s) + ".logits"),
                 "decode.step." + std::to_string(s));
  }
  EXPECT_EQ(cache.length(), 15);

  // Incremental decoding equals the full forward over the same tokens.
  ModelOutput full = model.forward(Batch{ids, {}, {}}, {}, ctx);
  const Tensor& fl = full.heads.at("logits");
  const int64_t V = model.config().vocab_size;
  KvCache again;
  model.forward(Batch{columns(ids, 0, 14), {}, {}}, {}, ctx, &again);
  ModelOutput last = model.forward(Batch{columns(ids, 14, 15), {}, {}}, {}, ctx, &again);
  std::vector<float> ref(static_cast<std::size_t>(2 * V));
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t v = 0; v < V; ++v) ref[b * V + v] = fl.data<float>()[(b * 15 + 14) * V + v];
  EXPECT_LE(max_abs_diff(last.heads.at("logits").to_vector(), ref), 1e-5 * std::max(1.0, max_abs(ref)));
}

// A padded row's real positions equal the same row run alone, unpadded.
TEST(HfParityPadding, PaddedRowEqualsRowAlone) {
  const std::string dir = data_path("fixtures/roformer-tiny-cls");
  RoFormerModel model = RoFormerModel::from_pretrained(dir);
  SafeTensors expected = SafeTensors::open(dir + "/expected.safetensors");
  const Tensor ids = expected.get("input_ids"), mask = expected.get("attention_mask"),
               types = expected.get("token_type_ids");
  const ExecContext ctx{1, best_isa()};
  ModelOutput batch_out = model.forward(Batch{ids, mask, types}, {}, ctx);
  const int64_t T = ids.size(1), H = model.config().hidden_size;
  for (int64_t b = 0; b < ids.size(0); ++b) {
    int64_t len = 0;
    while (len < T && mask.data<int64_t>()[b * T + len] == 1) ++len;
    Tensor row_ids = Tensor::zeros({1, len}, DType::I64), row_types = Tensor::zeros({1, len}, DType::I64);
    for (int64_t t = 0; t < len; ++t) {
      row_ids.data<int64_t>()[t] = ids.data<int64_t>()[b * T + t];
      row_types.data<int64_t>()[t] = types.data<int64_t>()[b * T + t];
    }
    ModelOutput alone = model.forward(Batch{row_ids, {}, row_types}, {}, ctx);
    std::vector<float> from_batch(batch_out.last_hidden_state.data<float>() + b * T * H,
                                  batch_out.last_hidden_state.data<float>() + (b * T + len) * H);
    EXPECT_LE(max_abs_diff(alone.last_hidden_state.to_vector(), from_batch), 1e-5) << "row " << b;
    std::vector<float> logits_b(batch_out.heads.at("logits").data<float>() + b * 3,
                                batch_out.heads.at("logits").data<float>() + b * 3 + 3);
    EXPECT_LE(max_abs_diff(alone.heads.at("logits").to_vector(), logits_b), 1e-5) << "row " << b;
  }
}

}  // namespace
}  // namespace roformer
