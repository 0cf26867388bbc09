#pragma once
// Pre-training of a RoFormer from scratch on a text corpus, masked LM (the
// RoFormer/BERT objective) or causal LM: WordPiece vocabulary (trained or
// given), tokenized and packed data, BERT masking (MLM),
// AdamW with warm-up and decay, gradient accumulation and clipping, dropout,
// periodic evaluation, atomic checkpoints that resume bit-identically, and
// an HF directory at the end.
#include <cstdint>
#include <functional>
#include <string>

namespace roformer {

struct PretrainOptions {
  std::string objective = "mlm";  // "mlm" (RoFormerForMaskedLM) or "causal" (RoFormerForCausalLM, is_decoder)
  // Data: one paragraph a line, a blank line between documents.
  std::string train_file = "data/sample/en_train.txt";
  std::string valid_file = "data/sample/en_valid.txt";
  std::string vocab_file;        // empty: train a WordPiece vocabulary of vocab_size
  int64_t vocab_size = 4000;
  bool whole_word_masking = false;
  // Model.
  int64_t hidden_size = 128;
  int64_t num_layers = 2;
  int64_t num_heads = 4;
  int64_t intermediate_size = 512;
  int64_t embedding_size = 0;    // 0: hidden_size
  std::string hidden_act = "gelu";
  double dropout = 0.1;          // hidden and attention dropout
  bool rotary_value = false;
  // Position and attention variants (config.h): rope, absolute, sinusoidal, none; softmax or linear.
  std::string position_embedding_type = "rope";
  double rope_theta = 10000.0;
  int64_t max_position_embeddings = 0;  // 0: max(512, seq_len); the learned absolute table's length
  std::string attention_type = "softmax";
  std::string linear_feature_map = "elu";
  // Optimisation.
  int64_t seq_len = 128;
  int64_t batch_size = 16;
  int64_t accumulation = 1;      // micro-batches per optimizer step
  int64_t steps = 1200;
  int64_t warmup_steps = 100;
  std::string schedule = "linear";  // constant, linear, cosine
  double lr = 1e-3;
  double weight_decay = 0.01;
  double clip_norm = 1.0;        // 0: no clipping
  uint64_t seed = 0;
  int threads = 1;
  std::string gemm = "auto";     // matrix-product library: auto, openblas (allocation-free steps), onednn
  std::string precision = "fp32";  // products: fp32, or bf16 (rounded operands, fp32 sums; kernels/gemm_bf16.h)
  bool fp32_attention = false;     // with bf16: the attention's own products (QK^T, PV, their gradients) stay fp32
  bool keep_padding = false;       // run padded blocks whole (off: their real tokens alone, TrainableRoFormer::set_skip_padding)
  // Bookkeeping.
  int64_t log_every = 10;
  int64_t eval_every = 200;      // 0: only at the end
  int64_t eval_batches = 16;     // validation batches per evaluation (0: all)
  int64_t save_every = 0;        // 0: only at the end
  std::string out_dir = "runs/pretrain";
  bool resume = false;           // continue from out_dir's latest checkpoint
  double max_minutes = 0;        // stop early (and save) after this long; 0: no limit
  int64_t stop_at_step = 0;      // stop (and save) once this step is done, keeping the schedule of `steps`; 0: off
};

// Reads options from a JSON object (keys as the field names); unknown keys are an error.
PretrainOptions pretrain_options_from_json(const std::string& json_text, PretrainOptions defaults = {});
std::string pretrain_options_to_json(const PretrainOptions& options);

struct PretrainProgress {
  int64_t step = 0, total_steps = 0;
  double loss = 0, lr = 0, grad_norm = 0, tokens_per_second = 0, elapsed_seconds = 0, eta_seconds = 0;
};

struct PretrainResult {
  int64_t steps = 0;
  double train_loss = 0;       // mean over the last log interval
  double valid_loss = 0;       // MLM (or next-token) loss on held-out text
  double valid_accuracy = 0;   // share of predicted tokens (masked, or next) that are exactly right
  double seconds = 0;
  std::string model_dir;       // the final HF directory
};

struct PretrainCallbacks {
  std::function<void(const PretrainProgress&)> on_progress;  // every step
  std::function<void(const std::string&)> on_log;           // human-readable lines
};

PretrainResult pretrain(const PretrainOptions& options, const PretrainCallbacks& callbacks = {});

}  // namespace roformer
