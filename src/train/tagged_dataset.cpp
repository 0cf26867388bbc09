#include "roformer/tagged_dataset.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "roformer/error.h"
#include "roformer/tokenizer.h"
#include "train/jsonl_reader.h"

namespace roformer {
namespace {

struct Record {
  std::vector<std::string> words, tags;
  std::string split;
  int64_t line = 0;
};

std::vector<std::string> string_array(const nlohmann::json& j, const std::string& field, const std::string& where) {
  const auto it = j.find(field);
  ROFORMER_CHECK(it != j.end() && it->is_array(), where + "no array field \"" + field + "\"");
  std::vector<std::string> out;
  for (const auto& v : *it) {
    ROFORMER_CHECK(v.is_string(), where + "field \"" + field + "\" must hold strings only");
    out.push_back(v.get<std::string>());
  }
  return out;
}

std::vector<Record> read_records(const std::string& path, const TaggedOptions& o) {
  std::vector<Record> records;
  train::for_each_jsonl_object(path, o.max_file_bytes, [&](const nlohmann::json& j, int64_t number, const std::string& where) {
    Record r;
    r.line = number;
    r.words = string_array(j, o.tokens_field, where);
    r.tags = string_array(j, o.tags_field, where);
    ROFORMER_CHECK(r.words.size() == r.tags.size(), where + std::to_string(r.words.size()) + " words but " +
                                               std::to_string(r.tags.size()) + " tags");
    ROFORMER_CHECK(!r.words.empty(), where + "a record with no words");
    if (const auto split = j.find("split"); split != j.end()) {
      ROFORMER_CHECK(split->is_string(), where + "field \"split\" must be a string");
      r.split = split->get<std::string>();
    }
    records.push_back(std::move(r));
  });
  ROFORMER_CHECK(!records.empty(), path + ": no records");
  return records;
}

}  // namespace

TaggedDataset TaggedDataset::from_jsonl(const std::string& path, const Tokenizer& tokenizer, const TaggedOptions& o) {
  ROFORMER_CHECK(o.max_length >= 3, "tagged data: max_length must be at least 3");
  const auto records = read_records(path, o);
  TaggedDataset ds;
  ds.pad_id_ = tokenizer.pad_id();
  ds.label_names_ = o.label_names;
  if (ds.label_names_.empty()) {
    for (const auto& r : records) ds.label_names_.insert(ds.label_names_.end(), r.tags.begin(), r.tags.end());
    std::sort(ds.label_names_.begin(), ds.label_names_.end());
    ds.label_names_.erase(std::unique(ds.label_names_.begin(), ds.label_names_.end()), ds.label_names_.end());
  }
  std::map<std::string, int64_t> ids_of;
  for (std::size_t i = 0; i < ds.label_names_.size(); ++i)
    ROFORMER_CHECK(ids_of.emplace(ds.label_names_[i], static_cast<int64_t>(i)).second,
          "tagged data: tag name '" + ds.label_names_[i] + "' given twice");
  const auto content = static_cast<std::size_t>(o.max_length - 2);
  for (const auto& r : records) {
    const std::string where = path + ":" + std::to_string(r.line) + ": ";
    TaggedExample ex;
    ex.split = r.split;
    ex.ids.push_back(tokenizer.cls_id());
    ex.labels.push_back(-100);
    bool cut = false;
    for (std::size_t w = 0; w < r.words.size() && !cut; ++w) {
      const auto tag = ids_of.find(r.tags[w]);
      ROFORMER_CHECK(tag != ids_of.end(), where + "tag '" + r.tags[w] + "' is not one of the label names");
      std::vector<std::string> pieces;
      try {
        pieces = tokenizer.tokenize(r.words[w]);
      } catch (const Error& e) {
        throw Error(where + e.what());
      }
      for (std::size_t p = 0; p < pieces.size(); ++p) {
        if (ex.ids.size() - 1 == content) {
          cut = true;
          break;
        }
        ex.ids.push_back(tokenizer.token_to_id(pieces[p]));
        ex.labels.push_back(p == 0 ? tag->second : -100);
      }
    }
    ds.truncated_ += cut;
    ex.ids.push_back(tokenizer.sep_id());
    ex.labels.push_back(-100);
    ds.examples_.push_back(std::move(ex));
  }
  return ds;
}

const TaggedExample& TaggedDataset::example(int64_t i) const {
  ROFORMER_CHECK(i >= 0 && i < size(), "tagged data: example " + std::to_string(i) + " out of range");
  return examples_[static_cast<std::size_t>(i)];
}

std::vector<int64_t> TaggedDataset::indices_of_split(std::string_view name) const {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < size(); ++i)
    if (train::split_in(examples_[static_cast<std::size_t>(i)].split, name)) out.push_back(i);
  return out;
}

void TaggedDataset::batch(std::span<const int64_t> indices, TokenBatch& b) const {
  b.batch = static_cast<int64_t>(indices.size());
  b.seq_len = 0;
  for (int64_t i : indices) b.seq_len = std::max<int64_t>(b.seq_len, static_cast<int64_t>(example(i).ids.size()));
  const auto n = static_cast<std::size_t>(b.batch * b.seq_len);
  b.input_ids.assign(n, pad_id_);
  b.attention_mask.assign(n, 0);
  b.labels.assign(n, -100);
  for (std::size_t r = 0; r < indices.size(); ++r) {
    const auto& ex = example(indices[r]);
    const auto row = static_cast<std::ptrdiff_t>(r * static_cast<std::size_t>(b.seq_len));
    std::copy(ex.ids.begin(), ex.ids.end(), b.input_ids.begin() + row);
    std::copy(ex.labels.begin(), ex.labels.end(), b.labels.begin() + row);
    std::fill_n(b.attention_mask.begin() + row, ex.ids.size(), 1);
  }
}

Batch TokenBatch::model_batch() {
  Batch b;
  b.input_ids = Tensor::view(input_ids.data(), {batch, seq_len}, DType::I64);
  b.attention_mask = Tensor::view(attention_mask.data(), {batch, seq_len}, DType::I64);
  return b;
}

Tensor TokenBatch::labels_tensor() { return Tensor::view(labels.data(), {batch, seq_len}, DType::I64); }

}  // namespace roformer
