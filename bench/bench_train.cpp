// One full training step of a RoFormer masked-LM -- forward, loss, backward and
// an AdamW update -- timed step by step, with the heap allocations each step
// makes. bench/torch_train.py trains the same model on the same batch in
// PyTorch; scripts/bench_train.sh runs both and writes docs/bench_train.md.
//
//   bench_train [--shape small|base] [--threads N] [--steps N] [--warmup N]
//               [--seed N] [--json] [--dump DIR]
//               [--text FILE --vocab FILE [--keep-padding]]
//   bench_train --sgemm [--threads N] [--json]
//
// --dump DIR writes the initial model (config.json + model.safetensors, HF
// names) and the batch (batch.safetensors: input_ids, attention_mask,
// token_type_ids, labels) before training, so the PyTorch side starts from
// identical weights and data (with --text, every step's batch in
// text_batches.safetensors too). --text FILE --vocab FILE trains on real lines
// instead: each step a new batch of the shape's rows, [CLS] line [SEP] cut at
// its length and right-padded to the batch's longest, so the rows are as
// ragged as the text; the padding is skipped unless --keep-padding, and the
// rate counts real tokens. --sgemm measures the yardstick instead: the
// GFLOP/s of a 768x768x768 cblas_sgemm (best of 30) with the given threads.
//
// Allocations are counted by tests/support/alloc_counter.cpp, linked in (it
// replaces operator new/delete, and aligned_alloc/posix_memalign on glibc):
// "allocations per step" is the number of counted calls between the start and
// the end of a timed step, all threads together.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench_common.h"
#include "support/alloc_counter.h"
#include "roformer/error.h"
#include "roformer/model.h"
#include "roformer/optim.h"
#include "roformer/safetensors.h"
#include "roformer/tokenizer.h"
#include "roformer/training.h"

// ---------------------------------------------------------------------------

namespace {

using namespace roformer;

struct ShapeSpec {
  const char* name;
  int64_t vocab, hidden, layers, heads, ffn, seq, batch;
};

constexpr ShapeSpec kShapes[] = {
    {"small", 8000, 256, 4, 4, 1024, 128, 16},
    {"base", 50000, 768, 12, 12, 3072, 128, 4},
};

struct Options {
  std::string shape = "small";
  int threads = 1;
  int steps = 10;
  int warmup = 2;
  uint64_t seed = 1234;
  bool json = false;
  bool sgemm = false;
  std::string dump;
  std::string precision = "fp32";
  int64_t seq = 0;  // 0: the shape's own
  bool fp32_attention = false;
  std::string text, vocab;  // real lines as the batches' rows
  bool keep_padding = false;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "bench_train: %s (see --help)\n", why.c_str());
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  CLI::App app("Times masked-LM training steps (forward, backward, AdamW) of a freshly initialised RoFormer.",
               "bench_train");
  app.add_option("--shape", o.shape, "small or base")->capture_default_str();
  app.add_option("--threads", o.threads, "threads")->check(CLI::Range(1, 1 << 30))->capture_default_str();
  app.add_option("--steps", o.steps, "timed steps")->check(CLI::Range(1, 1 << 30))->capture_default_str();
  app.add_option("--warmup", o.warmup, "untimed steps first")->check(CLI::Range(0, 1 << 30))->capture_default_str();
  app.add_option("--seed", o.seed, "initialisation and batch seed")->capture_default_str();
  app.add_flag("--json", o.json, "print one JSON object instead of text");
  app.add_option("--precision", o.precision, "products in fp32, or bf16 (rounded operands, fp32 sums)")
      ->check(CLI::IsMember({"fp32", "bf16"}))
      ->capture_default_str();
  app.add_option("--seq", o.seq, "tokens per sequence instead of the shape's 128, in as many fewer rows (at least one)")
      ->check(CLI::Range(int64_t{2}, int64_t{8192}));
  app.add_flag("--fp32-attention", o.fp32_attention, "with --precision bf16: keep the attention's own products fp32");
  app.add_option("--text", o.text, "rows from this file's lines (one text a line), a new batch each step");
  app.add_option("--vocab", o.vocab, "with --text: the vocab.txt to encode the lines with");
  app.add_flag("--keep-padding", o.keep_padding, "with --text: train on the padded batches whole");
  app.add_flag("--sgemm", o.sgemm, "time a 768^3 sgemm instead");
  app.add_option("--dump", o.dump, "also write the model and its batch to DIR (for the PyTorch side)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
  if (o.text.empty() != o.vocab.empty()) usage("--text and --vocab go together");
  return o;
}

struct MlmData {
  Tensor input_ids, attention_mask, token_type_ids, labels;
};

// BERT's masking of one position: labelled with its id, the input replaced by
// [MASK] 80% of the time and a random word 10%.
template <class Uniform, class Word>
void mask_position(int64_t& id, int64_t& label, Uniform& uniform, Word& random_word, int64_t mask_id) {
  label = id;
  const double r = uniform();
  if (r < 0.8) id = mask_id;
  else if (r < 0.9) id = random_word();
}

// An MLM batch: random ids, ~15% of positions labelled with their original id
// (BERT's 80/10/10 replacement on the input), all positions attended, token
// type 0 for the first half of each row and 1 for the second.
MlmData make_batch(const ShapeSpec& s, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto uniform = [&] { return static_cast<double>(rng() >> 11) * 0x1.0p-53; };
  const int64_t B = s.batch, T = s.seq, first_word = 5, mask_id = 4;
  auto random_word = [&] { return first_word + static_cast<int64_t>(rng() % static_cast<uint64_t>(s.vocab - first_word)); };
  MlmData d;
  d.input_ids = Tensor::zeros({B, T}, DType::I64);
  d.attention_mask = Tensor::zeros({B, T}, DType::I64);
  d.token_type_ids = Tensor::zeros({B, T}, DType::I64);
  d.labels = Tensor::zeros({B, T}, DType::I64);
  int64_t *ids = d.input_ids.data<int64_t>(), *am = d.attention_mask.data<int64_t>();
  int64_t *tt = d.token_type_ids.data<int64_t>(), *lab = d.labels.data<int64_t>();
  int64_t labelled = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      const int64_t i = b * T + t, word = random_word();
      am[i] = 1;
      tt[i] = t < T / 2 ? 0 : 1;
      ids[i] = word;
      lab[i] = -100;
      if (uniform() < 0.15) {
        mask_position(ids[i], lab[i], uniform, random_word, mask_id);
        ++labelled;
      }
    }
  if (labelled == 0) lab[0] = ids[0];
  return d;
}

// Batches of real lines, `count` of them, each B rows of [CLS] line [SEP]
// (cut at T tokens) right-padded to the batch's longest, 15% of each row's
// real positions masked (at least one); lines are used in file order and
// reused from the first once all are.
std::vector<MlmData> text_batches(const ShapeSpec& s, const Options& o, int64_t count, uint64_t seed) {
  const std::vector<std::string> lines = bench::read_text_lines(o.text, s.batch * count);
  ROFORMER_CHECK(!lines.empty(), "bench_train: no text lines in " + o.text);
  const Tokenizer tokenizer(Vocab::from_file(o.vocab), TokenizerOptions{});
  ROFORMER_CHECK(tokenizer.vocab().size() <= s.vocab, "bench_train: the vocab has more ids than the shape's vocabulary");
  const std::vector<Encoding> enc = tokenizer.encode_batch(lines, {}, o.threads, Truncation::LongestFirst, s.seq);
  std::mt19937_64 rng(seed);
  auto uniform = [&] { return static_cast<double>(rng() >> 11) * 0x1.0p-53; };
  const auto words = static_cast<uint64_t>(tokenizer.vocab().size());
  auto random_word = [&] { return static_cast<int64_t>(rng() % words); };
  const int64_t mask_id = tokenizer.mask_id();
  std::vector<MlmData> out;
  for (int64_t k = 0; k < count; ++k) {
    int64_t T = 0;
    for (int64_t r = 0; r < s.batch; ++r)
      T = std::max<int64_t>(T, static_cast<int64_t>(enc[static_cast<std::size_t>((k * s.batch + r) % enc.size())].input_ids.size()));
    MlmData d{Tensor::zeros({s.batch, T}, DType::I64), Tensor::zeros({s.batch, T}, DType::I64),
              Tensor::zeros({s.batch, T}, DType::I64), Tensor::zeros({s.batch, T}, DType::I64)};
    std::fill_n(d.labels.data<int64_t>(), s.batch * T, int64_t{-100});
    for (int64_t r = 0; r < s.batch; ++r) {
      const Encoding& e = enc[static_cast<std::size_t>((k * s.batch + r) % enc.size())];
      const auto n = static_cast<int64_t>(e.input_ids.size());
      int64_t* ids = d.input_ids.data<int64_t>() + r * T;
      int64_t* lab = d.labels.data<int64_t>() + r * T;
      bool any = false;
      for (int64_t t = 0; t < n; ++t) {
        ids[t] = e.input_ids[static_cast<std::size_t>(t)];
        d.attention_mask.data<int64_t>()[r * T + t] = 1;
        if (uniform() < 0.15) {
          mask_position(ids[t], lab[t], uniform, random_word, mask_id);
          any = true;
        }
      }
      if (!any) mask_position(ids[n / 2], lab[n / 2], uniform, random_word, mask_id);
    }
    out.push_back(std::move(d));
  }
  return out;
}

// Matrix-product FLOPs of one training step (forward + backward = 3x forward;
// elementwise work -- LayerNorm, GELU, softmax, RoPE, AdamW -- not counted):
//   forward = L * (2N(4H^2 + 2HI) + 4 B T^2 H)      Q,K,V,O + FFN; QK^T and PV
//           + 2N(HE + EV) [+ 2N EH with a projection]   MLM transform + decoder
double step_flops(const RoFormerConfig& c, int64_t B, int64_t T) {
  const double N = static_cast<double>(B * T), H = static_cast<double>(c.hidden_size);
  const double I = static_cast<double>(c.intermediate_size), E = static_cast<double>(c.embedding_dim());
  const double V = static_cast<double>(c.vocab_size), L = static_cast<double>(c.num_hidden_layers);
  double fwd = L * (2 * N * (4 * H * H + 2 * H * I) + 4.0 * static_cast<double>(B) * T * T * H);
  fwd += 2 * N * (H * E + E * V);
  if (c.embedding_dim() != c.hidden_size) fwd += 2 * N * E * H;
  return 3 * fwd;
}

// The machine's yardstick, measured in the same run: the best GFLOP/s of a
// square sgemm at the size of base's attention projections.
int run_sgemm(const Options& o) {
  constexpr int n = 768;
  const double gflops = bench::sgemm_gflops(n, o.threads);
  if (o.json)
    std::printf("{\"impl\": \"sgemm\", \"m\": %d, \"n\": %d, \"k\": %d, \"threads\": %d, "
                "\"gflops_per_second\": %.3f}\n",
                n, n, n, o.threads, gflops);
  else
    std::printf("sgemm %dx%dx%d, %d thread(s): %.1f GFLOP/s (best of 30)\n", n, n, n, o.threads, gflops);
  return 0;
}

int run(const Options& o) {
  if (o.sgemm) return run_sgemm(o);
  const ShapeSpec* named = nullptr;
  for (const ShapeSpec& s : kShapes)
    if (o.shape == s.name) named = &s;
  if (!named) usage("unknown shape " + o.shape + " (small or base)");
  // Longer sequences in fewer rows: the step's token count stays the shape's.
  ShapeSpec resized = *named;
  if (o.seq > 0) {
    resized.seq = o.seq;
    resized.batch = std::max<int64_t>(1, named->batch * named->seq / o.seq);
  }
  const ShapeSpec* shape = &resized;

  RoFormerConfig config;
  config.vocab_size = shape->vocab;
  config.hidden_size = shape->hidden;
  config.num_hidden_layers = shape->layers;
  config.num_attention_heads = shape->heads;
  config.intermediate_size = shape->ffn;
  config.max_position_embeddings = std::max<int64_t>(config.max_position_embeddings, shape->seq);
  config.hidden_dropout_prob = 0.0;  // eval-mode equivalent: no dropout anywhere
  config.attention_probs_dropout_prob = 0.0;
  config.architectures = {"RoFormerForMaskedLM"};

  const MlmData data = make_batch(*shape, o.seed + 1);
  const bool text = !o.text.empty();
  const std::vector<MlmData> text_data = text ? text_batches(*shape, o, o.warmup + o.steps, o.seed + 1)
                                              : std::vector<MlmData>{};
  int64_t params_total = 0, params_embedding = 0;
  TrainableRoFormer model = [&] {
    RoFormerModel init = RoFormerModel::random_init(config, Task::MaskedLM, o.seed);
    if (!o.dump.empty()) {
      std::filesystem::create_directories(o.dump);
      init.save_pretrained(o.dump);
      save_safetensors((std::filesystem::path(o.dump) / "batch.safetensors").string(),
                       {{"input_ids", data.input_ids},
                        {"attention_mask", data.attention_mask},
                        {"token_type_ids", data.token_type_ids},
                        {"labels", data.labels}});
      // With --text: every step's batch, keys "input_ids.<step>" and so on.
      std::vector<std::pair<std::string, Tensor>> steps;
      for (std::size_t k = 0; k < text_data.size(); ++k) {
        const MlmData& d = text_data[k];
        const std::string n = "." + std::to_string(k);
        steps.insert(steps.end(), {{"input_ids" + n, d.input_ids},
                                   {"attention_mask" + n, d.attention_mask},
                                   {"token_type_ids" + n, d.token_type_ids},
                                   {"labels" + n, d.labels}});
      }
      if (!steps.empty())
        save_safetensors((std::filesystem::path(o.dump) / "text_batches.safetensors").string(), steps);
    }
    return TrainableRoFormer(init);
  }();
  model.set_dropout(false, 0);
  model.set_skip_padding(!o.keep_padding);

  // The optimizer exactly as `roformer pretrain` builds it.
  ExecContext ctx{o.threads, best_isa(), default_gemm_backend(), parse_product_precision(o.precision)};
  ctx.bf16_attention = !o.fp32_attention;
  const auto tparams = model.parameters();
  std::vector<Parameter> params;
  for (const auto& p : tparams) {
    params.push_back({p.name, p.value.data<float>(), p.grad.data<float>(), p.value.numel(), true, p.value.shape()});
    params_total += p.value.numel();
    if (p.name.find("embeddings.") != std::string::npos && p.name.find("LayerNorm") == std::string::npos)
      params_embedding += p.value.numel();
  }
  const double lr = 1e-4, weight_decay = 0.01;
  AdamWOptions ao;
  ao.lr = lr;
  ao.weight_decay = weight_decay;
  ao.exec = ctx;
  AdamW adamw(params, bert_style_groups(params, weight_decay), ao);

  const int64_t tokens = shape->batch * shape->seq;

  // Shows the aligned_alloc hook works: model set-up allocates every Tensor through it.
  const uint64_t setup_aligned_allocs = alloc_counter::now().aligned_calls;
  std::vector<double> seconds, allocs, aligned_allocs, alloc_bytes;
  double first_loss = 0, last_loss = 0;
  // With --text: the timed steps' real tokens, padded positions and encoder rows.
  int64_t real_tokens = 0, positions = 0, rows_run = 0;
  for (int step = 0; step < o.warmup + o.steps; ++step) {
    const MlmData& d = text ? text_data[static_cast<std::size_t>(step)] : data;
    const Batch batch{d.input_ids, d.attention_mask, d.token_type_ids};
    const TrainLabels labels{d.labels, {}, {}};
    const alloc_counter::Counts before = alloc_counter::now();
    const uint64_t a0 = before.calls, c0 = before.aligned_calls, b0 = before.bytes;
    const auto t0 = std::chrono::steady_clock::now();
    model.zero_grad();
    const TrainStep s = model.forward_backward(batch, labels, ctx);
    adamw.step(lr);
    const auto t1 = std::chrono::steady_clock::now();
    const alloc_counter::Counts after = alloc_counter::now();
    const uint64_t a1 = after.calls, c1 = after.aligned_calls, b1 = after.bytes;
    if (!std::isfinite(s.loss)) throw Error("the loss became non-finite at step " + std::to_string(step));
    if (step == 0) first_loss = s.loss;
    last_loss = s.loss;
    if (step >= o.warmup) {
      for (int64_t i = 0; i < d.attention_mask.numel(); ++i) real_tokens += d.attention_mask.data<int64_t>()[i];
      positions += d.attention_mask.numel();
      rows_run += s.encoder_rows;
      seconds.push_back(std::chrono::duration<double>(t1 - t0).count());
      allocs.push_back(static_cast<double>(a1 - a0));
      aligned_allocs.push_back(static_cast<double>(c1 - c0));
      alloc_bytes.push_back(static_cast<double>(b1 - b0));
    }
  }

  const double med = bench::median(seconds);
  double total_seconds = 0;
  for (double x : seconds) total_seconds += x;
  // Real text: real tokens over the timed steps' time (the batches differ).
  const double tps = text ? static_cast<double>(real_tokens) / total_seconds : static_cast<double>(tokens) / med;
  // Ragged batches' products depend on what ran: no count for them.
  const double flops = text ? 0.0 : step_flops(config, shape->batch, shape->seq);
  const std::string blas = bench::loaded_blas();
  const std::string core = bench::openblas_core();
  if (o.json) {
    std::printf(
        "{\"impl\": \"roformer.cpp\", \"precision\": \"%s\", \"shape\": \"%s\", \"threads\": %d, \"batch\": %lld, \"seq\": %lld, "
        "\"warmup\": %d, \"steps\": %d, \"step_seconds_median\": %.6f, \"step_seconds_min\": %.6f, "
        "\"step_seconds_max\": %.6f, \"tokens_per_second\": %.3f, \"first_loss\": %.9g, \"last_loss\": %.9g, "
        "\"params\": %lld, \"params_embedding\": %lld, \"flops_per_step\": %.6g, \"gflops_per_second\": %.3f, "
        "\"allocs_per_step\": %.1f, \"aligned_allocs_per_step\": %.1f, \"alloc_bytes_per_step\": %.0f, "
        "\"counts_c_aligned_alloc\": %s, \"setup_aligned_allocs\": %llu, \"blas\": \"%s\", \"openblas_core\": \"%s\", "
        "\"text\": %s, \"text_file\": \"%s\", \"skip_padding\": %s, \"real_tokens\": %lld, \"positions\": %lld, "
        "\"encoder_rows\": %lld}\n",
        o.precision.c_str(), shape->name, o.threads, static_cast<long long>(shape->batch),
        static_cast<long long>(shape->seq), o.warmup, o.steps, med, *std::min_element(seconds.begin(), seconds.end()),
        *std::max_element(seconds.begin(), seconds.end()), tps, first_loss, last_loss,
        static_cast<long long>(params_total), static_cast<long long>(params_embedding), flops, flops / med / 1e9,
        bench::median(allocs), bench::median(aligned_allocs), bench::median(alloc_bytes),
        alloc_counter::counts_c_aligned_alloc() ? "true" : "false",
        static_cast<unsigned long long>(setup_aligned_allocs), bench::json_escape(blas).c_str(), bench::json_escape(core).c_str(),
        text ? "true" : "false", bench::json_escape(o.text).c_str(), o.keep_padding ? "false" : "true", static_cast<long long>(real_tokens),
        static_cast<long long>(positions), static_cast<long long>(rows_run));
  } else {
    std::printf("roformer.cpp  shape %s (B=%lld, T=%lld), %d thread(s), products in %s, %d timed steps after %d warm-up\n",
                shape->name, static_cast<long long>(shape->batch), static_cast<long long>(shape->seq), o.threads,
                (product_precision_label(ctx.bf16_products, ctx.isa) +
                 (ctx.bf16_products && !ctx.bf16_attention ? ", the attention's own in fp32" : ""))
                    .c_str(),
                o.steps, o.warmup);
    std::printf("  parameters        %lld (%lld in embeddings)\n", static_cast<long long>(params_total),
                static_cast<long long>(params_embedding));
    std::printf("  step (median)     %.4f s  (min %.4f, max %.4f)\n", med,
                *std::min_element(seconds.begin(), seconds.end()), *std::max_element(seconds.begin(), seconds.end()));
    if (text) {
      std::printf("  text              %s: %lld real tokens in %lld padded positions; the encoder ran %lld rows%s\n",
                  o.text.c_str(), static_cast<long long>(real_tokens), static_cast<long long>(positions),
                  static_cast<long long>(rows_run), o.keep_padding ? " (padding kept)" : "");
      std::printf("  real tokens/s     %.1f\n", tps);
    } else {
      std::printf("  tokens/s          %.1f\n", tps);
      std::printf("  GFLOP/s           %.1f  (%.2f GFLOP per step)\n", flops / med / 1e9, flops / 1e9);
    }
    std::printf("  loss              first step %.7f, last step %.7f\n", first_loss, last_loss);
    std::printf("  allocations/step  %.0f (%.0f of them aligned_alloc/posix_memalign; %.2f MB)%s\n", bench::median(allocs),
                bench::median(aligned_allocs), bench::median(alloc_bytes) / 1e6,
                alloc_counter::counts_c_aligned_alloc() ? "" : "  [operator new only: aligned_alloc not hooked on this libc]");
    std::printf("  set-up            %llu aligned_alloc/posix_memalign calls before the first step\n",
                static_cast<unsigned long long>(setup_aligned_allocs));
    std::printf("  BLAS              %s (OpenBLAS core %s)\n", blas.c_str(), core.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train: %s\n", e.what());
    return 1;
  }
}
