#include "roformer/labelled_dataset.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "roformer/data_rng.h"
#include "roformer/error.h"
#include "roformer/tokenizer.h"
#include "train/jsonl_reader.h"

namespace roformer {
namespace {

struct Record {
  std::string text, label, split;
  uint64_t key = 0;
  int64_t line = 0;
  bool integer_label = false;
};

uint64_t string_hash(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a, then a final mix
  for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return splitmix64_mix(h);
}

std::vector<Record> read_records(const std::string& path, const LabelledOptions& o) {
  std::vector<Record> records;
  train::for_each_jsonl_object(path, o.max_file_bytes, [&](const nlohmann::json& j, int64_t number, const std::string& where) {
    Record r;
    r.line = number;
    const auto text = j.find(o.text_field);
    ROFORMER_CHECK(text != j.end() && text->is_string(), where + "no string field \"" + o.text_field + "\"");
    r.text = text->get<std::string>();
    const auto label = j.find(o.label_field);
    ROFORMER_CHECK(label != j.end(), where + "no field \"" + o.label_field + "\"");
    if (label->is_string()) {
      r.label = label->get<std::string>();
    } else if (label->is_number_integer() && label->get<int64_t>() >= 0 && label->get<int64_t>() < (1 << 20)) {
      r.label = std::to_string(label->get<int64_t>());
      r.integer_label = true;
    } else {
      throw Error(where + "field \"" + o.label_field + "\" must be a string or a small non-negative integer");
    }
    if (const auto split = j.find("split"); split != j.end()) {
      ROFORMER_CHECK(split->is_string(), where + "field \"split\" must be a string");
      r.split = split->get<std::string>();
    }
    const auto id = j.find("id");
    r.key = string_hash(id != j.end() ? id->dump() : r.text);
    records.push_back(std::move(r));
  });
  return records;
}

std::vector<std::string> label_names_for(const std::vector<Record>& records) {
  const bool all_integers =
      !records.empty() && std::all_of(records.begin(), records.end(), [](const Record& r) { return r.integer_label; });
  if (all_integers) {
    int64_t top = 0;
    for (const auto& r : records) top = std::max<int64_t>(top, std::stoll(r.label));
    std::vector<std::string> names;
    for (int64_t i = 0; i <= top; ++i) names.push_back(std::to_string(i));
    return names;
  }
  std::vector<std::string> names;
  for (const auto& r : records) names.push_back(r.label);
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

}  // namespace

LabelledDataset LabelledDataset::from_jsonl(const std::string& path, const Tokenizer& tokenizer,
                                            const LabelledOptions& o) {
  ROFORMER_CHECK(o.max_length >= 3, "labelled data: max_length must be at least 3");
  ROFORMER_CHECK(o.stride >= 0 && o.stride < o.max_length - 2, "labelled data: stride must be in [0, max_length - 2)");
  const auto records = read_records(path, o);
  LabelledDataset ds;
  ds.pad_id_ = tokenizer.pad_id();
  ds.label_names_ = o.label_names.empty() ? label_names_for(records) : o.label_names;
  std::map<std::string, int64_t> label_ids;
  for (std::size_t i = 0; i < ds.label_names_.size(); ++i) {
    ROFORMER_CHECK(label_ids.emplace(ds.label_names_[i], static_cast<int64_t>(i)).second,
          "labelled data: label name '" + ds.label_names_[i] + "' given twice");
  }
  const int64_t content = o.max_length - 2;
  std::vector<int64_t> ids;
  for (const auto& r : records) {
    const std::string where = path + ":" + std::to_string(r.line) + ": ";
    const auto label = label_ids.find(r.label);
    ROFORMER_CHECK(label != label_ids.end(), where + "label '" + r.label + "' is not one of the label names");
    try {
      ids = tokenizer.tokenize_to_ids(r.text);
    } catch (const Error& e) {
      throw Error(where + e.what());
    }
    const auto total = static_cast<int64_t>(ids.size());
    ds.truncated_ += total > content;
    const int64_t step = content - o.stride;
    for (int64_t start = 0;; start += step) {
      LabelledExample ex;
      const int64_t n = std::min(content, total - start);
      ex.ids.reserve(static_cast<std::size_t>(n + 2));
      ex.ids.push_back(tokenizer.cls_id());
      ex.ids.insert(ex.ids.end(), ids.begin() + start, ids.begin() + start + n);
      ex.ids.push_back(tokenizer.sep_id());
      ex.label = label->second;
      ex.group = ds.records_;
      ex.key = r.key;
      ex.split = r.split;
      ds.examples_.push_back(std::move(ex));
      if (!o.windows || start + n >= total) break;
    }
    ++ds.records_;
  }
  return ds;
}

const LabelledExample& LabelledDataset::example(int64_t i) const {
  ROFORMER_CHECK(i >= 0 && i < size(), "labelled data: example " + std::to_string(i) + " out of range");
  return examples_[static_cast<std::size_t>(i)];
}

std::vector<int64_t> LabelledDataset::label_counts() const {
  std::vector<int64_t> counts(label_names_.size(), 0);
  for (const auto& e : examples_) ++counts[static_cast<std::size_t>(e.label)];
  return counts;
}

std::vector<int64_t> LabelledDataset::indices_of_split(std::string_view name) const {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < size(); ++i) {
    if (train::split_in(examples_[static_cast<std::size_t>(i)].split, name)) out.push_back(i);
  }
  return out;
}

DatasetSplit LabelledDataset::split(double valid_fraction, uint64_t seed) const {
  ROFORMER_CHECK(valid_fraction >= 0.0 && valid_fraction <= 1.0, "labelled data: valid_fraction must be in [0, 1]");
  const auto threshold = static_cast<uint64_t>(valid_fraction * 4294967296.0);
  DatasetSplit s;
  for (int64_t i = 0; i < size(); ++i) {
    const uint64_t bucket = splitmix64_mix(examples_[static_cast<std::size_t>(i)].key ^ splitmix64_mix(seed)) >> 32;
    (bucket < threshold ? s.valid : s.train).push_back(i);
  }
  return s;
}

ClassificationBatch LabelledDataset::batch(std::span<const int64_t> indices) const {
  ClassificationBatch b;
  b.batch = static_cast<int64_t>(indices.size());
  for (int64_t i : indices) b.seq_len = std::max<int64_t>(b.seq_len, static_cast<int64_t>(example(i).ids.size()));
  b.input_ids.assign(static_cast<std::size_t>(b.batch * b.seq_len), pad_id_);
  b.attention_mask.assign(b.input_ids.size(), 0);
  for (std::size_t r = 0; r < indices.size(); ++r) {
    const auto& ex = example(indices[r]);
    const auto row = r * static_cast<std::size_t>(b.seq_len);
    std::copy(ex.ids.begin(), ex.ids.end(), b.input_ids.begin() + static_cast<std::ptrdiff_t>(row));
    std::fill_n(b.attention_mask.begin() + static_cast<std::ptrdiff_t>(row), ex.ids.size(), 1);
    b.labels.push_back(ex.label);
  }
  return b;
}

Batch ClassificationBatch::model_batch() {
  Batch b;
  b.input_ids = Tensor::view(input_ids.data(), {batch, seq_len}, DType::I64);
  b.attention_mask = Tensor::view(attention_mask.data(), {batch, seq_len}, DType::I64);
  return b;
}

Tensor ClassificationBatch::labels_tensor() { return Tensor::view(labels.data(), {batch}, DType::I64); }

}  // namespace roformer
