#include "kernels/gemm_bf16.h"

#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/bf16_convert.h"
#include "kernels/gemm.h"
#include "roformer/dtype.h"
#include "roformer/error.h"

namespace roformer::kernels {
namespace {

using dnnl::memory;
using Dt = memory::data_type;

// A matrix as stored, rows x cols with row stride ld, into a dense bf16 copy
// (the same orientation: transposes are the product's strides, not a copy's).
void round_rows(const float* x, int64_t rows, int64_t cols, int64_t ld, std::vector<uint16_t>& out,
                const ExecContext& ctx) {
  out.resize(static_cast<std::size_t>(rows * cols));
  if (ld == cols) {
    convert_to_bf16(x, rows * cols, out.data(), ctx);
    return;
  }
  const Bf16ConvertKernel convert = bf16_convert_kernel(ctx.isa);
  const bool parallel = ctx.threads > 1 && rows * cols >= (int64_t{1} << 16);
#pragma omp parallel for schedule(static) num_threads(ctx.threads) if (parallel)
  for (int64_t r = 0; r < rows; ++r) convert(x + r * ld, cols, out.data() + r * cols);
}

// The same rounding, widened back to fp32, for the fallback.
void round_rows_f32(const float* x, int64_t rows, int64_t cols, int64_t ld, std::vector<float>& out) {
  out.resize(static_cast<std::size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[static_cast<std::size_t>(r * cols + c)] = bf16_to_f32(f32_to_bf16(x[r * ld + c]));
}

// One oneDNN matmul per (shape, transposes, ldc, alpha, beta, threads):
// creating a primitive costs far more than running a small one, and training
// repeats a handful of shapes. Bounded, in case sequence lengths vary batch
// to batch. oneDNN fixes a primitive's team size when it is created, so the
// team is part of the key and set before creating one.
class ProductCache {
 public:
  using Key = std::tuple<int64_t, int64_t, int64_t, bool, bool, int64_t, uint32_t, uint32_t, int>;
  struct Product {
    dnnl::matmul matmul;
    memory::desc a, b, c;
  };

  std::shared_ptr<const Product> get(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, float beta,
                                     int64_t ldc, int threads) {
    uint32_t alpha_bits = 0, beta_bits = 0;
    std::memcpy(&alpha_bits, &alpha, sizeof alpha);
    std::memcpy(&beta_bits, &beta, sizeof beta);
    const Key key{M, N, K, ta, tb, ldc, alpha_bits, beta_bits, threads};
    use_library_threads(threads);
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = products_.find(key);
    if (found != products_.end()) return found->second;
    if (products_.size() >= kMaxProducts) products_.clear();
    auto p = std::make_shared<Product>();
    // Dense bf16 copies of A and B as stored; op() is read through strides.
    p->a = memory::desc({M, K}, Dt::bf16, ta ? memory::dims{1, M} : memory::dims{K, 1});
    p->b = memory::desc({K, N}, Dt::bf16, tb ? memory::dims{1, K} : memory::dims{N, 1});
    p->c = memory::desc({M, N}, Dt::f32, memory::dims{ldc, 1});
    dnnl::primitive_attr attr;
    if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
    if (beta != 0.0f) {
      dnnl::post_ops ops;
      ops.append_sum(beta);
      attr.set_post_ops(ops);
    }
    p->matmul = dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(p->a, p->b, p->c), attr, engine_));
    products_.emplace(key, p);
    return p;
  }

  const dnnl::engine& engine() const { return engine_; }

 private:
  static constexpr std::size_t kMaxProducts = 256;
  dnnl::engine engine_{dnnl::engine::kind::cpu, 0};
  std::mutex mutex_;
  std::map<Key, std::shared_ptr<const Product>> products_;
};

ProductCache& product_cache() {
  static ProductCache cache;
  return cache;
}

}  // namespace

bool gemm_bf16_pays_off(int64_t M, int64_t N, int64_t K) {
  constexpr int64_t kMinReuse = 128, kLarge = int64_t{1} << 20;
  return !(M < kMinReuse && K * N >= kLarge) && !(N < kMinReuse && M * K >= kLarge);
}

bool gemm_bf16_native(const ExecContext& ctx) { return ctx.isa == Isa::Avx512 && cpu_has_avx512_bf16(); }

void RoundedOperands::clear() {
  for (auto& [address, copy] : copies_) copy.live = false;
}

void RoundedOperands::round(const float* x, int64_t rows, int64_t cols, const ExecContext& ctx) {
  ROFORMER_CHECK(x != nullptr && rows > 0 && cols > 0, "rounded operands: empty matrix");
  Copy& c = copies_[x];
  c.rows = rows;
  c.cols = cols;
  c.live = true;
  round_rows(x, rows, cols, cols, c.bits, ctx);
}

const uint16_t* RoundedOperands::find(const float* x, int64_t rows, int64_t cols, int64_t ld) const {
  const auto it = copies_.find(x);
  if (it != copies_.end() && it->second.live && it->second.rows == rows && it->second.cols == cols && ld == cols)
    return it->second.bits.data();
  return outer_ != nullptr ? outer_->find(x, rows, cols, ld) : nullptr;
}

ExecContext rounding_once(const float* x, int64_t rows, int64_t cols, RoundedOperands& scratch,
                          const ExecContext& ctx) {
  if (!ctx.bf16_products || !gemm_bf16_native(ctx) || rows == 0 || cols == 0) return ctx;
  ROFORMER_CHECK(&scratch != ctx.rounded, "rounded operands: a set cannot search itself");
  scratch.clear();
  scratch.set_outer(ctx.rounded);
  scratch.round(x, rows, cols, ctx);
  ExecContext run = ctx;
  run.rounded = &scratch;
  return run;
}

void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const ExecContext& ctx) {
  ROFORMER_CHECK(M >= 0 && N >= 0 && K >= 0, "gemm: negative size");
  ExecContext fp32 = ctx;
  fp32.bf16_products = false;
  if (M == 0 || N == 0 || K == 0) {  // nothing to round: C = beta * C
    gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, fp32);
    return;
  }
  // A is stored (M, K), or (K, M) when transposed; B (K, N), or (N, K).
  const int64_t a_rows = trans_a ? K : M, a_cols = trans_a ? M : K;
  const int64_t b_rows = trans_b ? N : K, b_cols = trans_b ? K : N;
  ROFORMER_CHECK(lda >= a_cols && ldb >= b_cols && ldc >= N, "gemm: a leading dimension is shorter than its row");
  if (!gemm_bf16_native(ctx)) {
    thread_local std::vector<float> a32, b32;
    round_rows_f32(A, a_rows, a_cols, lda, a32);
    round_rows_f32(B, b_rows, b_cols, ldb, b32);
    gemm(trans_a, trans_b, M, N, K, alpha, a32.data(), a_cols, b32.data(), b_cols, beta, C, ldc, fp32);
    return;
  }
  // Registered copies first (a step's weights, rounded once); the rest now.
  thread_local std::vector<uint16_t> a16, b16;
  const uint16_t* a_bits = ctx.rounded != nullptr ? ctx.rounded->find(A, a_rows, a_cols, lda) : nullptr;
  const uint16_t* b_bits = ctx.rounded != nullptr ? ctx.rounded->find(B, b_rows, b_cols, ldb) : nullptr;
  if (a_bits == nullptr) {
    round_rows(A, a_rows, a_cols, lda, a16, ctx);
    a_bits = a16.data();
  }
  if (b_bits == nullptr) {
    round_rows(B, b_rows, b_cols, ldb, b16, ctx);
    b_bits = b16.data();
  }
  try {
    ProductCache& cache = product_cache();
    const auto p = cache.get(trans_a, trans_b, M, N, K, alpha, beta, ldc, ctx.threads);
    dnnl::stream stream(cache.engine());
    // oneDNN's memory objects take mutable pointers; a matmul only reads its sources.
    memory a(p->a, cache.engine(), const_cast<uint16_t*>(a_bits)), b(p->b, cache.engine(), const_cast<uint16_t*>(b_bits));
    memory c(p->c, cache.engine(), C);
    p->matmul.execute(stream, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
    stream.wait();
  } catch (const dnnl::error& e) {
    throw Error(std::string("gemm: oneDNN bf16 matmul failed: ") + e.what());
  }
}

}  // namespace roformer::kernels
