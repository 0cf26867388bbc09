#include "bench_common.h"

#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>

#include "kernels/gemm.h"

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

std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) o += c;
  }
  return o;
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
