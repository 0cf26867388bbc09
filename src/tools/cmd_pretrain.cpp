// `roformer pretrain`: pre-training from scratch (masked or causal LM), with a
// progress bar on a terminal (plain log lines otherwise), then held-out
// evaluation and a look at the saved model: fill-mask predictions (MLM) or
// greedy continuations of held-out text (causal).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <numeric>
#include <sstream>

#include "roformer/error.h"
#include "roformer/generate.h"
#include "roformer/model.h"
#include "roformer/pretrain.h"
#include "roformer/tokenizer.h"
#include "tools/commands.h"
#include "tools/config_flags.h"
#include "tools/progress.h"

namespace roformer::cli {

namespace {

// The first words of a few held-out paragraphs.
std::vector<std::vector<std::string>> held_out_openings(const std::string& valid_file, std::size_t count,
                                                        std::size_t words) {
  std::ifstream in(valid_file);
  std::vector<std::vector<std::string>> out;
  for (std::string line; out.size() < count && std::getline(in, line);) {
    std::istringstream ss(line);
    std::vector<std::string> w;
    for (std::string x; ss >> x && w.size() < words;) w.push_back(x);
    if (w.size() == words) out.push_back(std::move(w));
  }
  return out;
}

std::string join(const std::vector<std::string>& w) {
  std::string s;
  for (const auto& x : w) s += (s.empty() ? "" : " ") + x;
  return s;
}

// Greedy continuations of held-out openings.
void show_continuations(const std::string& model_dir, const std::string& valid_file, int threads) {
  RoFormerModel model = RoFormerModel::from_pretrained(model_dir);
  const Tokenizer tok = Tokenizer::from_pretrained(model_dir);
  std::printf("\ngreedy continuations of held-out text (%s):\n", model_dir.c_str());
  GenerateOptions g;
  g.max_new_tokens = 16;
  for (const auto& words : held_out_openings(valid_file, 4, 8)) {
    Encoding e = tok.encode(join(words));
    e.input_ids.pop_back();  // no [SEP]: the text goes on
    const auto next = generate(model, e.input_ids, g, ExecContext{threads, best_isa()});
    std::printf("  %s ... %s\n", join(words).c_str(), tok.decode(next, true).c_str());
  }
}

// Masks one word in each of a few held-out sentences and prints the model's guesses.
void show_fill_mask(const std::string& model_dir, const std::string& valid_file, int threads) {
  RoFormerModel model = RoFormerModel::from_pretrained(model_dir);
  const Tokenizer tok = Tokenizer::from_pretrained(model_dir);
  std::ifstream in(valid_file);
  std::string line;
  int shown = 0;
  std::printf("\nfill-mask on held-out sentences (%s):\n", model_dir.c_str());
  while (shown < 4 && std::getline(in, line)) {
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string x; words >> x && w.size() < 14;) w.push_back(x);
    if (w.size() < 10) continue;
    // The first purely alphabetic word after the fourth.
    std::size_t pick = 4;
    while (pick < w.size() && !std::all_of(w[pick].begin(), w[pick].end(), [](unsigned char c) { return std::isalpha(c); })) ++pick;
    if (pick >= w.size()) continue;
    const std::string answer = w[pick];
    w[pick] = "[MASK]";
    const std::string text = std::accumulate(std::next(w.begin()), w.end(), w[0],
                                             [](std::string a, const std::string& b) { return a + " " + b; });
    const Encoding e = tok.encode(text);
    Tensor ids = Tensor::zeros({1, static_cast<int64_t>(e.input_ids.size())}, DType::I64);
    std::copy(e.input_ids.begin(), e.input_ids.end(), ids.data<int64_t>());
    const ModelOutput out = model.forward(Batch{ids, {}, {}}, {}, ExecContext{threads, best_isa()});
    const int64_t V = model.config().vocab_size;
    for (std::size_t t = 0; t < e.input_ids.size(); ++t) {
      if (e.input_ids[t] != tok.mask_id()) continue;
      const float* row = out.heads.at("logits").data<float>() + static_cast<int64_t>(t) * V;
      std::vector<int64_t> order(static_cast<std::size_t>(V));
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + 3, order.end(), [&](int64_t a, int64_t b) { return row[a] > row[b]; });
      std::printf("  %s\n    answer: %s   guesses: %s, %s, %s\n", text.c_str(), answer.c_str(),
                  tok.id_to_token(order[0]).c_str(), tok.id_to_token(order[1]).c_str(), tok.id_to_token(order[2]).c_str());
    }
    ++shown;
  }
}

}  // namespace

void register_pretrain(CLI::App& app) {
  struct Options {
    std::string config;
    bool no_progress = false, no_demo = false;
    std::unique_ptr<ConfigFlags> flags;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("pretrain", "pre-train a RoFormer (masked or causal LM) on a text corpus");
  cmd->add_option("--config,-c", opt->config, "JSON file with options (keys as in the run's trainer_state.json; flags override it)");
  opt->flags = std::make_unique<ConfigFlags>(cmd, nlohmann::json::parse(pretrain_options_to_json(PretrainOptions{})));
  ConfigFlags& f = *opt->flags;
  f.add("--objective", "objective", "mlm (masked LM) or causal (next-token LM)");
  f.add("--train", "train_file", "training text (a paragraph per line, blank line between documents)");
  f.add("--valid", "valid_file", "held-out text");
  f.add("--vocab", "vocab_file", "vocab.txt to use (default: train one)");
  f.add("--vocab-size", "vocab_size", "WordPiece vocabulary size to train");
  f.add_switch("--whole-word-masking", "whole_word_masking", "mask whole words");
  f.add("--hidden", "hidden_size", "hidden size");
  f.add("--layers", "num_layers", "encoder layers");
  f.add("--heads", "num_heads", "attention heads");
  f.add("--intermediate", "intermediate_size", "FFN size");
  f.add("--embedding-size", "embedding_size", "embedding size (0: the hidden size)");
  f.add("--act", "hidden_act", "gelu, gelu_new or relu");
  f.add("--dropout", "dropout", "hidden and attention dropout");
  f.add_switch("--rotary-value", "rotary_value", "rotate the values too");
  f.add("--positions", "position_embedding_type", "rope, absolute (learned table), sinusoidal (added) or none");
  f.add("--rope-theta", "rope_theta", "RoPE base");
  f.add("--max-positions", "max_position_embeddings", "length of the learned position table (0: max(512, seq-len))");
  f.add("--attention", "attention_type", "softmax, or linear (the paper's eq. 19)");
  f.add("--feature-map", "linear_feature_map", "linear attention's feature map: elu, relu or favor");
  f.add("--seq-len", "seq_len", "tokens per sequence");
  f.add("--batch-size", "batch_size", "sequences per micro-batch");
  f.add("--accumulation", "accumulation", "micro-batches per step");
  f.add("--steps", "steps", "optimizer steps");
  f.add("--warmup", "warmup_steps", "linear warm-up steps");
  f.add("--schedule", "schedule", "constant, linear or cosine decay");
  f.add("--lr", "lr", "peak learning rate");
  f.add("--weight-decay", "weight_decay", "AdamW weight decay (BERT groups)");
  f.add("--clip", "clip_norm", "clip gradients to this global norm (0: off)");
  f.add("--seed", "seed", "seed of initialisation, data order, masking and dropout");
  f.add("--threads,-t", "threads", "worker threads");
  f.add("--gemm", "gemm", "matrix-product library: auto, openblas, onednn");
  f.add("--precision", "precision", "products in fp32, or bf16 (rounded operands, fp32 sums and weights)");
  f.add_switch("--fp32-attention", "fp32_attention", "with bf16: keep the attention's own products in fp32");
  f.add_switch("--keep-padding", "keep_padding", "train on padded batches whole (default: their real tokens alone)");
  f.add("--log-every", "log_every", "log every N steps");
  f.add("--eval-every", "eval_every", "evaluate every N steps (0: at the end)");
  f.add("--eval-batches", "eval_batches", "validation batches per evaluation (0: all)");
  f.add("--save-every", "save_every", "checkpoint every N steps (0: at the end)");
  f.add("--out,-o", "out_dir", "run directory");
  f.add_switch("--resume", "resume", "continue from the run directory's latest checkpoint");
  f.add("--max-minutes", "max_minutes", "stop (and save) after this long");
  f.add("--stop-at", "stop_at_step", "stop (and save) after this step; --resume continues");
  cmd->add_flag("--no-progress", opt->no_progress, "plain log lines even on a terminal");
  cmd->add_flag("--no-demo", opt->no_demo, "skip the predictions of the saved model at the end");
  cmd->callback([opt] {
    const PretrainOptions o = pretrain_options_from_json(opt->flags->merged(opt->config));
    const PretrainResult r = pretrain(o, training_callbacks(!opt->no_progress, o.log_every));
    finish_progress(!opt->no_progress);
    const bool causal = o.objective == "causal";
    std::printf("pre-trained %lld steps in %s: train loss %.4f, held-out %s loss %.4f (perplexity %.1f), accuracy %.1f%%\n",
                static_cast<long long>(r.steps), format_minutes(r.seconds).c_str(), r.train_loss,
                causal ? "next-token" : "MLM", r.valid_loss, std::exp(r.valid_loss), 100 * r.valid_accuracy);
    std::printf("model saved as an HF directory: %s (metrics: %s/metrics.jsonl)\n", r.model_dir.c_str(), o.out_dir.c_str());
    if (opt->no_demo) return;
    if (causal) show_continuations(r.model_dir, o.valid_file, o.threads);
    else show_fill_mask(r.model_dir, o.valid_file, o.threads);
  });
}

}  // namespace roformer::cli
