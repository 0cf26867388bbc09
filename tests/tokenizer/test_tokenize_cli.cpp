// `roformer tokenize`. test_tokenizer does not build the CLI, so these run only
// when a built `roformer` already has the subcommand.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace roformer
