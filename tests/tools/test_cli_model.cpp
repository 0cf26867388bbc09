// Model subcommands end to end on the fixture checkpoints.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "roformer/model.h"
#include "roformer/safetensors.h"
#include "support/test_support.h"

namespace roformer::testing {
namespace {

std::string fixture(const std::string& dir) { return data_path("fixtures/" + dir); }

TEST(CliModel, InfoDescribesTheCheckpoint) {
  const auto r = run_command(cli_path() + " info -m " + fixture("roformer-tiny-cls"));
  ASSERT_EQ(r.status, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["class"], "RoFormerForSequenceClassification");
  EXPECT_EQ(j["layers"], 2);
  EXPECT_EQ(j["labels"]["2"], "positive");
  EXPECT_GT(j["parameters"].get<int64_t>(), 100000);
}

TEST(CliModel, ForwardWritesHfEqualOutputs) {
  TempDir tmp;
  const std::string dir = fixture("roformer-tiny-qa");
  const auto r = run_command(cli_path() + " forward -m " + dir + " -i " + dir + "/expected.safetensors -o " +
                             tmp.file("out.safetensors") + " --hidden-states --threads 2 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  SafeTensors out = SafeTensors::open(tmp.file("out.safetensors"));
  SafeTensors ref = SafeTensors::open(dir + "/expected.safetensors");
  for (const char* key : {"start_logits", "end_logits", "hidden_states.2", "last_hidden_state"}) {
    ASSERT_TRUE(out.contains(key)) << key;
    const auto a = out.get(key).to_vector(), b = ref.get(key).to_vector();
    EXPECT_LE(max_abs_diff(a, b), 1e-5 * std::max(1.0, max_abs(b))) << key;
  }
}

TEST(CliModel, ExportLoadsBackBitIdenticalWithTokenizerFiles) {
  TempDir tmp;
  const std::string out = tmp.file("exported");
  const auto r = run_command(cli_path() + " export -m " + fixture("roformer-tiny-tok") + " -o " + out + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* f : {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"})
    EXPECT_TRUE(std::filesystem::exists(out + "/" + f)) << f;
  RoFormerModel a = RoFormerModel::from_pretrained(fixture("roformer-tiny-tok"));
  RoFormerModel b = RoFormerModel::from_pretrained(out);
  const auto ta = a.named_tensors(), tb = b.named_tensors();
  ASSERT_EQ(ta.size(), tb.size());
  for (std::size_t i = 0; i < ta.size(); ++i) EXPECT_EQ(ta[i].second.to_vector(), tb[i].second.to_vector());
}

TEST(CliModel, ErrorsAreOneLineAndNonZero) {
  const auto missing = run_command(cli_path() + " info -m /nonexistent 2>&1");
  EXPECT_NE(missing.status, 0);
  EXPECT_NE(missing.output.find("roformer: error:"), std::string::npos) << missing.output;
  TempDir tmp;
  const auto no_input = run_command(cli_path() + " forward -m " + fixture("roformer-tiny-qa") + " -i " +
                                    tmp.file("none.safetensors") + " -o " + tmp.file("o.safetensors") + " 2>&1");
  EXPECT_NE(no_input.status, 0);
  EXPECT_NE(no_input.output.find("roformer: error:"), std::string::npos) << no_input.output;
}

}  // namespace
}  // namespace roformer::testing
