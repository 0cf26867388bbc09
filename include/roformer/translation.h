#pragma once
// Translation with the sequence-to-sequence RoFormer: text in, text out
// (WordPiece on both sides with one shared vocabulary), and the training job
// of the paper's section 4.1 at any scale: parallel TSV data, a shared
// WordPiece vocabulary trained on both sides, label-smoothed cross-entropy,
// Adam (beta2 0.98) with fairseq's inverse-sqrt schedule and warm-up,
// checkpoints, metrics.jsonl, averaging of the last checkpoints, and
// held-out BLEU (sacreBLEU-compatible) from beam search at the end.
#include <cstdint>
#include <string>
#include <vector>

#include "roformer/pretrain.h"  // PretrainCallbacks / PretrainProgress: the progress reporting jobs share
#include "roformer/seq2seq.h"
#include "roformer/seq2seq_decode.h"
#include "roformer/tokenizer.h"

namespace roformer {

// Token ids of one text (no specials). Throws Error on invalid UTF-8 or when
// the text has no tokens.
std::vector<int64_t> translation_ids(const Tokenizer& tokenizer, const std::string& text);

// Translates lines (batch_size at a time); line i's error names it (1-based).
std::vector<std::string> translate_lines(const Seq2SeqModel& model, const Tokenizer& tokenizer,
                                         const std::vector<std::string>& lines, const DecodeOptions& decode,
                                         int64_t batch_size, const ExecContext& ctx);

struct TranslationTrainOptions {
  // Data: source<TAB>target lines. Without a valid_file, valid_fraction of the
  // training file is held out (hashing the source: duplicates stay together).
  std::string train_file = "data/sample/mt_de_en.tsv";
  std::string valid_file;
  double valid_fraction = 0.05;
  std::string vocab_file;  // empty: train a WordPiece vocabulary on both sides
  int64_t vocab_size = 4000;
  bool lowercase = false;
  int64_t max_source_tokens = 128;  // longer pairs are left out of training
  int64_t max_target_tokens = 128;
  // Model (Seq2SeqConfig).
  int64_t d_model = 128;
  int64_t encoder_layers = 2;
  int64_t decoder_layers = 2;
  int64_t num_heads = 4;
  int64_t ffn_dim = 512;
  std::string activation = "relu";
  bool normalize_before = false;
  std::string position_encoding = "rope";  // rope or sinusoidal (the baseline)
  double rope_theta = 10000.0;
  bool share_all_embeddings = true;
  bool share_decoder_input_output_embed = true;
  double dropout = 0.1;
  // Optimisation (fairseq's transformer recipe).
  int64_t batch_size = 32;  // sentence pairs per step
  int64_t steps = 1000;
  double lr = 1e-3;
  int64_t warmup_steps = 100;
  double warmup_init_lr = 1e-7;
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.98;
  double adam_eps = 1e-8;
  double weight_decay = 0.0;
  double clip_norm = 0.0;  // 0: no clipping
  double label_smoothing = 0.1;
  uint64_t seed = 0;
  int threads = 1;
  // Bookkeeping.
  int64_t log_every = 10;
  int64_t eval_every = 200;    // valid loss every N steps (0: only at the end)
  int64_t save_every = 0;      // checkpoint every N steps (0: only at the end)
  int64_t average_last = 0;    // final model = average of the last N checkpoints (0 or 1: the last)
  std::string out_dir = "runs/translation";
  // Held-out BLEU at the end.
  int64_t bleu_sentences = 200;  // valid pairs translated (0: all)
  int64_t beam = 4;
  double lenpen = 0.6;
  double max_len_a = 1.2;
  int64_t max_len_b = 10;
};

// Reads options from a JSON object (keys as the field names); unknown keys are an error.
TranslationTrainOptions translation_options_from_json(const std::string& json_text,
                                                      TranslationTrainOptions defaults = {});
std::string translation_options_to_json(const TranslationTrainOptions& options);

struct TranslationTrainResult {
  int64_t steps = 0;
  double train_loss = 0;      // label-smoothed, mean over the last log interval
  double first_loss = 0;      // of the first step
  double valid_loss = 0;      // label-smoothed
  double valid_nll_loss = 0;  // plain cross-entropy (perplexity = exp)
  double bleu = 0;            // sacreBLEU on bleu_sentences valid pairs
  std::string bleu_verbose;
  double seconds = 0;
  std::string model_dir;      // out_dir/final: config.json, model.safetensors, vocab.txt, tokenizer_config.json
};

TranslationTrainResult train_translation(const TranslationTrainOptions& options, const PretrainCallbacks& callbacks = {});

}  // namespace roformer
