// Fine-tuning and evaluation end to end at toy scale: a new head over a
// pre-trained encoder, token and sequence classification jobs, the causal-LM
// objective of the pre-training job, and evaluation that agrees with what
// the jobs report.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "roformer/choice_dataset.h"
#include "roformer/error.h"
#include "roformer/evaluation.h"
#include "roformer/finetune.h"
#include "roformer/labelled_dataset.h"
#include "roformer/model.h"
#include "roformer/pretrain.h"
#include "roformer/qa_dataset.h"
#include "roformer/tagged_dataset.h"
#include "roformer/tokenizer.h"
#include "support/test_support.h"
#include "toy_pretrain.h"

namespace roformer {
namespace {

using testing::data_path;
using testing::TempDir;

using testing::repo_file;

// The toy run, longer (30 steps) and evaluated once at the end on one batch.
PretrainOptions toy_pretrain(const std::string& out, const std::string& objective) {
  PretrainOptions o = testing::toy_pretrain_options(out, objective);
  o.steps = 30;
  o.warmup_steps = 3;
  o.eval_every = 0;
  o.eval_batches = 1;
  o.log_every = 5;
  return o;
}

// One small pre-trained MLM for the fine-tuning tests of this program.
const std::string& pretrained_dir() {
  static TempDir dir;
  static const std::string path = [] {
    PretrainOptions o = toy_pretrain(dir.file("pre"), "mlm");
    o.steps = 10;
    return pretrain(o).model_dir;
  }();
  return path;
}

// One epoch of sequence classification on the committed spam sample.
FinetuneOptions spam_options(const std::string& out_dir, int64_t max_length, int64_t batch_size) {
  FinetuneOptions o;
  o.model_dir = pretrained_dir();
  o.train_file = repo_file("data/sample/spam_sample.jsonl");
  o.max_length = max_length;
  o.batch_size = batch_size;
  o.epochs = 1;
  o.out_dir = out_dir;
  return o;
}

TEST(Finetune, NewHeadKeepsTheEncoderBitForBit) {
  const std::string dir = data_path("fixtures/roformer-tiny-mlm");
  const RoFormerModel pre = RoFormerModel::from_pretrained(dir);
  const RoFormerModel m = model_with_new_head(dir, Task::TokenClassification, {"a", "b", "c"}, 7);
  EXPECT_EQ(m.task(), Task::TokenClassification);
  EXPECT_EQ(m.config().num_labels(), 3);
  EXPECT_EQ(m.config().id2label.at(2), "c");
  std::map<std::string, Tensor> mine;
  for (const auto& [name, t] : m.named_tensors()) mine[name] = t;
  int copied = 0;
  for (const auto& [name, t] : pre.named_tensors()) {
    if (name.rfind("roformer.", 0) != 0) continue;
    ASSERT_TRUE(mine.count(name)) << name;
    EXPECT_EQ(mine.at(name).to_vector(), t.to_vector()) << name;
    ++copied;
  }
  EXPECT_GT(copied, 30);
  // The new head: HF's init (normal weights with std initializer_range, zero bias).
  const auto w = mine.at("classifier.weight").to_vector(), b = mine.at("classifier.bias").to_vector();
  EXPECT_EQ(mine.at("classifier.weight").shape(), (Shape{3, m.config().hidden_size}));
  double sq = 0;
  for (float x : w) sq += static_cast<double>(x) * x;
  EXPECT_NEAR(std::sqrt(sq / static_cast<double>(w.size())), m.config().initializer_range, 0.01);
  for (float x : b) EXPECT_EQ(x, 0.0f);
  EXPECT_FALSE(mine.count("cls.predictions.bias")) << "the MLM head is dropped";
  // Another seed, another head; the same seed, the same head.
  const RoFormerModel again = model_with_new_head(dir, Task::TokenClassification, {"a", "b", "c"}, 7);
  const RoFormerModel other = model_with_new_head(dir, Task::TokenClassification, {"a", "b", "c"}, 8);
  auto head = [](const RoFormerModel& x) {
    for (const auto& [name, t] : x.named_tensors())
      if (name == "classifier.weight") return t.to_vector();
    return std::vector<float>{};
  };
  EXPECT_EQ(head(again), w);
  EXPECT_NE(head(other), w);
}

// A short token-classification run on `train_file` (2 epochs, 48 tokens).
FinetuneOptions tagger_options(const std::string& train_file, const std::string& out_dir) {
  FinetuneOptions o;
  o.model_dir = pretrained_dir();
  o.task = "token-classification";
  o.train_file = train_file;
  o.max_length = 48;
  o.epochs = 2;
  o.lr = 5e-3;
  o.dropout = 0;
  o.out_dir = out_dir;
  return o;
}

// The entity-span form end to end: the POS sample rewritten as texts whose
// nouns and verbs are marked by character spans (what an annotation tool
// exports) trains a tagger that beats tagging everything O.
TEST(Finetune, TokenClassificationLearnsFromEntitySpans) {
  TempDir tmp;
  {
    std::ifstream in(repo_file("data/sample/pos_sample.jsonl"));
    std::ofstream out(tmp.file("spans.jsonl"));
    std::string line;
    while (std::getline(in, line)) {
      const auto j = nlohmann::json::parse(line);
      std::string text;
      nlohmann::json entities = nlohmann::json::array();
      for (std::size_t w = 0; w < j["tokens"].size(); ++w) {
        const auto word = j["tokens"][w].get<std::string>();
        const auto tag = j["tags"][w].get<std::string>();
        if (!text.empty()) text += ' ';
        const auto start = static_cast<int64_t>(text.size());  // the sample's words are ASCII
        text += word;
        if (tag.rfind("nn", 0) == 0 || tag.rfind("vb", 0) == 0)
          entities.push_back({start, static_cast<int64_t>(text.size()), tag[0] == 'n' ? "NOUN" : "VERB"});
      }
      out << nlohmann::json{{"text", text}, {"entities", entities}, {"split", j["split"]}}.dump() << "\n";
    }
  }
  const FinetuneOptions o = tagger_options(tmp.file("spans.jsonl"), tmp.file("ft"));
  const FinetuneResult r = finetune(o);
  EXPECT_EQ(r.labels, (std::vector<std::string>{"B-NOUN", "B-VERB", "I-NOUN", "I-VERB", "O"}));
  // The share of held-out tokens tagged O: what always answering O scores.
  TaggedOptions to;
  to.max_length = 48;
  to.label_names = r.labels;
  const auto data = TaggedDataset::from_jsonl(o.train_file, Tokenizer::from_pretrained(r.model_dir), to);
  int64_t scored = 0, outside = 0;
  for (int64_t i : data.indices_of_split("valid"))
    for (int64_t label : data.example(i).labels) {
      scored += label >= 0;
      outside += label == 4;
    }
  ASSERT_EQ(scored, r.valid.items);
  const double majority = static_cast<double>(outside) / static_cast<double>(scored);
  std::printf("entity spans: held-out accuracy %.3f (always O: %.3f), MCC %.3f\n", r.valid.accuracy, majority, r.valid.mcc);
  EXPECT_GT(r.valid.accuracy, majority + 0.05) << "always-O scores " << majority;
  EXPECT_GT(r.valid.mcc, 0.3);
}

TEST(Finetune, TokenClassificationLearnsPartsOfSpeech) {
  TempDir tmp;
  const FinetuneOptions o = tagger_options(repo_file("data/sample/pos_sample.jsonl"), tmp.file("ft"));
  const FinetuneResult r = finetune(o);
  const double chance = std::log(static_cast<double>(r.labels.size()));
  EXPECT_GT(r.labels.size(), 40u);
  EXPECT_LT(r.valid.loss, chance - 1.0) << "the held-out loss should fall far below log(#tags)";
  EXPECT_GT(r.valid.accuracy, 0.35) << "better than tagging every word 'nn'";
  EXPECT_GT(r.valid.mcc, 0.3);
  // The saved directory is a token classifier whose own evaluation repeats the job's numbers.
  const RoFormerModel saved = RoFormerModel::from_pretrained(r.model_dir);
  EXPECT_EQ(saved.task(), Task::TokenClassification);
  ASSERT_EQ(saved.config().num_labels(), static_cast<int64_t>(r.labels.size()));
  const Tokenizer tok = Tokenizer::from_pretrained(r.model_dir);
  TaggedOptions to;
  to.max_length = 48;
  for (const auto& [id, name] : saved.config().id2label) to.label_names.push_back(name);
  const auto data = TaggedDataset::from_jsonl(o.train_file, tok, to);
  const ClassifierMetrics again = evaluate_token_classifier(saved, data, data.indices_of_split("valid"), 7, {1, best_isa()});
  EXPECT_EQ(again.items, r.valid.items);
  EXPECT_NEAR(again.loss, r.valid.loss, 1e-6 * r.valid.loss) << "other batch sizes pad differently";
  EXPECT_DOUBLE_EQ(again.accuracy, r.valid.accuracy);
  // Metrics log: an evaluation per epoch.
  std::ifstream log(tmp.file("ft/metrics.jsonl"));
  int evals = 0;
  for (std::string line; std::getline(log, line);) evals += nlohmann::json::parse(line).contains("valid_mcc");
  EXPECT_EQ(evals, 2);
}

TEST(Finetune, SequenceClassificationWithAccumulation) {
  TempDir tmp;
  FinetuneOptions o = spam_options(tmp.file("ft"), 32, 4);
  o.accumulation = 2;
  o.lr = 2e-3;
  int64_t steps_seen = 0;
  PretrainCallbacks cb;
  cb.on_progress = [&](const PretrainProgress& p) {
    steps_seen = p.step;
    EXPECT_TRUE(std::isfinite(p.loss));
  };
  const FinetuneResult r = finetune(o, cb);
  const Tokenizer tok = Tokenizer::from_pretrained(r.model_dir);
  LabelledOptions lo;
  lo.max_length = 32;
  const auto data = LabelledDataset::from_jsonl(o.train_file, tok, lo);
  const auto train = data.indices_of_split("train");
  EXPECT_EQ(r.steps, static_cast<int64_t>((train.size() + 7) / 8)) << "one step per 4 x 2 examples";
  EXPECT_EQ(steps_seen, r.steps);
  EXPECT_EQ(r.labels, (std::vector<std::string>{"ham", "spam"}));
  const RoFormerModel saved = RoFormerModel::from_pretrained(r.model_dir);
  EXPECT_EQ(saved.config().id2label.at(1), "spam");
  const ClassifierMetrics again =
      evaluate_sequence_classifier(saved, data, data.indices_of_split("valid"), 5, {1, best_isa()});
  EXPECT_NEAR(again.loss, r.valid.loss, 1e-6 * r.valid.loss) << "other batch sizes pad differently";
  EXPECT_EQ(again.items, r.valid.items);
  EXPECT_GT(again.items, 5);
}

// The spam sample as multiple choice: each mail is the context and the
// choices are the two label words, their order alternating by record, so the
// right answer is not always the same position.
std::string spam_as_choices(const TempDir& tmp) {
  const std::string path = tmp.file("spam_mc.jsonl");
  std::ifstream in(repo_file("data/sample/spam_sample.jsonl"));
  std::ofstream out(path);
  int64_t n = 0;
  for (std::string line; std::getline(in, line); ++n) {
    const auto j = nlohmann::json::parse(line);
    const bool spam = j.at("label") == "spam";
    const bool flip = n % 2 == 1;
    const std::vector<std::string> choices = flip ? std::vector<std::string>{"spam", "ham"}
                                                  : std::vector<std::string>{"ham", "spam"};
    out << nlohmann::json{{"context", j.at("text")}, {"choices", choices}, {"label", spam != flip ? 1 : 0},
                          {"split", j.at("split")}}
               .dump()
        << "\n";
  }
  return path;
}

// A multiple-choice head over the pre-trained encoder learns to pick the
// right label word, and the saved model (summary over [CLS]) repeats the
// job's held-out numbers through the inference forward, with any padding.
TEST(Finetune, MultipleChoicePicksTheRightLabelWord) {
  TempDir tmp;
  FinetuneOptions o;
  o.model_dir = pretrained_dir();
  o.task = "multiple-choice";
  o.train_file = spam_as_choices(tmp);
  o.max_length = 32;
  o.batch_size = 8;
  o.epochs = 6;
  o.lr = 2e-3;
  o.dropout = 0;
  o.out_dir = tmp.file("ft");
  const FinetuneResult r = finetune(o);
  EXPECT_EQ(r.labels, (std::vector<std::string>{"0", "1"}));
  EXPECT_GT(r.valid.items, 5);
  EXPECT_LT(r.valid.loss, std::log(2.0)) << "better than a coin";
  EXPECT_GT(r.valid.accuracy, 0.7);
  const RoFormerModel saved = RoFormerModel::from_pretrained(r.model_dir);
  EXPECT_EQ(saved.task(), Task::MultipleChoice);
  EXPECT_EQ(saved.config().summary_type, "first");
  const Tokenizer tok = Tokenizer::from_pretrained(r.model_dir);
  ChoiceOptions co;
  co.max_length = 32;
  const auto data = ChoiceDataset::from_jsonl(o.train_file, tok, co);
  const auto valid = data.indices_of_split("valid");
  for (int64_t batch : {1, 3}) {
    const ClassifierMetrics again = evaluate_multiple_choice(saved, data, valid, batch, {1, best_isa()});
    EXPECT_EQ(again.items, r.valid.items);
    EXPECT_NEAR(again.loss, r.valid.loss, 1e-5 * r.valid.loss) << "batch " << batch;
    EXPECT_DOUBLE_EQ(again.accuracy, r.valid.accuracy) << "batch " << batch;
  }
  // The metrics by hand from one example's logits at a time.
  double loss = 0;
  int64_t right = 0;
  ChoiceBatch b;
  for (int64_t i : valid) {
    const std::vector<int64_t> one{i};
    data.batch(one, b);
    const ModelOutput out = saved.forward(b.model_batch(), {}, {1, best_isa()});
    const float* z = out.heads.at("logits").data<float>();
    const int64_t label = b.labels[0], other = 1 - label;
    loss += std::log1p(std::exp(static_cast<double>(z[other]) - z[label]));
    right += z[label] > z[other];
  }
  EXPECT_NEAR(loss / static_cast<double>(valid.size()), r.valid.loss, 1e-5 * r.valid.loss);
  EXPECT_DOUBLE_EQ(static_cast<double>(right) / static_cast<double>(valid.size()), r.valid.accuracy);
  // A valid file whose records offer another number of choices is refused.
  const std::string three = tmp.file("three.jsonl");
  std::ofstream(three) << R"({"context": "a", "choices": ["b", "c", "d"], "label": 0})" << "\n";
  o.valid_file = three;
  o.out_dir = tmp.file("ft3");
  EXPECT_THROW(finetune(o), Error);
}

// Questions about the part-of-speech sample's sentences: "where is <word> ?"
// with that word's place in the sentence as the answer, in SQuAD's format.
// "where is <word> ?" over the POS sample's sentences; with `unanswerable`,
// every third question asks about a word of the sentence before instead,
// which this sentence lacks, with no answer (SQuAD 2.0).
std::string pointer_questions(const TempDir& tmp, bool unanswerable = false) {
  const std::string path = tmp.file("qa.jsonl");
  std::string previous_word;
  std::ifstream in(repo_file("data/sample/pos_sample.jsonl"));
  std::ofstream out(path);
  int64_t n = 0;
  for (std::string line; std::getline(in, line); ++n) {
    const auto j = nlohmann::json::parse(line);
    const auto words = j.at("tokens").get<std::vector<std::string>>();
    std::string context;
    std::vector<int64_t> starts;
    for (const auto& w : words) {
      if (!context.empty()) context += ' ';
      starts.push_back(static_cast<int64_t>(context.size()));
      context += w;
    }
    // A word of letters only, from a place that moves with the record.
    for (std::size_t k = static_cast<std::size_t>(n * 7) % words.size(), tries = 0; tries < words.size();
         k = (k + 1) % words.size(), ++tries) {
      const std::string& w = words[k];
      if (w.size() < 3 || !std::all_of(w.begin(), w.end(), [](char c) { return std::isalpha(static_cast<unsigned char>(c)); }))
        continue;
      const bool absent = unanswerable && n % 3 == 0 && !previous_word.empty() &&
                          std::find(words.begin(), words.end(), previous_word) == words.end();
      nlohmann::json answers = {{"text", {w}}, {"answer_start", {starts[k]}}};
      if (absent) answers = {{"text", nlohmann::json::array()}, {"answer_start", nlohmann::json::array()}};
      out << nlohmann::json{{"question", "where is " + (absent ? previous_word : w) + " ?"},
                            {"context", context},
                            {"answers", answers},
                            {"split", j.at("split")}}
                 .dump()
          << "\n";
      previous_word = w;
      break;
    }
  }
  return path;
}

// A question-answering run over `train_file`: 10 epochs at lr 1e-2, windows of `max_length`.
FinetuneOptions pointer_options(const std::string& train_file, const std::string& out_dir, int64_t max_length) {
  FinetuneOptions o;
  o.model_dir = pretrained_dir();
  o.task = "question-answering";
  o.train_file = train_file;
  o.max_length = max_length;
  o.batch_size = 16;
  o.epochs = 10;
  o.lr = 1e-2;
  o.dropout = 0;
  o.out_dir = out_dir;
  return o;
}

// Unanswerable questions (SQuAD 2.0) train [CLS] as the answer; the model
// learns to abstain on them and still finds the asked word elsewhere.
TEST(Finetune, QuestionAnsweringLearnsToAbstain) {
  TempDir tmp;
  const FinetuneOptions o = pointer_options(pointer_questions(tmp, true), tmp.file("ft"), 64);
  const FinetuneResult r = finetune(o);
  const RoFormerModel saved = RoFormerModel::from_pretrained(r.model_dir);
  QaOptions qo;
  qo.max_length = 64;
  qo.stride = o.doc_stride;
  const auto data = QaDataset::from_jsonl(o.train_file, Tokenizer::from_pretrained(r.model_dir), qo);
  std::vector<int64_t> without, with;  // held-out windows of unanswerable / answerable records
  for (int64_t rec = 0; rec < data.records(); ++rec) {
    if (data.record(rec).split != "valid") continue;
    auto& into = data.record(rec).answers.empty() ? without : with;
    into.insert(into.end(), data.record(rec).windows.begin(), data.record(rec).windows.end());
  }
  ASSERT_GT(without.size(), 20u);
  const QaMetrics abstain = evaluate_question_answering(saved, data, without, 32, {1, best_isa()});
  const QaMetrics answer = evaluate_question_answering(saved, data, with, 32, {1, best_isa()});
  std::printf("unanswerable: exact %.3f over %ld; answerable: exact %.3f over %ld\n", abstain.exact_match,
              static_cast<long>(abstain.items), answer.exact_match, static_cast<long>(answer.items));
  EXPECT_EQ(abstain.unanswerable, abstain.items);
  EXPECT_DOUBLE_EQ(abstain.exact_no_answer, abstain.exact_match);
  EXPECT_DOUBLE_EQ(answer.exact_has_answer, answer.exact_match);
  // Both together: the split adds back up to the whole.
  std::vector<int64_t> both = without;
  both.insert(both.end(), with.begin(), with.end());
  const QaMetrics all = evaluate_question_answering(saved, data, both, 32, {1, best_isa()});
  EXPECT_NEAR(all.exact_match * static_cast<double>(all.items),
              abstain.exact_match * static_cast<double>(abstain.items) + answer.exact_match * static_cast<double>(answer.items), 1e-9);
  EXPECT_DOUBLE_EQ(all.exact_no_answer, abstain.exact_match);
  EXPECT_DOUBLE_EQ(all.exact_has_answer, answer.exact_match);
  EXPECT_GT(abstain.exact_match, 0.5) << "abstains on most questions the sentence cannot answer";
  EXPECT_GT(answer.exact_match, 0.3) << "and still answers the others";
  // The per-epoch log carries the same split; its last evaluation is the result's.
  EXPECT_NEAR(r.valid_qa.exact_no_answer, all.exact_no_answer, 1.0 / static_cast<double>(abstain.items));
  std::ifstream log(tmp.file("ft/metrics.jsonl"));
  nlohmann::json last;
  for (std::string line; std::getline(log, line);) {
    const auto record = nlohmann::json::parse(line);
    if (record.contains("valid_exact_match")) last = record;
  }
  ASSERT_TRUE(last.contains("valid_exact_no_answer")) << last.dump();
  EXPECT_DOUBLE_EQ(last["valid_exact_no_answer"].get<double>(), r.valid_qa.exact_no_answer);
  EXPECT_DOUBLE_EQ(last["valid_exact_has_answer"].get<double>(), r.valid_qa.exact_has_answer);
}

// Question answering: the new head learns to point at the asked-for word;
// the saved model's exact match and F1 are repeated by evaluation at other
// batch sizes, and the log names the metrics.
TEST(Finetune, QuestionAnsweringPointsAtTheAskedWord) {
  TempDir tmp;
  FinetuneOptions o = pointer_options(pointer_questions(tmp), tmp.file("ft"), 32);  // many sentences need two windows
  o.doc_stride = 8;
  std::vector<std::string> logged;
  PretrainCallbacks cb;
  cb.on_log = [&](const std::string& l) { logged.push_back(l); };
  const FinetuneResult r = finetune(o, cb);
  EXPECT_GT(r.valid_qa.items, 150);
  EXPECT_GT(r.valid_qa.exact_match, 0.5);
  EXPECT_GE(r.valid_qa.f1, r.valid_qa.exact_match);
  EXPECT_DOUBLE_EQ(r.valid.loss, r.valid_qa.loss);
  bool named = false, split = false;
  for (const auto& l : logged) {
    named = named || l.find("exact match") != std::string::npos;
    split = split || l.find("without") != std::string::npos;
  }
  EXPECT_TRUE(named);
  EXPECT_FALSE(split) << "no unanswerable questions, so no SQuAD 2.0 split";
  const RoFormerModel saved = RoFormerModel::from_pretrained(r.model_dir);
  EXPECT_EQ(saved.task(), Task::QuestionAnswering);
  const Tokenizer tok = Tokenizer::from_pretrained(r.model_dir);
  QaOptions qo;
  qo.max_length = 32;
  qo.stride = 8;
  const auto data = QaDataset::from_jsonl(o.train_file, tok, qo);
  EXPECT_GT(data.size(), data.records()) << "some records have several windows";
  const auto valid = data.indices_of_split("valid");
  for (int64_t batch : {5, 64}) {
    const QaMetrics again = evaluate_question_answering(saved, data, valid, batch, {1, best_isa()});
    EXPECT_EQ(again.items, r.valid_qa.items);
    EXPECT_NEAR(again.loss, r.valid_qa.loss, 1e-5 * r.valid_qa.loss) << "batch " << batch;
    EXPECT_NEAR(again.exact_match, r.valid_qa.exact_match, 1.0 / static_cast<double>(again.items)) << "batch " << batch;
  }
}

// "valid,test" holds out both splits: the evaluation sees their union.
TEST(Finetune, SeveralHeldOutSplits) {
  TempDir tmp;
  FinetuneOptions o = spam_options(tmp.file("ft"), 16, 8);
  o.valid_split = "valid,test";
  const FinetuneResult r = finetune(o);
  LabelledOptions lo;
  lo.max_length = 16;
  const auto data = LabelledDataset::from_jsonl(o.train_file, Tokenizer::from_pretrained(r.model_dir), lo);
  const auto valid = data.indices_of_split("valid"), test = data.indices_of_split("test");
  ASSERT_FALSE(valid.empty());
  ASSERT_FALSE(test.empty());
  EXPECT_EQ(r.valid.items, static_cast<int64_t>(valid.size() + test.size()));
  o.valid_split = "valid,nope";  // an unknown name adds nothing
  o.out_dir = tmp.file("ft2");
  EXPECT_EQ(finetune(o).valid.items, static_cast<int64_t>(valid.size()));
}

TEST(Finetune, BadOptionsAreClearErrors) {
  FinetuneOptions o;
  EXPECT_THROW(finetune(o), Error);  // no model_dir
  o.model_dir = pretrained_dir();
  o.task = "translation";
  EXPECT_THROW(finetune(o), Error);
  o.task = "sequence-classification";
  o.valid_split = "nope";
  o.train_file = repo_file("data/sample/spam_sample.jsonl");
  TempDir tmp;
  o.out_dir = tmp.file("ft");
  try {
    finetune(o);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("\"nope\""), std::string::npos) << e.what();
  }
  EXPECT_THROW(finetune_options_from_json(R"({"learning_rate": 1})"), Error);
  EXPECT_THROW(finetune_options_from_json(R"({"lr": "fast"})"), Error);
  EXPECT_EQ(finetune_options_from_json(R"({"lr": 0.5, "epochs": 4})").epochs, 4);
  EXPECT_EQ(finetune_options_from_json(R"({"gemm": "onednn"})").gemm, "onednn");
  o.valid_split = "valid";
  o.gemm = "mkl";
  EXPECT_THROW(finetune(o), Error);
  o.gemm = "auto";
  o.precision = "int4";
  EXPECT_THROW(finetune(o), Error);
  EXPECT_EQ(finetune_options_from_json(R"({"precision": "bf16"})").precision, "bf16");
  EXPECT_TRUE(finetune_options_from_json(R"({"fp32_attention": true})").fp32_attention);
}

// bf16 products fine-tune the spam classifier as fp32 does: same data, same
// new head, held-out loss and accuracy close; the log says which products ran.
TEST(Finetune, Bf16ProductsFineTuneLikeFp32) {
  TempDir tmp;
  std::vector<FinetuneResult> results;
  for (const char* precision : {"fp32", "bf16"}) {
    FinetuneOptions o = spam_options(tmp.file(precision), 32, 4);
    o.lr = 2e-3;
    o.precision = precision;
    std::string logged;
    PretrainCallbacks cb;
    cb.on_log = [&](const std::string& line) { logged += line + "\n"; };
    results.push_back(finetune(o, cb));
    EXPECT_NE(logged.find(std::string("products in ") + precision), std::string::npos) << logged;
  }
  const FinetuneResult &fp32 = results[0], &bf16 = results[1];
  EXPECT_NE(bf16.valid.loss, fp32.valid.loss);  // the products really changed
  EXPECT_NEAR(bf16.valid.loss, fp32.valid.loss, 0.05 * fp32.valid.loss);
  EXPECT_NEAR(bf16.valid.accuracy, fp32.valid.accuracy, 0.1);
  EXPECT_EQ(bf16.valid.items, fp32.valid.items);
}

// Skipping the padding (the default) trains as the padded steps do: with no
// dropout, the same held-out numbers up to summation order, on the real
// positions alone.
TEST(Finetune, SkippingThePaddingTrainsLikeThePaddedSteps) {
  TempDir tmp;
  std::vector<FinetuneResult> results;
  for (bool keep : {false, true}) {
    FinetuneOptions o = spam_options(tmp.file(keep ? "padded" : "skipped"), 32, 4);
    o.lr = 2e-3;
    o.dropout = 0;
    o.keep_padding = keep;
    std::string logged;
    PretrainCallbacks cb;
    cb.on_log = [&](const std::string& line) { logged += line + "\n"; };
    results.push_back(finetune(o, cb));
    EXPECT_EQ(logged.find("padding skipped") != std::string::npos, !keep) << logged;
  }
  const FinetuneResult &skipped = results[0], &padded = results[1];
  EXPECT_EQ(padded.positions_run, padded.positions_batched);
  EXPECT_EQ(skipped.positions_batched, padded.positions_batched);
  EXPECT_LT(skipped.positions_run, skipped.positions_batched);
  EXPECT_GT(skipped.positions_run, 0);
  EXPECT_NEAR(skipped.valid.loss, padded.valid.loss, 1e-4 * padded.valid.loss);
  EXPECT_NEAR(skipped.train_loss, padded.train_loss, 1e-4 * padded.train_loss);
  EXPECT_EQ(skipped.valid.items, padded.valid.items);
}

// The pre-training job's held-out numbers equal evaluate_language_model on
// the same blocks (the job evaluates through the training forward, this
// through the inference forward), for both objectives.
TEST(PretrainObjectives, ReportedHeldOutLossEqualsEvaluation) {
  for (const std::string objective : {"mlm", "causal"}) {
    TempDir tmp;
    PretrainOptions o = toy_pretrain(tmp.file("run"), objective);
    double first = 0;
    PretrainCallbacks cb;
    cb.on_progress = [&](const PretrainProgress& p) {
      if (p.step == 1) first = p.loss;
    };
    const PretrainResult r = pretrain(o, cb);
    EXPECT_LT(r.train_loss, first - 0.5) << objective << ": the loss should fall";
    const RoFormerModel model = RoFormerModel::from_pretrained(r.model_dir);
    EXPECT_EQ(model.task(), objective == "causal" ? Task::CausalLM : Task::MaskedLM);
    EXPECT_EQ(model.config().is_decoder, objective == "causal");
    LanguageModelEvalOptions eo;
    eo.seq_len = o.seq_len;
    eo.batch_size = o.batch_size;
    eo.max_blocks = o.batch_size;  // the job's one evaluation batch
    eo.seed = o.seed ^ 0x56414C4944ull;
    const LanguageModelMetrics m =
        evaluate_language_model(model, Tokenizer::from_pretrained(r.model_dir), o.valid_file, eo, {1, best_isa()});
    EXPECT_NEAR(m.loss, r.valid_loss, 1e-5 * r.valid_loss) << objective;
    EXPECT_NEAR(m.accuracy, r.valid_accuracy, 1e-12) << objective;
    EXPECT_NEAR(m.perplexity, std::exp(m.loss), 1e-9 * m.perplexity);
    EXPECT_EQ(m.blocks, o.batch_size);
    // Causal: every real token but a block's first is predicted; MLM: about 15% of them.
    const int64_t real = o.batch_size * o.seq_len;  // the sample packs full blocks
    if (objective == "causal") EXPECT_EQ(m.predictions, real - o.batch_size);
    else EXPECT_LT(m.predictions, real / 4);
  }
}

TEST(PretrainObjectives, UnknownObjectiveIsAnError) {
  TempDir tmp;
  PretrainOptions o = toy_pretrain(tmp.file("run"), "denoising");
  EXPECT_THROW(pretrain(o), Error);
  EXPECT_THROW(pretrain_options_from_json(R"({"objective": 3})"), Error);
}

TEST(Evaluation, WrongHeadsAndEmptyInputsAreErrors) {
  const RoFormerModel qa = RoFormerModel::from_pretrained(data_path("fixtures/roformer-tiny-qa"));
  const Tokenizer tok = Tokenizer::from_pretrained(data_path("fixtures/roformer-tiny-qa"));
  EXPECT_THROW(evaluate_language_model(qa, tok, repo_file("data/sample/en_valid.txt"), {}, {1, best_isa()}), Error);
  const RoFormerModel mlm = RoFormerModel::from_pretrained(data_path("fixtures/roformer-tiny-mlm"));
  TempDir tmp;
  { std::ofstream(tmp.file("empty.txt")); }
  EXPECT_THROW(evaluate_language_model(mlm, tok, tmp.file("empty.txt"), {}, {1, best_isa()}), Error);
  EXPECT_THROW(evaluate_language_model(mlm, tok, tmp.file("missing.txt"), {}, {1, best_isa()}), Error);
}

}  // namespace
}  // namespace roformer
