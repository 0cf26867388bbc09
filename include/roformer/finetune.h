#pragma once
// Fine-tuning a pre-trained RoFormer (any HF directory: its encoder weights and
// tokenizer) for sequence classification, token classification, multiple
// choice or extractive question answering: a new head
// initialised with HF's scheme, AdamW with warm-up and decay, dropout,
// accumulation and clipping, evaluation on held-out data after every epoch,
// and an HF directory (with id2label) at the end.
#include <cstdint>
#include <string>
#include <vector>

#include "roformer/evaluation.h"
#include "roformer/pretrain.h"

namespace roformer {

struct FinetuneOptions {
  std::string model_dir;                     // pre-trained HF directory (required)
  // or "token-classification", "multiple-choice", "question-answering"
  std::string task = "sequence-classification";
  // Data (JSONL). Sequence classification: {"text", "label"}; token
  // classification: {"tokens": [...], "tags": [...]} or {"text", "entities":
  // [[start, end, label], ...]} (roformer/tagged_dataset.h); multiple choice:
  // {"context", "choices": [...], "label": index} (roformer/choice_dataset.h);
  // question answering: SQuAD's {"question", "context", "answers": {"text",
  // "answer_start"}} (roformer/qa_dataset.h).
  // Without valid_file, the
  // records of train_file whose "split" is valid_split are held out.
  std::string train_file = "data/sample/spam_sample.jsonl";
  std::string valid_file;
  std::string train_split = "train";         // used when the file has "split" fields ("" = every record)
  std::string valid_split = "valid";           // several may be given, comma-separated: "valid,test"
  std::string text_field = "text", label_field = "label";
  std::string tokens_field = "tokens", tags_field = "tags", entities_field = "entities";
  std::string context_field = "context", choices_field = "choices";
  std::string question_field = "question", answers_field = "answers";
  int64_t doc_stride = 32;                   // question answering: context tokens shared by windows
  std::string qa_scoring = "squad";          // question answering: squad or cmrc2018 (roformer/qa_scores.h)
  int64_t max_length = 128;
  // Optimisation.
  int64_t batch_size = 16;
  int64_t accumulation = 1;
  int64_t epochs = 3;
  double warmup_ratio = 0.1;
  std::string schedule = "linear";
  double lr = 5e-5;
  double weight_decay = 0.01;
  double clip_norm = 1.0;
  double dropout = -1;                       // < 0: the checkpoint's own probabilities
  uint64_t seed = 0;
  int threads = 1;
  std::string gemm = "auto";                 // matrix-product library: auto, openblas, onednn
  std::string precision = "fp32";            // products: fp32, or bf16 (rounded operands, fp32 sums)
  bool fp32_attention = false;               // with bf16: the attention's own products stay fp32
  bool keep_padding = false;                 // train on padded batches whole (off: real tokens alone where the loss allows)
  int64_t log_every = 10;
  int64_t eval_batch_size = 32;
  std::string out_dir = "runs/finetune";
};

FinetuneOptions finetune_options_from_json(const std::string& json_text, FinetuneOptions defaults = {});
std::string finetune_options_to_json(const FinetuneOptions& options);

struct FinetuneResult {
  int64_t steps = 0;
  double train_loss = 0;          // mean over the last log interval
  ClassifierMetrics valid;        // after the last epoch (question answering: loss and items only)
  QaMetrics valid_qa;             // question answering, after the last epoch
  std::vector<std::string> labels;
  // Token positions the encoder ran over all training micro-batches, and the
  // positions of those batches padded (equal with keep_padding or no padding).
  int64_t positions_run = 0, positions_batched = 0;
  double seconds = 0;
  std::string model_dir;          // the final HF directory
};

FinetuneResult finetune(const FinetuneOptions& options, const PretrainCallbacks& callbacks = {});

// The encoder of the model in `model_dir` under a freshly initialised head for
// `task` with these labels (HF's from_pretrained with a new head).
RoFormerModel model_with_new_head(const std::string& model_dir, Task task, const std::vector<std::string>& labels,
                                  uint64_t seed, double dropout = -1);

}  // namespace roformer
