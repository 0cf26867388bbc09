// Labelled JSONL data for classification: the committed spam sample, label
// naming, truncation and windows, splits, batches and malformed records.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "data_test_util.h"
#include "roformer/error.h"
#include "roformer/labelled_dataset.h"

namespace roformer {
namespace {

using data_test::write_file;

TEST(DataLabelled, LoadsTheSpamSample) {
  const auto& tok = data_test::sample_tokenizer();
  LabelledOptions o;
  o.max_length = 64;
  const auto ds = LabelledDataset::from_jsonl(data_test::sample_path("spam_sample.jsonl"), tok, o);
  EXPECT_EQ(ds.records(), 300);
  EXPECT_EQ(ds.size(), 300);
  EXPECT_EQ(ds.label_names(), (std::vector<std::string>{"ham", "spam"}));
  EXPECT_EQ(ds.label_counts(), (std::vector<int64_t>{200, 100}));
  EXPECT_GT(ds.truncated(), 200);
  for (int64_t i = 0; i < ds.size(); ++i) {
    const auto& ex = ds.example(i);
    ASSERT_LE(ex.ids.size(), 64u);
    EXPECT_EQ(ex.ids.front(), tok.cls_id());
    EXPECT_EQ(ex.ids.back(), tok.sep_id());
  }
  const auto train = ds.indices_of_split("train"), valid = ds.indices_of_split("valid"),
             test = ds.indices_of_split("test");
  EXPECT_EQ(train.size() + valid.size() + test.size(), 300u);
  EXPECT_GT(valid.size(), 5u);
  // Several comma-separated splits: their examples, in file order.
  std::vector<int64_t> both = valid;
  both.insert(both.end(), test.begin(), test.end());
  std::sort(both.begin(), both.end());
  EXPECT_EQ(ds.indices_of_split("valid,test"), both);
  EXPECT_EQ(ds.indices_of_split("test,valid"), both);
  EXPECT_EQ(ds.indices_of_split("valid,"), valid);  // every record here names its split
  EXPECT_TRUE(ds.indices_of_split("val").empty());  // names match whole
  // The first example is the tokenizer's own truncated encoding of the first record.
  std::ifstream in(data_test::sample_path("spam_sample.jsonl"));
  std::string first;
  std::getline(in, first);
  const auto text = nlohmann::json::parse(first).at("text").get<std::string>();
  EXPECT_EQ(ds.example(0).ids, tok.encode(text, std::nullopt, Truncation::LongestFirst, 64).input_ids);
}

TEST(DataLabelled, WindowsCoverLongTextsAndShareTheirGroup) {
  testing::TempDir dir;
  const auto& tok = data_test::sample_tokenizer();
  std::string long_text;
  for (int i = 0; i < 50; ++i) long_text += "the jury said it was a good election . ";
  const std::string path = dir.file("d.jsonl");
  write_file(path, "{\"id\": \"a\", \"text\": \"" + long_text + "\", \"label\": 1}\n\n{\"text\": \"short\", \"label\": 0}\n");
  LabelledOptions o;
  o.max_length = 32;
  o.windows = true;
  o.stride = 10;
  const auto ds = LabelledDataset::from_jsonl(path, tok, o);
  EXPECT_EQ(ds.label_names(), (std::vector<std::string>{"0", "1"}));
  EXPECT_EQ(ds.records(), 2);
  const auto words = tok.tokenize(long_text);
  std::vector<int64_t> all;
  for (const auto& w : words) all.push_back(tok.token_to_id(w));
  // Windows of 30 content tokens, each starting 20 after the previous one.
  int64_t windows = 0;
  for (int64_t i = 0; i < ds.size(); ++i) {
    const auto& ex = ds.example(i);
    if (ex.group != 0) continue;
    EXPECT_EQ(ex.label, 1);
    const auto start = static_cast<std::ptrdiff_t>(20 * windows);
    const std::vector<int64_t> content(ex.ids.begin() + 1, ex.ids.end() - 1);
    const auto n = static_cast<std::ptrdiff_t>(content.size());
    EXPECT_EQ(content, std::vector<int64_t>(all.begin() + start, all.begin() + start + n));
    ++windows;
  }
  EXPECT_EQ(windows, (static_cast<int64_t>(all.size()) - 30 + 19) / 20 + 1);
  EXPECT_EQ(ds.example(ds.size() - 1).group, 1);
  // A record's windows stay on one side of a hash split.
  for (double f : {0.3, 0.5, 0.7}) {
    const auto s = ds.split(f, 3);
    std::set<int64_t> groups_train, groups_valid;
    for (int64_t i : s.train) groups_train.insert(ds.example(i).group);
    for (int64_t i : s.valid) groups_valid.insert(ds.example(i).group);
    for (int64_t g : groups_train) EXPECT_FALSE(groups_valid.count(g));
  }
  // Padded batches.
  const std::vector<int64_t> idx{0, ds.size() - 1};
  auto b = ds.batch(idx);
  EXPECT_EQ(b.batch, 2);
  EXPECT_EQ(b.seq_len, 32);
  EXPECT_EQ(b.labels, (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(b.attention_mask[32 + 2], 1);  // [CLS] short [SEP]
  EXPECT_EQ(b.attention_mask[32 + 3], 0);
  EXPECT_EQ(b.input_ids[32 + 3], tok.pad_id());
  EXPECT_EQ(b.model_batch().input_ids.shape(), (Shape{2, 32}));
  EXPECT_EQ(b.labels_tensor().shape(), (Shape{2}));
}

TEST(DataLabelled, GivenLabelNamesAndMalformedRecords) {
  testing::TempDir dir;
  const auto& tok = data_test::sample_tokenizer();
  const std::string path = dir.file("x.jsonl");
  LabelledOptions o;
  o.label_names = {"spam", "ham"};
  write_file(path, "{\"text\": \"a\", \"label\": \"ham\"}\n{\"text\": \"b\", \"label\": \"spam\"}\n");
  const auto ds = LabelledDataset::from_jsonl(path, tok, o);
  EXPECT_EQ(ds.example(0).label, 1);
  EXPECT_EQ(ds.example(1).label, 0);

  auto expect_error = [&](const std::string& content, const std::string& fragment, const LabelledOptions& opt) {
    write_file(path, content);
    try {
      LabelledDataset::from_jsonl(path, tok, opt);
      ADD_FAILURE() << "accepted: " << content;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  expect_error("{\"text\": \"a\", \"label\": \"other\"}\n", "x.jsonl:1: label 'other'", o);
  const LabelledOptions plain;
  expect_error("{\"text\": \"a\", \"label\": \"x\"}\n{\"text\": \"a\", \"label\": \"x\"\n", "x.jsonl:2: invalid JSON",
               plain);
  expect_error("[1, 2]\n", "expected a JSON object", plain);
  expect_error("{\"label\": \"x\"}\n", "no string field \"text\"", plain);
  expect_error("{\"text\": \"a\"}\n", "no field \"label\"", plain);
  expect_error("{\"text\": \"a\", \"label\": -3}\n", "small non-negative integer", plain);
  expect_error("{\"text\": \"a\", \"label\": 1.5}\n", "small non-negative integer", plain);
  expect_error("{\"text\": \"bad \\u00ff \", \"label\": \"x\", \"split\": 3}\n", "\"split\" must be a string", plain);
  LabelledOptions bad_len;
  bad_len.max_length = 2;
  EXPECT_THROW(LabelledDataset::from_jsonl(path, tok, bad_len), Error);
  EXPECT_THROW(LabelledDataset::from_jsonl(dir.file("missing.jsonl"), tok, plain), Error);
  LabelledOptions dup;
  dup.label_names = {"x", "x"};
  write_file(path, "{\"text\": \"a\", \"label\": \"x\"}\n");
  EXPECT_THROW(LabelledDataset::from_jsonl(path, tok, dup), Error);
}

}  // namespace
}  // namespace roformer
