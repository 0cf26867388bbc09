// `roformer bleu` end to end: sacreBLEU-style JSON from files and stdin, errors.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "support/test_support.h"

namespace roformer::testing {
namespace {

using testing::write_file;

TEST(CliBleu, ReadmeExampleAsJson) {
  TempDir dir;
  write_file(dir.file("hyp.txt"), "The dog bit the man.\nIt wasn't surprising.\nThe man had just bitten him.\n");
  write_file(dir.file("ref1.txt"), "The dog bit the man.\nIt was not unexpected.\nThe man bit him first.\n");
  write_file(dir.file("ref2.txt"), "The dog had bit the man.\r\nNo one was surprised.\r\nThe man had bitten the dog.\r\n");
  const auto r = run_command(cli_path() + " bleu " + dir.file("hyp.txt") + " " + dir.file("ref1.txt") + " " +
                             dir.file("ref2.txt") + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["name"], "BLEU");
  EXPECT_DOUBLE_EQ(j["score"].get<double>(), 48.5);  // sacreBLEU prints one decimal by default
  EXPECT_NEAR(j["score_unrounded"].get<double>(), 48.530827, 1e-6);
  EXPECT_EQ(j["verbose_score"], "82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)");
  EXPECT_EQ(j["signature"], "nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:roformer.cpp");
  EXPECT_EQ(j["nrefs"], "2");
  EXPECT_EQ(j["tok"], "13a");
  EXPECT_EQ(j["smooth"], "exp");
  EXPECT_EQ(j["counts"], (std::vector<int64_t>{14, 7, 5, 3}));
  EXPECT_EQ(j["totals"], (std::vector<int64_t>{17, 14, 11, 8}));
  EXPECT_EQ(j["sys_len"], 17);
  EXPECT_EQ(j["ref_len"], 18);
  EXPECT_NEAR(j["bp"].get<double>(), 0.9428731438548749, 1e-12);
  ASSERT_EQ(j["precisions"].size(), 4u);
}

TEST(CliBleu, StdinOptionsAndWidth) {
  TempDir dir;
  write_file(dir.file("ref.txt"), "the cat sat on the mat\n");
  const auto r = run_command("printf 'the cat sat on\\n' | " + cli_path() + " bleu - " + dir.file("ref.txt") +
                             " -w 3 --smooth-method none 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_DOUBLE_EQ(j["score"].get<double>(), 60.653);  // 100 * exp(1 - 6/4)
  EXPECT_EQ(j["smooth"], "none");

  write_file(dir.file("lc_hyp.txt"), "The Cat\n");
  write_file(dir.file("lc_ref.txt"), "the cat\n");
  const auto lc = run_command(cli_path() + " bleu " + dir.file("lc_hyp.txt") + " " + dir.file("lc_ref.txt") +
                              " --lowercase --smooth-method floor 2>&1");
  ASSERT_EQ(lc.status, 0) << lc.output;
  const auto k = nlohmann::json::parse(lc.output);
  EXPECT_EQ(k["case"], "lc");
  EXPECT_EQ(k["smooth"], "floor[0.10]");
  EXPECT_EQ(k["counts"][0], 2);
}

TEST(CliBleu, ErrorsAreOneLineWithNonZeroExit) {
  TempDir dir;
  write_file(dir.file("two.txt"), "a\nb\n");
  write_file(dir.file("one.txt"), "a\n");
  write_file(dir.file("bad.txt"), "a\n\xff\n");
  const auto count = run_command(cli_path() + " bleu " + dir.file("two.txt") + " " + dir.file("one.txt") + " 2>&1");
  EXPECT_NE(count.status, 0);
  EXPECT_NE(count.output.find("error"), std::string::npos) << count.output;
  EXPECT_NE(count.output.find("2 lines"), std::string::npos) << count.output;
  const auto utf8 = run_command(cli_path() + " bleu " + dir.file("bad.txt") + " " + dir.file("two.txt") + " 2>&1");
  EXPECT_NE(utf8.status, 0);
  EXPECT_NE(utf8.output.find("UTF-8"), std::string::npos) << utf8.output;
  const auto missing = run_command(cli_path() + " bleu " + dir.file("none.txt") + " " + dir.file("one.txt") + " 2>&1");
  EXPECT_NE(missing.status, 0);
  EXPECT_NE(missing.output.find("cannot open"), std::string::npos) << missing.output;
  const auto two_stdin = run_command("echo a | " + cli_path() + " bleu - - 2>&1");
  EXPECT_NE(two_stdin.status, 0);
}

}  // namespace
}  // namespace roformer::testing
