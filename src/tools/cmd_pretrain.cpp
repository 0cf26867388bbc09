// `roformer pretrain`: MLM pre-training from scratch, with a progress bar on
// a terminal (plain log lines otherwise), then held-out evaluation and
// fill-mask predictions from the saved model.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <numeric>
#include <sstream>

#include "roformer/error.h"
#include "roformer/model.h"
#include "roformer/pretrain.h"
#include "roformer/tokenizer.h"
#include "tools/commands.h"

namespace roformer::cli {

namespace {

std::string duration(double s) {
  char buf[32];
  const long long t = static_cast<long long>(std::max(0.0, s));
  std::snprintf(buf, sizeof buf, "%lld:%02lld", t / 60, t % 60);
  return buf;
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
    PretrainOptions p;
    std::string config;
    bool no_progress = false, no_demo = false;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("pretrain", "pre-train a RoFormer with masked language modelling on a text corpus");
  cmd->add_option("--config,-c", opt->config, "JSON file with options (flags given here override it)");
  auto& p = opt->p;
  cmd->add_option("--train", p.train_file, "training text (a paragraph per line, blank line between documents)")->capture_default_str();
  cmd->add_option("--valid", p.valid_file, "held-out text")->capture_default_str();
  cmd->add_option("--vocab", p.vocab_file, "vocab.txt to use (default: train one)");
  cmd->add_option("--vocab-size", p.vocab_size, "WordPiece vocabulary size to train")->capture_default_str();
  cmd->add_flag("--whole-word-masking", p.whole_word_masking, "mask whole words");
  cmd->add_option("--hidden", p.hidden_size, "hidden size")->capture_default_str();
  cmd->add_option("--layers", p.num_layers, "encoder layers")->capture_default_str();
  cmd->add_option("--heads", p.num_heads, "attention heads")->capture_default_str();
  cmd->add_option("--intermediate", p.intermediate_size, "FFN size")->capture_default_str();
  cmd->add_option("--dropout", p.dropout, "hidden and attention dropout")->capture_default_str();
  cmd->add_option("--seq-len", p.seq_len, "tokens per sequence")->capture_default_str();
  cmd->add_option("--batch-size", p.batch_size, "sequences per micro-batch")->capture_default_str();
  cmd->add_option("--accumulation", p.accumulation, "micro-batches per step")->capture_default_str();
  cmd->add_option("--steps", p.steps, "optimizer steps")->capture_default_str();
  cmd->add_option("--warmup", p.warmup_steps, "linear warm-up steps")->capture_default_str();
  cmd->add_option("--schedule", p.schedule, "constant, linear or cosine decay")->capture_default_str();
  cmd->add_option("--lr", p.lr, "peak learning rate")->capture_default_str();
  cmd->add_option("--weight-decay", p.weight_decay, "AdamW weight decay (BERT groups)")->capture_default_str();
  cmd->add_option("--clip", p.clip_norm, "clip gradients to this global norm (0: off)")->capture_default_str();
  cmd->add_option("--seed", p.seed, "seed of initialisation, data order, masking and dropout")->capture_default_str();
  cmd->add_option("--threads,-t", p.threads, "worker threads")->capture_default_str();
  cmd->add_option("--eval-every", p.eval_every, "evaluate every N steps")->capture_default_str();
  cmd->add_option("--save-every", p.save_every, "checkpoint every N steps")->capture_default_str();
  cmd->add_option("--out,-o", p.out_dir, "run directory")->capture_default_str();
  cmd->add_flag("--resume", p.resume, "continue from the run directory's latest checkpoint");
  cmd->add_option("--max-minutes", p.max_minutes, "stop (and save) after this long")->capture_default_str();
  cmd->add_option("--stop-at", p.stop_at_step, "stop (and save) after this step; --resume continues")->capture_default_str();
  cmd->add_flag("--no-progress", opt->no_progress, "plain log lines even on a terminal");
  cmd->add_flag("--no-demo", opt->no_demo, "skip the fill-mask predictions at the end");
  cmd->callback([opt, cmd] {
    PretrainOptions o = opt->p;
    if (!opt->config.empty()) {
      std::ifstream in(opt->config);
      check(static_cast<bool>(in), "cannot open " + opt->config);
      std::stringstream ss;
      ss << in.rdbuf();
      // The file sets the base; options given on the command line win.
      PretrainOptions merged = pretrain_options_from_json(ss.str());
      auto apply_if = [&](const char* name, auto& dst, const auto& src) {
        if (cmd->get_option(name)->count() > 0) dst = src;
      };
      apply_if("--train", merged.train_file, o.train_file);
      apply_if("--valid", merged.valid_file, o.valid_file);
      apply_if("--vocab", merged.vocab_file, o.vocab_file);
      apply_if("--vocab-size", merged.vocab_size, o.vocab_size);
      apply_if("--hidden", merged.hidden_size, o.hidden_size);
      apply_if("--layers", merged.num_layers, o.num_layers);
      apply_if("--heads", merged.num_heads, o.num_heads);
      apply_if("--intermediate", merged.intermediate_size, o.intermediate_size);
      apply_if("--dropout", merged.dropout, o.dropout);
      apply_if("--seq-len", merged.seq_len, o.seq_len);
      apply_if("--batch-size", merged.batch_size, o.batch_size);
      apply_if("--accumulation", merged.accumulation, o.accumulation);
      apply_if("--steps", merged.steps, o.steps);
      apply_if("--warmup", merged.warmup_steps, o.warmup_steps);
      apply_if("--schedule", merged.schedule, o.schedule);
      apply_if("--lr", merged.lr, o.lr);
      apply_if("--weight-decay", merged.weight_decay, o.weight_decay);
      apply_if("--clip", merged.clip_norm, o.clip_norm);
      apply_if("--seed", merged.seed, o.seed);
      apply_if("--threads", merged.threads, o.threads);
      apply_if("--eval-every", merged.eval_every, o.eval_every);
      apply_if("--save-every", merged.save_every, o.save_every);
      apply_if("--out", merged.out_dir, o.out_dir);
      apply_if("--max-minutes", merged.max_minutes, o.max_minutes);
      apply_if("--stop-at", merged.stop_at_step, o.stop_at_step);
      if (o.resume) merged.resume = true;
      if (o.whole_word_masking) merged.whole_word_masking = true;
      o = merged;
    }
    const bool bar = !opt->no_progress && isatty(STDERR_FILENO);
    PretrainCallbacks cb;
    cb.on_log = [bar](const std::string& line) {
      if (bar) std::fprintf(stderr, "\r\033[K");
      std::fprintf(stderr, "%s\n", line.c_str());
    };
    cb.on_progress = [bar, log_every = std::max<int64_t>(1, o.log_every)](const PretrainProgress& pr) {
      if (bar) {
        const int width = 28;
        const int filled = static_cast<int>(width * pr.step / std::max<int64_t>(1, pr.total_steps));
        std::fprintf(stderr, "\r\033[K[%s%s] %lld/%lld loss %.4f lr %.2e %.0f tok/s ETA %s", std::string(filled, '#').c_str(),
                     std::string(width - filled, ' ').c_str(), static_cast<long long>(pr.step),
                     static_cast<long long>(pr.total_steps), pr.loss, pr.lr, pr.tokens_per_second, duration(pr.eta_seconds).c_str());
        std::fflush(stderr);
      } else if (pr.step % log_every == 0 || pr.step == pr.total_steps) {
        std::fprintf(stderr, "step %lld/%lld loss %.4f lr %.2e grad-norm %.3f %.0f tok/s elapsed %s ETA %s\n",
                     static_cast<long long>(pr.step), static_cast<long long>(pr.total_steps), pr.loss, pr.lr, pr.grad_norm,
                     pr.tokens_per_second, duration(pr.elapsed_seconds).c_str(), duration(pr.eta_seconds).c_str());
      }
    };
    const PretrainResult r = pretrain(o, cb);
    if (bar) std::fprintf(stderr, "\n");
    std::printf("pre-trained %lld steps in %s: train loss %.4f, held-out MLM loss %.4f (perplexity %.1f), accuracy %.1f%%\n",
                static_cast<long long>(r.steps), duration(r.seconds).c_str(), r.train_loss, r.valid_loss,
                std::exp(r.valid_loss), 100 * r.valid_accuracy);
    std::printf("model saved as an HF directory: %s (metrics: %s/metrics.jsonl)\n", r.model_dir.c_str(), o.out_dir.c_str());
    if (!opt->no_demo) show_fill_mask(r.model_dir, o.valid_file, o.threads);
  });
}

}  // namespace roformer::cli
