// `roformer demo`: RoPE's defining properties shown on an embedded default
// (head_dim 64, base 10000), computed by the library's kernels.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>

#include "roformer/rope.h"
#include "tools/commands.h"

namespace roformer::cli {
namespace {

struct DemoOptions {
  int64_t head_dim = 64;
  int threads = 1;
  std::string isa = "auto";
};

Tensor rotate_pair(RopeTable& table, const std::vector<float>& q, const std::vector<float>& k, int64_t m,
                   int64_t n, const ExecContext& ctx) {
  const int64_t d = table.spec().head_dim;
  std::vector<float> both(q);
  both.insert(both.end(), k.begin(), k.end());
  Tensor x = Tensor::from_vector({1, 2, 1, d}, both);
  Tensor pos = Tensor::zeros({2}, DType::I64);
  pos.data<int64_t>()[0] = m;
  pos.data<int64_t>()[1] = n;
  rope_apply(table, x, x, pos, QkvLayout::BSHD, RopeDirection::Forward, ctx);
  return x;
}

double dot(const float* a, const float* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(a[i]) * b[i];
  return s;
}

void run_demo(const DemoOptions& o) {
  const ExecContext ctx{o.threads, parse_isa(o.isa)};
  const int64_t d = o.head_dim;
  RopeTable table(RopeSpec{d, 0, 10000.0, RopeLayout::Interleaved});
  std::mt19937 rng(2021);
  std::normal_distribution<float> normal;
  std::vector<float> q(static_cast<std::size_t>(d)), k(static_cast<std::size_t>(d));
  for (auto& v : q) v = normal(rng);
  for (auto& v : k) v = normal(rng);

  std::printf("RoPE demo: head_dim %lld, base 10000, interleaved pairs, kernel %s, %d thread(s)\n\n",
              static_cast<long long>(d), std::string(isa_name(ctx.isa)).c_str(), ctx.threads);
  std::printf("1. q_m . k_n depends only on m - n (eq. 16):\n");
  std::printf("   %10s %10s %8s %14s\n", "m", "n", "m - n", "q_m . k_n");
  const int64_t pairs[][2] = {{0, 0}, {5, 5}, {100000, 100000}, {3, 0}, {103, 100}, {1000003, 1000000},
                              {0, 40}, {960, 1000}, {50000, 50040}};
  for (const auto& p : pairs) {
    const Tensor r = rotate_pair(table, q, k, p[0], p[1], ctx);
    const float* v = r.data<float>();
    std::printf("   %10lld %10lld %8lld %14.6f\n", static_cast<long long>(p[0]), static_cast<long long>(p[1]),
                static_cast<long long>(p[0] - p[1]), dot(v, v + d, d));
  }

  std::printf("\n2. Rotation keeps the norm: |q| = %.6f", std::sqrt(dot(q.data(), q.data(), d)));
  for (int64_t m : {1, 1000, 1000000}) {
    const Tensor r = rotate_pair(table, q, k, m, 0, ctx);
    std::printf(", |R_%lld q| = %.6f", static_cast<long long>(m), std::sqrt(dot(r.data<float>(), r.data<float>(), d)));
  }

  std::printf("\n\n3. Long-term decay of the bound (paper section 3.4.3, d = 128):\n   ");
  const auto bound = rope_decay_bound(128, 250);
  for (int64_t r : {0, 10, 25, 50, 100, 250}) std::printf("r=%lld: %.2f   ", static_cast<long long>(r), bound[r]);

  // Throughput of the kernel on a RoFormer-base-sized query tensor.
  const int64_t B = 8, T = 512, H = 12;
  Tensor x = Tensor::zeros({B, T, H, d});
  Tensor pos = Tensor::zeros({T}, DType::I64);
  for (int64_t t = 0; t < T; ++t) pos.data<int64_t>()[t] = t;
  table.ensure(T);
  const int reps = 20;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) rope_apply(table, x, x, pos, QkvLayout::BSHD, RopeDirection::Forward, ctx);
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
  std::printf("\n\n4. Rotating a [%lld, %lld, %lld, %lld] query tensor in place: %.3f ms (%.1f GB/s read+write)\n",
              static_cast<long long>(B), static_cast<long long>(T), static_cast<long long>(H),
              static_cast<long long>(d), sec * 1e3, 2.0 * static_cast<double>(x.nbytes()) / sec / 1e9);
}

}  // namespace

void register_demo(CLI::App& app) {
  auto opt = std::make_shared<DemoOptions>();
  CLI::App* cmd = app.add_subcommand("demo", "Show RoPE's properties on an embedded default");
  cmd->add_option("--head-dim", opt->head_dim, "head dimension")->capture_default_str();
  cmd->add_option("--threads,-t", opt->threads, "threads")->capture_default_str();
  cmd->add_option("--isa", opt->isa, "auto, scalar, avx2 or avx512")->capture_default_str();
  cmd->callback([opt] { run_demo(*opt); });
}

}  // namespace roformer::cli
