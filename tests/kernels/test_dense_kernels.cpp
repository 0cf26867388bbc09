// GEMM (BLAS path vs the scalar triple loop) and the row-wise kernels
// against their definitions evaluated in double.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "roformer/error.h"
#include "support/test_support.h"

namespace roformer::kernels {
namespace {

using roformer::testing::max_abs_diff;
using roformer::testing::random_floats;

// M = 1 is a decoding step's row (OpenBLAS: a matrix-vector product).
TEST(Gemm, BlasEqualsReferenceForAllTransposesAndStrides) {
  for (int64_t M : {int64_t{37}, int64_t{1}})
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      const int64_t N = 19, K = 53, pad = 3;
      const int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
      auto A = random_floats(static_cast<std::size_t>((ta ? K : M) * lda), 1);
      auto B = random_floats(static_cast<std::size_t>((tb ? N : K) * ldb), 2);
      auto C0 = random_floats(static_cast<std::size_t>(M * ldc), 3);
      for (GemmBackend backend : {GemmBackend::OpenBlas, GemmBackend::OneDnn})
        for (int threads : {1, 2}) {
          auto fast = C0, ref = C0;
          gemm(ta, tb, M, N, K, 0.5f, A.data(), lda, B.data(), ldb, 0.25f, fast.data(), ldc,
               ExecContext{threads, Isa::Avx2, backend});
          gemm_ref(ta, tb, M, N, K, 0.5f, A.data(), lda, B.data(), ldb, 0.25f, ref.data(), ldc);
          EXPECT_LE(max_abs_diff(fast, ref), 2e-5) << "M=" << M << " ta=" << ta << " tb=" << tb
                                                   << " threads=" << threads << " gemm=" << gemm_backend_name(backend);
          // Padding columns are never written.
          for (int64_t i = 0; i < M; ++i)
            for (int64_t j = N; j < ldc; ++j) EXPECT_EQ(fast[i * ldc + j], C0[i * ldc + j]);
          // beta = 0 never reads C: NaN there does not reach the result.
          std::vector<float> nan_c(C0.size(), std::nanf("")), zero_ref(C0.size(), 0.0f);
          gemm(ta, tb, M, N, K, 0.5f, A.data(), lda, B.data(), ldb, 0.0f, nan_c.data(), ldc,
               ExecContext{threads, Isa::Avx2, backend});
          gemm_ref(ta, tb, M, N, K, 0.5f, A.data(), lda, B.data(), ldb, 0.0f, zero_ref.data(), ldc);
          for (int64_t i = 0; i < M; ++i)
            for (int64_t j = 0; j < N; ++j)
              ASSERT_NEAR(nan_c[i * ldc + j], zero_ref[i * ldc + j], 2e-5) << "M=" << M << " beta=0";
        }
    }
  }
}

TEST(Gemm, BackendsEqualReferenceOnModelSizedProducts) {
  // Sizes past the libraries' blocking (several panels per thread), a
  // Linear-style transposed B, and K = 0 (C = beta * C only).
  for (int64_t K : {int64_t{0}, int64_t{300}}) {
    const int64_t M = 130, N = 257;
    auto A = random_floats(static_cast<std::size_t>(M * std::max<int64_t>(K, 1)), 4);
    auto B = random_floats(static_cast<std::size_t>(N * std::max<int64_t>(K, 1)), 5);
    auto C0 = random_floats(static_cast<std::size_t>(M * N), 6);
    auto ref = C0;
    gemm_ref(false, true, M, N, K, 1.0f, A.data(), std::max<int64_t>(K, 1), B.data(), std::max<int64_t>(K, 1), 0.5f,
             ref.data(), N);
    for (GemmBackend backend : {GemmBackend::OpenBlas, GemmBackend::OneDnn})
      for (int threads : {1, 2}) {
        auto got = C0;
        gemm(false, true, M, N, K, 1.0f, A.data(), std::max<int64_t>(K, 1), B.data(), std::max<int64_t>(K, 1), 0.5f,
             got.data(), N, ExecContext{threads, Isa::Avx2, backend});
        // |terms| <= 1, K = 300: fp32 rounding of a 300-term sum stays far below 1e-4.
        EXPECT_LE(max_abs_diff(got, ref), 1e-4) << "K=" << K << " gemm=" << gemm_backend_name(backend);
      }
  }
  EXPECT_EQ(parse_gemm_backend("onednn"), GemmBackend::OneDnn);
  EXPECT_EQ(parse_gemm_backend("openblas"), GemmBackend::OpenBlas);
  EXPECT_EQ(parse_gemm_backend("auto"), default_gemm_backend());
  EXPECT_THROW(parse_gemm_backend("mkl"), Error);
}

TEST(Gemm, BiasVariantEqualsProductPlusBias) {
  // Large enough (M x N >= 2^16) that the bias rows are written by several threads.
  const int64_t M = 300, N = 257, K = 31, ldc = N + 2;
  auto A = random_floats(static_cast<std::size_t>(M * K), 6), B = random_floats(static_cast<std::size_t>(N * K), 7);
  auto bias = random_floats(static_cast<std::size_t>(N), 8);
  for (int threads : {1, 2}) {
    std::vector<float> got(static_cast<std::size_t>(M * ldc), 42.0f), want(got.size(), 0.0f);
    gemm_bias(false, true, M, N, K, A.data(), K, B.data(), K, bias.data(), got.data(), ldc,
              ExecContext{threads, Isa::Avx2});
    gemm_ref(false, true, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, want.data(), ldc);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < ldc; ++j) {
        if (j < N)
          ASSERT_NEAR(got[i * ldc + j], want[i * ldc + j] + bias[j], 2e-5) << i << "," << j;
        else
          ASSERT_EQ(got[i * ldc + j], 42.0f) << "padding column written";
      }
    // Without a bias it is the plain product, whatever C held before.
    std::vector<float> plain(got.size(), 42.0f);
    gemm_bias(false, true, M, N, K, A.data(), K, B.data(), K, nullptr, plain.data(), ldc, ExecContext{threads, Isa::Avx2});
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) ASSERT_NEAR(plain[i * ldc + j], want[i * ldc + j], 2e-5);
  }
}

TEST(Gemm, ScalarOverrideUsesReference) {
  auto A = random_floats(12, 4), B = random_floats(12, 5);
  std::vector<float> fast(9, 0.0f), ref(9, 0.0f);
  gemm(false, true, 3, 3, 4, 1.0f, A.data(), 4, B.data(), 4, 0.0f, fast.data(), 3, ExecContext{1, Isa::Scalar});
  gemm_ref(false, true, 3, 3, 4, 1.0f, A.data(), 4, B.data(), 4, 0.0f, ref.data(), 3);
  EXPECT_EQ(fast, ref);
}

TEST(Activations, MatchDefinitions) {
  auto x = random_floats(4096, 6, -8.0f, 8.0f);
  for (auto act : {Activation::Gelu, Activation::GeluNew, Activation::Relu}) {
    for (int threads : {1, 2}) {
      auto y = x;
      activation_forward(act, y.data(), static_cast<int64_t>(y.size()), ExecContext{threads, best_isa()});
      for (std::size_t i = 0; i < x.size(); ++i) {
        const double v = x[i];
        double want = 0;
        if (act == Activation::Gelu) want = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
        if (act == Activation::GeluNew)
          want = 0.5 * v * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
        if (act == Activation::Relu) want = v > 0 ? v : 0;
        ASSERT_NEAR(y[i], want, 2e-6 * std::max(1.0, std::fabs(want))) << "x=" << v;
      }
    }
  }
}

TEST(LayerNorm, MatchesDoubleDefinitionEvenWithLargeOffset) {
  const int64_t rows = 7, cols = 96;
  auto x = random_floats(static_cast<std::size_t>(rows * cols), 7);
  for (auto& v : x) v += 1000.0f;  // a large common offset must not cancel the variance
  auto g = random_floats(cols, 8), b = random_floats(cols, 9);
  std::vector<float> y(x.size());
  layer_norm_forward(x.data(), y.data(), g.data(), b.data(), rows, cols, 1e-12f, ExecContext{1, best_isa()});
  for (int64_t r = 0; r < rows; ++r) {
    double mean = 0, var = 0;
    for (int64_t c = 0; c < cols; ++c) mean += x[r * cols + c];
    mean /= cols;
    for (int64_t c = 0; c < cols; ++c) var += (x[r * cols + c] - mean) * (x[r * cols + c] - mean);
    var /= cols;
    for (int64_t c = 0; c < cols; ++c) {
      const double want = (x[r * cols + c] - mean) / std::sqrt(var + 1e-12) * g[c] + b[c];
      ASSERT_NEAR(y[r * cols + c], want, 1e-4) << r << "," << c;
    }
  }
}

TEST(Softmax, RowsSumToOneAndMatchDefinition) {
  const int64_t rows = 5, cols = 33, ld = 40;
  auto x = random_floats(static_cast<std::size_t>(rows * ld), 10, -20.0f, 20.0f);
  x[3] = -3.4028235e38f;  // HF's additive mask value: must become exactly 0
  auto y = x;
  softmax_rows(y.data(), rows, cols, ld);
  for (int64_t r = 0; r < rows; ++r) {
    double mx = -1e300, sum = 0, total = 0;
    for (int64_t c = 0; c < cols; ++c) mx = std::max(mx, double(x[r * ld + c]));
    for (int64_t c = 0; c < cols; ++c) sum += std::exp(double(x[r * ld + c]) - mx);
    for (int64_t c = 0; c < cols; ++c) {
      ASSERT_NEAR(y[r * ld + c], std::exp(double(x[r * ld + c]) - mx) / sum, 1e-6);
      total += y[r * ld + c];
    }
    EXPECT_NEAR(total, 1.0, 1e-5);
    for (int64_t c = cols; c < ld; ++c) EXPECT_EQ(y[r * ld + c], x[r * ld + c]);
  }
  EXPECT_EQ(y[3], 0.0f);
}

}  // namespace
}  // namespace roformer::kernels
