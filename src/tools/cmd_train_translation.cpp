// `roformer train-translation`: trains a sequence-to-sequence RoFormer on
// parallel source<TAB>target text (the paper's section 4.1 at any scale).
#include <cstdio>
#include <memory>

#include "roformer/translation.h"
#include "tools/commands.h"
#include "tools/config_flags.h"
#include "tools/progress.h"

namespace roformer::cli {

void register_train_translation(CLI::App& app) {
  struct Options {
    std::string config;
    bool no_progress = false;
    std::unique_ptr<ConfigFlags> flags;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("train-translation", "train a sequence-to-sequence RoFormer on parallel TSV text");
  cmd->add_option("--config,-c", opt->config, "JSON file with options (keys as in the run's options.json; flags override it)");
  opt->flags = std::make_unique<ConfigFlags>(cmd, nlohmann::json::parse(translation_options_to_json(TranslationTrainOptions{})));
  ConfigFlags& f = *opt->flags;
  f.add("--train", "train_file", "training pairs: source<TAB>target per line");
  f.add("--valid", "valid_file", "validation pairs (default: hold out part of the training file)");
  f.add("--valid-fraction", "valid_fraction", "share held out when no validation file is given");
  f.add("--vocab", "vocab_file", "vocab.txt to use (default: train one on both sides)");
  f.add("--vocab-size", "vocab_size", "WordPiece vocabulary size to train");
  f.add("--lowercase", "lowercase", "lowercase text (true/false); BLEU is then case-insensitive");
  f.add("--max-source-tokens", "max_source_tokens", "longer training pairs are left out");
  f.add("--max-target-tokens", "max_target_tokens", "longer training pairs are left out");
  f.add("--d-model", "d_model", "model width");
  f.add("--encoder-layers", "encoder_layers", "encoder layers");
  f.add("--decoder-layers", "decoder_layers", "decoder layers");
  f.add("--heads", "num_heads", "attention heads");
  f.add("--ffn", "ffn_dim", "FFN width");
  f.add("--act", "activation", "relu, gelu or gelu_new");
  f.add("--pre-ln", "normalize_before", "pre-LayerNorm (true) or post-LayerNorm (false)");
  f.add("--positions", "position_encoding", "rope (rotary self-attention) or sinusoidal (added to embeddings)");
  f.add("--rope-theta", "rope_theta", "RoPE base");
  f.add("--share-all-embeddings", "share_all_embeddings", "one embedding table for source, target and output (true/false)");
  f.add("--tie-output", "share_decoder_input_output_embed", "output projection = target embeddings (true/false)");
  f.add("--dropout", "dropout", "residual and embedding dropout");
  f.add("--batch-size", "batch_size", "sentence pairs per step");
  f.add("--steps", "steps", "optimizer steps");
  f.add("--lr", "lr", "peak learning rate (after warm-up, then inverse square root)");
  f.add("--warmup", "warmup_steps", "linear warm-up steps");
  f.add("--warmup-init-lr", "warmup_init_lr", "learning rate at step 0");
  f.add("--adam-beta1", "adam_beta1", "Adam beta1");
  f.add("--adam-beta2", "adam_beta2", "Adam beta2");
  f.add("--adam-eps", "adam_eps", "Adam epsilon");
  f.add("--weight-decay", "weight_decay", "decoupled weight decay");
  f.add("--clip", "clip_norm", "clip gradients to this global norm (0: off)");
  f.add("--label-smoothing", "label_smoothing", "label smoothing epsilon");
  f.add("--seed", "seed", "seed of initialisation, data order, split and dropout");
  f.add("--threads,-t", "threads", "worker threads");
  f.add("--log-every", "log_every", "log every N steps");
  f.add("--eval-every", "eval_every", "validation loss every N steps (0: at the end)");
  f.add("--save-every", "save_every", "checkpoint every N steps (0: at the end)");
  f.add("--average-last", "average_last", "final model = average of the last N checkpoints");
  f.add("--out,-o", "out_dir", "run directory");
  f.add("--bleu-sentences", "bleu_sentences", "validation pairs translated for BLEU at the end (0: all)");
  f.add("--beam", "beam", "beam size for the final BLEU");
  f.add("--lenpen", "lenpen", "length penalty for the final BLEU");
  f.add("--max-len-a", "max_len_a", "maximum output length = a * source length + b");
  f.add("--max-len-b", "max_len_b", "maximum output length = a * source length + b");
  cmd->add_flag("--no-progress", opt->no_progress, "plain log lines even on a terminal");
  cmd->callback([opt] {
    const TranslationTrainOptions o = translation_options_from_json(opt->flags->merged(opt->config));
    const TranslationTrainResult r = train_translation(o, training_callbacks(!opt->no_progress, o.log_every));
    finish_progress(!opt->no_progress);
    std::printf("trained %lld steps in %s: train loss %.4f (first step %.4f), valid loss %.4f, valid nll %.4f\n",
                static_cast<long long>(r.steps), format_minutes(r.seconds).c_str(), r.train_loss, r.first_loss,
                r.valid_loss, r.valid_nll_loss);
    std::printf("valid BLEU = %.2f %s\n", r.bleu, r.bleu_verbose.c_str());
    std::printf("model saved as a directory: %s (metrics: %s/metrics.jsonl)\n", r.model_dir.c_str(), o.out_dir.c_str());
  });
}

}  // namespace roformer::cli
