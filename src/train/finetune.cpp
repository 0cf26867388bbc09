// The fine-tuning job: a pre-trained encoder under a new classification head,
// trained on labelled JSONL and evaluated after every epoch.
#include "roformer/finetune.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <iterator>
#include <optional>
#include <span>
#include <utility>

#include "roformer/batch_iterator.h"
#include "roformer/choice_dataset.h"
#include "roformer/error.h"
#include "roformer/labelled_dataset.h"
#include "roformer/model.h"
#include "roformer/optim.h"
#include "roformer/qa_dataset.h"
#include "roformer/tagged_dataset.h"
#include "roformer/tokenizer.h"
#include "roformer/training.h"
#include "train/atomic_file.h"
#include "train/job_support.h"

namespace roformer {

namespace fs = std::filesystem;
using nlohmann::json;

// Every option once: the JSON keys are the field names.
#define ROFORMER_FINETUNE_FIELDS(X)                                                                           \
  X(model_dir) X(task) X(train_file) X(valid_file) X(train_split) X(valid_split) X(text_field) X(label_field) \
  X(tokens_field) X(tags_field) X(entities_field) X(context_field) X(choices_field) X(question_field) X(answers_field)          \
  X(doc_stride) X(qa_scoring) X(max_length) X(batch_size) X(accumulation) X(epochs) X(warmup_ratio) X(schedule) X(lr)      \
  X(weight_decay) X(clip_norm) X(dropout) X(seed) X(threads) X(gemm) X(precision) X(fp32_attention) X(log_every)     \
  X(keep_padding) X(eval_batch_size) X(out_dir)

namespace {

json to_json(const FinetuneOptions& o) {
  json j;
#define ROFORMER_PUT(field) j[#field] = o.field;
  ROFORMER_FINETUNE_FIELDS(ROFORMER_PUT)
#undef ROFORMER_PUT
  return j;
}

Task parse_task(const std::string& name) {
  if (name == "sequence-classification" || name == "seq-cls" || name == "cls") return Task::SequenceClassification;
  if (name == "token-classification" || name == "token-cls" || name == "tok") return Task::TokenClassification;
  if (name == "multiple-choice" || name == "mc") return Task::MultipleChoice;
  if (name == "question-answering" || name == "qa") return Task::QuestionAnswering;
  throw Error("finetune: task must be sequence-classification, token-classification, multiple-choice or "
              "question-answering, not '" + name + "'");
}

void validate(const FinetuneOptions& o) {
  ROFORMER_CHECK(!o.model_dir.empty(), "finetune: model_dir (the pre-trained HF directory) is required");
  parse_task(o.task);
  ROFORMER_CHECK(o.max_length >= 3, "finetune: max_length must be at least 3");
  ROFORMER_CHECK(o.batch_size >= 1 && o.accumulation >= 1 && o.eval_batch_size >= 1,
        "finetune: batch sizes and accumulation must be at least 1");
  ROFORMER_CHECK(o.epochs >= 1, "finetune: epochs must be at least 1");
  ROFORMER_CHECK(o.warmup_ratio >= 0 && o.warmup_ratio <= 1, "finetune: warmup_ratio must be in [0, 1]");
  ROFORMER_CHECK(o.lr > 0 && o.weight_decay >= 0 && o.clip_norm >= 0, "finetune: lr must be positive, weight_decay and clip_norm >= 0");
  ROFORMER_CHECK(o.dropout < 1, "finetune: dropout must be below 1");
  ROFORMER_CHECK(o.threads >= 1, "finetune: threads must be at least 1");
  parse_gemm_backend(o.gemm);  // throws on an unknown name
  parse_product_precision(o.precision);
  ROFORMER_CHECK(!o.out_dir.empty(), "finetune: out_dir is empty");
}

// One held-out evaluation: a classifier's metrics, or question answering's.
struct HeldOut {
  ClassifierMetrics classifier;
  std::optional<QaMetrics> qa;
};

// Train and held-out examples of any task's data set, behind one interface.
class TaskData {
 public:
  virtual ~TaskData() = default;
  const std::vector<std::string>& labels() const { return labels_; }
  const std::vector<int64_t>& train() const { return train_; }
  const std::vector<int64_t>& valid() const { return valid_; }
  // Fills the batch and labels for these training examples; returns the model batch.
  virtual Batch train_batch(std::span<const int64_t> indices, TrainLabels& labels) = 0;
  // Real (unpadded) tokens in the last train_batch.
  virtual int64_t tokens_in_batch() const = 0;
  virtual HeldOut evaluate(const RoFormerModel& model, int64_t batch_size, const ExecContext& ctx) const = 0;
  // A line for the log about the data, if any.
  virtual std::string note() const { return ""; }

 protected:
  static int64_t ones(const std::vector<int64_t>& mask) {
    int64_t n = 0;
    for (int64_t m : mask) n += m;
    return n;
  }
  // The train and held-out indices from the options, for data sets of
  // train_size and valid_size examples (valid_size < 0: no valid_file);
  // split(names) gives the train file's examples of those splits.
  template <class Split>
  void choose_examples(const FinetuneOptions& o, int64_t train_size, int64_t valid_size, Split split) {
    auto all = [](int64_t n) {
      std::vector<int64_t> v(static_cast<std::size_t>(n));
      for (int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = i;
      return v;
    };
    // A split may name several, comma-separated ("valid,test"): their records, in file order.
    train_ = o.train_split.empty() ? all(train_size) : split(o.train_split);
    if (valid_size < 0) {
      valid_ = split(o.valid_split);
      ROFORMER_CHECK(!valid_.empty(), "finetune: " + o.train_file + " has no records with \"split\": \"" + o.valid_split +
                                 "\"; give valid_file or valid_split");
      if (o.train_split.empty()) {  // every record but the held-out ones
        std::vector<int64_t> rest;
        std::set_difference(train_.begin(), train_.end(), valid_.begin(), valid_.end(), std::back_inserter(rest));
        train_ = rest;
      }
    } else {
      valid_ = all(valid_size);
    }
    ROFORMER_CHECK(!train_.empty(), "finetune: no training records (\"split\": \"" + o.train_split + "\") in " + o.train_file);
  }

  std::vector<std::string> labels_;
  std::vector<int64_t> train_, valid_;
};

// One task's data sets (held-out examples from valid_set, or from the
// training file's splits) with its batches and its evaluation.
template <class Set, class SetBatch, auto Evaluate>
class DataOf final : public TaskData {
 public:
  DataOf(const FinetuneOptions& o, Set train_set, std::optional<Set> valid_set, std::vector<std::string> labels)
      : train_set_(std::move(train_set)), valid_set_(std::move(valid_set)) {
    labels_ = std::move(labels);
    choose_examples(o, train_set_.size(), valid_set_ ? valid_set_->size() : -1,
                    [&](const std::string& names) { return train_set_.indices_of_split(names); });
  }
  Batch train_batch(std::span<const int64_t> indices, TrainLabels& labels) override {
    if constexpr (requires { train_set_.batch(indices, batch_); }) train_set_.batch(indices, batch_);
    else batch_ = train_set_.batch(indices);
    labels.labels = batch_.labels_tensor();
    return batch_.model_batch();
  }
  int64_t tokens_in_batch() const override { return ones(batch_.attention_mask); }
  HeldOut evaluate(const RoFormerModel& model, int64_t batch_size, const ExecContext& ctx) const override {
    return {Evaluate(model, valid_set_ ? *valid_set_ : train_set_, valid_, batch_size, ctx), std::nullopt};
  }

 private:
  Set train_set_;
  std::optional<Set> valid_set_;
  SetBatch batch_;
};

// Question answering: windows of SQuAD records, scored by exact match and F1.
class QaData final : public TaskData {
 public:
  QaData(const FinetuneOptions& o, const Tokenizer& tok) : scoring_(parse_qa_scoring(o.qa_scoring)) {
    QaOptions qo;
    qo.max_length = o.max_length;
    qo.stride = o.doc_stride;
    qo.question_field = o.question_field;
    qo.context_field = o.context_field;
    qo.answers_field = o.answers_field;
    train_set_.emplace(QaDataset::from_jsonl(o.train_file, tok, qo));
    ROFORMER_CHECK(train_set_->size() > 0, "finetune: " + o.train_file + " holds no usable question-answering records");
    if (!o.valid_file.empty()) valid_set_.emplace(QaDataset::from_jsonl(o.valid_file, tok, qo));
    labels_ = {"start", "end"};  // qa_outputs' two columns
    choose_examples(o, train_set_->size(), valid_set_ ? valid_set_->size() : -1,
                    [&](const std::string& names) { return train_set_->indices_of_split(names); });
  }
  Batch train_batch(std::span<const int64_t> indices, TrainLabels& labels) override {
    train_set_->batch(indices, batch_);
    labels.start_positions = batch_.start_tensor();
    labels.end_positions = batch_.end_tensor();
    return batch_.model_batch();
  }
  int64_t tokens_in_batch() const override { return ones(batch_.attention_mask); }
  HeldOut evaluate(const RoFormerModel& model, int64_t batch_size, const ExecContext& ctx) const override {
    const QaMetrics m =
        evaluate_question_answering(model, valid_set_ ? *valid_set_ : *train_set_, valid_, batch_size, ctx, 30, scoring_);
    HeldOut h;
    h.classifier.loss = m.loss;
    h.classifier.items = m.items;
    h.qa = m;
    return h;
  }
  std::string note() const override {
    const int64_t skipped = train_set_->unaligned() + (valid_set_ ? valid_set_->unaligned() : 0);
    return skipped == 0 ? "" : std::to_string(skipped) + " record(s) left out: no token covers their answer";
  }

 private:
  QaScoring scoring_;
  std::optional<QaDataset> train_set_, valid_set_;
  QaBatch batch_;
};

std::unique_ptr<TaskData> task_data(const FinetuneOptions& o, Task task, const Tokenizer& tok) {
  const bool has_valid = !o.valid_file.empty();
  switch (task) {
    case Task::SequenceClassification: {
      LabelledOptions lo;
      lo.max_length = o.max_length;
      lo.text_field = o.text_field;
      lo.label_field = o.label_field;
      auto train = LabelledDataset::from_jsonl(o.train_file, tok, lo);
      lo.label_names = train.label_names();  // the held-out file uses the training file's ids
      std::optional<LabelledDataset> valid;
      if (has_valid) valid.emplace(LabelledDataset::from_jsonl(o.valid_file, tok, lo));
      return std::make_unique<DataOf<LabelledDataset, ClassificationBatch, evaluate_sequence_classifier>>(
          o, std::move(train), std::move(valid), lo.label_names);
    }
    case Task::TokenClassification: {
      TaggedOptions to;
      to.max_length = o.max_length;
      to.tokens_field = o.tokens_field;
      to.tags_field = o.tags_field;
      to.text_field = o.text_field;
      to.entities_field = o.entities_field;
      auto train = TaggedDataset::from_jsonl(o.train_file, tok, to);
      to.label_names = train.label_names();
      std::optional<TaggedDataset> valid;
      if (has_valid) valid.emplace(TaggedDataset::from_jsonl(o.valid_file, tok, to));
      return std::make_unique<DataOf<TaggedDataset, TokenBatch, evaluate_token_classifier>>(
          o, std::move(train), std::move(valid), to.label_names);
    }
    case Task::MultipleChoice: {
      ChoiceOptions co;
      co.max_length = o.max_length;
      co.context_field = o.context_field;
      co.choices_field = o.choices_field;
      co.label_field = o.label_field;
      auto train = ChoiceDataset::from_jsonl(o.train_file, tok, co);
      ROFORMER_CHECK(train.size() > 0, "finetune: " + o.train_file + " holds no records");
      std::optional<ChoiceDataset> valid;
      if (has_valid) {
        valid.emplace(ChoiceDataset::from_jsonl(o.valid_file, tok, co));
        ROFORMER_CHECK(valid->size() == 0 || valid->choices() == train.choices(),
                       "finetune: " + o.valid_file + " offers " + std::to_string(valid->choices()) +
                           " choices per record, " + o.train_file + " " + std::to_string(train.choices()));
      }
      // The "labels" are the choice positions "0" ... "C-1".
      std::vector<std::string> positions;
      for (int64_t c = 0; c < train.choices(); ++c) positions.push_back(std::to_string(c));
      return std::make_unique<DataOf<ChoiceDataset, ChoiceBatch, evaluate_multiple_choice>>(
          o, std::move(train), std::move(valid), std::move(positions));
    }
    case Task::QuestionAnswering: return std::make_unique<QaData>(o, tok);
    default: break;
  }
  throw Error("finetune: no data set for " + std::string(task_name(task)));
}

}  // namespace

std::string finetune_options_to_json(const FinetuneOptions& o) { return to_json(o).dump(2); }

FinetuneOptions finetune_options_from_json(const std::string& text, FinetuneOptions o) {
  const json merged = train::merge_options(text, to_json(o), "finetune config");
  try {
#define ROFORMER_GET(field) o.field = merged.at(#field).get<decltype(o.field)>();
    ROFORMER_FINETUNE_FIELDS(ROFORMER_GET)
#undef ROFORMER_GET
  } catch (const json::exception& e) {
    throw Error(std::string("finetune config: a value has the wrong type: ") + e.what());
  }
  return o;
}

RoFormerModel model_with_new_head(const std::string& model_dir, Task task, const std::vector<std::string>& labels,
                                  uint64_t seed, double dropout) {
  ROFORMER_CHECK(!labels.empty(), "finetune: no labels");
  const RoFormerModel pre = RoFormerModel::from_pretrained(model_dir);
  RoFormerConfig c = pre.config();
  c.id2label.clear();
  for (std::size_t i = 0; i < labels.size(); ++i) c.id2label[static_cast<int64_t>(i)] = labels[i];
  c.architectures = {std::string(task_name(task))};
  c.problem_type.reset();
  // HF's multiple-choice summary defaults to the last position, which is
  // padding in a right-padded batch; a new head reads [CLS] instead (HF
  // honours summary_type from config.json).
  if (task == Task::MultipleChoice) c.summary_type = "first";
  if (dropout >= 0) c.hidden_dropout_prob = c.attention_probs_dropout_prob = dropout;
  const RoFormerModel fresh = RoFormerModel::random_init(c, task, seed);
  std::map<std::string, Tensor> tensors;
  for (const auto& [name, t] : fresh.named_tensors()) tensors[name] = t;
  // The encoder comes from the checkpoint (a bare RoFormerModel names it without the prefix).
  const std::string prefix = pre.task() == Task::Base ? "roformer." : "";
  int64_t copied = 0;
  for (const auto& [name, t] : pre.named_tensors()) {
    const std::string target = prefix + name;
    if (target.rfind("roformer.", 0) != 0) continue;
    const auto it = tensors.find(target);
    ROFORMER_CHECK(it != tensors.end(), "finetune: the checkpoint's " + name + " has no place in the new model");
    it->second = t;
    ++copied;
  }
  ROFORMER_CHECK(copied > 0, "finetune: " + model_dir + " holds no encoder weights");
  return RoFormerModel::from_tensors(c, task, tensors, true);
}

FinetuneResult finetune(const FinetuneOptions& o, const PretrainCallbacks& cb) {
  validate(o);
  auto log = [&](const std::string& line) {
    if (cb.on_log) cb.on_log(line);
  };
  const auto start = std::chrono::steady_clock::now();
  const Task task = parse_task(o.task);
  ExecContext ctx{o.threads, best_isa(), parse_gemm_backend(o.gemm), parse_product_precision(o.precision)};
  ctx.bf16_attention = !o.fp32_attention;
  const fs::path out(o.out_dir);
  fs::create_directories(out);
  const std::string metrics_path = (out / "metrics.jsonl").string();
  fs::remove(metrics_path);
  data::write_file_atomically((out / "finetune_options.json").string(), to_json(o).dump(2) + "\n");

  const Tokenizer tokenizer = Tokenizer::from_pretrained(o.model_dir);
  const std::unique_ptr<TaskData> task_examples = task_data(o, task, tokenizer);
  TaskData& data = *task_examples;
  log("data: " + std::to_string(data.train().size()) + " training and " + std::to_string(data.valid().size()) +
      " held-out examples, " + std::to_string(data.labels().size()) +
      (task == Task::MultipleChoice ? " choices each" : " labels"));
  if (!data.note().empty()) log("data: " + data.note());

  TrainableRoFormer model(model_with_new_head(o.model_dir, task, data.labels(), o.seed, o.dropout));
  const double dropout = o.dropout >= 0 ? o.dropout : model.config().hidden_dropout_prob;
  model.set_dropout(dropout > 0, o.seed);
  model.set_skip_padding(!o.keep_padding);
  std::vector<Parameter> params = train::optimizer_parameters(model);
  AdamW adamw = train::bert_adamw(params, o.lr, o.weight_decay, ctx);
  const auto per_step = o.batch_size * o.accumulation;
  const int64_t steps_per_epoch = (static_cast<int64_t>(data.train().size()) + per_step - 1) / per_step;
  const int64_t total = steps_per_epoch * o.epochs;
  LrScheduleOptions so;
  so.decay = parse_lr_decay(o.schedule);
  so.base_lr = o.lr;
  so.warmup_steps = static_cast<int64_t>(std::llround(o.warmup_ratio * static_cast<double>(total)));
  so.total_steps = total;
  const LrSchedule schedule(so);
  log("fine-tuning " + std::string(task_name(task)) + " for " + std::to_string(o.epochs) + " epochs (" +
      std::to_string(total) + " steps of " + std::to_string(per_step) + " examples); " + std::to_string(ctx.threads) +
      " thread(s), " + std::string(isa_name(ctx.isa)) + " kernels, " + std::string(gemm_backend_name(ctx.gemm)) +
      " products in " + product_precision_label(ctx.bf16_products, ctx.isa, ctx.bf16_attention));

  EpochIterator order(static_cast<int64_t>(data.train().size()), o.seed);
  std::vector<int64_t> picks(static_cast<std::size_t>(o.batch_size)), indices(picks.size());
  TrainLabels labels;
  FinetuneResult result;
  result.labels = data.labels();
  double interval_loss = 0;
  int64_t interval_steps = 0, interval_tokens = 0;
  auto interval_start = std::chrono::steady_clock::now();
  for (int64_t step = 0; step < total;) {
    model.zero_grad();
    double loss = 0;
    for (int64_t micro = 0; micro < o.accumulation; ++micro) {
      order.next(picks);
      for (std::size_t i = 0; i < picks.size(); ++i) indices[i] = data.train()[static_cast<std::size_t>(picks[i])];
      const Batch batch = data.train_batch(indices, labels);
      const TrainStep s = model.forward_backward(batch, labels, ctx, 1.0f / static_cast<float>(o.accumulation));
      loss += s.loss / static_cast<double>(o.accumulation);
      interval_tokens += data.tokens_in_batch();
      result.positions_run += s.encoder_rows;
      result.positions_batched += batch.input_ids.numel();
    }
    const double norm = o.clip_norm > 0 ? clip_grad_norm(params, o.clip_norm) : grad_norm(params);
    ROFORMER_CHECK(std::isfinite(loss) && std::isfinite(norm),
          "finetune: the loss or gradient became non-finite at step " + std::to_string(step) + "; lower the learning rate");
    const double lr = schedule.lr(step);
    adamw.step(lr);
    ++step;
    interval_loss += loss;
    ++interval_steps;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double interval_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - interval_start).count();
    const double tps = interval_s > 0 ? static_cast<double>(interval_tokens) / interval_s : 0;
    if (cb.on_progress)
      cb.on_progress(PretrainProgress{step, total, loss, lr, norm, tps, elapsed,
                                      elapsed / static_cast<double>(step) * static_cast<double>(total - step)});
    if (step % std::max<int64_t>(1, o.log_every) == 0 || step == total) {
      result.train_loss = interval_loss / static_cast<double>(interval_steps);
      train::append_json_line(metrics_path, json{{"step", step}, {"loss", result.train_loss}, {"lr", lr}, {"grad_norm", norm},
                                     {"tokens_per_second", tps}, {"elapsed_seconds", elapsed}});
      interval_loss = 0;
      interval_steps = interval_tokens = 0;
      interval_start = std::chrono::steady_clock::now();
    }
    if (step % steps_per_epoch == 0) {
      const HeldOut held = data.evaluate(model.snapshot(), o.eval_batch_size, ctx);
      const ClassifierMetrics& m = held.classifier;
      const int64_t epoch = step / steps_per_epoch;
      char line[320];
      if (held.qa) {
        const QaMetrics& q = *held.qa;
        json record{{"step", step}, {"epoch", epoch}, {"valid_loss", q.loss}, {"valid_exact_match", q.exact_match},
                    {"valid_f1", q.f1}};
        std::snprintf(line, sizeof line, "epoch %lld: held-out loss %.4f, exact match %.2f%%, F1 %.2f%% (%lld questions)",
                      static_cast<long long>(epoch), q.loss, 100 * q.exact_match, 100 * q.f1,
                      static_cast<long long>(q.items));
        if (q.unanswerable > 0) {  // SQuAD 2.0: how each kind of question fares
          record["valid_exact_has_answer"] = q.exact_has_answer;
          record["valid_exact_no_answer"] = q.exact_no_answer;
          const std::size_t used = std::strlen(line);
          std::snprintf(line + used, sizeof line - used, "; exact %.2f%% with an answer, %.2f%% of %lld without",
                        100 * q.exact_has_answer, 100 * q.exact_no_answer, static_cast<long long>(q.unanswerable));
        }
        train::append_json_line(metrics_path, record);
        result.valid_qa = q;
      } else {
        train::append_json_line(metrics_path, json{{"step", step}, {"epoch", epoch}, {"valid_loss", m.loss},
                                                   {"valid_accuracy", m.accuracy}, {"valid_macro_f1", m.macro_f1},
                                                   {"valid_mcc", m.mcc}});
        std::snprintf(line, sizeof line, "epoch %lld: held-out loss %.4f, accuracy %.2f%%, macro F1 %.4f, MCC %.4f (%lld items)",
                      static_cast<long long>(epoch), m.loss, 100 * m.accuracy, m.macro_f1, m.mcc,
                      static_cast<long long>(m.items));
      }
      log(line);
      result.valid = m;
    }
    result.steps = step;
  }

  if (result.positions_batched > 0) {
    char line[160];
    std::snprintf(line, sizeof line, "the encoder ran %.1f%% of the batches' %lld positions%s",
                  100.0 * static_cast<double>(result.positions_run) / static_cast<double>(result.positions_batched),
                  static_cast<long long>(result.positions_batched),
                  result.positions_run < result.positions_batched ? " (the padding skipped)" : "");
    log(line);
  }
  const fs::path final_dir = out / "final", tmp = out / "final.tmp";
  fs::remove_all(tmp);
  model.snapshot().save_pretrained(tmp.string());
  for (const char* f : {"vocab.txt", "tokenizer_config.json", "special_tokens_map.json"}) {
    const fs::path src = fs::path(o.model_dir) / f;
    if (fs::exists(src)) fs::copy_file(src, tmp / f);
  }
  fs::remove_all(final_dir);
  fs::rename(tmp, final_dir);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.model_dir = final_dir.string();
  return result;
}

}  // namespace roformer
