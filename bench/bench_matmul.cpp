// The weight products of RoFormer-base inference, one at a time: bf16 on our
// AVX512-BF16 panels against bf16 through oneDNN, and fp32 through oneDNN,
// on the same packed weights and prepared activations, measured in the same
// run. Shapes: the attention projections (768 -> 768), the FFN's first
// product with its GELU (768 -> 3072) and its second with the residual add
// (3072 -> 768), for 128, 512 and 1024 tokens. As in a forward, where each
// of the 72 weight matrices is read once, every call takes the next of
// enough packed copies of the weights (192 MB of them) that they come from
// memory, not from a cache the previous call warmed.
// After the runs a table gives the medians in GFLOP/s against the machine's
// bf16 dot-product and FMA peaks measured in the same process.
//
//   bench_matmul --benchmark_repetitions=5 --benchmark_enable_random_interleaving=true
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench_common.h"
#include "run_table.h"
#include "kernels/packed_matmul.h"

namespace {

using namespace roformer;
using kernels::Bf16Kernel;
using kernels::MatmulPrecision;

struct Shape {
  const char* name;
  int64_t out, in;
  kernels::Epilogue (*epilogue)(const float* residual);
};

const Shape kShapes[] = {
    {"proj 768x768", 768, 768, [](const float*) { return kernels::Epilogue{}; }},
    {"ffn-up 768x3072 +gelu", 3072, 768,
     [](const float*) { return kernels::Epilogue{kernels::Activation::Gelu, nullptr}; }},
    {"ffn-down 3072x768 +res", 768, 3072, [](const float* r) { return kernels::Epilogue{std::nullopt, r}; }},
};

constexpr int64_t kColdBytes = int64_t{192} << 20;

enum class Impl { Bf16Panels, Bf16OneDnn, F32OneDnn };
const char* impl_name(Impl i) {
  switch (i) {
    case Impl::Bf16Panels: return "bf16_panels";
    case Impl::Bf16OneDnn: return "bf16_onednn";
    case Impl::F32OneDnn: return "f32_onednn";
  }
  return "?";
}

void run_product(benchmark::State& state, Impl impl, const Shape& shape, int64_t rows, int threads) {
  const bool bf16 = impl != Impl::F32OneDnn;
  if (impl == Impl::Bf16Panels && !cpu_has_avx512_bf16()) {
    state.SkipWithError("no AVX512-BF16 on this CPU");
    return;
  }
  std::vector<float> w(static_cast<std::size_t>(shape.out * shape.in)), bias(static_cast<std::size_t>(shape.out));
  std::vector<float> x(static_cast<std::size_t>(rows * shape.in)), residual(static_cast<std::size_t>(rows * shape.out));
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i % 101) * 0.002f - 0.1f;
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 89) * 0.02f - 0.9f;
  for (std::size_t i = 0; i < bias.size(); ++i) bias[i] = static_cast<float>(i % 7) * 0.01f;
  for (std::size_t i = 0; i < residual.size(); ++i) residual[i] = static_cast<float>(i % 13) * 0.1f;
  const int64_t bytes = shape.out * shape.in * (bf16 ? 2 : 4);
  const int64_t copies = std::max<int64_t>(2, kColdBytes / bytes);
  std::vector<std::unique_ptr<const kernels::PackedMatmul>> packs;
  for (int64_t c = 0; c < copies; ++c)
    packs.push_back(std::make_unique<const kernels::PackedMatmul>(
        w.data(), shape.out, shape.in, bf16 ? MatmulPrecision::Bf16 : MatmulPrecision::F32, false,
        impl == Impl::Bf16Panels ? Bf16Kernel::Panels : Bf16Kernel::Library));
  const ExecContext ctx{threads, best_isa(), GemmBackend::OneDnn};
  kernels::PackedInput input;
  packs[0]->prepare(x.data(), rows, input, ctx);  // shared by Q, K and V in the model: not timed
  std::vector<float> y(static_cast<std::size_t>(rows * shape.out));
  const kernels::Epilogue e = shape.epilogue(residual.data());
  std::size_t next = 0;
  for (auto _ : state) {
    packs[next]->forward(input, bias.data(), y.data(), ctx, e);
    next = (next + 1) % packs.size();
    benchmark::DoNotOptimize(y.data());
  }
  state.SetLabel(packs[0]->kernel_name());
}

double flops(const Shape& s, int64_t rows) { return 2.0 * static_cast<double>(rows * s.out * s.in); }

// Medians over repetitions, then one table row per (shape, rows, threads).
class TableReporter : public bench::RunTable {
 public:
  void Finalize() override {
    ConsoleReporter::Finalize();
    std::map<int, double> bf16_peak, fma_peak;
    for (int threads : {1, 2}) {
      bf16_peak[threads] = bench::bf16_dot_peak_gflops(threads);
      fma_peak[threads] = bench::fma_peak_gflops(threads);
    }
    std::printf("\n| product | rows | threads | bf16 panels GFLOP/s | bf16 oneDNN | panels ÷ oneDNN | panels ÷ bf16 peak "
                "| oneDNN ÷ bf16 peak | fp32 oneDNN | ÷ FMA peak |\n|---|---|---|---|---|---|---|---|---|---|\n");
    for (const auto& [key, impls] : values_) {  // real times in us
      const std::size_t a = key.find('|'), b = key.find('|', a + 1);
      const Shape& s = kShapes[std::stoi(key.substr(0, a))];
      const int64_t rows = std::stoll(key.substr(a + 1, b - a - 1));
      const int threads = std::stoi(key.substr(b + 1));
      auto gflops = [&](Impl i) {
        const auto it = impls.find(impl_name(i));
        return it == impls.end() ? 0.0 : flops(s, rows) / (bench::median(it->second) * 1e-6) / 1e9;
      };
      const double p = gflops(Impl::Bf16Panels), o = gflops(Impl::Bf16OneDnn), f = gflops(Impl::F32OneDnn);
      const double top = bf16_peak[threads];
      std::printf("| %s | %lld | %d | %.1f | %.1f | %.2fx | %.0f%% | %.0f%% | %.1f | %.0f%% |\n", s.name,
                  static_cast<long long>(rows), threads, p, o, o > 0 ? p / o : 0.0, top > 0 ? 100 * p / top : 0.0,
                  top > 0 ? 100 * o / top : 0.0, f, 100 * f / fma_peak[threads]);
    }
    std::printf("(bf16 dot-product peak %.1f / %.1f GFLOP/s, FMA peak %.1f / %.1f on 1 / 2 threads)\n", bf16_peak[1],
                bf16_peak[2], fma_peak[1], fma_peak[2]);
  }
};

}  // namespace

int main(int argc, char** argv) {
  for (int threads : {1, 2})
    for (int64_t rows : {128, 512, 1024})
      for (std::size_t s = 0; s < std::size(kShapes); ++s)
        for (Impl impl : {Impl::Bf16Panels, Impl::Bf16OneDnn, Impl::F32OneDnn}) {
          // The name's second part (after '/') keys the table: shape|rows|threads.
          const std::string name = std::string(impl_name(impl)) + "/" + std::to_string(s) + "|" +
                                   std::to_string(rows) + "|" + std::to_string(threads);
          benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) {
            run_product(st, impl, kShapes[s], rows, threads);
          })->UseRealTime()->Unit(benchmark::kMicrosecond)->MinTime(0.2);
        }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  TableReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
