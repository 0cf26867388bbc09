// Multiple-choice JSONL data: each (context, choice) pair encoded as the
// tokenizer encodes a pair, batches of (batch, choices, length) with padding
// and token types, splits, and malformed records.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "data_test_util.h"
#include "roformer/choice_dataset.h"
#include "roformer/error.h"

namespace roformer {
namespace {

using data_test::write_file;

std::string choice_error_of(const std::string& path, const ChoiceOptions& o = {}) {
  try {
    ChoiceDataset::from_jsonl(path, data_test::sample_tokenizer(), o);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(DataChoice, PairsAreTheTokenizersPairEncodings) {
  testing::TempDir dir;
  const auto& tok = data_test::sample_tokenizer();
  const std::string path = dir.file("mc.jsonl");
  write_file(path,
             "{\"context\": \"the jury said the election was\", \"choices\": [\"well conducted .\", \"a horse of "
             "many colours that ran all the way home across the county\", \"green\"], \"label\": 0, \"split\": "
             "\"train\"}\n"
             "\n"
             "{\"context\": \"he went home\", \"choices\": [\"and slept\", \"quickly\", \"the city of atlanta\"], "
             "\"label\": 2, \"split\": \"valid\"}\n");
  ChoiceOptions o;
  o.max_length = 12;  // the long second choice is truncated longest-first
  const auto ds = ChoiceDataset::from_jsonl(path, tok, o);
  ASSERT_EQ(ds.size(), 2);
  EXPECT_EQ(ds.choices(), 3);
  EXPECT_EQ(ds.example(0).label, 0);
  EXPECT_EQ(ds.example(1).label, 2);
  EXPECT_EQ(ds.indices_of_split("valid"), (std::vector<int64_t>{1}));
  const std::vector<std::string> choices{"well conducted .",
                                         "a horse of many colours that ran all the way home across the county",
                                         "green"};
  for (std::size_t c = 0; c < choices.size(); ++c) {
    const Encoding e = tok.encode("the jury said the election was", choices[c], Truncation::LongestFirst, 12);
    EXPECT_EQ(ds.example(0).pairs[c].ids, e.input_ids) << c;
    EXPECT_EQ(ds.example(0).pairs[c].types, e.token_type_ids) << c;
    EXPECT_LE(e.input_ids.size(), 12u);
  }
  EXPECT_EQ(ds.example(0).pairs[1].ids.size(), 12u) << "truncated to max_length";

  ChoiceBatch b;
  const std::vector<int64_t> both{1, 0};
  ds.batch(both, b);
  EXPECT_EQ(b.batch, 2);
  EXPECT_EQ(b.choices, 3);
  EXPECT_EQ(b.seq_len, 12);
  EXPECT_EQ(b.labels, (std::vector<int64_t>{2, 0}));
  const Batch mb = b.model_batch();
  EXPECT_EQ(mb.input_ids.shape(), (Shape{2, 3, 12}));
  EXPECT_EQ(mb.token_type_ids.shape(), (Shape{2, 3, 12}));
  // Row (example 0, choice 2) sits at batch position 1: its pair, then padding.
  const auto& pair = ds.example(0).pairs[2];
  const int64_t row = (1 * 3 + 2) * 12;
  for (int64_t t = 0; t < 12; ++t) {
    const bool real = t < static_cast<int64_t>(pair.ids.size());
    EXPECT_EQ(b.input_ids[static_cast<std::size_t>(row + t)], real ? pair.ids[static_cast<std::size_t>(t)] : tok.pad_id());
    EXPECT_EQ(b.token_type_ids[static_cast<std::size_t>(row + t)], real ? pair.types[static_cast<std::size_t>(t)] : 0);
    EXPECT_EQ(b.attention_mask[static_cast<std::size_t>(row + t)], real ? 1 : 0);
  }
  const Tensor labels = b.labels_tensor();
  EXPECT_EQ(labels.shape(), (Shape{2}));
  EXPECT_EQ(labels.data<int64_t>()[0], 2);
}

TEST(DataChoice, MalformedRecordsNameTheirLine) {
  testing::TempDir dir;
  auto bad = [&](const std::string& second_line) {
    const std::string path = dir.file("bad.jsonl");
    write_file(path, "{\"context\": \"a\", \"choices\": [\"b\", \"c\"], \"label\": 1}\n" + second_line + "\n");
    return choice_error_of(path);
  };
  auto expect = [](const std::string& msg, const std::string& part) {
    EXPECT_NE(msg.find(part), std::string::npos) << msg;
    EXPECT_NE(msg.find("bad.jsonl:2"), std::string::npos) << msg;
  };
  expect(bad("{\"choices\": [\"b\", \"c\"], \"label\": 0}"), "\"context\"");
  expect(bad("{\"context\": \"a\", \"choices\": [\"b\"], \"label\": 0}"), "at least two");
  expect(bad("{\"context\": \"a\", \"choices\": \"b\", \"label\": 0}"), "at least two");
  expect(bad("{\"context\": \"a\", \"choices\": [\"b\", \"c\", \"d\"], \"label\": 0}"), "same number");
  expect(bad("{\"context\": \"a\", \"choices\": [\"b\", \"c\"], \"label\": 2}"), "index of the right choice");
  expect(bad("{\"context\": \"a\", \"choices\": [\"b\", \"c\"], \"label\": -1}"), "index of the right choice");
  expect(bad("{\"context\": \"a\", \"choices\": [\"b\", \"c\"], \"label\": \"b\"}"), "index of the right choice");
  expect(bad("{\"context\": \"a\", \"choices\": [\"b\", 3], \"label\": 0}"), "must be a string");
  expect(bad("{\"context\": \"a\\udc00\", \"choices\": [\"b\", \"c\"], \"label\": 0}"), "");
  expect(bad("{\"context\": \"a\", \"choices\": [\"b\", \"c\"], \"label\": 0, \"split\": 1}"), "\"split\"");
  expect(bad("not json"), "");
  ChoiceOptions tiny;
  tiny.max_length = 4;
  EXPECT_NE(choice_error_of(dir.file("bad.jsonl"), tiny).find("max_length"), std::string::npos);
  EXPECT_NE(choice_error_of(dir.file("missing.jsonl")).find("missing.jsonl"), std::string::npos);
}

}  // namespace
}  // namespace roformer
