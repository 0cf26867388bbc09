// Tagged JSONL for token classification: first sub-token labelling as HF's
// recipe does, truncation, batches, the committed POS sample, bad records.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "data_test_util.h"
#include "roformer/error.h"
#include "roformer/tagged_dataset.h"
#include "roformer/tokenizer.h"

namespace roformer {
namespace {

using data_test::write_file;

TEST(DataTagged, FirstSubTokenCarriesTheTag) {
  const auto& tok = data_test::sample_tokenizer();
  testing::TempDir tmp;
  const std::string path = tmp.file("t.jsonl");
  write_file(path, R"({"tokens": ["The", "unbelievably", "cat"], "tags": ["at", "rb", "nn"], "split": "valid"})" "\n");
  const auto ds = TaggedDataset::from_jsonl(path, tok);
  ASSERT_EQ(ds.size(), 1);
  EXPECT_EQ(ds.label_names(), (std::vector<std::string>{"at", "nn", "rb"}));
  const auto& ex = ds.example(0);
  // Expected: [CLS], each word's pieces (tag on the first only), [SEP].
  std::vector<int64_t> ids{tok.cls_id()}, labels{-100};
  const std::vector<std::pair<std::string, int64_t>> words{{"The", 0}, {"unbelievably", 2}, {"cat", 1}};
  for (const auto& [w, tag] : words) {
    const auto pieces = tok.tokenize(w);
    ASSERT_FALSE(pieces.empty());
    for (std::size_t p = 0; p < pieces.size(); ++p) {
      ids.push_back(tok.token_to_id(pieces[p]));
      labels.push_back(p == 0 ? tag : -100);
    }
  }
  ids.push_back(tok.sep_id());
  labels.push_back(-100);
  EXPECT_EQ(ex.ids, ids);
  EXPECT_EQ(ex.labels, labels);
  EXPECT_GT(ids.size(), 5u) << "'unbelievably' should need several pieces for this to test anything";
  EXPECT_EQ(ex.split, "valid");
}

TEST(DataTagged, TruncatesAndPadsBatches) {
  const auto& tok = data_test::sample_tokenizer();
  testing::TempDir tmp;
  const std::string path = tmp.file("t.jsonl");
  write_file(path, R"({"tokens": ["a", "b", "c", "d", "e", "f"], "tags": ["x", "y", "x", "y", "x", "y"]})" "\n"
                   R"({"tokens": ["a"], "tags": ["y"]})" "\n");
  TaggedOptions o;
  o.max_length = 5;
  const auto ds = TaggedDataset::from_jsonl(path, tok, o);
  EXPECT_EQ(ds.truncated(), 1);
  EXPECT_EQ(ds.example(0).ids.size(), 5u);
  TokenBatch b;
  const std::vector<int64_t> idx{0, 1};
  ds.batch(idx, b);
  EXPECT_EQ(b.batch, 2);
  EXPECT_EQ(b.seq_len, 5);
  EXPECT_EQ(b.attention_mask, (std::vector<int64_t>{1, 1, 1, 1, 1, 1, 1, 1, 0, 0}));
  EXPECT_EQ(b.labels[8], -100);
  EXPECT_EQ(b.labels[9], -100);
  EXPECT_EQ(b.input_ids[9], tok.pad_id());
  EXPECT_EQ(b.model_batch().input_ids.shape(), (Shape{2, 5}));
}

TEST(DataTagged, LoadsThePosSample) {
  const auto& tok = data_test::sample_tokenizer();
  TaggedOptions o;
  o.max_length = 64;
  const auto ds = TaggedDataset::from_jsonl(data_test::sample_path("pos_sample.jsonl"), tok, o);
  EXPECT_EQ(ds.size(), 1200);
  EXPECT_EQ(ds.indices_of_split("train").size(), 1000u);
  EXPECT_EQ(ds.indices_of_split("valid").size(), 200u);
  EXPECT_EQ(ds.indices_of_split("train,valid").size(), 1200u);
  EXPECT_GT(ds.num_labels(), 40);
  const auto& names = ds.label_names();
  for (const char* tag : {"nn", "at", "in", "vbd"})
    EXPECT_TRUE(std::find(names.begin(), names.end(), tag) != names.end()) << tag;
  int64_t scored = 0;
  for (int64_t i = 0; i < ds.size(); ++i)
    for (int64_t l : ds.example(i).labels) scored += l >= 0;
  EXPECT_GT(scored, 15000);
}

// The span form: the text tokenized whole, tags from the entities' character
// spans (code points: "Zoë" is 3), every token scored.
TEST(DataTagged, EntitySpansTagTheirTokens) {
  const auto& tok = data_test::sample_tokenizer();
  testing::TempDir tmp;
  const std::string path = tmp.file("spans.jsonl");
  const std::string text = "Zoë Smith lives in New York.";
  write_file(path, R"({"text": "Zoë Smith lives in New York.", "entities": [[0, 9, "PER"], {"start": 19, "end": 27, "label": "LOC"}], "split": "valid"})"
                   "\n"
                   R"({"text": "nothing here", "entities": []})"
                   "\n");
  const auto ds = TaggedDataset::from_jsonl(path, tok);
  ASSERT_EQ(ds.size(), 2);
  EXPECT_EQ(ds.label_names(), (std::vector<std::string>{"B-LOC", "B-PER", "I-LOC", "I-PER", "O"}));
  const auto& ex = ds.example(0);
  const TokenizedText t = tok.tokenize_with_offsets(text);
  ASSERT_EQ(ex.ids.size(), t.tokens.size() + 2);
  EXPECT_EQ(ex.labels.front(), -100);
  EXPECT_EQ(ex.labels.back(), -100);
  std::vector<std::string> tags;
  for (std::size_t k = 0; k < t.tokens.size(); ++k) {
    EXPECT_EQ(ex.ids[k + 1], tok.token_to_id(t.tokens[k]));
    tags.push_back(ds.label_names()[static_cast<std::size_t>(ex.labels[k + 1])]);
  }
  // By hand: the tokens of "Zoë Smith", then "lives in", then "New York", then ".".
  std::vector<std::string> expected;
  bool in_loc = false;
  for (std::size_t k = 0; k < t.tokens.size(); ++k) {
    const int64_t at = t.offsets[k].start;
    if (at < 9) {
      expected.push_back(k == 0 ? "B-PER" : "I-PER");
    } else if (at >= 19 && at < 27) {
      expected.push_back(in_loc ? "I-LOC" : "B-LOC");
      in_loc = true;
    } else {
      expected.push_back("O");
    }
  }
  EXPECT_EQ(tags, expected);
  EXPECT_EQ(std::count(tags.begin(), tags.end(), "B-PER"), 1);
  EXPECT_EQ(std::count(tags.begin(), tags.end(), "B-LOC"), 1);
  EXPECT_GE(std::count(tags.begin(), tags.end(), "I-LOC"), 1) << "New York is two words";
  EXPECT_EQ(tags.back(), "O") << "the full stop";
  EXPECT_EQ(ex.split, "valid");
  for (int64_t label : ds.example(1).labels) EXPECT_TRUE(label == -100 || ds.label_names()[static_cast<std::size_t>(label)] == "O");
  // An entity that starts inside a word tags the word's token.
  write_file(path, R"({"text": "the cats sat", "entities": [[5, 8, "ANIMAL"]]})" "\n");
  const auto inside = TaggedDataset::from_jsonl(path, tok);
  const auto& labels = inside.example(0).labels;
  EXPECT_EQ(std::count_if(labels.begin(), labels.end(),
                          [&](int64_t l) { return l >= 0 && inside.label_names()[static_cast<std::size_t>(l)] == "B-ANIMAL"; }),
            1);
}

TEST(DataTagged, BadRecordsAreNamedErrors) {
  const auto& tok = data_test::sample_tokenizer();
  testing::TempDir tmp;
  auto error_of = [&](const std::string& content, TaggedOptions o = {}) {
    const std::string path = tmp.file("bad.jsonl");
    write_file(path, content);
    try {
      TaggedDataset::from_jsonl(path, tok, o);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of(R"({"tokens": ["a", "b"], "tags": ["x"]})").find("2 words but 1 tags"), std::string::npos);
  EXPECT_NE(error_of("{not json\n").find("bad.jsonl:1"), std::string::npos);
  EXPECT_NE(error_of(R"({"tokens": "a b", "tags": ["x"]})").find("no array field"), std::string::npos);
  EXPECT_NE(error_of(R"({"tokens": [1], "tags": ["x"]})").find("strings only"), std::string::npos);
  EXPECT_NE(error_of(R"({"tokens": [], "tags": []})").find("no words"), std::string::npos);
  EXPECT_NE(error_of("").find("no records"), std::string::npos);
  TaggedOptions named;
  named.label_names = {"x"};
  EXPECT_NE(error_of(R"({"tokens": ["a"], "tags": ["z"]})" "\n", named).find("tag 'z'"), std::string::npos);
  EXPECT_NE(error_of(std::string("{\"tokens\": [\"\xff\"], \"tags\": [\"x\"]}\n")).find("bad.jsonl:1"), std::string::npos);
  // The span form.
  EXPECT_NE(error_of(R"({"text": "a b", "entities": [[0, 2, "X"], [1, 3, "Y"]]})").find("overlap"), std::string::npos);
  EXPECT_NE(error_of(R"({"text": "é", "entities": [[0, 2, "X"]]})").find("1 characters"), std::string::npos);
  EXPECT_NE(error_of(R"({"text": "ab", "entities": [[1, 1, "X"]]})").find("non-empty span"), std::string::npos);
  EXPECT_NE(error_of(R"({"text": "ab", "entities": [[0, 1]]})").find("[start, end, \"label\"]"), std::string::npos);
  EXPECT_NE(error_of(R"({"text": "ab"})").find("no array field \"entities\""), std::string::npos);
  EXPECT_NE(error_of(R"({"text": 3, "entities": []})").find("must be a string"), std::string::npos);
  EXPECT_NE(error_of(std::string("{\"text\": \"\xff\", \"entities\": []}\n")).find("bad.jsonl:1"), std::string::npos);
}

}  // namespace
}  // namespace roformer
