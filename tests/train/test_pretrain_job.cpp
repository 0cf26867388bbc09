// The pre-training job end to end at toy scale: the loss goes down, a run
// stopped and resumed equals an uninterrupted run bit for bit, and a process
// killed at any moment (even while saving) leaves a checkpoint to resume from.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "roformer/error.h"
#include "roformer/pretrain.h"
#include "roformer/safetensors.h"
#include "support/test_support.h"
#include "toy_pretrain.h"

namespace roformer {
namespace {

using testing::data_path;
using testing::TempDir;

using testing::repo_file;

PretrainOptions toy(const std::string& out) { return testing::toy_pretrain_options(out); }

std::vector<uint8_t> bytes_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

TEST(PretrainJob, LossFallsAndAnHfDirectoryIsWritten) {
  TempDir tmp;
  PretrainOptions o = toy(tmp.file("run"));
  o.steps = 30;
  o.eval_every = 0;
  double first_loss = 0;
  PretrainCallbacks cb;
  cb.on_progress = [&](const PretrainProgress& p) {
    if (p.step == 1) first_loss = p.loss;
  };
  const PretrainResult r = pretrain(o, cb);
  EXPECT_EQ(r.steps, 30);
  EXPECT_LT(r.train_loss, first_loss - 0.5) << "the MLM loss should fall";
  EXPECT_GT(r.valid_accuracy, 0.0);
  for (const char* f : {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"})
    EXPECT_TRUE(std::filesystem::exists(r.model_dir + "/" + f)) << f;
  // Metrics log: one line per log interval plus the evaluation.
  std::ifstream log(tmp.file("run/metrics.jsonl"));
  int lines = 0, evals = 0;
  for (std::string line; std::getline(log, line); ++lines)
    if (nlohmann::json::parse(line).contains("valid_loss")) ++evals;
  EXPECT_EQ(lines, 16);
  EXPECT_EQ(evals, 1);
}

TEST(PretrainJob, ResumeContinuesBitIdentically) {
  TempDir tmp;
  const PretrainResult straight = pretrain(toy(tmp.file("a")));
  PretrainOptions first = toy(tmp.file("b"));
  first.stop_at_step = 3;
  EXPECT_EQ(pretrain(first).steps, 3);
  PretrainOptions second = toy(tmp.file("b"));
  second.resume = true;
  const PretrainResult resumed = pretrain(second);
  EXPECT_EQ(resumed.steps, 8);
  EXPECT_EQ(bytes_of(straight.model_dir + "/model.safetensors"), bytes_of(resumed.model_dir + "/model.safetensors"));
  EXPECT_EQ(bytes_of(tmp.file("a/checkpoint-8/trainer_state.safetensors")),
            bytes_of(tmp.file("b/checkpoint-8/trainer_state.safetensors")));
  EXPECT_EQ(straight.valid_loss, resumed.valid_loss);
}

TEST(PretrainJob, KilledProcessAlwaysLeavesAResumableCheckpoint) {
  TempDir tmp;
  const std::string cli = testing::cli_path();
  const std::string args = " pretrain --no-demo --no-progress --train " + repo_file("data/sample/en_train.txt") + " --valid " +
                           repo_file("data/sample/en_valid.txt") + " --vocab " + data_path("fixtures/vocab.txt") +
                           " --hidden 32 --layers 1 --heads 2 --intermediate 64 --seq-len 32 --batch-size 4 --steps 400"
                           " --eval-every 0 --out " + tmp.file("run");
  // Kill at a few moments; with a checkpoint every step, some kills land mid-save.
  int resumed_runs = 0;
  for (const char* delay : {"1.5", "2.3", "3.1", "5", "8"}) {
    const std::string mode = std::filesystem::exists(tmp.file("run/latest")) ? " --resume" : "";
    testing::run_command("timeout -s KILL " + std::string(delay) + " " + cli + args + " --save-every 1" + mode +
                         " >/dev/null 2>&1");
    if (!std::filesystem::exists(tmp.file("run/latest"))) continue;
    // Whatever `latest` names is complete and loads.
    std::ifstream latest(tmp.file("run/latest"));
    std::string name;
    latest >> name;
    const std::string dir = tmp.file("run/" + name);
    EXPECT_NO_THROW(SafeTensors::open(dir + "/model.safetensors")) << name;
    EXPECT_NO_THROW(SafeTensors::open(dir + "/trainer_state.safetensors")) << name;
    EXPECT_TRUE(std::filesystem::exists(dir + "/trainer_state.json")) << name;
    ++resumed_runs;
  }
  ASSERT_GT(resumed_runs, 0) << "no run got as far as its first checkpoint";
  // Resuming from it runs on (briefly) and saves again.
  const auto finish = testing::run_command(cli + args + " --resume --max-minutes 0.01 2>&1");
  EXPECT_EQ(finish.status, 0) << finish.output;
  EXPECT_NE(finish.output.find("resumed from"), std::string::npos) << finish.output;
}

TEST(PretrainJob, BadOptionsAreClearErrors) {
  TempDir tmp;
  PretrainOptions o = toy(tmp.file("x"));
  o.steps = 0;
  EXPECT_THROW(pretrain(o), Error);
  o = toy(tmp.file("x"));
  o.train_file = tmp.file("missing.txt");
  EXPECT_THROW(pretrain(o), Error);
  o = toy(tmp.file("x"));
  o.resume = true;  // nothing to resume
  EXPECT_THROW(pretrain(o), Error);
  EXPECT_THROW(pretrain_options_from_json(R"({"stepz": 3})"), Error);
  EXPECT_THROW(pretrain_options_from_json(R"({"steps": "many"})"), Error);
  EXPECT_EQ(pretrain_options_from_json(R"({"steps": 7})").steps, 7);
  o = toy(tmp.file("x"));
  o.gemm = "mkl";
  EXPECT_THROW(pretrain(o), Error);
  EXPECT_EQ(pretrain_options_from_json(R"({"gemm": "openblas"})").gemm, "openblas");
  o = toy(tmp.file("x"));
  o.precision = "fp16";
  EXPECT_THROW(pretrain(o), Error);
  EXPECT_EQ(pretrain_options_from_json(R"({"precision": "bf16"})").precision, "bf16");
  EXPECT_TRUE(pretrain_options_from_json(R"({"fp32_attention": true})").fp32_attention);
  EXPECT_THROW(pretrain_options_from_json(R"({"fp32_attention": "yes"})"), Error);
}

// A checkpoint edited or broken by hand is refused with an Error that names
// the file: `latest` must name a checkpoint directory of the run, and the
// trainer state must parse and hold its fields.
TEST(PretrainJob, ABrokenCheckpointIsAClearError) {
  TempDir tmp;
  PretrainOptions first = toy(tmp.file("run"));
  first.stop_at_step = 3;
  ASSERT_EQ(pretrain(first).steps, 3);
  PretrainOptions again = toy(tmp.file("run"));
  again.resume = true;
  const std::string latest = tmp.file("run/latest"), state = tmp.file("run/checkpoint-3/trainer_state.json");
  const auto message = [&] {
    try {
      pretrain(again);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const auto write = [](const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; };
  const auto good_state = bytes_of(state);

  for (const char* bad : {"../elsewhere\n", "\n", "checkpoint-\n", "checkpoint-3/../../x\n"}) {
    write(latest, bad);
    EXPECT_NE(message().find("should name a checkpoint directory"), std::string::npos) << bad;
  }
  write(latest, "checkpoint-3\n");
  write(state, std::string(good_state.begin(), good_state.begin() + 40));  // cut mid-file
  std::string m = message();
  EXPECT_NE(m.find("trainer_state.json"), std::string::npos) << m;
  write(state, R"({"dropout_step": 3, "data_position": "x"})");
  m = message();
  EXPECT_NE(m.find("trainer_state.json"), std::string::npos) << m;
  EXPECT_NE(m.find("'step'"), std::string::npos) << m;

  write(state, R"({"step": 3, "dropout_step": -1, "data_position": "x"})");
  m = message();
  EXPECT_NE(m.find("negative"), std::string::npos) << m;

  write(state, std::string(good_state.begin(), good_state.end()));  // repaired: it resumes
  EXPECT_EQ(pretrain(again).steps, 8);
}

// The matrix-product library is the job's choice: both train the toy model
// to the same losses up to the libraries' summation order, and the log says
// which one ran.
TEST(PretrainJob, EitherProductLibraryTrains) {
  TempDir tmp;
  std::vector<double> last;
  for (const char* gemm : {"openblas", "onednn"}) {
    PretrainOptions o = toy(tmp.file(gemm));
    o.gemm = gemm;
    std::string logged;
    PretrainCallbacks cb;
    cb.on_log = [&](const std::string& line) { logged += line + "\n"; };
    const PretrainResult r = pretrain(o, cb);
    EXPECT_NE(logged.find(std::string(gemm) + " products"), std::string::npos) << logged;
    last.push_back(r.train_loss);
    last.push_back(r.valid_loss);
  }
  EXPECT_NEAR(last[0], last[2], 1e-3 * std::abs(last[0]));
  EXPECT_NEAR(last[1], last[3], 1e-3 * std::abs(last[1]));
}

// bf16 products (mixed precision) train the toy model as fp32 does: same
// data and initialisation, losses within a few percent, and the log says so.
TEST(PretrainJob, Bf16ProductsTrainLikeFp32) {
  TempDir tmp;
  std::vector<PretrainResult> results;
  double bf16_first_loss = 0;
  for (const char* precision : {"fp32", "bf16"}) {
    PretrainOptions o = toy(tmp.file(precision));
    o.precision = precision;
    o.steps = 30;
    std::string logged;
    PretrainCallbacks cb;
    cb.on_log = [&](const std::string& line) { logged += line + "\n"; };
    cb.on_progress = [&](const PretrainProgress& p) {
      if (p.step == 1) bf16_first_loss = p.loss;
    };
    results.push_back(pretrain(o, cb));
    EXPECT_NE(logged.find(std::string("products in ") + precision), std::string::npos) << logged;
  }
  const PretrainResult &fp32 = results[0], &bf16 = results[1];
  EXPECT_LT(bf16.train_loss, bf16_first_loss - 0.5) << "the MLM loss should fall";
  EXPECT_NEAR(bf16.train_loss, fp32.train_loss, 0.03 * fp32.train_loss);
  EXPECT_NEAR(bf16.valid_loss, fp32.valid_loss, 0.03 * fp32.valid_loss);
  EXPECT_NE(bf16.train_loss, fp32.train_loss);  // the products really changed
}

// fp32_attention keeps a bf16 run's attention products in fp32: with a head
// size the bf16 attention takes (32), the losses move where the CPU runs that
// attention in bf16 (AVX512-BF16) and stay put elsewhere; the log says so.
TEST(PretrainJob, Fp32AttentionKeepsTheAttentionProductsFp32) {
  TempDir tmp;
  std::vector<double> losses;
  for (bool fp32_attention : {false, true}) {
    PretrainOptions o = toy(tmp.file(fp32_attention ? "fp32_attention" : "bf16_attention"));
    o.hidden_size = 64;
    o.num_heads = 2;
    o.dropout = 0;  // attention dropout would keep the materialised (fp32) attention in training
    o.precision = "bf16";
    o.fp32_attention = fp32_attention;
    o.steps = 4;
    std::string logged;
    PretrainCallbacks cb;
    cb.on_log = [&](const std::string& line) { logged += line + "\n"; };
    const PretrainResult r = pretrain(o, cb);
    EXPECT_EQ(logged.find("attention products in fp32") != std::string::npos, fp32_attention) << logged;
    losses.push_back(r.train_loss);
    losses.push_back(r.valid_loss);
  }
  if (best_isa() == Isa::Avx512 && cpu_has_avx512_bf16()) {
    EXPECT_NE(losses[0], losses[2]);
    EXPECT_NE(losses[1], losses[3]);
  } else {  // the attention's products were fp32 either way
    EXPECT_EQ(losses[0], losses[2]);
    EXPECT_EQ(losses[1], losses[3]);
  }
  EXPECT_NEAR(losses[0], losses[2], 0.03 * losses[0]);
}

}  // namespace
}  // namespace roformer
