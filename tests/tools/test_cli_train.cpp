// The training subcommands end to end: finetune and eval through the CLI,
// config files overridden by flags, and one-line errors for bad options.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>

#include "roformer/choice_dataset.h"
#include "roformer/evaluation.h"
#include "roformer/model.h"
#include "roformer/qa_dataset.h"
#include "roformer/tagged_dataset.h"
#include "roformer/tokenizer.h"
#include "support/test_support.h"

namespace roformer::testing {
namespace {

std::string repo_file(const std::string& rel) { return data_path("../../" + rel); }

const char* kToyPretrain =
    " --hidden 32 --layers 1 --heads 2 --intermediate 64 --seq-len 32 --batch-size 4 --warmup 1 --eval-batches 1"
    " --no-progress --no-demo";

TEST(CliTrain, PretrainFinetuneEvalWithConfigFiles) {
  TempDir tmp;
  // The config says 6 steps; the flag wins with 4.
  std::ofstream(tmp.file("pre.json")) << R"({"steps": 6, "lr": 0.003, "vocab_file": ")" << data_path("fixtures/vocab.txt")
                                       << R"(", "train_file": ")" << repo_file("data/sample/en_train.txt")
                                       << R"(", "valid_file": ")" << repo_file("data/sample/en_valid.txt") << "\"}";
  const auto pre = run_command(cli_path() + " pretrain -c " + tmp.file("pre.json") + " --steps 4 --out " +
                               tmp.file("pre") + kToyPretrain + " 2>&1");
  ASSERT_EQ(pre.status, 0) << pre.output;
  std::ifstream state(tmp.file("pre/checkpoint-4/trainer_state.json"));
  ASSERT_TRUE(state.good()) << pre.output;
  const auto js = nlohmann::json::parse(state);
  EXPECT_EQ(js["step"], 4);
  EXPECT_DOUBLE_EQ(js["options"]["lr"].get<double>(), 0.003);

  const auto ft = run_command(cli_path() + " finetune -m " + tmp.file("pre/final") + " --task token-classification --train " +
                              repo_file("data/sample/pos_sample.jsonl") +
                              " --max-length 40 --epochs 1 --lr 0.005 --no-progress --out " + tmp.file("ft") + " 2>&1");
  ASSERT_EQ(ft.status, 0) << ft.output;
  EXPECT_NE(ft.output.find("macro F1"), std::string::npos) << ft.output;
  const auto ev = run_command(cli_path() + " eval -m " + tmp.file("ft/final") + " -d " +
                              repo_file("data/sample/pos_sample.jsonl") + " --split valid --max-length 40 --batch-size 32");
  ASSERT_EQ(ev.status, 0) << ev.output;
  const auto metrics = nlohmann::json::parse(ev.output);
  EXPECT_EQ(metrics["head"], "RoFormerForTokenClassification");
  // The job's last metrics line is the same evaluation (same batches: the job evaluates 32 at a time).
  // The job's model multiplies by its plain fp32 weights, the loaded one may use packed products that
  // round differently: the loss agrees to fp32 accuracy, and a near-tie could flip one prediction.
  std::ifstream log(tmp.file("ft/metrics.jsonl"));
  nlohmann::json last;
  for (std::string line; std::getline(log, line);) last = nlohmann::json::parse(line);
  EXPECT_NEAR(metrics["loss"].get<double>(), last["valid_loss"].get<double>(), 1e-6 * last["valid_loss"].get<double>());
  EXPECT_NEAR(metrics["mcc"].get<double>(), last["valid_mcc"].get<double>(), 3e-3);
  EXPECT_GT(metrics["items"].get<int64_t>(), 1000);

  const auto lm = run_command(cli_path() + " eval -m " + tmp.file("pre/final") + " -d " +
                              repo_file("data/sample/en_valid.txt") + " --seq-len 32 --max-blocks 8");
  ASSERT_EQ(lm.status, 0) << lm.output;
  const auto lmj = nlohmann::json::parse(lm.output);
  EXPECT_EQ(lmj["blocks"], 8);
  EXPECT_GT(lmj["perplexity"].get<double>(), 1.0);
  // Inference-time RoPE scaling changes the angles, hence the loss; the same masks are scored.
  const auto ntk = run_command(cli_path() + " eval -m " + tmp.file("pre/final") + " -d " +
                               repo_file("data/sample/en_valid.txt") + " --seq-len 32 --max-blocks 8 --rope-scaling ntk:4");
  ASSERT_EQ(ntk.status, 0) << ntk.output;
  const auto ntkj = nlohmann::json::parse(ntk.output);
  EXPECT_EQ(ntkj["predictions"], lmj["predictions"]);
  EXPECT_NE(ntkj["loss"].get<double>(), lmj["loss"].get<double>());
}

// `roformer eval` on the question-answering and multiple-choice fixtures
// prints what the library's evaluations compute on the same files.
TEST(CliTrain, EvalScoresQuestionAnsweringAndMultipleChoice) {
  TempDir tmp;
  const std::string qa_dir = data_path("fixtures/roformer-tiny-qa"), mc_dir = data_path("fixtures/roformer-tiny-mc");
  {
    std::ofstream qa(tmp.file("qa.jsonl"));
    const std::string context = "the cat sat on the mat while john lives in paris";
    for (const char* answer : {"the mat", "john", "paris"}) {
      const auto at = static_cast<int64_t>(context.find(answer));
      qa << nlohmann::json{{"question", std::string("where is ") + answer + " ?"},
                           {"context", context},
                           {"answers", {{"text", {answer}}, {"answer_start", {at}}}}}
                .dump()
         << "\n";
    }
    std::ofstream(tmp.file("mc.jsonl")) << R"({"context": "the cat sat", "choices": ["on the mat", "in paris"], "label": 0})"
                                        << "\n"
                                        << R"({"context": "john lives", "choices": ["on the mat", "in paris"], "label": 1})"
                                        << "\n";
  }
  const auto qa = run_command(cli_path() + " eval -m " + qa_dir + " -d " + tmp.file("qa.jsonl") + " --max-length 16 --doc-stride 4");
  ASSERT_EQ(qa.status, 0) << qa.output;
  const auto qj = nlohmann::json::parse(qa.output);
  const Tokenizer qtok = Tokenizer::from_pretrained(qa_dir);
  QaOptions qo;
  qo.max_length = 16;
  qo.stride = 4;
  const auto qdata = QaDataset::from_jsonl(tmp.file("qa.jsonl"), qtok, qo);
  std::vector<int64_t> all(static_cast<std::size_t>(qdata.size()));
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);
  const QaMetrics qm = evaluate_question_answering(RoFormerModel::from_pretrained(qa_dir), qdata, all, 16,
                                                   {1, best_isa()});
  EXPECT_GT(qm.windows, qm.items) << "the 16-token windows split the context";
  EXPECT_EQ(qj["items"], 3);
  EXPECT_EQ(qj["windows"], qm.windows);
  EXPECT_NEAR(qj["loss"].get<double>(), qm.loss, 1e-6 * qm.loss);
  EXPECT_DOUBLE_EQ(qj["exact_match"].get<double>(), qm.exact_match);
  EXPECT_DOUBLE_EQ(qj["f1"].get<double>(), qm.f1);
  EXPECT_EQ(qj["scoring"], "squad");
  EXPECT_EQ(qj["unanswerable"], 0);
  const auto cmrc = run_command(cli_path() + " eval -m " + qa_dir + " -d " + tmp.file("qa.jsonl") +
                                " --max-length 16 --doc-stride 4 --qa-scoring cmrc2018");
  ASSERT_EQ(cmrc.status, 0) << cmrc.output;
  const auto cj = nlohmann::json::parse(cmrc.output);
  const QaMetrics cm = evaluate_question_answering(RoFormerModel::from_pretrained(qa_dir), qdata, all, 16,
                                                   {1, best_isa()}, 30, QaScoring::Cmrc2018);
  EXPECT_EQ(cj["scoring"], "cmrc2018");
  EXPECT_DOUBLE_EQ(cj["exact_match"].get<double>(), cm.exact_match);
  EXPECT_DOUBLE_EQ(cj["f1"].get<double>(), cm.f1);
  const auto bad = run_command(cli_path() + " eval -m " + qa_dir + " -d " + tmp.file("qa.jsonl") + " --qa-scoring bleu 2>&1");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.output.find("squad or cmrc2018"), std::string::npos) << bad.output;

  const auto mc = run_command(cli_path() + " eval -m " + mc_dir + " -d " + tmp.file("mc.jsonl"));
  ASSERT_EQ(mc.status, 0) << mc.output;
  const auto mj = nlohmann::json::parse(mc.output);
  const auto mdata = ChoiceDataset::from_jsonl(tmp.file("mc.jsonl"), Tokenizer::from_pretrained(mc_dir));
  const std::vector<int64_t> both{0, 1};
  const ClassifierMetrics mm = evaluate_multiple_choice(RoFormerModel::from_pretrained(mc_dir), mdata, both, 16,
                                                        {1, best_isa()});
  EXPECT_EQ(mj["head"], "RoFormerForMultipleChoice");
  EXPECT_EQ(mj["items"], 2);
  EXPECT_NEAR(mj["loss"].get<double>(), mm.loss, 1e-6 * mm.loss);
  EXPECT_DOUBLE_EQ(mj["accuracy"].get<double>(), mm.accuracy);
}

// `roformer eval` on entity-span data with the token-classification fixture
// (labels O, B-/I-PER, B-/I-LOC) prints what the library computes.
TEST(CliTrain, EvalScoresEntitySpans) {
  TempDir tmp;
  const std::string dir = data_path("fixtures/roformer-tiny-tok");
  std::ofstream(tmp.file("ner.jsonl")) << R"({"text": "john lives in paris", "entities": [[0, 4, "PER"], [14, 19, "LOC"]]})"
                                       << "\n"
                                       << R"({"text": "mary met john", "entities": [{"start": 0, "end": 4, "label": "PER"}]})"
                                       << "\n";
  const auto r = run_command(cli_path() + " eval -m " + dir + " -d " + tmp.file("ner.jsonl"));
  ASSERT_EQ(r.status, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  const RoFormerModel model = RoFormerModel::from_pretrained(dir);
  TaggedOptions o;
  o.label_names = {model.config().id2label.at(0), model.config().id2label.at(1), model.config().id2label.at(2),
                   model.config().id2label.at(3), model.config().id2label.at(4)};
  const auto data = TaggedDataset::from_jsonl(tmp.file("ner.jsonl"), Tokenizer::from_pretrained(dir), o);
  const std::vector<int64_t> both{0, 1};
  const ClassifierMetrics m = evaluate_token_classifier(model, data, both, 16, {1, best_isa()});
  EXPECT_EQ(j["items"], m.items);
  EXPECT_GE(m.items, 7) << "every token of both texts is scored";
  EXPECT_NEAR(j["loss"].get<double>(), m.loss, 1e-6 * m.loss);
  EXPECT_DOUBLE_EQ(j["accuracy"].get<double>(), m.accuracy);
}

// With an unanswerable question in the data, a record's answer is "" exactly
// when [CLS]'s start + end logit beats every span's (worked out here from the
// model's own logits), and only "" is right for the unanswerable one.
TEST(CliTrain, EvalAbstainsWhereNoAnswerScoresHigher) {
  TempDir tmp;
  const std::string dir = data_path("fixtures/roformer-tiny-qa");
  const std::string context = "the cat sat on the mat while john lives in paris";
  {
    std::ofstream qa(tmp.file("qa.jsonl"));
    for (const char* question : {"where is paris ?", "who sat ?", "what is red ?", "where is john ?"}) {
      const bool answerable = std::string(question) != "what is red ?";
      const std::string answer = std::string(question).find("who") == 0 ? "the cat" : "paris";
      nlohmann::json answers = {{"text", nlohmann::json::array()}, {"answer_start", nlohmann::json::array()}};
      if (answerable) answers = {{"text", {answer}}, {"answer_start", {static_cast<int64_t>(context.find(answer))}}};
      qa << nlohmann::json{{"question", question}, {"context", context}, {"answers", answers}}.dump() << "\n";
    }
  }
  const RoFormerModel model = RoFormerModel::from_pretrained(dir);
  const Tokenizer tok = Tokenizer::from_pretrained(dir);
  const auto data = QaDataset::from_jsonl(tmp.file("qa.jsonl"), tok);
  ASSERT_EQ(data.unanswerable(), 1);
  double expected_em = 0;
  int64_t abstained = 0;
  for (int64_t r = 0; r < data.records(); ++r) {
    const QaWindow& w = data.window(data.record(r).windows.at(0));  // one window each
    Encoding e;
    e.input_ids = w.ids;
    e.token_type_ids = w.types;
    e.attention_mask.assign(w.ids.size(), 1);
    const ModelOutput out = model.forward(
        Batch{Tensor::view(e.input_ids.data(), {1, static_cast<int64_t>(e.input_ids.size())}, DType::I64),
              Tensor::view(e.attention_mask.data(), {1, static_cast<int64_t>(e.input_ids.size())}, DType::I64),
              Tensor::view(e.token_type_ids.data(), {1, static_cast<int64_t>(e.input_ids.size())}, DType::I64)},
        {}, {1, best_isa()});
    const float* s = out.heads.at("start_logits").data<float>();
    const float* en = out.heads.at("end_logits").data<float>();
    double best = -1e30;
    int64_t bs = 0, be = 0;
    for (int64_t a = w.context_begin; a < w.context_end; ++a)
      for (int64_t z = a; z < w.context_end && z - a < 30; ++z)
        if (double(s[a]) + en[z] > best) {
          best = double(s[a]) + en[z];
          bs = a;
          be = z;
        }
    const bool abstain = double(s[0]) + en[0] > best;
    abstained += abstain;
    const std::string predicted = abstain ? "" : data.record(r).text_of(bs - w.context_begin, be - w.context_begin);
    const auto& answers = data.record(r).answers;
    expected_em += answers.empty() ? (predicted.empty() ? 1.0 : 0.0) : (squad_normalize(predicted) == squad_normalize(answers[0]));
  }
  std::vector<int64_t> all(static_cast<std::size_t>(data.size()));
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);
  const QaMetrics m = evaluate_question_answering(model, data, all, 3, {1, best_isa()});
  EXPECT_EQ(m.unanswerable, 1);
  EXPECT_DOUBLE_EQ(m.exact_match, expected_em / 4.0) << abstained << " of 4 abstained";
  const auto r = run_command(cli_path() + " eval -m " + dir + " -d " + tmp.file("qa.jsonl"));
  ASSERT_EQ(r.status, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["unanswerable"], 1);
  EXPECT_DOUBLE_EQ(j["exact_match"].get<double>(), m.exact_match);
  EXPECT_DOUBLE_EQ(j["exact_no_answer"].get<double>(), m.exact_no_answer);
  EXPECT_DOUBLE_EQ(j["exact_has_answer"].get<double>(), m.exact_has_answer);
}

TEST(CliTrain, CausalPretrainShowsContinuations) {
  TempDir tmp;
  const auto r = run_command(cli_path() + " pretrain --objective causal --steps 3 --vocab " + data_path("fixtures/vocab.txt") +
                             " --train " + repo_file("data/sample/en_train.txt") + " --valid " +
                             repo_file("data/sample/en_valid.txt") + " --out " + tmp.file("run") +
                             " --hidden 32 --layers 1 --heads 2 --intermediate 64 --seq-len 32 --batch-size 4 --warmup 1"
                             " --eval-batches 1 --no-progress --precision bf16 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("products in bf16"), std::string::npos) << r.output;  // mixed precision, said in the log
  EXPECT_NE(r.output.find("next-token loss"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("greedy continuations"), std::string::npos) << r.output;
}

TEST(CliTrain, BadOptionsAreOneLineErrors) {
  TempDir tmp;
  std::ofstream(tmp.file("bad.json")) << R"({"learning_rate": 1})";
  const std::string model = data_path("fixtures/roformer-tiny-mlm");
  for (const std::string& args : std::vector<std::string>{" finetune -m " + model + " -c " + tmp.file("bad.json"), " finetune -m " + model + " --lr fast",
        " finetune -m " + model + " --task translation --out " + tmp.file("o"),
        " finetune -m " + model + " --epochs 1.5", std::string(" pretrain --steps -x"), " pretrain --objective denoise --out " + tmp.file("p"),
        " pretrain --precision fp16 --out " + tmp.file("p"), " finetune -m " + model + " --precision half --out " + tmp.file("o"),
        " eval -m " + data_path("fixtures/roformer-tiny-qa") + " -d " + repo_file("data/sample/en_valid.txt"),
        " eval -m " + model + " -d " + tmp.file("missing.txt"),
        " eval -m " + model + " -d " + repo_file("data/sample/en_valid.txt") + " --rope-scaling yarn:2",
        " eval -m " + model + " -d " + repo_file("data/sample/en_valid.txt") + " --rope-scaling linear",
        " eval -m " + model + " -d " + repo_file("data/sample/en_valid.txt") + " --config-overrides '[1]'"}) {
    const auto r = run_command(cli_path() + args + " 2>&1");
    EXPECT_NE(r.status, 0) << args;
    EXPECT_NE(r.output.find("roformer: error:"), std::string::npos) << args << "\n" << r.output;
    EXPECT_EQ(r.output.find("terminate"), std::string::npos) << args;
  }
}

}  // namespace
}  // namespace roformer::testing
