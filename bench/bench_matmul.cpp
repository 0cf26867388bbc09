// The weight products of RoFormer-base inference, one at a time, measured in
// the same run: bf16 on our AVX512-BF16 panels against bf16 through oneDNN
// (where the CPU has AVX512-BF16; elsewhere "bf16_onednn" is the emulated
// bf16 product), fp32 on the packed weights (oneDNN's layout, or our AVX2
// panels on CPUs without AVX-512), fp32 through OpenBLAS on the plain
// weights (which it packs on every call), and int8 (VNNI, or our AVX2 int8
// panels), on the same weights and prepared activations. Shapes: the
// attention projections (768 -> 768), the FFN's first product with its GELU
// (768 -> 3072) and its second with the residual add (3072 -> 768), for 128,
// 512 and 1024 tokens. As in a forward, where each
// of the 72 weight matrices is read once, every call takes the next of
// enough packed copies of the weights (192 MB of them) that they come from
// memory, not from a cache the previous call warmed.
// After the runs, tables give the medians in GFLOP/s (int8: GOP/s) against
// the machine's bf16 dot-product and FMA peaks measured in the same process:
// the bf16 codes side by side where the CPU has AVX512-BF16, and fp32, bf16
// and int8 side by side on every CPU.
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
#include "kernels/gemm.h"
#include "kernels/packed_matmul.h"
#include "run_table.h"

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

enum class Impl { Bf16Panels, Bf16OneDnn, F32Packed, F32OpenBlas, Int8 };
constexpr Impl kImpls[] = {Impl::Bf16Panels, Impl::Bf16OneDnn, Impl::F32Packed, Impl::F32OpenBlas, Impl::Int8};
const char* impl_name(Impl i) {
  switch (i) {
    case Impl::Bf16Panels: return "bf16_panels";
    case Impl::Bf16OneDnn: return "bf16_onednn";
    case Impl::F32Packed: return "f32_packed";
    case Impl::F32OpenBlas: return "f32_openblas";
    case Impl::Int8: return "int8";
  }
  return "?";
}

MatmulPrecision precision_of(Impl i) {
  return i == Impl::Int8 ? MatmulPrecision::Int8
         : i == Impl::Bf16Panels || i == Impl::Bf16OneDnn ? MatmulPrecision::Bf16
                                                          : MatmulPrecision::F32;
}

// OpenBLAS's sgemm on the plain weights, the epilogue in passes after it:
// what the product costs without packing at load time.
void run_plain(benchmark::State& state, const Shape& shape, int64_t rows, int threads, const std::vector<float>& w,
               const std::vector<float>& x, const std::vector<float>& bias, const std::vector<float>& residual) {
  const int64_t copies = std::max<int64_t>(2, kColdBytes / (shape.out * shape.in * 4));
  std::vector<std::vector<float>> weights(static_cast<std::size_t>(copies), w);
  const ExecContext ctx{threads, best_isa(), GemmBackend::OpenBlas};
  std::vector<float> y(static_cast<std::size_t>(rows * shape.out));
  const kernels::Epilogue e = shape.epilogue(residual.data());
  std::size_t next = 0;
  for (auto _ : state) {
    kernels::gemm_bias(false, true, rows, shape.out, shape.in, x.data(), shape.in, weights[next].data(), shape.in,
                       bias.data(), y.data(), shape.out, ctx);
    kernels::apply_epilogue(y.data(), rows, shape.out, e, ctx);
    next = (next + 1) % weights.size();
    benchmark::DoNotOptimize(y.data());
  }
  state.SetLabel("openblas, unpacked");
}

void run_product(benchmark::State& state, Impl impl, const Shape& shape, int64_t rows, int threads) {
  const MatmulPrecision precision = precision_of(impl);
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
  if (impl == Impl::F32OpenBlas) return run_plain(state, shape, rows, threads, w, x, bias, residual);
  const int64_t value_bytes = precision == MatmulPrecision::Int8 ? 1 : precision == MatmulPrecision::Bf16 ? 2 : 4;
  const int64_t copies = std::max<int64_t>(2, kColdBytes / (shape.out * shape.in * value_bytes));
  std::vector<std::unique_ptr<const kernels::PackedMatmul>> packs;
  for (int64_t c = 0; c < copies; ++c)
    packs.push_back(std::make_unique<const kernels::PackedMatmul>(
        w.data(), shape.out, shape.in, precision, false,
        impl == Impl::Bf16Panels ? Bf16Kernel::Panels : Bf16Kernel::Library));
  const ExecContext ctx{threads, best_isa(), GemmBackend::OneDnn};
  kernels::PackedInput input;
  // Shared by Q, K and V in the model (and for int8 the FFN's second product
  // takes codes its first wrote): not timed.
  packs[0]->prepare(x.data(), rows, input, ctx);
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
    // Median rate of an implementation on one key, 0 where it did not run.
    auto rate = [&](const std::map<std::string, std::vector<double>>& impls, Impl i, const Shape& s, int64_t rows) {
      const auto it = impls.find(impl_name(i));
      return it == impls.end() ? 0.0 : flops(s, rows) / (bench::median(it->second) * 1e-6) / 1e9;
    };
    struct Key {
      const Shape* shape;
      int64_t rows;
      int threads;
    };
    auto parse = [](const std::string& key) {
      const std::size_t a = key.find('|'), b = key.find('|', a + 1);
      return Key{&kShapes[std::stoi(key.substr(0, a))], std::stoll(key.substr(a + 1, b - a - 1)),
                 std::stoi(key.substr(b + 1))};
    };
    if (cpu_has_avx512_bf16()) {
      std::printf("\n| product | rows | threads | bf16 panels GFLOP/s | bf16 oneDNN | panels ÷ oneDNN | panels ÷ bf16 peak "
                  "| oneDNN ÷ bf16 peak | fp32 oneDNN | ÷ FMA peak |\n|---|---|---|---|---|---|---|---|---|---|\n");
      for (const auto& [key, impls] : values_) {  // real times in us
        const Key k = parse(key);
        const double p = rate(impls, Impl::Bf16Panels, *k.shape, k.rows);
        const double o = rate(impls, Impl::Bf16OneDnn, *k.shape, k.rows);
        const double f = rate(impls, Impl::F32Packed, *k.shape, k.rows);
        const double top = bf16_peak[k.threads];
        std::printf("| %s | %lld | %d | %.1f | %.1f | %.2fx | %.0f%% | %.0f%% | %.1f | %.0f%% |\n", k.shape->name,
                    static_cast<long long>(k.rows), k.threads, p, o, o > 0 ? p / o : 0.0,
                    top > 0 ? 100 * p / top : 0.0, top > 0 ? 100 * o / top : 0.0, f, 100 * f / fma_peak[k.threads]);
      }
    }
    // Every CPU: fp32 on its packed weights against OpenBLAS on the plain
    // ones, and the default bf16 and int8 products against that fp32.
    std::printf("\n| product | rows | threads | fp32 packed GFLOP/s | fp32 OpenBLAS unpacked | packed ÷ OpenBLAS "
                "| fp32 packed ÷ FMA peak | bf16 GFLOP/s | bf16 ÷ fp32 packed | int8 GOP/s | int8 ÷ fp32 packed |\n"
                "|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (const auto& [key, impls] : values_) {
      const Key k = parse(key);
      const double f = rate(impls, Impl::F32Packed, *k.shape, k.rows);
      const double plain = rate(impls, Impl::F32OpenBlas, *k.shape, k.rows);
      const double h = rate(impls, Impl::Bf16OneDnn, *k.shape, k.rows);
      const double q = rate(impls, Impl::Int8, *k.shape, k.rows);
      auto ratio = [&](double v) { return f > 0 ? v / f : 0.0; };
      std::printf("| %s | %lld | %d | %.1f | %.1f | %.2fx | %.0f%% | %.1f | %.2fx | %.1f | %.2fx |\n", k.shape->name,
                  static_cast<long long>(k.rows), k.threads, f, plain, plain > 0 ? f / plain : 0.0,
                  100 * f / fma_peak[k.threads], h, ratio(h), q, ratio(q));
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
        for (Impl impl : kImpls) {
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
