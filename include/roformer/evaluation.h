#pragma once
// Held-out evaluation of saved models, through the inference forward pass:
// classifiers on labelled data (loss, accuracy, macro F1, Matthews
// correlation) and language models on text (loss, perplexity, accuracy of
// the predicted tokens).
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "roformer/cpu.h"
#include "roformer/model.h"
#include "roformer/qa_scores.h"

namespace roformer {

class ChoiceDataset;
class LabelledDataset;
class QaDataset;
class TaggedDataset;
class Tokenizer;

struct ClassifierMetrics {
  double loss = 0;      // mean cross-entropy over the scored items
  double accuracy = 0;
  double macro_f1 = 0;
  double mcc = 0;       // Matthews correlation (multi-class R_K)
  int64_t items = 0;    // sequences, or tagged words
};

// A RoFormerForSequenceClassification model on `indices` of the data set,
// whose label ids must be the model's.
ClassifierMetrics evaluate_sequence_classifier(const RoFormerModel& model, const LabelledDataset& data,
                                               std::span<const int64_t> indices, int64_t batch_size,
                                               const ExecContext& ctx);
// A RoFormerForTokenClassification model; only the labelled (first) sub-tokens count.
ClassifierMetrics evaluate_token_classifier(const RoFormerModel& model, const TaggedDataset& data,
                                            std::span<const int64_t> indices, int64_t batch_size,
                                            const ExecContext& ctx);

// A RoFormerForMultipleChoice model: an example's choices are scored side
// by side; the item is the example, its class the index of the right choice.
ClassifierMetrics evaluate_multiple_choice(const RoFormerModel& model, const ChoiceDataset& data,
                                           std::span<const int64_t> indices, int64_t batch_size,
                                           const ExecContext& ctx);

struct QaMetrics {
  double loss = 0;         // mean over windows of (start + end cross-entropy) / 2 over the window's own tokens
  double exact_match = 0;  // share of records whose best span equals an answer (by the scoring asked for)
  double f1 = 0;           // mean over records of the best F1 with any answer
  int64_t items = 0;       // records
  int64_t windows = 0;
  int64_t unanswerable = 0;  // records without an answer among them
  // SQuAD 2.0's split of exact_match: over the records with an answer, and
  // over those without (0 where there are none).
  double exact_has_answer = 0, exact_no_answer = 0;
};

// A RoFormerForQuestionAnswering model on `windows` (indices into data;
// whole records, as indices_of_split gives them). Each record's answer is
// the best-scoring span (start logit + end logit) of its context tokens in
// any of its windows, at most max_answer_length tokens: the context's own
// text under those tokens. Where the data holds unanswerable questions, the
// answer is "" when [CLS]'s score (start + end logit, lowest over the
// record's windows) beats the best span's; an unanswerable question counts
// as exact (and F1 1) only then.
QaMetrics evaluate_question_answering(const RoFormerModel& model, const QaDataset& data,
                                      std::span<const int64_t> windows, int64_t batch_size, const ExecContext& ctx,
                                      int64_t max_answer_length = 30, QaScoring scoring = QaScoring::Squad);


struct LanguageModelMetrics {
  double loss = 0;        // mean cross-entropy per predicted token
  double perplexity = 0;  // exp(loss)
  double accuracy = 0;    // predicted tokens whose argmax is right
  int64_t predictions = 0;
  int64_t blocks = 0;
};

struct LanguageModelEvalOptions {
  int64_t seq_len = 128;     // packed block length
  int64_t batch_size = 8;
  int64_t max_blocks = 0;    // 0: every block of the text
  uint64_t seed = 0;         // MLM masking seed (the same seed gives the same masks)
  bool whole_word_masking = false;
};

// Packs `text_file` (one paragraph a line, blank line between documents) into
// blocks and scores the model: masked LM on BERT-masked blocks, causal LM on
// next-token prediction. The model's head decides which.
LanguageModelMetrics evaluate_language_model(const RoFormerModel& model, const Tokenizer& tokenizer,
                                             const std::string& text_file, const LanguageModelEvalOptions& options,
                                             const ExecContext& ctx);

}  // namespace roformer
