#pragma once
// Tagged word sequences for token classification, read from JSONL, one
// object a line (an optional "split" field as in labelled_dataset.h), in
// either of two forms; field names are options.
//
// Words with one tag each, as HF's token-classification recipe reads them:
// {"tokens": [...], "tags": [...]}. Each word is tokenized on its own, its
// first sub-token carries the tag and the others, [CLS] and [SEP] get -100
// (ignored by the loss and the metrics).
//
// Text with entity spans, as annotation tools export them: {"text": "...",
// "entities": [[start, end, "PER"], ...]} (or objects {"start", "end",
// "label"}), start / end in characters (code points) of the text. The text is
// tokenized whole; a token inside an entity is tagged B-<label> (its first
// token) or I-<label>, every other token O, so every token is scored.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "roformer/model.h"

namespace roformer {

class Tokenizer;

struct TaggedOptions {
  int64_t max_length = 128;  // tokens per example with [CLS] and [SEP]; longer sentences are cut
  std::string tokens_field = "tokens";
  std::string tags_field = "tags";
  std::string text_field = "text";          // the span form
  std::string entities_field = "entities";
  std::vector<std::string> label_names;  // tag names in id order; empty: the tags found, sorted
  int64_t max_file_bytes = int64_t{1} << 31;
};

struct TaggedExample {
  std::vector<int64_t> ids;     // [CLS] ... [SEP]
  std::vector<int64_t> labels;  // same length; -100 where not scored
  std::string split;
};

struct TokenBatch {
  int64_t batch = 0, seq_len = 0;
  std::vector<int64_t> input_ids, attention_mask, labels;  // (batch, seq_len), right-padded; labels -100 on padding
  Batch model_batch();  // views (valid while the vectors are unchanged)
  Tensor labels_tensor();
};

class TaggedDataset {
 public:
  // Throws Error naming the file and line of a malformed record, an unknown
  // tag, or entity spans outside the text, empty or overlapping.
  static TaggedDataset from_jsonl(const std::string& path, const Tokenizer& tokenizer, const TaggedOptions& options = {});

  int64_t size() const { return static_cast<int64_t>(examples_.size()); }
  const TaggedExample& example(int64_t i) const;
  const std::vector<std::string>& label_names() const { return label_names_; }
  int64_t num_labels() const { return static_cast<int64_t>(label_names_.size()); }
  int64_t truncated() const { return truncated_; }  // sentences that lost words to max_length
  // As LabelledDataset::indices_of_split: one split or several comma-separated.
  std::vector<int64_t> indices_of_split(std::string_view name) const;

  void batch(std::span<const int64_t> indices, TokenBatch& out) const;

 private:
  std::vector<TaggedExample> examples_;
  std::vector<std::string> label_names_;
  int64_t pad_id_ = 0;
  int64_t truncated_ = 0;
};

}  // namespace roformer
