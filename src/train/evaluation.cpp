#include "roformer/evaluation.h"

#include <algorithm>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <map>
#include <numeric>
#include <vector>

#include "roformer/choice_dataset.h"
#include "roformer/classification_metrics.h"
#include "roformer/dataset.h"
#include "roformer/error.h"
#include "roformer/labelled_dataset.h"
#include "roformer/mlm_batches.h"
#include "roformer/qa_dataset.h"
#include "roformer/sequence_packing.h"
#include "roformer/tagged_dataset.h"
#include "roformer/tokenizer.h"

namespace roformer {
namespace {

namespace fs = std::filesystem;

// Cross-entropy of one row of logits against `label`, and whether its argmax is the label.
double row_loss(const float* logits, int64_t classes, int64_t label, bool& correct) {
  const float* top = std::max_element(logits, logits + classes);
  correct = top - logits == label;
  double sum = 0;
  for (int64_t c = 0; c < classes; ++c) sum += std::exp(static_cast<double>(logits[c]) - *top);
  return *top + std::log(sum) - logits[label];
}

ClassifierMetrics finish(const ConfusionMatrix& m, double loss_sum) {
  ClassifierMetrics r;
  r.items = m.total();
  ROFORMER_CHECK(r.items > 0, "evaluation: no labelled items");
  r.loss = loss_sum / static_cast<double>(r.items);
  r.accuracy = m.accuracy();
  r.macro_f1 = m.macro_f1();
  r.mcc = m.mcc();
  return r;
}

void check_head(const RoFormerModel& model, Task task, int64_t data_labels) {
  ROFORMER_CHECK(model.task() == task, "evaluation: the model is a " + std::string(task_name(model.task())) + ", expected " +
                                  std::string(task_name(task)));
  ROFORMER_CHECK(model.config().num_labels() == data_labels,
        "evaluation: the model has " + std::to_string(model.config().num_labels()) + " labels, the data " +
            std::to_string(data_labels));
}

// Every score below reads real positions only (the first token, labelled
// tokens, a window's own span), so the padding need not run.
constexpr ForwardOptions kRealTokensOnly{.skip_padding = true};

// A scratch file name unique to this process and call.
fs::path scratch_path(const std::string& stem) {
  static std::atomic<int> counter{0};
  return fs::temp_directory_path() /
         (stem + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".rfds");
}

}  // namespace

ClassifierMetrics evaluate_sequence_classifier(const RoFormerModel& model, const LabelledDataset& data,
                                               std::span<const int64_t> indices, int64_t batch_size,
                                               const ExecContext& ctx) {
  ROFORMER_CHECK(batch_size >= 1, "evaluation: batch size must be positive");
  check_head(model, Task::SequenceClassification, data.num_labels());
  const int64_t K = data.num_labels();
  ConfusionMatrix m(K);
  double loss = 0;
  for (std::size_t start = 0; start < indices.size(); start += static_cast<std::size_t>(batch_size)) {
    const auto part = indices.subspan(start, std::min(indices.size() - start, static_cast<std::size_t>(batch_size)));
    ClassificationBatch b = data.batch(part);
    const ModelOutput out = model.forward(b.model_batch(), kRealTokensOnly, ctx);
    const float* logits = out.heads.at("logits").data<float>();
    for (int64_t i = 0; i < b.batch; ++i) {
      bool correct = false;
      loss += row_loss(logits + i * K, K, b.labels[static_cast<std::size_t>(i)], correct);
      const float* row = logits + i * K;
      m.add(b.labels[static_cast<std::size_t>(i)], std::max_element(row, row + K) - row);
    }
  }
  return finish(m, loss);
}

ClassifierMetrics evaluate_multiple_choice(const RoFormerModel& model, const ChoiceDataset& data,
                                           std::span<const int64_t> indices, int64_t batch_size,
                                           const ExecContext& ctx) {
  ROFORMER_CHECK(batch_size >= 1, "evaluation: batch size must be positive");
  ROFORMER_CHECK(model.task() == Task::MultipleChoice, "evaluation: the model is a " +
                                                           std::string(task_name(model.task())) + ", expected " +
                                                           std::string(task_name(Task::MultipleChoice)));
  const int64_t C = data.choices();
  ConfusionMatrix m(C);
  double loss = 0;
  ChoiceBatch b;
  for (std::size_t start = 0; start < indices.size(); start += static_cast<std::size_t>(batch_size)) {
    const auto part = indices.subspan(start, std::min(indices.size() - start, static_cast<std::size_t>(batch_size)));
    data.batch(part, b);
    const ModelOutput out = model.forward(b.model_batch(), kRealTokensOnly, ctx);
    const float* logits = out.heads.at("logits").data<float>();
    for (int64_t i = 0; i < b.batch; ++i) {
      bool correct = false;
      const float* row = logits + i * C;
      loss += row_loss(row, C, b.labels[static_cast<std::size_t>(i)], correct);
      m.add(b.labels[static_cast<std::size_t>(i)], std::max_element(row, row + C) - row);
    }
  }
  return finish(m, loss);
}

QaMetrics evaluate_question_answering(const RoFormerModel& model, const QaDataset& data,
                                      std::span<const int64_t> windows, int64_t batch_size, const ExecContext& ctx,
                                      int64_t max_answer_length, QaScoring scoring) {
  ROFORMER_CHECK(batch_size >= 1 && max_answer_length >= 1, "evaluation: batch size and answer length must be positive");
  ROFORMER_CHECK(model.task() == Task::QuestionAnswering, "evaluation: the model is a " +
                                                              std::string(task_name(model.task())) + ", expected " +
                                                              std::string(task_name(Task::QuestionAnswering)));
  ROFORMER_CHECK(!windows.empty(), "evaluation: no question-answering windows to score");
  // Each record's best span so far (score, window, start, end), and its
  // lowest no-answer score ([CLS] as start and end) over its windows.
  struct Best {
    double score = -INFINITY;
    int64_t window = -1, start = 0, end = 0;
    double null_score = INFINITY;
  };
  std::map<int64_t, Best> best;
  double loss = 0;
  QaBatch b;
  for (std::size_t first = 0; first < windows.size(); first += static_cast<std::size_t>(batch_size)) {
    const auto part = windows.subspan(first, std::min(windows.size() - first, static_cast<std::size_t>(batch_size)));
    data.batch(part, b);
    const ModelOutput out = model.forward(b.model_batch(), kRealTokensOnly, ctx);
    const float* starts = out.heads.at("start_logits").data<float>();
    const float* ends = out.heads.at("end_logits").data<float>();
    for (int64_t i = 0; i < b.batch; ++i) {
      const QaWindow& w = data.window(part[static_cast<std::size_t>(i)]);
      const float* s = starts + i * b.seq_len;
      const float* e = ends + i * b.seq_len;
      bool unused = false;
      // Over the window's own positions: HF's training loss also counts the
      // padding's logits, which would make the score depend on the batch.
      const auto len = static_cast<int64_t>(w.ids.size());
      loss += 0.5 * (row_loss(s, len, w.start, unused) + row_loss(e, len, w.end, unused));
      Best& r = best[w.record];
      for (int64_t a = w.context_begin; a < w.context_end; ++a)
        for (int64_t z = a; z < w.context_end && z - a < max_answer_length; ++z) {
          const double score = static_cast<double>(s[a]) + e[z];
          if (score > r.score) {
            r.score = score;
            r.window = part[static_cast<std::size_t>(i)];
            r.start = a;
            r.end = z;
          }
        }
      r.null_score = std::min(r.null_score, static_cast<double>(s[0]) + e[0]);
    }
  }
  QaMetrics m;
  m.windows = static_cast<int64_t>(windows.size());
  m.loss = loss / static_cast<double>(m.windows);
  // With unanswerable questions in the data (SQuAD 2.0), "no answer" wins
  // where its score beats the best span's, as HF's recipe decides.
  const bool may_abstain = data.unanswerable() > 0;
  for (const auto& [record, span] : best) {
    const QaRecord& rec = data.record(record);
    std::string predicted;  // the context's own text under the span, as HF's recipe reads a prediction
    if (span.window >= 0 && !(may_abstain && span.null_score > span.score)) {
      const QaWindow& w = data.window(span.window);
      const int64_t shift = w.context_offset - w.context_begin;
      predicted = rec.text_of(span.start + shift, span.end + shift);
    }
    double em = 0, f1 = 0;
    if (rec.answers.empty()) {  // right only when it abstains
      em = f1 = predicted.empty() ? 1.0 : 0.0;
      ++m.unanswerable;
      m.exact_no_answer += em;
    }
    for (const auto& answer : rec.answers) {
      em = std::max(em, qa_exact_match(scoring, predicted, answer));
      f1 = std::max(f1, qa_f1(scoring, predicted, answer));
    }
    if (!rec.answers.empty()) m.exact_has_answer += em;
    m.exact_match += em;
    m.f1 += f1;
  }
  m.items = static_cast<int64_t>(best.size());
  m.exact_match /= static_cast<double>(m.items);
  m.f1 /= static_cast<double>(m.items);
  const int64_t answered = m.items - m.unanswerable;
  m.exact_has_answer = answered > 0 ? m.exact_has_answer / static_cast<double>(answered) : 0.0;
  m.exact_no_answer = m.unanswerable > 0 ? m.exact_no_answer / static_cast<double>(m.unanswerable) : 0.0;
  return m;
}

ClassifierMetrics evaluate_token_classifier(const RoFormerModel& model, const TaggedDataset& data,
                                            std::span<const int64_t> indices, int64_t batch_size,
                                            const ExecContext& ctx) {
  ROFORMER_CHECK(batch_size >= 1, "evaluation: batch size must be positive");
  check_head(model, Task::TokenClassification, data.num_labels());
  const int64_t K = data.num_labels();
  ConfusionMatrix m(K);
  double loss = 0;
  TokenBatch b;
  for (std::size_t start = 0; start < indices.size(); start += static_cast<std::size_t>(batch_size)) {
    const auto part = indices.subspan(start, std::min(indices.size() - start, static_cast<std::size_t>(batch_size)));
    data.batch(part, b);
    const ModelOutput out = model.forward(b.model_batch(), kRealTokensOnly, ctx);
    const float* logits = out.heads.at("logits").data<float>();
    for (int64_t i = 0; i < b.batch * b.seq_len; ++i) {
      const int64_t label = b.labels[static_cast<std::size_t>(i)];
      if (label < 0) continue;
      bool correct = false;
      const float* row = logits + i * K;
      loss += row_loss(row, K, label, correct);
      m.add(label, std::max_element(row, row + K) - row);
    }
  }
  return finish(m, loss);
}

LanguageModelMetrics evaluate_language_model(const RoFormerModel& model, const Tokenizer& tokenizer,
                                             const std::string& text_file, const LanguageModelEvalOptions& o,
                                             const ExecContext& ctx) {
  const bool causal = model.task() == Task::CausalLM;
  ROFORMER_CHECK(causal || model.task() == Task::MaskedLM, "evaluation: a language model (masked or causal LM head) is needed, not a " +
                                                      std::string(task_name(model.task())));
  ROFORMER_CHECK(o.batch_size >= 1 && o.max_blocks >= 0, "evaluation: batch size must be positive and max_blocks >= 0");
  ROFORMER_CHECK(o.seq_len >= 8, "evaluation: seq_len must be at least 8");
  const fs::path scratch = scratch_path("roformer-eval");
  struct Remove {
    fs::path p;
    ~Remove() {
      std::error_code ec;
      fs::remove(p, ec);
    }
  } remove_scratch{scratch};
  // The dataset header records the vocabulary's hash: any stable digest of the ids works here.
  Sha256Digest vocab_digest{};
  encode_corpus(tokenizer, vocab_digest, text_file, scratch.string(), ctx.threads);
  const TokenDataset data = TokenDataset::open(scratch.string());
  std::vector<int64_t> docs(static_cast<std::size_t>(data.documents()));
  std::iota(docs.begin(), docs.end(), 0);
  PackingOptions packing;
  packing.seq_len = o.seq_len;
  const PackedBlocks blocks(data, docs, with_special_ids(packing, tokenizer));
  ROFORMER_CHECK(blocks.size() > 0, "evaluation: " + text_file + " has no text");
  const int64_t n = o.max_blocks > 0 ? std::min(o.max_blocks, blocks.size()) : blocks.size();
  const int64_t V = model.config().vocab_size;

  MlmMaskingOptions mo;
  mo.whole_word = o.whole_word_masking;
  MlmBatcher batcher(blocks, MlmMasker(mlm_vocab(tokenizer), mo), o.seed, false);
  MlmBatch batch;
  LanguageModelMetrics r;
  double loss = 0;
  int64_t correct = 0;
  for (int64_t done = 0; done < n; done += batch.batch) {
    const int64_t rows = std::min(o.batch_size, n - done);
    if (causal) {
      batch.batch = rows;
      batch.seq_len = o.seq_len;
      batch.input_ids.resize(static_cast<std::size_t>(rows * o.seq_len));
      batch.attention_mask.resize(batch.input_ids.size());
      for (int64_t i = 0; i < rows; ++i)
        blocks.block(done + i, batch.input_ids.data() + i * o.seq_len, batch.attention_mask.data() + i * o.seq_len);
    } else {
      batcher.next(rows, batch);
    }
    const ModelOutput out = model.forward(batch.model_batch(), kRealTokensOnly, ctx);
    const float* logits = out.heads.at("logits").data<float>();
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t t = 0; t < o.seq_len; ++t) {
        const auto at = static_cast<std::size_t>(i * o.seq_len + t);
        int64_t label = -100;
        if (causal) {
          // Position t predicts the token at t + 1 (when that one is real).
          if (t + 1 < o.seq_len && batch.attention_mask[at + 1] == 1) label = batch.input_ids[at + 1];
        } else {
          label = batch.labels[at];
        }
        if (label < 0) continue;
        bool hit = false;
        loss += row_loss(logits + static_cast<int64_t>(at) * V, V, label, hit);
        correct += hit;
        ++r.predictions;
      }
    }
  }
  ROFORMER_CHECK(r.predictions > 0, "evaluation: " + text_file + " gave no tokens to predict");
  r.blocks = n;
  r.loss = loss / static_cast<double>(r.predictions);
  r.perplexity = std::exp(r.loss);
  r.accuracy = static_cast<double>(correct) / static_cast<double>(r.predictions);
  return r;
}

}  // namespace roformer
