#pragma once
// Labelled texts for sequence classification, read from JSONL: one object a
// line with a text and a label ({"text": ..., "label": ...}; the field names
// are options). Optional fields: "split" (kept, to select train/valid/test as
// the file defines them) and "id" (names the record for hash splits).
// Texts become [CLS] tokens [SEP], truncated to max_length, or cut into
// several windows of max_length that share the record's group.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "roformer/dataset.h"
#include "roformer/model.h"

namespace roformer {

class Tokenizer;

struct LabelledOptions {
  int64_t max_length = 128;  // tokens per example, [CLS] and [SEP] included (>= 3)
  std::string text_field = "text";
  std::string label_field = "label";
  // Label names in id order. Empty: the labels found, sorted (non-negative
  // integer labels keep their value as id: names "0", "1", ...).
  std::vector<std::string> label_names;
  bool windows = false;  // long texts: every window, not just the first
  int64_t stride = 0;    // tokens consecutive windows share
  int64_t max_file_bytes = int64_t{1} << 31;
};

struct LabelledExample {
  std::vector<int64_t> ids;  // [CLS] ... [SEP]
  int64_t label = 0;
  int64_t group = 0;  // record number (0-based); the windows of one record share it
  uint64_t key = 0;   // hash of the record's "id" (or of its text): stable across files
  std::string split;  // the record's "split" field, "" when absent
};

struct ClassificationBatch {
  int64_t batch = 0, seq_len = 0;
  std::vector<int64_t> input_ids, attention_mask;  // (batch, seq_len), right-padded
  std::vector<int64_t> labels;                     // (batch)
  Batch model_batch();  // views of the vectors (valid while they are unchanged)
  Tensor labels_tensor();
};

class LabelledDataset {
 public:
  // Throws Error naming the file and line of a malformed record or unknown label.
  static LabelledDataset from_jsonl(const std::string& path, const Tokenizer& tokenizer,
                                    const LabelledOptions& options = {});

  int64_t size() const { return static_cast<int64_t>(examples_.size()); }
  const LabelledExample& example(int64_t i) const;
  const std::vector<std::string>& label_names() const { return label_names_; }
  int64_t num_labels() const { return static_cast<int64_t>(label_names_.size()); }
  std::vector<int64_t> label_counts() const;
  int64_t records() const { return records_; }
  int64_t truncated() const { return truncated_; }  // records longer than one example

  // Examples whose record says "split": `name`, or any of several
  // comma-separated names ("valid,test"), in file order.
  std::vector<int64_t> indices_of_split(std::string_view name) const;
  // Examples split by record (all windows of a record on one side), by key hash.
  DatasetSplit split(double valid_fraction, uint64_t seed = 0) const;

  // Right-padded to the longest example of the batch; pad id from the tokenizer.
  ClassificationBatch batch(std::span<const int64_t> indices) const;

 private:
  std::vector<LabelledExample> examples_;
  std::vector<std::string> label_names_;
  int64_t pad_id_ = 0;
  int64_t records_ = 0;
  int64_t truncated_ = 0;
};

}  // namespace roformer
