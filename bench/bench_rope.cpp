// RoPE throughput over RoFormer-base shapes (12 heads x 64), forward and
// backward, 1 and 2 threads, against two baselines measured in the same run:
//   copy  - a plain parallel copy of the same bytes (the bandwidth ceiling);
//   naive - the straightforward HF formulation: materialise rotate_half(x)
//           and full-size cos/sin tensors, then x*cos + rot*sin.
// After the runs, a table of ratios is printed (markdown).
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <utility>
#include <string>
#include <vector>

#include "roformer/rope.h"
#include "run_table.h"

namespace {

using namespace roformer;

constexpr int64_t kHeads = 12, kHeadDim = 64;

struct Buffers {
  Tensor x, y, positions;
  explicit Buffers(int64_t B, int64_t T) {
    x = Tensor::zeros({B, T, kHeads, kHeadDim});
    y = Tensor::zeros(x.shape());
    float* p = x.data<float>();
    for (int64_t i = 0; i < x.numel(); ++i) p[i] = static_cast<float>(i % 97) * 0.01f - 0.5f;
    positions = Tensor::zeros({T}, DType::I64);
    for (int64_t t = 0; t < T; ++t) positions.data<int64_t>()[t] = t;
  }
  double bytes_moved() const { return 2.0 * static_cast<double>(x.nbytes()); }
};

void set_counters(benchmark::State& state, const Buffers& b) {
  state.counters["GB/s"] = benchmark::Counter(b.bytes_moved(), benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
}

void run_rope(benchmark::State& state, int64_t B, int64_t T, int threads, RopeDirection dir) {
  Buffers b(B, T);
  RopeTable table(RopeSpec{kHeadDim, 0, 10000.0, RopeLayout::Interleaved});
  const ExecContext ctx{threads, best_isa()};
  rope_apply(table, b.x, b.y, b.positions, QkvLayout::BSHD, dir, ctx);  // warm the table
  for (auto _ : state) {
    rope_apply(table, b.x, b.y, b.positions, QkvLayout::BSHD, dir, ctx);
    benchmark::DoNotOptimize(b.y.raw());
    benchmark::ClobberMemory();
  }
  set_counters(state, b);
}

void run_copy(benchmark::State& state, int64_t B, int64_t T, int threads) {
  Buffers b(B, T);
  const float* src = b.x.data<float>();
  float* dst = b.y.data<float>();
  const int64_t n = b.x.numel();
  for (auto _ : state) {
#pragma omp parallel num_threads(threads)
    {
      const int64_t nt = omp_get_num_threads(), id = omp_get_thread_num();
      const int64_t lo = n * id / nt, hi = n * (id + 1) / nt;
      std::memcpy(dst + lo, src + lo, static_cast<std::size_t>(hi - lo) * sizeof(float));
    }
    benchmark::DoNotOptimize(dst);
    benchmark::ClobberMemory();
  }
  set_counters(state, b);
}

// HF's apply_rotary_position_embeddings as PyTorch executes it: one pass
// per tensor op, each writing its own temporary (allocated once, outside the
// timed loop, which favours the baseline):
//   neg = -x[..., 1::2];  rot = stack([neg, x[..., ::2]], -1).reshape_as(x)
//   t1 = x * cos_pos;  t2 = rot * sin_pos;  y = t1 + t2
// cos_pos/sin_pos are the [T, D] tables with each value repeated for its pair.
void run_naive(benchmark::State& state, int64_t B, int64_t T, int threads, RopeDirection dir) {
  Buffers b(B, T);
  constexpr int64_t D = kHeadDim, P = kHeadDim / 2;
  std::vector<float> cos_pos(static_cast<std::size_t>(T * D)), sin_pos(cos_pos.size());
  std::vector<float> c(P), s(P);
  const RopeSpec spec{D, 0, 10000.0, RopeLayout::Interleaved};
  for (int64_t t = 0; t < T; ++t) {
    rope_angles(spec, t, c.data(), s.data());
    for (int64_t i = 0; i < D; ++i) {
      cos_pos[t * D + i] = c[i / 2];
      sin_pos[t * D + i] = dir == RopeDirection::Forward ? s[i / 2] : -s[i / 2];
    }
  }
  const int64_t rows = B * T * kHeads;
  Tensor neg_t = Tensor::zeros({rows, P}), rot_t = Tensor::zeros(b.x.shape());
  Tensor t1_t = Tensor::zeros(b.x.shape()), t2_t = Tensor::zeros(b.x.shape());
  const float* x = b.x.data<float>();
  float *neg = neg_t.data<float>(), *rot = rot_t.data<float>(), *t1 = t1_t.data<float>(), *t2 = t2_t.data<float>();
  float* y = b.y.data<float>();
  const float* cp = cos_pos.data();
  const float* sp = sin_pos.data();
  for (auto _ : state) {
#pragma omp parallel num_threads(threads)
    {
#pragma omp for schedule(static)
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t i = 0; i < P; ++i) neg[r * P + i] = -x[r * D + 2 * i + 1];
#pragma omp for schedule(static)
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t i = 0; i < P; ++i) {
          rot[r * D + 2 * i] = neg[r * P + i];
          rot[r * D + 2 * i + 1] = x[r * D + 2 * i];
        }
#pragma omp for schedule(static)
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t t = (r / kHeads) % T;
        for (int64_t i = 0; i < D; ++i) t1[r * D + i] = x[r * D + i] * cp[t * D + i];
      }
#pragma omp for schedule(static)
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t t = (r / kHeads) % T;
        for (int64_t i = 0; i < D; ++i) t2[r * D + i] = rot[r * D + i] * sp[t * D + i];
      }
#pragma omp for schedule(static)
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t i = 0; i < D; ++i) y[r * D + i] = t1[r * D + i] + t2[r * D + i];
    }
    benchmark::DoNotOptimize(y);
    benchmark::ClobberMemory();
  }
  set_counters(state, b);
}

// Collects every run and prints the ratio table after the normal report: the
// median GB/s over repetitions (--benchmark_repetitions, ideally with
// --benchmark_enable_random_interleaving so that slow phases of a shared
// machine hit every implementation alike).
class RatioReporter : public bench::RunTable {
 public:
  explicit RatioReporter(std::vector<std::string> keys) : keys_(std::move(keys)) {}
  void Finalize() override {
    ConsoleReporter::Finalize();
    std::printf("\n| shape (B, T, 12, 64) | threads | dir | roformer GB/s | copy GB/s | fraction of copy | naive GB/s | speed-up vs naive |\n");
    std::printf("|---|---|---|---|---|---|---|---|\n");
    for (const std::string& key : keys_)
      for (const char* dir : {"fwd", "bwd"}) {
        std::map<std::string, double> g;  // median over repetitions
        for (auto& [impl, v] : values_[key]) {
          std::sort(v.begin(), v.end());
          g[impl] = v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
        }
        const std::string self = std::string("rope_") + dir, naive = std::string("naive_") + dir;
        if (!g.count(self) || !g.count("copy") || !g.count(naive)) continue;
        std::string shape = key.substr(0, key.rfind('/'));
        std::replace(shape.begin(), shape.end(), '/', ' ');
        std::string threads = key.substr(key.rfind('=') + 1);
        std::printf("| %s | %s | %s | %.1f | %.1f | %.2f | %.1f | %.2fx |\n", shape.c_str(), threads.c_str(), dir,
                    g[self] / 1e9, g["copy"] / 1e9, g[self] / g["copy"], g[naive] / 1e9, g[self] / g[naive]);
      }
  }


 protected:
  // Each run's GB/s counter, not its time.
  std::optional<double> value(const Run& r) const override {
    const auto it = r.counters.find("GB/s");
    return it == r.counters.end() ? std::nullopt : std::optional<double>(it->second.value);
  }

 private:
  std::vector<std::string> keys_;  // table rows, in registration order
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> keys;
  const int64_t batches[] = {1, 4, 16};
  const int64_t seqs[] = {128, 512, 2048, 8192};
  for (int64_t T : seqs)
    for (int64_t B : batches)
      for (int threads : {1, 2}) {
        const std::string key =
            "B=" + std::to_string(B) + "/T=" + std::to_string(T) + "/threads=" + std::to_string(threads);
        keys.push_back(key);
        auto reg = [&](const std::string& name, auto fn) {
          benchmark::RegisterBenchmark((name + "/" + key).c_str(), fn)->UseRealTime()->Unit(benchmark::kMicrosecond);
        };
        reg("rope_fwd", [=](benchmark::State& s) { run_rope(s, B, T, threads, RopeDirection::Forward); });
        reg("rope_bwd", [=](benchmark::State& s) { run_rope(s, B, T, threads, RopeDirection::Backward); });
        reg("copy", [=](benchmark::State& s) { run_copy(s, B, T, threads); });
        reg("naive_fwd", [=](benchmark::State& s) { run_naive(s, B, T, threads, RopeDirection::Forward); });
        reg("naive_bwd", [=](benchmark::State& s) { run_naive(s, B, T, threads, RopeDirection::Backward); });
      }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  RatioReporter reporter(keys);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
