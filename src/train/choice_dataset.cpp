#include "roformer/choice_dataset.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "roformer/error.h"
#include "roformer/tokenizer.h"
#include "train/jsonl_reader.h"

namespace roformer {

ChoiceDataset ChoiceDataset::from_jsonl(const std::string& path, const Tokenizer& tokenizer, const ChoiceOptions& o) {
  ROFORMER_CHECK(o.max_length >= 5, "choice data: max_length must be at least 5 ([CLS] a [SEP] b [SEP])");
  ChoiceDataset ds;
  ds.pad_id_ = tokenizer.pad_id();
  train::for_each_jsonl_object(path, o.max_file_bytes, [&](const nlohmann::json& j, int64_t, const std::string& where) {
    const auto context = j.find(o.context_field);
    ROFORMER_CHECK(context != j.end() && context->is_string(), where + "no string field \"" + o.context_field + "\"");
    const auto choices = j.find(o.choices_field);
    ROFORMER_CHECK(choices != j.end() && choices->is_array() && choices->size() >= 2,
                   where + "field \"" + o.choices_field + "\" must be an array of at least two strings");
    const auto n = static_cast<int64_t>(choices->size());
    if (ds.choices_ == 0) ds.choices_ = n;
    ROFORMER_CHECK(n == ds.choices_, where + "has " + std::to_string(n) + " choices, the records before it " +
                                         std::to_string(ds.choices_) + " (every record needs the same number)");
    const auto label = j.find(o.label_field);
    ROFORMER_CHECK(label != j.end() && label->is_number_integer() && label->get<int64_t>() >= 0 &&
                       label->get<int64_t>() < n,
                   where + "field \"" + o.label_field + "\" must be the index of the right choice, in [0, " +
                       std::to_string(n) + ")");
    ChoiceExample ex;
    ex.label = label->get<int64_t>();
    if (const auto split = j.find("split"); split != j.end()) {
      ROFORMER_CHECK(split->is_string(), where + "field \"split\" must be a string");
      ex.split = split->get<std::string>();
    }
    const auto text = context->get<std::string>();
    for (const auto& choice : *choices) {
      ROFORMER_CHECK(choice.is_string(), where + "every choice must be a string");
      const auto second = choice.get<std::string>();
      Encoding e;
      try {
        e = tokenizer.encode(text, second, Truncation::LongestFirst, o.max_length);
      } catch (const Error& err) {
        throw Error(where + err.what());
      }
      ex.pairs.push_back({std::move(e.input_ids), std::move(e.token_type_ids)});
    }
    ds.examples_.push_back(std::move(ex));
  });
  return ds;
}

const ChoiceExample& ChoiceDataset::example(int64_t i) const {
  ROFORMER_CHECK(i >= 0 && i < size(), "choice data: example " + std::to_string(i) + " out of range");
  return examples_[static_cast<std::size_t>(i)];
}

std::vector<int64_t> ChoiceDataset::indices_of_split(std::string_view name) const {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < size(); ++i)
    if (train::split_in(examples_[static_cast<std::size_t>(i)].split, name)) out.push_back(i);
  return out;
}

void ChoiceDataset::batch(std::span<const int64_t> indices, ChoiceBatch& b) const {
  b.batch = static_cast<int64_t>(indices.size());
  b.choices = choices_;
  b.seq_len = 0;
  for (int64_t i : indices)
    for (const ChoicePair& p : example(i).pairs) b.seq_len = std::max<int64_t>(b.seq_len, static_cast<int64_t>(p.ids.size()));
  const auto n = static_cast<std::size_t>(b.batch * b.choices * b.seq_len);
  b.input_ids.assign(n, pad_id_);
  b.token_type_ids.assign(n, 0);
  b.attention_mask.assign(n, 0);
  b.labels.clear();
  std::size_t row = 0;
  for (int64_t i : indices) {
    const ChoiceExample& ex = example(i);
    for (const ChoicePair& p : ex.pairs) {
      const auto at = static_cast<std::ptrdiff_t>(row * static_cast<std::size_t>(b.seq_len));
      std::copy(p.ids.begin(), p.ids.end(), b.input_ids.begin() + at);
      std::copy(p.types.begin(), p.types.end(), b.token_type_ids.begin() + at);
      std::fill_n(b.attention_mask.begin() + at, p.ids.size(), 1);
      ++row;
    }
    b.labels.push_back(ex.label);
  }
}

Batch ChoiceBatch::model_batch() {
  Batch b;
  const Shape shape{batch, choices, seq_len};
  b.input_ids = Tensor::view(input_ids.data(), shape, DType::I64);
  b.token_type_ids = Tensor::view(token_type_ids.data(), shape, DType::I64);
  b.attention_mask = Tensor::view(attention_mask.data(), shape, DType::I64);
  return b;
}

Tensor ChoiceBatch::labels_tensor() { return Tensor::view(labels.data(), {batch}, DType::I64); }

}  // namespace roformer
