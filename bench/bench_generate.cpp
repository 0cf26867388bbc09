// Greedy text generation with a causal RoFormer (RoFormerForCausalLM, KV
// cache): the prompt's forward (time to the first new token) and the
// one-token steps after it, on weights loaded like a checkpoint.
// bench/torch_generate.py runs the same weights and prompt in PyTorch;
// scripts/bench_generate.sh runs both side by side and writes
// docs/bench_generate.md.
//
//   bench_generate --dump DIR [--shape small|base] [--seed N]
//   bench_generate --model DIR [--prompt T] [--new N] [--threads N] [--dtype D]
//                  [--warmup N] [--reps N] [--plain] [--json] [--save-logits FILE] [--compare FILE]
//   bench_generate --bandwidth --model DIR [--threads N] [--json]
//
// A decoding step reads every weight matrix once for a single token, so its
// yardstick is the memory's read rate, not the arithmetic peak: --bandwidth
// times a plain summing pass over a buffer the size of the fp32 weights.
// --save-logits writes the prompt's last logits (what picks the first new
// token), --compare reports the largest difference from another run's.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench_common.h"
#include "roformer/error.h"
#include "roformer/model.h"
#include "roformer/safetensors.h"

namespace {

using namespace roformer;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int64_t kMaxPrompt = 512;

struct Options {
  std::string dump, model, save_logits, compare, shape = "base", dtype = "f32";
  int64_t prompt = 128, new_tokens = 64;
  int threads = 1, warmup = 1, reps = 3;
  uint64_t seed = 1234;
  bool json = false, bandwidth = false, plain = false;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "bench_generate: %s (see --help)\n", why.c_str());
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  CLI::App app("Times greedy generation with a causal RoFormer and a KV cache: the prompt's forward and each "
               "one-token step after it.",
               "bench_generate");
  app.add_option("--dump", o.dump, "write a freshly initialised causal LM of --shape and a prompt to DIR");
  app.add_option("--model", o.model, "time generation with the model in DIR (written by --dump)");
  app.add_option("--shape", o.shape, "with --dump: small or base")->capture_default_str();
  app.add_option("--seed", o.seed, "with --dump: the initialisation seed")->capture_default_str();
  app.add_option("--dtype", o.dtype, "weight products in f32, bf16 or int8")
      ->check(CLI::IsMember({"f32", "bf16", "int8"}))
      ->capture_default_str();
  app.add_option("--prompt", o.prompt, "prompt tokens")->check(CLI::Range(int64_t{1}, kMaxPrompt))->capture_default_str();
  app.add_option("--new", o.new_tokens, "tokens generated after the prompt (the first by the prompt's forward)")
      ->check(CLI::Range(int64_t{2}, int64_t{4096}))
      ->capture_default_str();
  app.add_option("--threads", o.threads, "threads")->check(CLI::Range(1, 1 << 30))->capture_default_str();
  app.add_option("--warmup", o.warmup, "untimed generations first")->check(CLI::Range(0, 1 << 30))->capture_default_str();
  app.add_option("--reps", o.reps, "timed generations")->check(CLI::Range(1, 1 << 30))->capture_default_str();
  app.add_option("--save-logits", o.save_logits, "write the prompt's last logits to FILE (safetensors)");
  app.add_option("--compare", o.compare, "report the largest difference from the logits in FILE");
  app.add_flag("--plain", o.plain, "fp32 products on the unpacked weights (no packing at load time)");
  app.add_flag("--json", o.json, "print one JSON object instead of text");
  app.add_flag("--bandwidth", o.bandwidth, "time a summing pass over a buffer the size of --model's fp32 weights");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
  return o;
}

int dump(const Options& o) {
  RoFormerConfig config;
  try {
    config = bench::shape_config(o.shape);
  } catch (const std::exception& e) {
    usage(e.what());
  }
  config.is_decoder = true;
  config.architectures = {"RoFormerForCausalLM"};
  const RoFormerModel model = RoFormerModel::random_init(config, Task::CausalLM, o.seed);
  fs::create_directories(o.dump);
  model.save_pretrained(o.dump);
  std::mt19937_64 rng(o.seed + 1);
  Tensor ids = Tensor::zeros({1, kMaxPrompt}, DType::I64);
  for (int64_t i = 0; i < kMaxPrompt; ++i)
    ids.data<int64_t>()[i] = 5 + static_cast<int64_t>(rng() % static_cast<uint64_t>(config.vocab_size - 5));
  save_safetensors((fs::path(o.dump) / "prompt.safetensors").string(), {{"input_ids", ids}});
  std::printf("bench_generate: wrote %s (%s shape, causal LM)\n", o.dump.c_str(), o.shape.c_str());
  return 0;
}

// Bytes of weight matrices one decoding step reads: per layer Q, K, V, the
// output projection and the FFN, then the LM head's transform and its
// vocabulary product, at the width the products keep them in. Biases,
// LayerNorm and the one embedding row are left out (well under 1 %).
double step_weight_bytes(const RoFormerConfig& c, const std::string& dtype) {
  const double H = static_cast<double>(c.hidden_size), I = static_cast<double>(c.intermediate_size);
  const double E = static_cast<double>(c.embedding_dim()), V = static_cast<double>(c.vocab_size);
  const double elements = static_cast<double>(c.num_hidden_layers) * (4 * H * H + 2 * H * I) + H * E + E * V;
  return elements * (dtype == "f32" ? 4.0 : dtype == "bf16" ? 2.0 : 1.0);
}

// Bytes of KV cache the average step reads: keys and values of every layer
// for the positions cached before it and its own, at the cache's element
// size (KvCache::dtype), over steps 1 .. new - 1 after the prompt.
double step_cache_bytes(const RoFormerConfig& c, int64_t prompt, int64_t new_tokens, DType cache) {
  const double positions = static_cast<double>(prompt) + static_cast<double>(new_tokens) / 2.0;
  return 2.0 * static_cast<double>(c.num_hidden_layers * c.hidden_size) * positions *
         static_cast<double>(dtype_size(cache));
}

struct Timings {
  std::vector<double> prefill, steps;  // seconds: one prompt forward per generation, every step of them
  std::vector<int64_t> tokens;         // the last generation's new tokens
  Tensor first_logits;                 // the prompt's last logits
  DType cache = DType::F32;            // how the KV cache held the keys and values
};

Timings time_generation(const RoFormerModel& model, const Options& o) {
  const ExecContext ctx{o.threads, best_isa(), default_gemm_backend()};
  const Tensor all = SafeTensors::open((fs::path(o.model) / "prompt.safetensors").string()).get("input_ids");
  if (all.shape() != std::vector<int64_t>{1, kMaxPrompt}) throw Error("prompt.safetensors: input_ids is not (1, 512)");
  Tensor prompt = Tensor::zeros({1, o.prompt}, DType::I64);
  std::copy_n(all.data<int64_t>(), o.prompt, prompt.data<int64_t>());
  ForwardOptions last;
  last.logits_to_keep = 1;
  const int64_t V = model.config().vocab_size;
  auto argmax = [V](const Tensor& logits) {
    const float* l = logits.data<float>();
    return static_cast<int64_t>(std::max_element(l, l + V) - l);
  };
  Timings t;
  // Room for the whole generation, as generate() reserves it (no regrowth
  // while decoding), and one cache for every generation, cleared in between
  // as a serving loop would keep it: its memory is paged in once.
  KvCache cache;
  cache.reserve(o.prompt + o.new_tokens);
  for (int rep = 0; rep < o.warmup + o.reps; ++rep) {
    const bool timed = rep >= o.warmup;
    cache.clear();
    auto t0 = Clock::now();
    ModelOutput out = model.forward(Batch{prompt, {}, {}}, last, ctx, &cache);
    int64_t token = argmax(out.heads.at("logits"));
    if (timed) t.prefill.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    t.first_logits = out.heads.at("logits");
    t.tokens.assign(1, token);
    Tensor one = Tensor::zeros({1, 1}, DType::I64);
    for (int64_t step = 1; step < o.new_tokens; ++step) {
      one.data<int64_t>()[0] = token;
      t0 = Clock::now();
      out = model.forward(Batch{one, {}, {}}, last, ctx, &cache);
      token = argmax(out.heads.at("logits"));
      if (timed) t.steps.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
      t.tokens.push_back(token);
    }
  }
  t.cache = cache.dtype();
  return t;
}

std::string token_list(const std::vector<int64_t>& tokens) {
  std::string s;
  for (int64_t id : tokens) s += (s.empty() ? "" : ", ") + std::to_string(id);
  return s;
}

int run_bandwidth(const Options& o) {
  const RoFormerConfig c = RoFormerConfig::from_file((fs::path(o.model) / "config.json").string());
  const double bytes = step_weight_bytes(c, "f32");
  const double g = bench::read_bandwidth_gbs(static_cast<int64_t>(bytes), o.threads);
  if (o.json)
    std::printf("{\"impl\": \"read_bandwidth\", \"threads\": %d, \"bytes\": %.0f, \"gb_per_second\": %.3f}\n", o.threads,
                bytes, g);
  else
    std::printf("read bandwidth over %.0f MB, %d thread(s): %.1f GB/s (best of 5)\n", bytes / 1e6, o.threads, g);
  return 0;
}

int run_generation(const Options& o) {
  LoadOptions load;
  load.bf16_matmuls = o.dtype == "bf16";
  load.int8_matmuls = o.dtype == "int8";
  load.packed_matmuls = !o.plain;
  const RoFormerModel model = RoFormerModel::from_pretrained(o.model, load);
  if (model.task() != Task::CausalLM) throw Error(o.model + " does not hold a causal LM (write one with --dump)");
  const Timings t = time_generation(model, o);
  const Tensor& logits = t.first_logits;
  if (!o.save_logits.empty()) save_safetensors(o.save_logits, {{"logits", logits}});
  double diff = -1;  // against another run's saved logits; -1 when not asked
  if (!o.compare.empty()) {
    const Tensor ref = SafeTensors::open(o.compare).get("logits");
    if (ref.numel() != logits.numel()) throw Error("--compare: " + o.compare + " holds a different shape");
    diff = 0;
    for (int64_t i = 0; i < logits.numel(); ++i)
      diff = std::max(diff, static_cast<double>(std::fabs(logits.data<float>()[i] - ref.data<float>()[i])));
  }
  const double prefill = bench::median(t.prefill), step = bench::median(t.steps);
  const double bytes = step_weight_bytes(model.config(), o.dtype);
  const double cache_bytes = step_cache_bytes(model.config(), o.prompt, o.new_tokens, t.cache);
  std::string name = o.dtype == "f32" ? "roformer.cpp" : "roformer.cpp " + o.dtype;
  if (o.plain && o.dtype == "f32") name += " unpacked";
  if (o.json)
    std::printf(
        "{\"impl\": \"%s\", \"dtype\": \"%s\", \"prompt\": %lld, \"new_tokens\": %lld, \"threads\": %d, \"reps\": %d, "
        "\"prefill_seconds\": %.6f, \"prefill_seconds_min\": %.6f, \"step_seconds\": %.6f, \"step_seconds_min\": %.6f, "
        "\"step_seconds_max\": %.6f, \"steps_per_second\": %.3f, \"weight_bytes_per_step\": %.0f, "
        "\"step_gb_per_second\": %.3f, \"cache_dtype\": \"%s\", \"cache_bytes_per_step\": %.0f, "
        "\"step_total_gb_per_second\": %.3f, \"max_abs_diff_vs_compare\": %.6g, \"tokens\": [%s]}\n",
        name.c_str(), o.dtype.c_str(), static_cast<long long>(o.prompt), static_cast<long long>(o.new_tokens),
        o.threads, o.reps, prefill, *std::min_element(t.prefill.begin(), t.prefill.end()), step,
        *std::min_element(t.steps.begin(), t.steps.end()), *std::max_element(t.steps.begin(), t.steps.end()),
        1.0 / step, bytes, bytes / step / 1e9, std::string(dtype_name(t.cache)).c_str(), cache_bytes,
        (bytes + cache_bytes) / step / 1e9, diff, token_list(t.tokens).c_str());
  else
    std::printf(
        "%s  prompt %lld, %lld new tokens, %d thread(s): prompt %.1f ms, step %.2f ms (%.1f tokens/s, weights read at "
        "%.1f GB/s; with the %s KV cache, %.1f GB/s)\n",
        name.c_str(), static_cast<long long>(o.prompt), static_cast<long long>(o.new_tokens), o.threads,
        prefill * 1e3, step * 1e3, 1.0 / step, bytes / step / 1e9, std::string(dtype_name(t.cache)).c_str(),
        (bytes + cache_bytes) / step / 1e9);
  return 0;
}

int run(const Options& o) {
  if (!o.dump.empty()) return dump(o);
  if (o.model.empty()) usage("give --dump DIR or --model DIR");
  return o.bandwidth ? run_bandwidth(o) : run_generation(o);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_generate: %s\n", e.what());
    return 1;
  }
}
