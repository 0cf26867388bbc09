#include "bench_common.h"

#include <cblas.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "kernels/gemm.h"
#include "roformer/error.h"

namespace roformer::bench {

std::string loaded_blas() {
  std::ifstream maps("/proc/self/maps");
  std::string line, out;
  std::vector<std::string> seen;
  while (std::getline(maps, line)) {
    const std::size_t slash = line.find('/');
    if (slash == std::string::npos) continue;
    const std::string path = line.substr(slash);
    const std::string file = path.substr(path.rfind('/') + 1);
    if (file.find("blas") == std::string::npos) continue;
    if (std::find(seen.begin(), seen.end(), path) != seen.end()) continue;
    seen.push_back(path);
    out += (out.empty() ? "" : " ") + file;
  }
  return out.empty() ? "(statically linked or none)" : out;
}

std::string openblas_core() { return openblas_get_corename(); }

double sgemm_gflops(int n, int threads, GemmBackend backend, int reps) {
  std::vector<float> a(static_cast<std::size_t>(n) * n), b(a.size()), c(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    a[i] = static_cast<float>(i % 13) * 0.01f;
    b[i] = static_cast<float>(i % 7) * 0.02f;
  }
  const ExecContext ctx{threads, best_isa(), backend};
  double best = 1e30;
  for (int rep = 0; rep < reps; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    kernels::gemm(false, true, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n, ctx);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return 2.0 * n * n * static_cast<double>(n) / best / 1e9;
}

namespace {

// Enough independent chains to cover latency x units for both loops: 12 fed
// the FMAs but left vdpbf16ps at 92 % of the rate 16 or more reach (Zen 5).
constexpr int kChains = 24;
// AVX2 has 16 vector registers: 24 chains spilled to the stack and the loop
// ran at 94 % of OpenBLAS's sgemm on a Zen core; 12 (with the two constants)
// stay in registers and still cover 2 units x 5 cycles of latency.
constexpr int kChains256 = 12;

// The sum of every lane of the chains (any vector width): a value that depends on every step.
template <class V, int N>
float lane_total(const V (&acc)[N]) {
  float lanes[sizeof(V) / sizeof(float)];
  float s = 0;
  for (const V& v : acc) {
    std::memcpy(lanes, &v, sizeof(V));
    for (float x : lanes) s += x;
  }
  return s;
}

// Each returns a value that depends on every FMA, so none can be dropped.
__attribute__((target("avx512f"))) float chains_512(int64_t iters) {
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(0.001f * static_cast<float>(i));
  const __m512 mul = _mm512_set1_ps(0.999999f), add = _mm512_set1_ps(1e-7f);
  for (int64_t k = 0; k < iters; ++k)
#pragma GCC unroll 24
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], mul, add);
  return lane_total(acc);
}

__attribute__((target("avx2,fma"))) float chains_256(int64_t iters) {
  __m256 acc[kChains256];
  for (int i = 0; i < kChains256; ++i) acc[i] = _mm256_set1_ps(0.001f * static_cast<float>(i));
  const __m256 mul = _mm256_set1_ps(0.999999f), add = _mm256_set1_ps(1e-7f);
  for (int64_t k = 0; k < iters; ++k)
#pragma GCC unroll 12
    for (int i = 0; i < kChains256; ++i) acc[i] = _mm256_fmadd_ps(acc[i], mul, add);
  return lane_total(acc);
}

__attribute__((target("avx512f,avx512bf16"))) float chains_bf16(int64_t iters) {
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(0.001f * static_cast<float>(i));
  // Pairs (about 1, about 2^-12) against (1, 1): each step adds about 1 to every lane, far from overflow.
  const __m512bh a = reinterpret_cast<__m512bh>(_mm512_set1_epi32(0x397f3f7f)), b = reinterpret_cast<__m512bh>(_mm512_set1_epi32(0x3f803f80));
  for (int64_t k = 0; k < iters; ++k)
#pragma GCC unroll 24
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
  return lane_total(acc);
}

// The best rate of `body` (returning a value that depends on all its work) run on
// `threads` threads at once, as flops per call times calls per second.
template <class Body>
double best_rate_gflops(int threads, double flops_per_call, Body body) {
  volatile float sink = 0;
  double best = 1e30;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads)
    {
      const float s = body();
#pragma omp critical
      sink = sink + s;
    }
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return static_cast<double>(threads) * flops_per_call / best / 1e9;
}

}  // namespace

double bf16_dot_peak_gflops(int threads) {
  if (!cpu_has_avx512_bf16()) return 0.0;
  const int64_t iters = 10'000'000;
  return best_rate_gflops(threads, static_cast<double>(iters) * kChains * 16 * 4.0, [&] { return chains_bf16(iters); });
}

double fma_peak_gflops(int threads) {
  const bool wide = isa_supported(Isa::Avx512);
  if (!wide && !isa_supported(Isa::Avx2)) return 0.0;
  const double lanes = wide ? 16 : 8;
  const int64_t iters = 20'000'000;
  return best_rate_gflops(threads, static_cast<double>(iters) * (wide ? kChains : kChains256) * lanes * 2.0,
                          [&] { return wide ? chains_512(iters) : chains_256(iters); });
}

double read_bandwidth_gbs(int64_t bytes, int threads) {
  const int64_t n = std::max<int64_t>(bytes / static_cast<int64_t>(sizeof(float)), 1);
  std::vector<float> buffer(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) buffer[static_cast<std::size_t>(i)] = static_cast<float>(i % 7);
  volatile float sink = 0;
  double best = 1e30;
  for (int rep = 0; rep < 6; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    float total = 0;
    // Eight partial sums: one chain of adds would be latency-bound, not memory-bound.
#pragma omp parallel for num_threads(threads) reduction(+ : total) schedule(static)
    for (int64_t block = 0; block < (n + 4095) / 4096; ++block) {
      float part[8] = {};
      const int64_t end = std::min(n, (block + 1) * 4096);
      int64_t i = block * 4096;
      for (; i + 8 <= end; i += 8)
#pragma omp simd
        for (int j = 0; j < 8; ++j) part[j] += buffer[static_cast<std::size_t>(i + j)];
      for (; i < end; ++i) part[0] += buffer[static_cast<std::size_t>(i)];
      for (float p : part) total += p;
    }
    sink = sink + total;
    if (rep > 0) best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return static_cast<double>(n) * sizeof(float) / best / 1e9;
}

RoFormerConfig shape_config(const std::string& name) {
  struct Spec {
    const char* name;
    int64_t vocab, hidden, layers, heads, ffn;
  };
  static constexpr Spec kSpecs[] = {{"small", 8000, 256, 4, 4, 1024}, {"base", 50000, 768, 12, 12, 3072}};
  for (const Spec& s : kSpecs) {
    if (name != s.name) continue;
    RoFormerConfig c;
    c.vocab_size = s.vocab;
    c.hidden_size = s.hidden;
    c.num_hidden_layers = s.layers;
    c.num_attention_heads = s.heads;
    c.intermediate_size = s.ffn;
    return c;
  }
  throw std::invalid_argument("unknown shape " + name + " (small or base)");
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) o += c;
  }
  return o;
}

std::vector<std::string> read_text_lines(const std::string& path, int64_t limit) {
  std::ifstream in(path, std::ios::binary);
  ROFORMER_CHECK(in.good(), "cannot open " + path);
  std::vector<std::string> lines;
  std::string line;
  while (static_cast<int64_t>(lines.size()) < limit && std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) lines.push_back(line);
  }
  ROFORMER_CHECK(!lines.empty(), path + " has no non-empty line");
  return lines;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

Rss resident_set() {
  std::ifstream status("/proc/self/status");
  std::string line;
  Rss r;
  auto kib = [](const std::string& l) {
    std::istringstream in(l.substr(l.find(':') + 1));
    int64_t v = 0;
    in >> v;
    return v * 1024;
  };
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) r.peak = kib(line);
    if (line.rfind("VmRSS:", 0) == 0) r.current = kib(line);
  }
  return r;
}

}  // namespace roformer::bench
