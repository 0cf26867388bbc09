// Inference throughput of the RoFormer encoder (RoFormerModel: the last hidden
// state, no head) loaded from an HF directory through the memory-mapped
// safetensors path, and the peak resident memory of that path.
// bench/torch_infer.py runs the same weights on the same ids in PyTorch;
// scripts/bench_infer.sh runs both side by side and writes docs/bench_infer.md.
//
//   bench_infer --dump DIR [--shape small|base] [--seed N]
//   bench_infer --model DIR --batch B --seq T [--threads N] [--warmup N]
//               [--min-reps N] [--min-seconds S] [--gemm G] [--dtype D] [--bf16-kernel K]
//               [--plain] [--json] [--save-output FILE]
//   bench_infer --rss --model DIR [--batch B --seq T] [--json]
//   bench_infer --sgemm [--threads N] [--gemm openblas|onednn] [--json]
//   bench_infer --fma-peak [--threads N] [--json]
//   bench_infer --bf16-peak [--threads N] [--json]
//
// --gemm picks the matrix-product library (default: the engine's choice for
// this CPU); --dtype bf16 runs the weight products in bf16 (fp32 accumulation),
// --dtype int8 in int8 (dynamic quantization, int32 sums);
// --plain keeps fp32 products on the unpacked weights (no oneDNN packing);
// --bf16-kernel onednn|panels picks the code behind the bf16 products.
//
// --dump writes a freshly initialised model (config.json, model.safetensors)
// and inputs.safetensors (input_ids (8, 512), attention_mask, token_type_ids);
// a case (B, T) uses the first B rows and T columns. --rss loads the model,
// runs one forward and reports the peak resident set against the size of the
// weights (it should be one process per measurement, hence its own mode).
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

constexpr int64_t kMaxBatch = 8, kMaxSeq = 512;

struct Options {
  std::string dump, model, save_output, compare, shape = "base", gemm = "auto", dtype = "f32", bf16_kernel = "auto";
  int64_t batch = 1, seq = 128;
  int threads = 1, warmup = 1, min_reps = 3;
  double min_seconds = 2.0;
  uint64_t seed = 1234;
  bool json = false, rss = false, sgemm = false, fma_peak = false, bf16_peak = false, plain = false;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "bench_infer: %s (see --help)\n", why.c_str());
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  CLI::App app("Times the RoFormer encoder's forward pass (last hidden state) on weights loaded like a checkpoint; "
               "also the machine's ceilings and the peak memory.",
               "bench_infer");
  app.add_option("--dump", o.dump, "write a freshly initialised model of --shape and its inputs to DIR");
  app.add_option("--model", o.model, "time the forward of the model in DIR (written by --dump)");
  app.add_option("--save-output", o.save_output, "write the last hidden state to FILE (safetensors)");
  app.add_option("--compare", o.compare, "report the largest difference from the hidden state in FILE");
  app.add_option("--shape", o.shape, "with --dump: small or base")->capture_default_str();
  app.add_option("--gemm", o.gemm, "matrix-product library: auto, openblas or onednn")->capture_default_str();
  app.add_option("--dtype", o.dtype, "weight products in f32, bf16 or int8")
      ->check(CLI::IsMember({"f32", "bf16", "int8"}))
      ->capture_default_str();
  app.add_option("--bf16-kernel", o.bf16_kernel, "with --dtype bf16: auto, onednn or panels")->capture_default_str();
  app.add_option("--batch", o.batch, "sequences per forward")->check(CLI::Range(int64_t{1}, kMaxBatch))->capture_default_str();
  app.add_option("--seq", o.seq, "tokens per sequence")->check(CLI::Range(int64_t{1}, kMaxSeq))->capture_default_str();
  app.add_option("--threads", o.threads, "threads")->check(CLI::Range(1, 1 << 30))->capture_default_str();
  app.add_option("--warmup", o.warmup, "untimed forwards first")->check(CLI::Range(0, 1 << 30))->capture_default_str();
  app.add_option("--min-reps", o.min_reps, "timed forwards at least")->check(CLI::Range(1, 1 << 30))->capture_default_str();
  app.add_option("--min-seconds", o.min_seconds, "and for at least this long")->check(CLI::Range(0.0, 1e6))->capture_default_str();
  app.add_option("--seed", o.seed, "with --dump: the initialisation seed")->capture_default_str();
  app.add_flag("--json", o.json, "print one JSON object instead of text");
  app.add_flag("--rss", o.rss, "load --model, run one forward and report the peak resident set against the weights");
  app.add_flag("--sgemm", o.sgemm, "time a 768^3 sgemm of the chosen library");
  app.add_flag("--fma-peak", o.fma_peak, "time a loop of nothing but independent fp32 fused multiply-adds");
  app.add_flag("--bf16-peak", o.bf16_peak, "time a loop of nothing but independent bf16 dot products");
  app.add_flag("--plain", o.plain, "fp32 products on the unpacked weights (no packing at load time)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
  if (o.bf16_kernel != "auto" && o.dtype != "bf16") usage("--bf16-kernel goes with --dtype bf16");
  return o;
}

int dump(const Options& o) {
  if (o.shape != "small" && o.shape != "base") usage("unknown shape " + o.shape + " (small or base)");
  RoFormerConfig config = bench::shape_config(o.shape);
  config.architectures = {"RoFormerModel"};
  const RoFormerModel model = RoFormerModel::random_init(config, Task::Base, o.seed);
  fs::create_directories(o.dump);
  model.save_pretrained(o.dump);

  std::mt19937_64 rng(o.seed + 1);
  Tensor ids = Tensor::zeros({kMaxBatch, kMaxSeq}, DType::I64);
  Tensor mask = Tensor::zeros({kMaxBatch, kMaxSeq}, DType::I64);
  Tensor types = Tensor::zeros({kMaxBatch, kMaxSeq}, DType::I64);
  for (int64_t i = 0; i < kMaxBatch * kMaxSeq; ++i) {
    ids.data<int64_t>()[i] = 5 + static_cast<int64_t>(rng() % static_cast<uint64_t>(config.vocab_size - 5));
    mask.data<int64_t>()[i] = 1;
  }
  save_safetensors((fs::path(o.dump) / "inputs.safetensors").string(),
                   {{"input_ids", ids}, {"attention_mask", mask}, {"token_type_ids", types}});
  std::printf("bench_infer: wrote %s (%s shape)\n", o.dump.c_str(), o.shape.c_str());
  return 0;
}

// The first B rows and T columns of the dumped inputs, as contiguous tensors.
Batch slice_inputs(const std::string& dir, int64_t B, int64_t T) {
  const SafeTensors st = SafeTensors::open((fs::path(dir) / "inputs.safetensors").string());
  auto slice = [&](const char* name) {
    const Tensor full = st.get(name);
    if (full.shape() != std::vector<int64_t>{kMaxBatch, kMaxSeq})
      throw Error(std::string("inputs.safetensors: ") + name + " is not (8, 512)");
    Tensor out = Tensor::zeros({B, T}, DType::I64);
    for (int64_t b = 0; b < B; ++b) std::copy_n(full.data<int64_t>() + b * kMaxSeq, T, out.data<int64_t>() + b * T);
    return out;
  };
  return Batch{slice("input_ids"), slice("attention_mask"), slice("token_type_ids")};
}

int64_t weights_bytes(const std::string& dir) {
  return static_cast<int64_t>(fs::file_size(fs::path(dir) / "model.safetensors"));
}

// Matrix-product FLOPs of one encoder forward: per layer the Q, K, V, output
// and FFN projections, 2N(4H^2 + 2HI), plus QK^T and PV, 4BT^2H.
double forward_flops(const RoFormerConfig& c, int64_t B, int64_t T) {
  const double N = static_cast<double>(B * T), H = static_cast<double>(c.hidden_size);
  const double I = static_cast<double>(c.intermediate_size), L = static_cast<double>(c.num_hidden_layers);
  double f = L * (2 * N * (4 * H * H + 2 * H * I) + 4.0 * static_cast<double>(B) * T * T * H);
  if (c.embedding_dim() != c.hidden_size) f += 2 * N * static_cast<double>(c.embedding_dim()) * H;
  return f;
}

LoadOptions load_options(const Options& o) {
  LoadOptions load{Task::Base, {}, {}};
  load.bf16_matmuls = o.dtype == "bf16";
  load.bf16_kernel = o.bf16_kernel;
  load.int8_matmuls = o.dtype == "int8";
  load.packed_matmuls = !o.plain;
  return load;
}

ExecContext context(const Options& o) { return ExecContext{o.threads, best_isa(), parse_gemm_backend(o.gemm)}; }

// The implementation's name in the reports: the engine's defaults are plain
// "roformer.cpp"; other choices are named.
std::string impl_name(const Options& o) {
  std::string name = "roformer.cpp";
  if (o.dtype != "f32") name += " " + o.dtype;
  if (o.gemm != "auto") name += " " + o.gemm;
  if (o.bf16_kernel != "auto") name += " " + o.bf16_kernel;
  if (o.plain && o.dtype == "f32") name += " unpacked";
  return name;
}

int run_rss(const Options& o) {
  const bench::Rss before = bench::resident_set();
  const RoFormerModel model = RoFormerModel::from_pretrained(o.model, load_options(o));
  const bench::Rss loaded = bench::resident_set();
  const Batch batch = slice_inputs(o.model, o.batch, o.seq);
  const ModelOutput out = model.forward(batch, {}, context(o));
  if (!std::isfinite(out.last_hidden_state.data<float>()[0])) throw Error("non-finite output");
  const bench::Rss after = bench::resident_set();
  const double w = static_cast<double>(weights_bytes(o.model));
  if (o.json)
    std::printf(
        "{\"impl\": \"%s\", \"mode\": \"rss\", \"batch\": "
        "%lld, \"seq\": %lld, \"weights_bytes\": %.0f, "
        "\"rss_start\": %lld, \"rss_after_load\": %lld, \"peak_rss\": "
        "%lld, \"peak_over_weights\": %.4f}\n",
        impl_name(o).c_str(), static_cast<long long>(o.batch), static_cast<long long>(o.seq), w,
        static_cast<long long>(before.current),
        static_cast<long long>(loaded.current), static_cast<long long>(after.peak),
        static_cast<double>(after.peak) / w);
  else
    std::printf(
        "weights %.1f MB; RSS at start %.1f MB, after loading %.1f MB; "
        "peak after a (%lld, %lld) forward "
        "%.1f MB = %.2fx the weights\n",
        w / 1e6, static_cast<double>(before.current) / 1e6, static_cast<double>(loaded.current) / 1e6,
        static_cast<long long>(o.batch), static_cast<long long>(o.seq), static_cast<double>(after.peak) / 1e6,
        static_cast<double>(after.peak) / w);
  return 0;
}

int run_throughput(const Options& o) {
  const RoFormerModel model = RoFormerModel::from_pretrained(o.model, load_options(o));
  const Batch batch = slice_inputs(o.model, o.batch, o.seq);
  const ExecContext ctx = context(o);
  std::vector<double> seconds;
  double total = 0;
  ModelOutput out;
  for (int rep = 0; rep < o.warmup || static_cast<int>(seconds.size()) < o.min_reps || total < o.min_seconds; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    out = model.forward(batch, {}, ctx);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (rep >= o.warmup) {
      seconds.push_back(s);
      total += s;
    }
  }
  const Tensor& h = out.last_hidden_state;
  double abs_sum = 0;
  for (int64_t i = 0; i < h.numel(); ++i) abs_sum += std::fabs(h.data<float>()[i]);
  if (!std::isfinite(abs_sum)) throw Error("non-finite output");
  if (!o.save_output.empty()) save_safetensors(o.save_output, {{"last_hidden_state", h}});
  // Against another run's saved output (the fp32 one, for bf16): -1 when not asked.
  double diff = -1;
  if (!o.compare.empty()) {
    const Tensor ref = SafeTensors::open(o.compare).get("last_hidden_state");
    if (ref.shape() != h.shape()) throw Error("--compare: " + o.compare + " holds a different shape");
    diff = 0;
    for (int64_t i = 0; i < h.numel(); ++i)
      diff = std::max(diff, static_cast<double>(std::fabs(h.data<float>()[i] - ref.data<float>()[i])));
  }

  const double med = bench::median(seconds);
  const double tokens = static_cast<double>(o.batch * o.seq);
  const double flops = forward_flops(model.config(), o.batch, o.seq);
  const std::string blas = bench::loaded_blas(), core = bench::openblas_core();
  if (o.json)
    std::printf(
        "{\"impl\": \"%s\", \"gemm\": \"%s\", \"dtype\": \"%s\", \"batch\": %lld, \"seq\": %lld, "
        "\"threads\": %d, \"reps\": %zu, "
        "\"seconds_median\": %.6f, \"seconds_min\": %.6f, \"seconds_max\": "
        "%.6f, \"tokens_per_second\": %.3f, "
        "\"flops\": %.6g, \"gflops_per_second\": %.3f, \"mean_abs_output\": "
        "%.9g, \"max_abs_diff_vs_compare\": %.6g, \"blas\": \"%s\", "
        "\"openblas_core\": \"%s\"}\n",
        impl_name(o).c_str(), std::string(gemm_backend_name(ctx.gemm)).c_str(), o.dtype.c_str(),
        static_cast<long long>(o.batch), static_cast<long long>(o.seq), o.threads, seconds.size(), med,
        *std::min_element(seconds.begin(), seconds.end()), *std::max_element(seconds.begin(), seconds.end()),
        tokens / med, flops, flops / med / 1e9, abs_sum / static_cast<double>(h.numel()), diff,
        bench::json_escape(blas).c_str(), bench::json_escape(core).c_str());
  else
    std::printf(
        "%s  B=%lld T=%lld, %d thread(s): median %.4f s over "
        "%zu reps -> %.1f tokens/s, %.1f GFLOP/s "
        "(BLAS %s, core %s)\n",
        impl_name(o).c_str(), static_cast<long long>(o.batch), static_cast<long long>(o.seq), o.threads, med,
        seconds.size(), tokens / med,
        flops / med / 1e9, blas.c_str(), core.c_str());
  return 0;
}

int run(const Options& o) {
  if (o.sgemm) {
    const GemmBackend backend = parse_gemm_backend(o.gemm);
    const double g = bench::sgemm_gflops(768, o.threads, backend);
    const std::string name(gemm_backend_name(backend));
    if (o.json)
      std::printf(
          "{\"impl\": \"sgemm\", \"gemm\": \"%s\", \"n\": 768, \"threads\": %d, "
          "\"gflops_per_second\": %.3f}\n",
          name.c_str(), o.threads, g);
    else
      std::printf("sgemm 768^3 (%s), %d thread(s): %.1f GFLOP/s (best of 30)\n", name.c_str(), o.threads, g);
    return 0;
  }
  if (o.fma_peak) {
    const double g = bench::fma_peak_gflops(o.threads);
    if (o.json)
      std::printf("{\"impl\": \"fma_peak\", \"threads\": %d, \"gflops_per_second\": %.3f}\n", o.threads, g);
    else
      std::printf("FMA peak, %d thread(s): %.1f GFLOP/s (best of 5)\n", o.threads, g);
    return 0;
  }
  if (o.bf16_peak) {
    const double g = bench::bf16_dot_peak_gflops(o.threads);
    if (o.json)
      std::printf("{\"impl\": \"bf16_peak\", \"threads\": %d, \"gflops_per_second\": %.3f}\n", o.threads, g);
    else if (g > 0)
      std::printf("bf16 dot-product peak, %d thread(s): %.1f GFLOP/s (best of 5)\n", o.threads, g);
    else
      std::printf("no AVX512-BF16 on this CPU\n");
    return 0;
  }
  if (!o.dump.empty()) return dump(o);
  if (o.model.empty()) usage("give --dump DIR, --model DIR or --sgemm");
  return o.rss ? run_rss(o) : run_throughput(o);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_infer: %s\n", e.what());
    return 1;
  }
}
