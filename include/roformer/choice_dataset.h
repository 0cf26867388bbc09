#pragma once
// Multiple-choice examples for RoFormerForMultipleChoice, read from JSONL:
// one object a line with a context, its candidate continuations and the
// index of the right one ({"context": ..., "choices": [...], "label": k};
// the field names are options), optionally "split" and "id". Every record
// offers the same number of choices (a batch is (batch, choices, length)).
// Each (context, choice) pair becomes [CLS] context [SEP] choice [SEP] with
// token types 0 / 1, truncated longest-first to max_length, as HF's
// tokenizer(contexts, choices, truncation=True, max_length=...) does in its
// multiple-choice recipes.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "roformer/model.h"

namespace roformer {

class Tokenizer;

struct ChoiceOptions {
  int64_t max_length = 128;  // tokens per (context, choice) pair, specials included
  std::string context_field = "context";
  std::string choices_field = "choices";
  std::string label_field = "label";
  int64_t max_file_bytes = int64_t{1} << 31;
};

// One encoded (context, choice) pair.
struct ChoicePair {
  std::vector<int64_t> ids, types;
};

struct ChoiceExample {
  std::vector<ChoicePair> pairs;  // one per choice, in the record's order
  int64_t label = 0;              // index of the right choice
  std::string split;              // the record's "split" field, "" when absent
};

struct ChoiceBatch {
  int64_t batch = 0, choices = 0, seq_len = 0;
  // (batch, choices, seq_len), right-padded to the longest pair of the batch.
  std::vector<int64_t> input_ids, token_type_ids, attention_mask;
  std::vector<int64_t> labels;  // (batch)
  Batch model_batch();          // views of the vectors (valid while they are unchanged)
  Tensor labels_tensor();
};

class ChoiceDataset {
 public:
  // Throws Error naming the file and line of a malformed record: a missing or
  // non-string field, fewer than two choices, a choice count that differs
  // from the first record's, a label outside [0, choices), invalid UTF-8, or
  // a pair that cannot be truncated to max_length.
  static ChoiceDataset from_jsonl(const std::string& path, const Tokenizer& tokenizer, const ChoiceOptions& options = {});

  int64_t size() const { return static_cast<int64_t>(examples_.size()); }
  int64_t choices() const { return choices_; }
  const ChoiceExample& example(int64_t i) const;
  // Examples whose record says "split": `name`, or any of several
  // comma-separated names ("valid,test"), in file order.
  std::vector<int64_t> indices_of_split(std::string_view name) const;
  // The examples as one batch; pad id from the tokenizer.
  void batch(std::span<const int64_t> indices, ChoiceBatch& out) const;

 private:
  std::vector<ChoiceExample> examples_;
  int64_t choices_ = 0;
  int64_t pad_id_ = 0;
};

}  // namespace roformer
