// `roformer data vocab | encode | info` end to end on the committed sample.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "roformer/dataset.h"
#include "roformer/tokenizer.h"
#include "support/test_support.h"

namespace roformer::testing {
namespace {

std::string sample(const std::string& name) { return data_path("../../data/sample/" + name); }

TEST(DataCli, VocabEncodeInfo) {
  TempDir dir;
  const std::string vocab = dir.file("vocab.txt"), rfds = dir.file("valid.rfds");
  auto r = run_command(cli_path() + " data vocab --corpus " + sample("en_train.txt") + " --size 1500 --out " + vocab +
                       " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("1500 tokens"), std::string::npos) << r.output;
  EXPECT_EQ(Vocab::from_file(vocab).size(), 1500);

  r = run_command(cli_path() + " data encode --vocab " + vocab + " --corpus " + sample("en_valid.txt") + " --out " +
                  rfds + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("(0 [UNK])"), std::string::npos) << r.output;
  const auto ds = TokenDataset::open(rfds);
  EXPECT_GT(ds.tokens(), 10000);

  r = run_command(cli_path() + " data info " + rfds + " --vocab " + vocab + " --show 12 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("matches"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("documents:     " + std::to_string(ds.documents())), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("16-bit"), std::string::npos) << r.output;

  // Another vocabulary: info reports the mismatch and fails.
  const std::string other = dir.file("other.txt");
  r = run_command(cli_path() + " data vocab --corpus " + sample("en_valid.txt") + " --size 400 --out " + other +
                  " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  r = run_command(cli_path() + " data info " + rfds + " --vocab " + other + " 2>&1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("DIFFERS"), std::string::npos) << r.output;
}

TEST(DataCli, BadInputsGiveOneLineErrors) {
  TempDir dir;
  const std::string junk = dir.file("junk.rfds");
  std::ofstream(junk) << "not a dataset";
  auto r = run_command(cli_path() + " data info " + junk + " 2>&1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("truncated header"), std::string::npos) << r.output;
  r = run_command(cli_path() + " data vocab --corpus " + sample("en_valid.txt") + " --size 10 --out " +
                  dir.file("v.txt") + " 2>&1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("too small"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(dir.file("v.txt")));
  r = run_command(cli_path() + " data vocab --corpus " + sample("en_valid.txt") + " --score magic 2>&1");
  EXPECT_NE(r.status, 0);
}

}  // namespace
}  // namespace roformer::testing
