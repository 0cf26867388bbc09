// `roformer finetune`: a pre-trained HF directory in, a fine-tuned
// sequence-classification, token-classification, multiple-choice or
// question-answering HF directory out, with held-out accuracy, macro F1 and
// Matthews correlation (question answering: exact match and F1) after every
// epoch.
#include <cstdio>
#include <memory>

#include "roformer/finetune.h"
#include "tools/commands.h"
#include "tools/config_flags.h"
#include "tools/progress.h"

namespace roformer::cli {

void register_finetune(CLI::App& app) {
  struct Options {
    std::string config;
    bool no_progress = false;
    std::unique_ptr<ConfigFlags> flags;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("finetune", "fine-tune a pre-trained RoFormer for sequence or token classification, multiple choice or question answering");
  cmd->add_option("--config,-c", opt->config, "JSON file with options (keys as in finetune_options.json; flags override it)");
  opt->flags = std::make_unique<ConfigFlags>(cmd, nlohmann::json::parse(finetune_options_to_json(FinetuneOptions{})));
  ConfigFlags& f = *opt->flags;
  f.add("--model,-m", "model_dir", "pre-trained HF directory (encoder weights and tokenizer)");
  f.add("--task", "task", "sequence-classification, token-classification, multiple-choice or question-answering");
  f.add("--train", "train_file",
        "JSONL: {\"text\", \"label\"}, {\"tokens\": [...], \"tags\": [...]}, {\"context\", \"choices\": [...], \"label\"} "
        "or {\"question\", \"context\", \"answers\": {\"text\": [...], \"answer_start\": [...]}}");
  f.add("--valid", "valid_file", "held-out JSONL (default: records of --train with \"split\": valid)");
  f.add("--train-split", "train_split", "train on the records with this \"split\" (\"\": all)");
  f.add("--valid-split", "valid_split", "hold out the records with this \"split\"");
  f.add("--text-field", "text_field", "JSON field of the text");
  f.add("--label-field", "label_field", "JSON field of the label (multiple choice: the right choice's index)");
  f.add("--tokens-field", "tokens_field", "JSON field of the words");
  f.add("--tags-field", "tags_field", "JSON field of the tags");
  f.add("--entities-field", "entities_field", "JSON field of a text's entity spans (token classification)");
  f.add("--context-field", "context_field", "JSON field of a multiple-choice record's context");
  f.add("--choices-field", "choices_field", "JSON field of a multiple-choice record's choices");
  f.add("--question-field", "question_field", "JSON field of a question-answering record's question");
  f.add("--answers-field", "answers_field", "JSON field of its answers ({\"text\", \"answer_start\"})");
  f.add("--doc-stride", "doc_stride", "question answering: context tokens shared by a long context's windows");
  f.add("--qa-scoring", "qa_scoring", "question answering: squad (SQuAD v1.1) or cmrc2018 (CMRC 2018's Chinese scoring)");
  f.add("--max-length", "max_length", "tokens per example, [CLS] and [SEP] included");
  f.add("--batch-size", "batch_size", "examples per micro-batch");
  f.add("--accumulation", "accumulation", "micro-batches per step");
  f.add("--epochs", "epochs", "passes over the training examples");
  f.add("--warmup-ratio", "warmup_ratio", "share of the steps spent warming up");
  f.add("--schedule", "schedule", "constant, linear or cosine decay");
  f.add("--lr", "lr", "peak learning rate");
  f.add("--weight-decay", "weight_decay", "AdamW weight decay (BERT groups)");
  f.add("--clip", "clip_norm", "clip gradients to this global norm (0: off)");
  f.add("--dropout", "dropout", "hidden and attention dropout (< 0: the checkpoint's)");
  f.add("--seed", "seed", "seed of the new head, data order and dropout");
  f.add("--threads,-t", "threads", "worker threads");
  f.add("--gemm", "gemm", "matrix-product library: auto, openblas, onednn");
  f.add("--precision", "precision", "products in fp32, or bf16 (rounded operands, fp32 sums and weights)");
  f.add_switch("--fp32-attention", "fp32_attention", "with bf16: keep the attention's own products in fp32");
  f.add_switch("--keep-padding", "keep_padding", "train on padded batches whole (default: their real tokens alone)");
  f.add("--log-every", "log_every", "log every N steps");
  f.add("--eval-batch-size", "eval_batch_size", "examples per evaluation batch");
  f.add("--out,-o", "out_dir", "run directory");
  cmd->add_flag("--no-progress", opt->no_progress, "plain log lines even on a terminal");
  cmd->callback([opt] {
    const FinetuneOptions o = finetune_options_from_json(opt->flags->merged(opt->config));
    const FinetuneResult r = finetune(o, training_callbacks(!opt->no_progress, o.log_every));
    finish_progress(!opt->no_progress);
    if (r.valid_qa.items > 0)
      std::printf("fine-tuned %lld steps in %s: train loss %.4f; held-out loss %.4f, exact match %.2f%%, F1 %.2f%% "
                  "over %lld questions\n",
                  static_cast<long long>(r.steps), format_minutes(r.seconds).c_str(), r.train_loss, r.valid_qa.loss,
                  100 * r.valid_qa.exact_match, 100 * r.valid_qa.f1, static_cast<long long>(r.valid_qa.items));
    else
      std::printf("fine-tuned %lld steps in %s: train loss %.4f; held-out loss %.4f, accuracy %.2f%%, macro F1 %.4f, "
                  "MCC %.4f over %lld items\n",
                  static_cast<long long>(r.steps), format_minutes(r.seconds).c_str(), r.train_loss, r.valid.loss,
                  100 * r.valid.accuracy, r.valid.macro_f1, r.valid.mcc, static_cast<long long>(r.valid.items));
    std::printf("model saved as an HF directory: %s (metrics: %s/metrics.jsonl)\n", r.model_dir.c_str(), o.out_dir.c_str());
  });
}

}  // namespace roformer::cli
