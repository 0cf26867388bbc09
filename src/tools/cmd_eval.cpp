// `roformer eval`: scores a saved model on held-out data and prints one JSON
// object of metrics. The model's head picks the data and the metrics:
// masked / causal LM on text (loss, perplexity, accuracy), sequence and
// token classifiers and multiple choice on JSONL (loss, accuracy, macro F1,
// Matthews correlation), question answering on SQuAD JSONL (exact match, F1).
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>

#include "roformer/choice_dataset.h"
#include "roformer/error.h"
#include "roformer/evaluation.h"
#include "roformer/labelled_dataset.h"
#include "roformer/model.h"
#include "roformer/qa_dataset.h"
#include "roformer/tagged_dataset.h"
#include "roformer/tokenizer.h"
#include "tools/commands.h"
#include "tools/common.h"

namespace roformer::cli {

namespace {

// The examples of `data` to score: those of `split`, or all when it is empty;
// none is an error naming the file.
template <class Data>
std::vector<int64_t> scored(const Data& data, const std::string& split, const std::string& path) {
  std::vector<int64_t> idx = data.indices_of_split(split);
  if (split.empty()) {
    idx.resize(static_cast<std::size_t>(data.size()));
    std::iota(idx.begin(), idx.end(), 0);
  }
  check(!idx.empty(), path + ": no records to score");
  return idx;
}

std::vector<std::string> model_labels(const RoFormerModel& model) {
  std::vector<std::string> names;
  for (const auto& [id, name] : model.config().id2label) names.push_back(name);
  return names;
}

nlohmann::json classifier_json(const ClassifierMetrics& m) {
  return {{"loss", m.loss}, {"accuracy", m.accuracy}, {"macro_f1", m.macro_f1}, {"mcc", m.mcc}, {"items", m.items}};
}

}  // namespace

void register_eval(CLI::App& app) {
  struct Options {
    std::string model, data, split, text_field = "text", label_field = "label", tokens_field = "tokens",
                                     tags_field = "tags", entities_field = "entities", context_field = "context", choices_field = "choices",
                question_field = "question", answers_field = "answers";
    int64_t max_length = 128, seq_len = 128, batch_size = 16, max_blocks = 0, doc_stride = 32, max_answer_length = 30;
    uint64_t seed = 0;
    bool whole_word = false;
    std::string overrides, rope_scaling, qa_scoring = "squad";
    ExecOptions exec;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("eval", "score a saved model on held-out data (prints JSON metrics)");
  cmd->add_option("--model,-m", opt->model, "HF directory")->required();
  cmd->add_option("--data,-d", opt->data, "text (LM heads) or JSONL (classifiers)")->required();
  cmd->add_option("--split", opt->split, "JSONL: only records with this \"split\" (default: all)");
  cmd->add_option("--text-field", opt->text_field, "JSONL field of the text")->capture_default_str();
  cmd->add_option("--label-field", opt->label_field, "JSONL field of the label")->capture_default_str();
  cmd->add_option("--tokens-field", opt->tokens_field, "JSONL field of the words")->capture_default_str();
  cmd->add_option("--tags-field", opt->tags_field, "JSONL field of the tags")->capture_default_str();
  cmd->add_option("--entities-field", opt->entities_field, "JSONL field of a text's entity spans")->capture_default_str();
  cmd->add_option("--context-field", opt->context_field, "JSONL field of a multiple-choice context")->capture_default_str();
  cmd->add_option("--choices-field", opt->choices_field, "JSONL field of the choices")->capture_default_str();
  cmd->add_option("--question-field", opt->question_field, "JSONL field of a question")->capture_default_str();
  cmd->add_option("--answers-field", opt->answers_field, "JSONL field of its answers")->capture_default_str();
  cmd->add_option("--doc-stride", opt->doc_stride, "QA: context tokens shared by a long context's windows")->capture_default_str();
  cmd->add_option("--max-answer-length", opt->max_answer_length, "QA: longest answer in tokens")->capture_default_str();
  cmd->add_option("--qa-scoring", opt->qa_scoring, "QA: squad (SQuAD v1.1) or cmrc2018 (CMRC 2018's Chinese scoring)")
      ->capture_default_str();
  cmd->add_option("--max-length", opt->max_length, "classifiers: tokens per example")->capture_default_str();
  cmd->add_option("--seq-len", opt->seq_len, "LM: tokens per packed block")->capture_default_str();
  cmd->add_option("--batch-size", opt->batch_size, "sequences per batch")->capture_default_str();
  cmd->add_option("--max-blocks", opt->max_blocks, "LM: score at most this many blocks (0: all)")->capture_default_str();
  cmd->add_option("--seed", opt->seed, "MLM: masking seed")->capture_default_str();
  cmd->add_flag("--whole-word-masking", opt->whole_word, "MLM: mask whole words");
  cmd->add_option("--config-overrides", opt->overrides, "JSON object replacing config.json keys, e.g. '{\"rope_theta\": 20000}'");
  cmd->add_option("--rope-scaling", opt->rope_scaling,
                  "TYPE:FACTOR: RoPE position interpolation (linear:4) or NTK-aware scaling (ntk:4) at inference");
  add_exec_options(cmd, opt->exec);
  cmd->callback([opt] {
    const ExecContext ctx = opt->exec.context();
    LoadOptions load;
    nlohmann::json overrides = nlohmann::json::object();
    if (!opt->overrides.empty()) {
      try {
        overrides = nlohmann::json::parse(opt->overrides);
      } catch (const nlohmann::json::exception& e) {
        throw Error(std::string("--config-overrides: not valid JSON: ") + e.what());
      }
      check(overrides.is_object(), "--config-overrides: expected a JSON object");
    }
    if (!opt->rope_scaling.empty()) {
      const auto colon = opt->rope_scaling.find(':');
      check(colon != std::string::npos, "--rope-scaling: expected TYPE:FACTOR, e.g. linear:4");
      double factor = 0;
      try {
        std::size_t used = 0;
        factor = std::stod(opt->rope_scaling.substr(colon + 1), &used);
        check(used == opt->rope_scaling.size() - colon - 1, "--rope-scaling: bad factor");
      } catch (const std::logic_error&) {
        throw Error("--rope-scaling: bad factor in '" + opt->rope_scaling + "'");
      }
      overrides["rope_scaling"] = {{"type", opt->rope_scaling.substr(0, colon)}, {"factor", factor}};
    }
    if (!overrides.empty()) load.config_overrides = overrides.dump();
    opt->exec.set_precision(load);
    const RoFormerModel model = RoFormerModel::from_pretrained(opt->model, load);
    const Tokenizer tok = Tokenizer::from_pretrained(opt->model);
    nlohmann::json out{{"model", opt->model}, {"data", opt->data}, {"head", std::string(task_name(model.task()))}};
    switch (model.task()) {
      case Task::MaskedLM:
      case Task::CausalLM: {
        LanguageModelEvalOptions o;
        o.seq_len = opt->seq_len;
        o.batch_size = opt->batch_size;
        o.max_blocks = opt->max_blocks;
        o.seed = opt->seed;
        o.whole_word_masking = opt->whole_word;
        const LanguageModelMetrics m = evaluate_language_model(model, tok, opt->data, o, ctx);
        out.update({{"loss", m.loss}, {"perplexity", m.perplexity}, {"accuracy", m.accuracy},
                    {"predictions", m.predictions}, {"blocks", m.blocks}});
        break;
      }
      case Task::SequenceClassification: {
        LabelledOptions o;
        o.max_length = opt->max_length;
        o.text_field = opt->text_field;
        o.label_field = opt->label_field;
        o.label_names = model_labels(model);
        const auto data = LabelledDataset::from_jsonl(opt->data, tok, o);
        const auto idx = scored(data, opt->split, opt->data);
        out.update(classifier_json(evaluate_sequence_classifier(model, data, idx, opt->batch_size, ctx)));
        break;
      }
      case Task::TokenClassification: {
        TaggedOptions o;
        o.max_length = opt->max_length;
        o.tokens_field = opt->tokens_field;
        o.tags_field = opt->tags_field;
        o.text_field = opt->text_field;
        o.entities_field = opt->entities_field;
        o.label_names = model_labels(model);
        const auto data = TaggedDataset::from_jsonl(opt->data, tok, o);
        const auto idx = scored(data, opt->split, opt->data);
        out.update(classifier_json(evaluate_token_classifier(model, data, idx, opt->batch_size, ctx)));
        break;
      }
      case Task::MultipleChoice: {
        ChoiceOptions o;
        o.max_length = opt->max_length;
        o.context_field = opt->context_field;
        o.choices_field = opt->choices_field;
        o.label_field = opt->label_field;
        const auto data = ChoiceDataset::from_jsonl(opt->data, tok, o);
        const auto idx = scored(data, opt->split, opt->data);
        out.update(classifier_json(evaluate_multiple_choice(model, data, idx, opt->batch_size, ctx)));
        break;
      }
      case Task::QuestionAnswering: {
        QaOptions o;
        o.max_length = opt->max_length;
        o.stride = opt->doc_stride;
        o.question_field = opt->question_field;
        o.context_field = opt->context_field;
        o.answers_field = opt->answers_field;
        const auto data = QaDataset::from_jsonl(opt->data, tok, o);
        const auto idx = scored(data, opt->split, opt->data);
        const QaScoring scoring = parse_qa_scoring(opt->qa_scoring);
        const QaMetrics m =
            evaluate_question_answering(model, data, idx, opt->batch_size, ctx, opt->max_answer_length, scoring);
        out.update({{"scoring", qa_scoring_name(scoring)}, {"loss", m.loss}, {"exact_match", m.exact_match}, {"f1", m.f1}, {"items", m.items},
                    {"windows", m.windows}, {"unanswerable", m.unanswerable}, {"unaligned", data.unaligned()}});
        if (m.unanswerable > 0) out.update({{"exact_has_answer", m.exact_has_answer}, {"exact_no_answer", m.exact_no_answer}});
        break;
      }
      default:
        throw Error("eval: no evaluation for a " + std::string(task_name(model.task())) +
                    " yet (masked LM, causal LM, sequence and token classification, multiple choice and question "
                    "answering are supported)");
    }
    std::printf("%s\n", out.dump(2).c_str());
  });
}

}  // namespace roformer::cli
