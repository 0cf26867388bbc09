#include "roformer/qa_dataset.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "roformer/error.h"
#include "train/jsonl_reader.h"

namespace roformer {
namespace {

// Byte offset of code point `n` of UTF-8 `s` (s.size() for n = the count of
// code points); -1 when s has fewer code points.
int64_t byte_of_code_point(std::string_view s, int64_t n) {
  int64_t seen = 0;
  for (std::size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || (static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (seen == n) return static_cast<int64_t>(i);
      ++seen;
    }
  }
  return -1;
}

}  // namespace

std::string QaRecord::text_of(int64_t first, int64_t last) const {
  const auto n = static_cast<int64_t>(offsets.size());
  ROFORMER_CHECK(first >= 0 && first <= last && last < n, "qa data: tokens " + std::to_string(first) + ".." +
                                                               std::to_string(last) + " of a context of " +
                                                               std::to_string(n));
  return slice_code_points(context, offsets[static_cast<std::size_t>(first)].start,
                           offsets[static_cast<std::size_t>(last)].end);
}

std::vector<QaWindow> qa_windows(const std::vector<int64_t>& question, const std::vector<int64_t>& context,
                                 int64_t max_length, int64_t stride, int64_t cls_id, int64_t sep_id) {
  const auto room = max_length - 3 - static_cast<int64_t>(question.size());  // context tokens per window
  ROFORMER_CHECK(stride >= 0 && room > stride && room > 0,
                 "the question takes " + std::to_string(question.size()) + " tokens: too many for max_length " +
                     std::to_string(max_length) + " with stride " + std::to_string(stride) +
                     " (raise max_length or lower the stride)");
  const auto n = static_cast<int64_t>(context.size());
  std::vector<QaWindow> windows;
  for (int64_t w0 = 0;; w0 += room - stride) {
    const int64_t len = std::min(room, n - w0);
    QaWindow w;
    w.ids.push_back(cls_id);
    w.ids.insert(w.ids.end(), question.begin(), question.end());
    w.ids.push_back(sep_id);
    w.context_begin = static_cast<int64_t>(w.ids.size());
    w.context_offset = w0;
    w.ids.insert(w.ids.end(), context.begin() + w0, context.begin() + w0 + len);
    w.context_end = static_cast<int64_t>(w.ids.size());
    w.ids.push_back(sep_id);
    w.types.assign(static_cast<std::size_t>(w.context_begin), 0);
    w.types.resize(w.ids.size(), 1);
    windows.push_back(std::move(w));
    if (w0 + len >= n) break;
  }
  return windows;
}

QaDataset QaDataset::from_jsonl(const std::string& path, const Tokenizer& tok, const QaOptions& o) {
  ROFORMER_CHECK(o.max_length >= 5, "qa data: max_length must be at least 5");
  ROFORMER_CHECK(o.stride >= 0, "qa data: stride must not be negative");
  QaDataset ds;
  ds.pad_id_ = tok.pad_id();
  train::for_each_jsonl_object(path, o.max_file_bytes, [&](const nlohmann::json& j, int64_t, const std::string& where) {
    auto text_field = [&](const std::string& name) {
      const auto it = j.find(name);
      ROFORMER_CHECK(it != j.end() && it->is_string(), where + "no string field \"" + name + "\"");
      return it->get<std::string>();
    };
    const std::string question = text_field(o.question_field), context = text_field(o.context_field);
    const auto answers = j.find(o.answers_field);
    ROFORMER_CHECK(answers != j.end() && answers->is_object(),
                   where + "field \"" + o.answers_field + "\" must be an object {\"text\": [...], \"answer_start\": [...]}");
    const auto texts = answers->find("text"), starts = answers->find("answer_start");
    ROFORMER_CHECK(texts != answers->end() && starts != answers->end() && texts->is_array() && starts->is_array() &&
                       texts->size() == starts->size(),
                   where + "\"" + o.answers_field + "\" needs \"text\" and \"answer_start\" arrays of one length");
    QaRecord record;
    int64_t answer_start = 0, answer_stop = 0;  // code points of the first answer
    for (std::size_t a = 0; a < texts->size(); ++a) {
      ROFORMER_CHECK((*texts)[a].is_string() && (*starts)[a].is_number_integer(),
                     where + "answer texts must be strings and answer_start integers");
      const auto answer = (*texts)[a].get<std::string>();
      const int64_t begin = byte_of_code_point(context, (*starts)[a].get<int64_t>());
      ROFORMER_CHECK(!answer.empty() && (*starts)[a].get<int64_t>() >= 0 && begin >= 0 &&
                         context.compare(static_cast<std::size_t>(begin), answer.size(), answer) == 0,
                     where + "answer " + std::to_string(a) + " (\"" + answer.substr(0, 40) +
                         "\") is not in the context at its answer_start");
      if (a == 0) {
        answer_start = (*starts)[a].get<int64_t>();
        answer_stop = answer_start + count_code_points(answer);
      }
      record.answers.push_back(answer);
    }
    if (const auto split = j.find("split"); split != j.end()) {
      ROFORMER_CHECK(split->is_string(), where + "field \"split\" must be a string");
      record.split = split->get<std::string>();
    }

    std::vector<int64_t> q, ctx;
    TokenizedText context_tokens;
    try {
      q = tok.tokenize_to_ids(question);
      context_tokens = tok.tokenize_with_offsets(context);
      ctx = std::move(context_tokens.ids);
    } catch (const Error& e) {
      throw Error(where + e.what());
    }
    // The tokens the answer's characters [start, end) touch.
    const auto& offsets = context_tokens.offsets;
    const auto starts_after = std::find_if(offsets.begin(), offsets.end(),
                                           [&](const CharSpan& s) { return s.end > answer_start; });
    const auto ends_before = std::find_if(offsets.rbegin(), offsets.rend(),
                                          [&](const CharSpan& s) { return s.start < answer_stop; });
    const auto first = static_cast<int64_t>(starts_after - offsets.begin());
    const auto last = static_cast<int64_t>(offsets.rend() - ends_before) - 1;
    const bool answerable = !record.answers.empty();
    if (answerable && first > last) {  // no token holds any of the answer
      ++ds.unaligned_;
      return;
    }
    ds.unanswerable_ += answerable ? 0 : 1;
    std::vector<QaWindow> windows;
    try {
      windows = qa_windows(q, ctx, o.max_length, o.stride, tok.cls_id(), tok.sep_id());
    } catch (const Error& e) {
      throw Error(where + e.what());
    }
    const auto r = static_cast<int64_t>(ds.records_.size());
    for (QaWindow& w : windows) {
      const int64_t w0 = w.context_offset;
      w.record = r;
      if (answerable && first >= w0 && last < w0 + (w.context_end - w.context_begin)) {
        w.start = w.context_begin + first - w0;
        w.end = w.context_begin + last - w0;
      }
      record.windows.push_back(static_cast<int64_t>(ds.windows_.size()));
      ds.windows_.push_back(std::move(w));
    }
    record.context = context;
    record.offsets = offsets;
    ds.records_.push_back(std::move(record));
  });
  return ds;
}

const QaWindow& QaDataset::window(int64_t i) const {
  ROFORMER_CHECK(i >= 0 && i < size(), "qa data: window " + std::to_string(i) + " out of range");
  return windows_[static_cast<std::size_t>(i)];
}

const QaRecord& QaDataset::record(int64_t r) const {
  ROFORMER_CHECK(r >= 0 && r < records(), "qa data: record " + std::to_string(r) + " out of range");
  return records_[static_cast<std::size_t>(r)];
}

std::vector<int64_t> QaDataset::indices_of_split(std::string_view name) const {
  std::vector<int64_t> out;
  for (const QaRecord& r : records_)
    if (train::split_in(r.split, name)) out.insert(out.end(), r.windows.begin(), r.windows.end());
  return out;
}

void QaDataset::batch(std::span<const int64_t> indices, QaBatch& b) const {
  b.batch = static_cast<int64_t>(indices.size());
  b.seq_len = 0;
  for (int64_t i : indices) b.seq_len = std::max<int64_t>(b.seq_len, static_cast<int64_t>(window(i).ids.size()));
  const auto n = static_cast<std::size_t>(b.batch * b.seq_len);
  b.input_ids.assign(n, pad_id_);
  b.token_type_ids.assign(n, 0);
  b.attention_mask.assign(n, 0);
  b.start_positions.clear();
  b.end_positions.clear();
  std::size_t row = 0;
  for (int64_t i : indices) {
    const QaWindow& w = window(i);
    const auto at = static_cast<std::ptrdiff_t>(row * static_cast<std::size_t>(b.seq_len));
    std::copy(w.ids.begin(), w.ids.end(), b.input_ids.begin() + at);
    std::copy(w.types.begin(), w.types.end(), b.token_type_ids.begin() + at);
    std::fill_n(b.attention_mask.begin() + at, w.ids.size(), 1);
    b.start_positions.push_back(w.start);
    b.end_positions.push_back(w.end);
    ++row;
  }
}

Batch QaBatch::model_batch() {
  Batch b;
  b.input_ids = Tensor::view(input_ids.data(), {batch, seq_len}, DType::I64);
  b.token_type_ids = Tensor::view(token_type_ids.data(), {batch, seq_len}, DType::I64);
  b.attention_mask = Tensor::view(attention_mask.data(), {batch, seq_len}, DType::I64);
  return b;
}

Tensor QaBatch::start_tensor() { return Tensor::view(start_positions.data(), {batch}, DType::I64); }
Tensor QaBatch::end_tensor() { return Tensor::view(end_positions.data(), {batch}, DType::I64); }

}  // namespace roformer
