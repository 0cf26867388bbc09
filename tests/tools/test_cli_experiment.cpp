// The paper's experiments at toy scale: each command runs end to end and
// writes its Markdown section and plots. (The science needs the small/full
// scales; this proves the pipeline.)
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "support/test_support.h"

namespace roformer::testing {
namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(CliExperiment, EveryExperimentRunsAtToyScale) {
  TempDir tmp;
  const std::string repo = data_path("../..");
  const std::string out = tmp.file("exp");
  for (const std::string name : {"positions", "finetune", "long-text", "extrapolation", "linear", "translation"}) {
    const auto r = run_command("cd " + repo + " && " + cli_path() + " experiment " + name + " --scale toy --out " + out + " 2>&1");
    ASSERT_EQ(r.status, 0) << name << "\n" << r.output;
    const std::string md = read_all(out + "/" + name + ".md");
    EXPECT_NE(md.find("*Command:* `roformer experiment " + name + " --scale toy"), std::string::npos) << md;
    EXPECT_EQ(md.find("nan"), std::string::npos) << md;
  }
  const std::string positions = read_all(out + "/positions.md");
  for (const char* v : {"| rope |", "| absolute |", "| sinusoidal |"}) EXPECT_NE(positions.find(v), std::string::npos) << v;
  EXPECT_TRUE(std::filesystem::exists(out + "/positions_valid_loss.svg"));
  const std::string extrapolation = read_all(out + "/extrapolation.md");
  EXPECT_NE(extrapolation.find("cannot (table ends at 32)"), std::string::npos) << extrapolation;
  EXPECT_NE(extrapolation.find("RoPE + NTK-aware scaling"), std::string::npos);
  const std::string linear = read_all(out + "/linear.md");
  for (const char* row : {"| softmax + RoPE |", "| linear (elu+1) + RoPE |", "| linear (elu+1), no positions |", "| 512 |"})
    EXPECT_NE(linear.find(row), std::string::npos) << row << "\n" << linear;
  EXPECT_TRUE(std::filesystem::exists(out + "/linear_memory.svg"));
  // (b): two candidate learning rates at toy scale, tried on seed 0 of every
  // variant; each variant's row names the one it picked.
  const std::string finetune = read_all(out + "/finetune.md");
  EXPECT_NE(finetune.find("| positions | 0.001 | 0.0003 | picked |"), std::string::npos) << finetune;
  for (const std::string v : {"rope", "absolute", "sinusoidal"}) {
    EXPECT_TRUE(std::filesystem::exists(out + "/runs/spam-lr-0.001-" + v + "-0")) << v;
    EXPECT_TRUE(std::filesystem::exists(out + "/runs/spam-lr-0.0003-" + v + "-0")) << v;
    const bool one = finetune.find("| " + v + " | 0.001 | ") != std::string::npos;
    const bool other = finetune.find("| " + v + " | 0.0003 | ") != std::string::npos;
    EXPECT_TRUE(one != other) << v << "\n" << finetune;
  }
  const std::string long_text = read_all(out + "/long-text.md");
  for (const char* len : {"| 16 |", "| 32 |", "| 64 |"}) EXPECT_NE(long_text.find(len), std::string::npos) << len;
  // The toy scale has two candidate learning rates: both are tried at the shortest length.
  for (const char* row : {"| peak learning rate | held-out loss | accuracy |", "| 0.001 |", "| 0.003 |"})
    EXPECT_NE(long_text.find(row), std::string::npos) << row << "\n" << long_text;
  EXPECT_TRUE(std::filesystem::exists(out + "/long_text_loss.svg"));
  // Four models at four lengths, and the learned table's single point (it cannot go longer): 17 dots.
  const std::string extrapolation_svg = read_all(out + "/extrapolation_loss.svg");
  std::size_t dots = 0;
  for (std::size_t at = extrapolation_svg.find("<circle"); at != std::string::npos; at = extrapolation_svg.find("<circle", at + 1))
    ++dots;
  EXPECT_EQ(dots, 17u) << extrapolation_svg;
  // The search's winning run (seed 0, shortest length) is the table's first row: it is not run again.
  EXPECT_FALSE(std::filesystem::exists(out + "/runs/long-16-0"));
  EXPECT_TRUE(std::filesystem::exists(out + "/runs/long-32-0"));
  // The committed sample's train split is mostly ham (179 of 268), and 9 of
  // its 14 valid records are ham.
  EXPECT_NE(long_text.find("| constant: the train split's most frequent label | 64.29% |"), std::string::npos) << long_text;
  EXPECT_NE(long_text.find("| constant: the scored split's most frequent label (hindsight) | 64.29% |"), std::string::npos)
      << long_text;

  // Translation: both variants scored on the test split, the loss plot, and
  // a test split whose sources never occur in training.
  const std::string translation = read_all(out + "/translation.md");
  for (const std::string v : {"rope", "sinusoidal"}) {
    const std::size_t row = translation.find("| " + v + " | ");
    ASSERT_NE(row, std::string::npos) << v << "\n" << translation;
    const std::string cell = translation.substr(row + v.size() + 5);
    char* end = nullptr;
    const double bleu = std::strtod(cell.c_str(), &end);
    EXPECT_NE(end, cell.c_str()) << "no BLEU number for " << v << ": " << cell.substr(0, 40);
    EXPECT_TRUE(std::isfinite(bleu) && bleu >= 0 && bleu <= 100) << v << ": " << bleu;
    EXPECT_TRUE(std::filesystem::exists(out + "/runs/translation-" + v + "-0/final/model.safetensors")) << v;
    EXPECT_FALSE(read_all(out + "/runs/translation-" + v + "-0/test_hypotheses.txt").empty()) << v;
  }
  EXPECT_NE(translation.find("| rope | 0 | "), std::string::npos) << "per-seed table\n" << translation;
  EXPECT_TRUE(std::filesystem::exists(out + "/translation_valid_loss.svg"));
  std::set<std::string> train_sources;
  std::ifstream train(out + "/runs/translation/train.tsv");
  for (std::string line; std::getline(train, line);) train_sources.insert(line.substr(0, line.find('\t')));
  std::ifstream test(out + "/runs/translation/test.tsv");
  int64_t test_pairs = 0;
  for (std::string line; std::getline(test, line); ++test_pairs)
    EXPECT_EQ(train_sources.count(line.substr(0, line.find('\t'))), 0u) << line;
  EXPECT_GT(test_pairs, 50);
  EXPECT_GT(train_sources.size(), 2000u);
}

TEST(CliExperiment, TranslationAtFullScaleNeedsTheFetchedCorpus) {
  TempDir tmp;  // a directory without data/corpora: the corpus is missing there
  const auto r = run_command("cd " + tmp.path() + " && " + cli_path() +
                             " experiment translation --scale full --out " + tmp.file("x") + " 2>&1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("data/corpora/mt/ding_de_en.tsv is missing (run scripts/fetch_data.sh first)"),
            std::string::npos)
      << r.output;
}

TEST(CliExperiment, UnknownNamesAndScalesAreErrors) {
  TempDir tmp;
  const std::string repo = data_path("../..");
  for (const std::string args : {" experiment nonsense", " experiment positions --scale huge"}) {
    const auto r = run_command("cd " + repo + " && " + cli_path() + args + " --out " + tmp.file("x") + " 2>&1");
    EXPECT_NE(r.status, 0) << args;
    EXPECT_NE(r.output.find("roformer: error:"), std::string::npos) << r.output;
  }
}

}  // namespace
}  // namespace roformer::testing
