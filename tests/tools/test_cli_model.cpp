// Model subcommands end to end on the fixture checkpoints.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "roformer/model.h"
#include "roformer/safetensors.h"
#include "support/test_support.h"

namespace roformer::testing {
namespace {


TEST(CliModel, InfoDescribesTheCheckpoint) {
  const auto r = run_command(cli_path() + " info -m " + fixture_dir("roformer-tiny-cls"));
  ASSERT_EQ(r.status, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["class"], "RoFormerForSequenceClassification");
  EXPECT_EQ(j["layers"], 2);
  EXPECT_EQ(j["labels"]["2"], "positive");
  EXPECT_GT(j["parameters"].get<int64_t>(), 100000);
}

TEST(CliModel, ForwardWritesHfEqualOutputs) {
  TempDir tmp;
  const std::string dir = fixture_dir("roformer-tiny-qa");
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

// --dtype picks the products' precision: int8 and bf16 stay close to HF's
// fp32 outputs without equalling them; anything else, or a backward pass in
// reduced precision, is a one-line error.
TEST(CliModel, ForwardDtypes) {
  TempDir tmp;
  const std::string dir = fixture_dir("roformer-tiny-cls");
  SafeTensors ref = SafeTensors::open(dir + "/expected.safetensors");
  const auto want = ref.get("logits").to_vector();
  // bf16 through each kernel by name; panels only where the CPU has AVX512-BF16.
  std::vector<std::string> dtypes{"bf16", "int8", "bf16 --bf16-kernel onednn"};
  if (cpu_has_avx512_bf16()) dtypes.push_back("bf16 --bf16-kernel panels");
  for (std::size_t k = 0; k < dtypes.size(); ++k) {
    const std::string& dtype = dtypes[k];
    const std::string file = tmp.file(std::to_string(k) + ".safetensors");
    const auto r = run_command(cli_path() + " forward -m " + dir + " -i " + dir + "/expected.safetensors -o " +
                               file + " --dtype " + dtype + " 2>&1");
    ASSERT_EQ(r.status, 0) << r.output;
    const auto got = SafeTensors::open(file).get("logits").to_vector();
    const double scaled = max_abs_diff(got, want) / std::max(1.0, max_abs(want));
    EXPECT_LE(scaled, 1e-1) << dtype;
    EXPECT_GT(scaled, 1e-6) << dtype << ": the reduced precision should show";
  }
  const auto bad = run_command(cli_path() + " forward -m " + dir + " -i " + dir + "/expected.safetensors -o " +
                               tmp.file("x.safetensors") + " --dtype int4 2>&1");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.output.find("--dtype must be f32, bf16 or int8"), std::string::npos) << bad.output;
  const auto kernel = run_command(cli_path() + " forward -m " + dir + " -i " + dir + "/expected.safetensors -o " +
                                  tmp.file("x.safetensors") + " --bf16-kernel panels 2>&1");
  EXPECT_NE(kernel.status, 0);
  EXPECT_NE(kernel.output.find("--bf16-kernel goes with --dtype bf16"), std::string::npos) << kernel.output;
  const auto backward = run_command(cli_path() + " forward --backward -m " + dir + " -i " + dir +
                                    "/expected.safetensors -o " + tmp.file("y.safetensors") + " --dtype int8 2>&1");
  EXPECT_NE(backward.status, 0);
  EXPECT_NE(backward.output.find("--backward needs --dtype f32"), std::string::npos) << backward.output;
}

// The fixtures' training goldens through the CLI: the input file holds the
// batch and train.labels; every grad.<name> must match PyTorch's.
TEST(CliModel, ForwardBackwardWritesTorchEqualGradients) {
  for (const std::string kind : {"roformer-tiny-mlm", "roformer-tiny-cls"}) {
    TempDir tmp;
    const std::string dir = fixture_dir(kind);
    SafeTensors expected = SafeTensors::open(dir + "/expected.safetensors");
    SafeTensors golden = SafeTensors::open(dir + "/train_expected.safetensors");
    std::vector<std::pair<std::string, Tensor>> inputs;
    for (const char* k : {"input_ids", "attention_mask", "token_type_ids"}) inputs.emplace_back(k, expected.get(k));
    inputs.emplace_back("train.labels", golden.get("train.labels"));
    save_safetensors(tmp.file("in.safetensors"), inputs);
    const auto r = run_command(cli_path() + " forward --backward -m " + dir + " -i " + tmp.file("in.safetensors") +
                               " -o " + tmp.file("out.safetensors") + " 2>&1");
    ASSERT_EQ(r.status, 0) << r.output;
    SafeTensors out = SafeTensors::open(tmp.file("out.safetensors"));
    const double ref_loss = golden.get("train.loss").to_vector()[0];
    EXPECT_NEAR(out.get("train.loss").to_vector()[0], ref_loss, 2e-6 * std::max(1.0, ref_loss)) << kind;
    int grads = 0;
    for (const auto& name : golden.names()) {
      if (name.rfind("grad.", 0) != 0) continue;
      ++grads;
      ASSERT_TRUE(out.contains(name)) << kind << " " << name;
      const auto got = out.get(name).to_vector(), ref = golden.get(name).to_vector();
      ASSERT_EQ(got.size(), ref.size()) << name;
      EXPECT_LE(max_abs_diff(got, ref), 3e-5 * max_abs(ref)) << kind << " " << name;
    }
    int written = 0;
    for (const auto& name : out.names()) written += name.rfind("grad.", 0) == 0;
    EXPECT_EQ(written, grads) << kind << ": the CLI writes exactly the trainable parameters";
    EXPECT_GE(grads, 40);
  }
}

TEST(CliModel, ForwardBackwardWithoutLabelsIsAClearError) {
  TempDir tmp;
  const std::string dir = fixture_dir("roformer-tiny-cls");
  const auto r = run_command(cli_path() + " forward --backward -m " + dir + " -i " + dir + "/expected.safetensors -o " +
                             tmp.file("o.safetensors") + " 2>&1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("train.labels"), std::string::npos) << r.output;
}

TEST(CliModel, ExportLoadsBackBitIdenticalWithTokenizerFiles) {
  TempDir tmp;
  const std::string out = tmp.file("exported");
  const auto r = run_command(cli_path() + " export -m " + fixture_dir("roformer-tiny-tok") + " -o " + out + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* f : {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"})
    EXPECT_TRUE(std::filesystem::exists(out + "/" + f)) << f;
  RoFormerModel a = RoFormerModel::from_pretrained(fixture_dir("roformer-tiny-tok"));
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
  const auto no_input = run_command(cli_path() + " forward -m " + fixture_dir("roformer-tiny-qa") + " -i " +
                                    tmp.file("none.safetensors") + " -o " + tmp.file("o.safetensors") + " 2>&1");
  EXPECT_NE(no_input.status, 0);
  EXPECT_NE(no_input.output.find("roformer: error:"), std::string::npos) << no_input.output;
}

}  // namespace
}  // namespace roformer::testing
