// `roformer tokenize`. test_tokenizer does not build the CLI, so these run only
// when a built `roformer` already has the subcommand.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>

#include "roformer/tokenizer.h"
#include "support/test_support.h"

namespace roformer {
namespace {

std::string model_dir() { return testing::data_path("fixtures/roformer-tiny-mlm"); }

bool cli_has_tokenize() {
  if (!std::filesystem::exists(testing::cli_path())) return false;
  return testing::run_command(testing::cli_path() + " tokenize --help >/dev/null 2>&1").status == 0;
}

#define REQUIRE_CLI()                                                                          \
  do {                                                                                         \
    ASSERT_TRUE(cli_has_tokenize()) << "the roformer CLI lacks 'tokenize'";                   \
    ASSERT_TRUE(std::filesystem::exists(default_jieba_dict_path())) << "no jieba dict";       \
  } while (0)

TEST(TokenizeCli, ArgumentsAndPairs) {
  REQUIRE_CLI();
  const auto r = testing::run_command(testing::cli_path() + " tokenize --model '" + model_dir() +
                                      "' 'Hello world!' --pair 'a' 2>&1");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output,
            "{\"tokens\":[\"[CLS]\",\"hello\",\"world\",\"!\",\"[SEP]\",\"a\",\"[SEP]\"],"
            "\"input_ids\":[2,129,84,531,3,10,3],\"token_type_ids\":[0,0,0,0,0,1,1],"
            "\"attention_mask\":[1,1,1,1,1,1,1]}\n");
}

TEST(TokenizeCli, OffsetsOnRequest) {
  REQUIRE_CLI();
  const auto r = testing::run_command(testing::cli_path() + " tokenize --offsets --model '" + model_dir() +
                                      "' 'Hello  world!' --pair 'a' 2>&1");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("\"offset_mapping\":[[0,0],[0,5],[7,12],[12,13],[0,0],[0,1],[0,0]]"), std::string::npos)
      << r.output;
}

TEST(TokenizeCli, StdinLinesWithTabPairsAndTruncation) {
  REQUIRE_CLI();
  // Octal escapes: /bin/sh's printf may not know \x.
  const auto r = testing::run_command("printf 'How old are you?\\tI am six years old.\\n\\346\\210\\221\\n' | " +
                                      testing::cli_path() + " tokenize -m '" + model_dir() + "' --max-length 8");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.output,
            "{\"tokens\":[\"[CLS]\",\"how\",\"old\",\"are\",\"[SEP]\",\"i\",\"a\",\"[SEP]\"],"
            "\"input_ids\":[2,93,115,25,3,23,10,3],\"token_type_ids\":[0,0,0,0,0,1,1,1],"
            "\"attention_mask\":[1,1,1,1,1,1,1,1]}\n"
            "{\"tokens\":[\"[CLS]\",\"\xe6\x88\x91\",\"[SEP]\"],\"input_ids\":[2,734,3],"
            "\"token_type_ids\":[0,0,0],\"attention_mask\":[1,1,1]}\n");
}

TEST(TokenizeCli, ErrorsExitNonZero) {
  REQUIRE_CLI();
  const std::string cli = testing::cli_path();
  auto r = testing::run_command(cli + " tokenize -m /nonexistent/model x 2>&1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("does not exist"), std::string::npos) << r.output;
  r = testing::run_command("printf 'bad\\377\\n' | " + cli + " tokenize -m '" + model_dir() + "' 2>&1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("invalid UTF-8 at byte 3"), std::string::npos) << r.output;
  r = testing::run_command(cli + " tokenize -m '" + model_dir() + "' --truncation sideways x 2>&1");
  EXPECT_NE(r.status, 0);
}

TEST(TokenizeCli, ThreadsPrintTheSameLinesInOrderAndNameTheBadLine) {
  REQUIRE_CLI();
  // More lines than one block of the threaded reader, pairs among them.
  testing::TempDir dir;
  std::string input;
  for (int i = 0; i < 5000; ++i) {
    input += "Line " + std::to_string(i) + " of the text, caf\xc3\xa9 \xe6\x88\x91";
    if (i % 3 == 0) input += "\tand its pair " + std::to_string(i);
    input += "\n";
  }
  testing::write_file(dir.file("in.txt"), input);
  const std::string cmd = testing::cli_path() + " tokenize --offsets -m '" + model_dir() + "' < '" + dir.file("in.txt") + "'";
  const auto one = testing::run_command(cmd + " 2>&1");
  const auto two = testing::run_command(cmd + " --threads 2 2>&1");
  ASSERT_EQ(one.status, 0) << one.output.substr(0, 300);
  ASSERT_EQ(two.status, 0) << two.output.substr(0, 300);
  EXPECT_EQ(std::count(one.output.begin(), one.output.end(), '\n'), 5000);
  EXPECT_EQ(two.output, one.output);
  // A bad line in the second block, and a later one: the first is named.
  std::string bad = input;
  const auto at = [&](int line) {  // byte offset of a line's start
    std::size_t pos = 0;
    for (int k = 1; k < line; ++k) pos = bad.find('\n', pos) + 1;
    return pos;
  };
  bad.insert(at(4500), "\xff");
  bad.insert(at(4900), "\xfe");
  testing::write_file(dir.file("bad.txt"), bad);
  for (const std::string threads : {"1", "2"}) {
    const auto r = testing::run_command(testing::cli_path() + " tokenize -m '" + model_dir() + "' --threads " + threads +
                                        " < '" + dir.file("bad.txt") + "' 2>&1 >/dev/null");
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.output.find("stdin line 4500: tokenizer input: invalid UTF-8"), std::string::npos) << r.output;
  }
}

}  // namespace
}  // namespace roformer
