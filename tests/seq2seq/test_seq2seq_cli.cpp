// End to end through the CLI at toy scale: train-translation learns to copy
// short sentences (the loss falls, held-out BLEU is high, the last
// checkpoints are averaged), translate reproduces the copies, and bad input
// gives one-line errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>

#include "support/test_support.h"

namespace roformer::testing {
namespace {

// 600 pairs "w1 w2 ... <TAB> w1 w2 ..." over 16 words, 3 to 8 words long.
std::string write_copy_corpus(const TempDir& tmp) {
  const std::vector<std::string> words = {"red", "green", "blue", "black", "white", "cat", "dog", "bird",
                                          "fish", "tree", "house", "car", "sun", "moon", "star", "river"};
  std::mt19937 rng(1);
  std::ofstream out(tmp.file("copy.tsv"));
  for (int i = 0; i < 600; ++i) {
    std::string s;
    const int n = 3 + static_cast<int>(rng() % 6);
    for (int k = 0; k < n; ++k) s += (k ? " " : "") + words[rng() % words.size()];
    out << s << "\t" << s << "\n";
  }
  return tmp.file("copy.tsv");
}

TEST(Seq2SeqCli, TrainTranslationLearnsToCopyAndTranslateReproduces) {
  TempDir tmp;
  const std::string data = write_copy_corpus(tmp);
  // The config file sets the model; flags override its step count.
  std::ofstream(tmp.file("run.json")) << R"({"d_model": 64, "encoder_layers": 2, "decoder_layers": 2, "num_heads": 4,
    "ffn_dim": 128, "vocab_size": 60, "dropout": 0.0, "steps": 9999, "lr": 0.003, "warmup_steps": 50})";
  const auto r = run_command(cli_path() + " train-translation -c " + tmp.file("run.json") + " --train " + data +
                             " --steps 600 --batch-size 32 --valid-fraction 0.1 --save-every 100 --average-last 2"
                             " --eval-every 300 --log-every 50 --bleu-sentences 40 --no-progress --out " +
                             tmp.file("run") + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("average of the last 2 checkpoints"), std::string::npos) << r.output;
  // metrics.jsonl: train loss falls, valid loss is logged, BLEU at the end.
  std::ifstream log(tmp.file("run/metrics.jsonl"));
  double first_loss = -1, last_loss = -1, bleu = -1;
  int valid_lines = 0;
  for (std::string line; std::getline(log, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.contains("loss")) {
      if (first_loss < 0) first_loss = j["loss"].get<double>();
      last_loss = j["loss"].get<double>();
    }
    if (j.contains("valid_loss")) ++valid_lines;
    if (j.contains("valid_bleu")) bleu = j["valid_bleu"].get<double>();
  }
  EXPECT_GT(first_loss, 0);
  EXPECT_LT(last_loss, 0.5 * first_loss) << r.output;
  EXPECT_EQ(valid_lines, 2);
  EXPECT_GT(bleu, 50.0) << r.output;
  for (const char* f : {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"})
    EXPECT_TRUE(std::filesystem::exists(tmp.file(std::string("run/final/") + f))) << f;
  EXPECT_TRUE(std::filesystem::exists(tmp.file("run/checkpoint-500/model.safetensors")));

  // translate: stdin lines to stdout lines.
  const std::vector<std::string> inputs = {"red green blue cat", "dog bird fish tree house", "sun moon star",
                                           "river car white black dog"};
  std::ofstream in(tmp.file("in.txt"));
  for (const auto& s : inputs) in << s << "\n";
  in.close();
  for (const char* beam : {"1", "4"}) {
    const auto t = run_command(cli_path() + " translate -m " + tmp.file("run/final") + " --beam " + beam +
                               " --batch-size 3 --max-len-a 1.2 --max-len-b 5 < " + tmp.file("in.txt"));
    ASSERT_EQ(t.status, 0) << t.output;
    std::istringstream lines(t.output);
    std::vector<std::string> outs;
    for (std::string line; std::getline(lines, line);) outs.push_back(line);
    ASSERT_EQ(outs.size(), inputs.size()) << t.output;
    // A toy copier is not perfect: most input words (as a multiset) must come back.
    int kept = 0, total = 0;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      std::multiset<std::string> out_words;
      std::istringstream ow(outs[i]), iw(inputs[i]);
      for (std::string w; ow >> w;) out_words.insert(w);
      for (std::string w; iw >> w; ++total)
        if (auto it = out_words.find(w); it != out_words.end()) {
          out_words.erase(it);
          ++kept;
        }
    }
    EXPECT_GE(kept, total * 7 / 10) << "beam " << beam << ":\n" << t.output;
  }
}

TEST(Seq2SeqCli, BadInputIsAOneLineError) {
  TempDir tmp;
  // A tiny model to translate with.
  const std::string data = write_copy_corpus(tmp);
  const auto r = run_command(cli_path() + " train-translation --train " + data +
                             " --steps 2 --d-model 16 --heads 2 --ffn 32 --encoder-layers 1 --decoder-layers 1"
                             " --vocab-size 60 --bleu-sentences 2 --no-progress --out " + tmp.file("run") + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  std::ofstream(tmp.file("blank.txt")) << "red cat\n\nblue\n";
  auto t = run_command(cli_path() + " translate -m " + tmp.file("run/final") + " < " + tmp.file("blank.txt") + " 2>&1");
  EXPECT_NE(t.status, 0);
  EXPECT_NE(t.output.find("input line 2 is empty"), std::string::npos) << t.output;
  std::ofstream(tmp.file("bad_utf8.txt")) << "red cat\nblue \xff\xfe\n";
  t = run_command(cli_path() + " translate -m " + tmp.file("run/final") + " < " + tmp.file("bad_utf8.txt") + " 2>&1");
  EXPECT_NE(t.status, 0);
  EXPECT_NE(t.output.find("input line 2"), std::string::npos) << t.output;
  // Not a seq2seq model directory.
  t = run_command(cli_path() + " translate -m " + tmp.path() + " red 2>&1");
  EXPECT_NE(t.status, 0);
  EXPECT_NE(t.output.find("config.json"), std::string::npos) << t.output;
  // Bad options.
  t = run_command(cli_path() + " translate -m " + tmp.file("run/final") + " --beam 0 red 2>&1");
  EXPECT_NE(t.status, 0);
  EXPECT_NE(t.output.find("beam"), std::string::npos) << t.output;
  std::ofstream(tmp.file("bad.json")) << R"({"no_such_key": 1})";
  t = run_command(cli_path() + " train-translation -c " + tmp.file("bad.json") + " --out " + tmp.file("x") + " 2>&1");
  EXPECT_NE(t.status, 0);
  EXPECT_NE(t.output.find("unknown key \"no_such_key\""), std::string::npos) << t.output;
  t = run_command(cli_path() + " train-translation --train " + data + " --positions learned --out " + tmp.file("y") + " 2>&1");
  EXPECT_NE(t.status, 0);
  EXPECT_NE(t.output.find("position_encoding"), std::string::npos) << t.output;
  t = run_command(cli_path() + " train-translation --train " + tmp.file("missing.tsv") + " --out " + tmp.file("z") + " 2>&1");
  EXPECT_NE(t.status, 0);
  EXPECT_NE(t.output.find("missing.tsv"), std::string::npos) << t.output;
}

}  // namespace
}  // namespace roformer::testing
