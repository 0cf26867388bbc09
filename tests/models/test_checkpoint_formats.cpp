// The same model from a sharded checkpoint and from bf16 weights.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "roformer/error.h"
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
using testing::TempDir;

TEST(CheckpointFormats, ShardedSafetensorsGiveTheSameLogits) {
  const std::string dir = data_path("fixtures/roformer-tiny-mlm");
  SafeTensors whole = SafeTensors::open(dir + "/model.safetensors");
  TempDir tmp;
  std::filesystem::copy_file(dir + "/config.json", tmp.file("config.json"));
  std::vector<std::pair<std::string, Tensor>> a, b;
  nlohmann::json map = nlohmann::json::object();
  const auto names = whole.names();
  for (std::size_t i = 0; i < names.size(); ++i) {
    const bool first = i < names.size() / 2;
    (first ? a : b).emplace_back(names[i], whole.get(names[i]));
    map[names[i]] = first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  save_safetensors(tmp.file("model-00001-of-00002.safetensors"), a);
  save_safetensors(tmp.file("model-00002-of-00002.safetensors"), b);
  std::ofstream(tmp.file("model.safetensors.index.json")) << nlohmann::json{{"metadata", {{"total_size", 0}}}, {"weight_map", map}}.dump();

  SafeTensors expected = SafeTensors::open(dir + "/expected.safetensors");
  RoFormerModel sharded = RoFormerModel::from_pretrained(tmp.path());
  const auto got = sharded.forward(fixture_batch(expected), {}, ExecContext{1, best_isa()}).heads.at("logits").to_vector();
  const auto ref = expected.get("logits").to_vector();
  EXPECT_LE(max_abs_diff(got, ref), 1e-5 * std::max(1.0, max_abs(ref)));

  std::filesystem::remove(tmp.file("model-00002-of-00002.safetensors"));
  EXPECT_THROW(RoFormerModel::from_pretrained(tmp.path()), Error);
}

TEST(CheckpointFormats, Bf16WeightsRunInFp32) {
  const std::string dir = data_path("fixtures/roformer-tiny-cls");
  SafeTensors whole = SafeTensors::open(dir + "/model.safetensors");
  TempDir tmp;
  std::filesystem::copy_file(dir + "/config.json", tmp.file("config.json"));
  std::vector<std::pair<std::string, Tensor>> tensors;
  // The sinusoidal table is dropped: a bf16 copy of it would no longer be the
  // standard table, and HF computes it when absent.
  for (const auto& n : whole.names())
    if (n.find("embed_positions") == std::string::npos) tensors.emplace_back(n, whole.get(n).to(DType::BF16));
  save_safetensors(tmp.file("model.safetensors"), tensors);

  SafeTensors expected = SafeTensors::open(dir + "/expected.safetensors");
  RoFormerModel bf16 = RoFormerModel::from_pretrained(tmp.path());
  const auto got = bf16.forward(fixture_batch(expected), {}, ExecContext{1, best_isa()}).heads.at("logits").to_vector();
  const auto ref = expected.get("logits").to_vector();
  // bf16 keeps 8 bits of mantissa: logits move by a few 1e-2, not more.
  const double diff = max_abs_diff(got, ref);
  EXPECT_GT(diff, 0.0);
  EXPECT_LE(diff, 0.1 * std::max(1.0, max_abs(ref)));
}

}  // namespace
}  // namespace roformer
