#pragma once
// Extractive question answering examples (SQuAD's format, as HF datasets
// store it) read from JSONL: {"question", "context", "answers": {"text":
// [...], "answer_start": [...]}} with answer_start in characters (Unicode
// code points, as Python counts them), optionally "split" and "id". The
// first answer is the training target; evaluation accepts any of them. Empty
// lists mark a question the context does not answer (SQuAD 2.0): every window
// of it points at [CLS].
//
// Each record becomes one or more windows [CLS] question [SEP] context
// tokens [SEP] (token types 0 / 1) of at most max_length tokens: a long
// context is cut into windows that share `stride` tokens (HF's doc_stride),
// and a window that does not hold the whole answer points at [CLS]
// (position 0), as HF's question-answering recipe labels it.
//
// The answer's tokens are the context tokens its characters fall in (by the
// tokenizer's offsets, as HF's recipe finds them), so an answer that starts
// or ends inside a word takes the whole token. An answer no token covers
// (only spaces or characters the tokenizer drops) leaves its record out,
// counted in unaligned().
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "roformer/model.h"
#include "roformer/tokenizer.h"

namespace roformer {

struct QaOptions {
  int64_t max_length = 256;  // tokens per window, specials included
  int64_t stride = 64;       // context tokens shared by consecutive windows
  std::string question_field = "question";
  std::string context_field = "context";
  std::string answers_field = "answers";
  int64_t max_file_bytes = int64_t{1} << 31;
};

struct QaWindow {
  std::vector<int64_t> ids, types;
  int64_t start = 0, end = 0;        // answer tokens (inclusive) in ids; 0, 0: not in this window
  int64_t context_begin = 0, context_end = 0;  // the window's context tokens: ids[begin, end)
  int64_t context_offset = 0;                  // ... which are the context's tokens from this one on
  int64_t record = 0;
};

// The windows of one (question, context) pair as token ids: [CLS] question
// [SEP] context[w0, w0 + n) [SEP], each at most max_length tokens, every
// context token in at least one, consecutive windows sharing `stride`
// context tokens. start / end stay 0 and record 0. Throws Error when the
// question leaves no more than `stride` context tokens per window.
std::vector<QaWindow> qa_windows(const std::vector<int64_t>& question, const std::vector<int64_t>& context,
                                 int64_t max_length, int64_t stride, int64_t cls_id, int64_t sep_id);

struct QaRecord {
  std::vector<std::string> answers;  // every accepted answer text; none: unanswerable
  std::string split;                 // the record's "split" field, "" when absent
  std::vector<int64_t> windows;      // its windows' indices
  std::string context;
  std::vector<CharSpan> offsets;     // each context token's characters in `context`
  // The context's own text under its tokens [first, last] (context token
  // indices, as QaWindow::context_offset counts them): what a predicted span says.
  std::string text_of(int64_t first, int64_t last) const;
};

struct QaBatch {
  int64_t batch = 0, seq_len = 0;
  std::vector<int64_t> input_ids, token_type_ids, attention_mask;  // (batch, seq_len), right-padded
  std::vector<int64_t> start_positions, end_positions;             // (batch)
  Batch model_batch();  // views of the vectors (valid while they are unchanged)
  Tensor start_tensor();
  Tensor end_tensor();
};

class QaDataset {
 public:
  // Throws Error naming the file and line of a malformed record: a missing
  // or mistyped field, no answer, an answer_start that does not point at the
  // answer text, invalid UTF-8, or a question too long for one window.
  static QaDataset from_jsonl(const std::string& path, const Tokenizer& tokenizer, const QaOptions& options = {});

  int64_t size() const { return static_cast<int64_t>(windows_.size()); }  // windows
  int64_t records() const { return static_cast<int64_t>(records_.size()); }
  const QaWindow& window(int64_t i) const;
  const QaRecord& record(int64_t r) const;
  int64_t unaligned() const { return unaligned_; }
  int64_t unanswerable() const { return unanswerable_; }  // records without an answer
  // Windows of the records whose "split" is `name` (or one of several
  // comma-separated names), in file order.
  std::vector<int64_t> indices_of_split(std::string_view name) const;
  // Windows as one right-padded batch with their answer positions.
  void batch(std::span<const int64_t> indices, QaBatch& out) const;

 private:
  std::vector<QaWindow> windows_;
  std::vector<QaRecord> records_;
  int64_t unaligned_ = 0;
  int64_t unanswerable_ = 0;
  int64_t pad_id_ = 0;
};

}  // namespace roformer
