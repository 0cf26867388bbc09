// Softmax attention at RoFormer-base's head shape (12 heads x 64), B = 1:
// the fused tiled kernel (online softmax, nothing of size T x T stored)
// against the materialised path it replaces in SelfAttention - per
// (batch row, head) BLAS GEMMs for Q K^T, softmax, P V, and for training the
// saved probabilities with the four-GEMM backward - measured in the same run.
// Also the separate RoPE pass over Q and K that both paths rely on, to show
// its share of the attention time, and both passes with their products in
// bf16 (AVX512-BF16: inference, and mixed-precision training).
//
//   attn_fwd:  forward only (inference: no probabilities, no lse);
//   attn_train: training forward (probs or lse saved) + backward.
// After the runs a table gives the medians and the speed-up of the fused
// path (markdown), with GFLOP/s against an sgemm yardstick of the same run.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "bench_common.h"
#include "run_table.h"
#include "kernels/attention_fused.h"
#include "kernels/elementwise.h"
#include "kernels/elementwise_backward.h"
#include "kernels/gemm.h"
#include "roformer/rope.h"

namespace {

using namespace roformer;

constexpr int64_t kHeads = 12, kHeadDim = 64, kHidden = kHeads * kHeadDim;

struct Buffers {
  int64_t T;
  std::vector<float> q, k, v, out, dout, dq, dk, dv, lse, probs, dp, scratch;
  kernels::FusedAttention shape;

  Buffers(int64_t seq, int threads, bool bf16 = false) : T(seq) {
    const auto n = static_cast<std::size_t>(T * kHidden);
    q.resize(n);
    k.resize(n);
    v.resize(n);
    dout.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      q[i] = static_cast<float>(i % 97) * 0.02f - 1.0f;
      k[i] = static_cast<float>(i % 89) * 0.02f - 0.9f;
      v[i] = static_cast<float>(i % 83) * 0.02f - 0.8f;
      dout[i] = static_cast<float>(i % 79) * 0.02f - 0.7f;
    }
    out.resize(n);
    dq.resize(n);
    dk.resize(n);
    dv.resize(n);
    lse.resize(static_cast<std::size_t>(kHeads * T));
    shape.batch = 1;
    shape.heads = kHeads;
    shape.q_len = shape.kv_len = T;
    shape.head_dim = kHeadDim;
    shape.q_row = shape.kv_row = kHidden;
    shape.q_batch = shape.kv_batch = T * kHidden;
    shape.bf16_products = bf16;
    const ExecContext ctx{threads, best_isa()};
    scratch.resize(static_cast<std::size_t>(std::max(kernels::attention_forward_scratch(shape, ctx),
                                                     kernels::attention_backward_scratch(shape, ctx))));
  }
};

// SelfAttention's materialised forward: one (T, T) score block per head
// (per thread), or the saved (heads, T, T) probabilities when training.
void materialised_forward(Buffers& b, bool keep_probs, const ExecContext& ctx) {
  const int64_t T = b.T, H = kHidden, D = kHeadDim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  if (keep_probs) b.probs.resize(static_cast<std::size_t>(kHeads * T * T));
#pragma omp parallel num_threads(ctx.threads) if (ctx.threads > 1)
  {
    std::vector<float> own(keep_probs ? 0 : static_cast<std::size_t>(T * T));
#pragma omp for schedule(static)
    for (int64_t h = 0; h < kHeads; ++h) {
      float* s = keep_probs ? b.probs.data() + h * T * T : own.data();
      kernels::gemm(false, true, T, T, D, scale, b.q.data() + h * D, H, b.k.data() + h * D, H, 0.0f, s, T, ctx);
      kernels::softmax_rows(s, T, T, T);
      kernels::gemm(false, false, T, D, T, 1.0f, s, T, b.v.data() + h * D, H, 0.0f, b.out.data() + h * D, H, ctx);
    }
  }
}

// SelfAttention's materialised backward from the saved probabilities.
void materialised_backward(Buffers& b, const ExecContext& ctx) {
  const int64_t T = b.T, H = kHidden, D = kHeadDim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  b.dp.resize(static_cast<std::size_t>(ctx.threads * T * T));
#pragma omp parallel num_threads(ctx.threads) if (ctx.threads > 1)
  {
    float* dp = b.dp.data() + omp_get_thread_num() * T * T;
#pragma omp for schedule(static)
    for (int64_t h = 0; h < kHeads; ++h) {
      const int64_t off = h * D;
      const float* p = b.probs.data() + h * T * T;
      kernels::gemm(false, true, T, T, D, 1.0f, b.dout.data() + off, H, b.v.data() + off, H, 0.0f, dp, T, ctx);
      kernels::gemm(true, false, T, D, T, 1.0f, p, T, b.dout.data() + off, H, 0.0f, b.dv.data() + off, H, ctx);
      kernels::softmax_backward_rows(p, dp, dp, T, T);
      kernels::gemm(false, false, T, D, T, scale, dp, T, b.k.data() + off, H, 0.0f, b.dq.data() + off, H, ctx);
      kernels::gemm(true, false, T, D, T, scale, dp, T, b.q.data() + off, H, 0.0f, b.dk.data() + off, H, ctx);
    }
  }
}

enum class Impl { Materialised, Fused, FusedBf16 };

double flops(int64_t T, bool train) {
  // Q K^T and P V forward; backward adds dP, dV, dQ, dK (the fused path's
  // recomputed Q K^T is not counted, so GFLOP/s compare like with like).
  const double per = 2.0 * static_cast<double>(kHeads) * static_cast<double>(T * T) * kHeadDim;
  return train ? 6 * per : 2 * per;
}

void run_attention(benchmark::State& state, Impl impl, bool train, int64_t T, int threads) {
  Buffers b(T, threads, impl == Impl::FusedBf16);
  if (impl == Impl::FusedBf16 && !kernels::uses_bf16_products(b.shape, ExecContext{threads, best_isa()})) {
    state.SkipWithError("no bf16 attention products on this CPU");
    return;
  }
  const ExecContext ctx{threads, best_isa()};
  // An OpenMP build of OpenBLAS sizes its team from omp_get_max_threads()
  // outside parallel regions, whatever openblas_set_num_threads said; without
  // this the "1 thread" materialised GEMMs would run on every core.
  omp_set_num_threads(threads);
  for (auto _ : state) {
    if (impl == Impl::Materialised) {
      materialised_forward(b, train, ctx);
      if (train) materialised_backward(b, ctx);
    } else {
      kernels::attention_forward_fused(b.shape, b.q.data(), b.k.data(), b.v.data(), b.out.data(),
                                       train ? b.lse.data() : nullptr, b.scratch.data(), ctx);
      if (train)
        kernels::attention_backward_fused(b.shape, b.q.data(), b.k.data(), b.v.data(), b.out.data(), b.dout.data(),
                                          b.lse.data(), b.dq.data(), b.dk.data(), b.dv.data(), b.scratch.data(), ctx);
    }
    benchmark::DoNotOptimize(b.out.data());
    benchmark::DoNotOptimize(b.dq.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(flops(T, train), benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}

// The separate RoPE pass of SelfAttention: Q and K rotated in place.
void run_rope_qk(benchmark::State& state, int64_t T, int threads) {
  Buffers b(T, threads);
  RopeTable table(RopeSpec{kHeadDim, 0, 10000.0, RopeLayout::Interleaved});
  std::vector<int64_t> pos(static_cast<std::size_t>(T));
  for (int64_t t = 0; t < T; ++t) pos[static_cast<std::size_t>(t)] = t;
  const ExecContext ctx{threads, best_isa()};
  for (auto _ : state) {
    rope_apply_inplace(table, b.q.data(), 1, T, kHeads, pos.data(), false, RopeDirection::Forward, ctx);
    rope_apply_inplace(table, b.k.data(), 1, T, kHeads, pos.data(), false, RopeDirection::Forward, ctx);
    benchmark::DoNotOptimize(b.q.data());
    benchmark::ClobberMemory();
  }
}

// Medians over repetitions (--benchmark_repetitions, ideally with
// --benchmark_enable_random_interleaving on a shared machine), then the table.
class RatioReporter : public bench::RunTable {
 public:
  explicit RatioReporter(std::vector<std::string> keys) : keys_(std::move(keys)) {}
  void Finalize() override {
    ConsoleReporter::Finalize();
    std::map<int, double> yardstick;
    for (int threads : {1, 2}) yardstick[threads] = bench::sgemm_gflops(768, threads);
    std::printf("\n| T | threads | pass | materialised ms | fused ms | speed-up | fused GFLOP/s | of sgemm | "
                "RoPE Q+K pass ms | fused bf16 ms | bf16 GFLOP/s |\n");
    std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (const std::string& key : keys_) {
      auto& m = values_[key];  // real times in us
      const int64_t T = std::stoll(key.substr(2, key.find('/') - 2));
      const int threads = std::stoi(key.substr(key.rfind('=') + 1));
      for (const char* pass : {"fwd", "train"}) {
        const std::string mat = std::string("materialised_") + pass, fus = std::string("fused_") + pass;
        if (!m.count(mat) || !m.count(fus)) continue;
        const double tm = bench::median(m[mat]) / 1e3, tf = bench::median(m[fus]) / 1e3;  // us -> ms
        const double gf = flops(T, std::string(pass) == "train") / (tf * 1e-3) / 1e9;
        const double rope = m.count("rope_qk") ? bench::median(m["rope_qk"]) / 1e3 : NAN;
        const std::string bf = std::string("fused_bf16_") + pass;
        char bf16[64] = "– | –";
        if (m.count(bf)) {
          const double tb = bench::median(m[bf]) / 1e3;
          const double gflops = flops(T, std::string(pass) == "train") / (tb * 1e-3) / 1e9;
          std::snprintf(bf16, sizeof bf16, "%.3f | %.1f", tb, gflops);
        }
        std::printf("| %lld | %d | %s | %.3f | %.3f | %.2fx | %.1f | %.2f | %.3f | %s |\n", static_cast<long long>(T),
                    threads, pass, tm, tf, tm / tf, gf, gf / yardstick[threads], rope, bf16);
      }
    }
    std::printf("(sgemm 768^3 yardstick: %.1f GFLOP/s on 1 thread, %.1f on 2)\n", yardstick[1], yardstick[2]);
  }

 private:
  std::vector<std::string> keys_;
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> keys;
  for (int64_t T : {128, 512, 2048})
    for (int threads : {1, 2}) {
      const std::string key = "T=" + std::to_string(T) + "/threads=" + std::to_string(threads);
      keys.push_back(key);
      auto reg = [&](const std::string& name, auto fn) {
        benchmark::RegisterBenchmark((name + "/" + key).c_str(), fn)->UseRealTime()->Unit(benchmark::kMicrosecond);
      };
      reg("materialised_fwd", [=](benchmark::State& s) { run_attention(s, Impl::Materialised, false, T, threads); });
      reg("fused_fwd", [=](benchmark::State& s) { run_attention(s, Impl::Fused, false, T, threads); });
      reg("fused_bf16_fwd", [=](benchmark::State& s) { run_attention(s, Impl::FusedBf16, false, T, threads); });
      reg("materialised_train", [=](benchmark::State& s) { run_attention(s, Impl::Materialised, true, T, threads); });
      reg("fused_train", [=](benchmark::State& s) { run_attention(s, Impl::Fused, true, T, threads); });
      reg("fused_bf16_train", [=](benchmark::State& s) { run_attention(s, Impl::FusedBf16, true, T, threads); });
      reg("rope_qk", [=](benchmark::State& s) { run_rope_qk(s, T, threads); });
    }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  RatioReporter reporter(keys);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
