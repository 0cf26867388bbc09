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

struct Entity {
  int64_t start = 0, end = 0;
  std::string label;
};

// One line: words with tags, or a text with entity spans.
struct Record {
  std::vector<std::string> words, tags;
  std::string text;
  std::vector<Entity> entities;
  bool spans = false;
  std::string split;
  int64_t line = 0;
};

std::vector<Entity> entity_list(const nlohmann::json& j, const std::string& field, int64_t length, const std::string& where) {
  const auto it = j.find(field);
  ROFORMER_CHECK(it != j.end() && it->is_array(), where + "no array field \"" + field + "\"");
  std::vector<Entity> out;
  for (const auto& v : *it) {
    Entity e;
    if (v.is_array() && v.size() == 3 && v[0].is_number_integer() && v[1].is_number_integer() && v[2].is_string()) {
      e = {v[0].get<int64_t>(), v[1].get<int64_t>(), v[2].get<std::string>()};
    } else if (v.is_object() && v.contains("start") && v.contains("end") && v.contains("label") &&
               v["start"].is_number_integer() && v["end"].is_number_integer() && v["label"].is_string()) {
      e = {v["start"].get<int64_t>(), v["end"].get<int64_t>(), v["label"].get<std::string>()};
    } else {
      throw Error(where + "each of \"" + field + "\" must be [start, end, \"label\"] or {\"start\", \"end\", \"label\"}");
    }
    ROFORMER_CHECK(0 <= e.start && e.start < e.end && e.end <= length && !e.label.empty(),
                   where + "entity [" + std::to_string(e.start) + ", " + std::to_string(e.end) + ", \"" + e.label +
                       "\"] must be a non-empty span of the text's " + std::to_string(length) +
                       " characters with a label");
    out.push_back(std::move(e));
  }
  std::sort(out.begin(), out.end(), [](const Entity& a, const Entity& b) { return a.start < b.start; });
  for (std::size_t k = 1; k < out.size(); ++k)
    ROFORMER_CHECK(out[k].start >= out[k - 1].end, where + "entities overlap at character " + std::to_string(out[k].start));
  return out;
}

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
    if (!j.contains(o.tokens_field) && j.contains(o.text_field)) {
      const auto text = j.find(o.text_field);
      ROFORMER_CHECK(text->is_string(), where + "field \"" + o.text_field + "\" must be a string");
      r.text = text->get<std::string>();
      r.spans = true;
      r.entities = entity_list(j, o.entities_field, count_code_points(r.text), where);
    } else {
      r.words = string_array(j, o.tokens_field, where);
      r.tags = string_array(j, o.tags_field, where);
      ROFORMER_CHECK(r.words.size() == r.tags.size(), where + std::to_string(r.words.size()) + " words but " +
                                                 std::to_string(r.tags.size()) + " tags");
      ROFORMER_CHECK(!r.words.empty(), where + "a record with no words");
    }
    if (const auto split = j.find("split"); split != j.end()) {
      ROFORMER_CHECK(split->is_string(), where + "field \"split\" must be a string");
      r.split = split->get<std::string>();
    }
    records.push_back(std::move(r));
  });
  ROFORMER_CHECK(!records.empty(), path + ": no records");
  return records;
}

// The span form's tokens with a tag each: B- on an entity's first token, I-
// on the rest, O outside. Throws on invalid UTF-8 (the caller adds the line).
void tag_tokens(const Record& r, const Tokenizer& tokenizer, std::vector<std::string>& tokens, std::vector<std::string>& tags) {
  const TokenizedText t = tokenizer.tokenize_with_offsets(r.text);
  tokens = t.tokens;
  tags.assign(tokens.size(), "O");
  std::size_t e = 0;
  int64_t tagged_in = -1;  // the entity that tagged the last token
  for (std::size_t k = 0; k < tokens.size(); ++k) {
    const CharSpan s = t.offsets[k];
    while (e < r.entities.size() && r.entities[e].end <= s.start) ++e;
    if (e == r.entities.size() || s.end <= r.entities[e].start || s.start == s.end) continue;
    tags[k] = (tagged_in == static_cast<int64_t>(e) ? "I-" : "B-") + r.entities[e].label;
    tagged_in = static_cast<int64_t>(e);
  }
}

}  // namespace

TaggedDataset TaggedDataset::from_jsonl(const std::string& path, const Tokenizer& tokenizer, const TaggedOptions& o) {
  ROFORMER_CHECK(o.max_length >= 3, "tagged data: max_length must be at least 3");
  const auto records = read_records(path, o);
  TaggedDataset ds;
  ds.pad_id_ = tokenizer.pad_id();
  ds.label_names_ = o.label_names;
  if (ds.label_names_.empty()) {
    for (const auto& r : records) {
      ds.label_names_.insert(ds.label_names_.end(), r.tags.begin(), r.tags.end());
      if (r.spans) ds.label_names_.push_back("O");
      for (const auto& e : r.entities) {
        ds.label_names_.push_back("B-" + e.label);
        ds.label_names_.push_back("I-" + e.label);
      }
    }
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
    // The span form: its tokens are the words, each a whole piece of its own.
    std::vector<std::string> span_tokens, span_tags;
    if (r.spans) {
      try {
        tag_tokens(r, tokenizer, span_tokens, span_tags);
      } catch (const Error& e) {
        throw Error(where + e.what());
      }
    }
    const std::vector<std::string>& words = r.spans ? span_tokens : r.words;
    const std::vector<std::string>& tags = r.spans ? span_tags : r.tags;
    bool cut = false;
    for (std::size_t w = 0; w < words.size() && !cut; ++w) {
      const auto tag = ids_of.find(tags[w]);
      ROFORMER_CHECK(tag != ids_of.end(), where + "tag '" + tags[w] + "' is not one of the label names");
      std::vector<std::string> pieces;
      if (r.spans) {
        pieces = {words[w]};
      } else {
        try {
          pieces = tokenizer.tokenize(words[w]);
        } catch (const Error& e) {
          throw Error(where + e.what());
        }
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
