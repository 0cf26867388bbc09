// Products on bf16-rounded operands (kernels/gemm_bf16.h) against the plain
// triple loop run on the same rounded values: native (oneDNN's bf16 matmul)
// and the fallback, every transpose, padded strides, alpha and beta.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/gemm.h"
#include "kernels/gemm_bf16.h"
#include "roformer/dtype.h"
#include "roformer/error.h"
#include "support/test_support.h"

namespace roformer::kernels {
namespace {

using roformer::testing::max_abs_diff;
using roformer::testing::random_floats;

std::vector<float> rounded(std::vector<float> v) {
  for (float& x : v) x = bf16_to_f32(f32_to_bf16(x));
  return v;
}

// The contexts to run: the fallback always, native where this CPU has it.
std::vector<ExecContext> contexts() {
  std::vector<ExecContext> out{ExecContext{1, Isa::Scalar, GemmBackend::OpenBlas, true}};
  if (isa_supported(Isa::Avx2)) out.push_back(ExecContext{2, Isa::Avx2, GemmBackend::OneDnn, true});
  for (int threads : {1, 2}) {
    const ExecContext native{threads, Isa::Avx512, GemmBackend::OneDnn, true};
    if (isa_supported(Isa::Avx512) && gemm_bf16_native(native)) out.push_back(native);
  }
  return out;
}

std::string describe(const ExecContext& ctx) {
  return std::string(isa_name(ctx.isa)) + (gemm_bf16_native(ctx) ? " native" : " fallback") + ", " +
         std::to_string(ctx.threads) + " thread(s)";
}

TEST(GemmBf16, EqualsTheProductOfRoundedOperands) {
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (int64_t K : {int64_t{1}, int64_t{7}, int64_t{64}, int64_t{301}}) {
        const int64_t M = 37, N = 70, pad = 3;
        const int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
        const auto A = random_floats(static_cast<std::size_t>((ta ? K : M) * lda), 11, -2.0f, 2.0f);
        const auto B = random_floats(static_cast<std::size_t>((tb ? N : K) * ldb), 12, -2.0f, 2.0f);
        const auto C0 = random_floats(static_cast<std::size_t>(M * ldc), 13);
        for (float alpha : {1.0f, 0.5f})
          for (float beta : {0.0f, 1.0f, -0.25f}) {
            auto ref = C0;
            gemm_ref(ta, tb, M, N, K, alpha, rounded(A).data(), lda, rounded(B).data(), ldb, beta, ref.data(), ldc);
            for (const ExecContext& ctx : contexts()) {
              auto got = C0;
              if (beta == 0.0f)  // beta = 0 must not read C
                for (int64_t i = 0; i < M; ++i)
                  for (int64_t j = 0; j < N; ++j) got[i * ldc + j] = std::numeric_limits<float>::quiet_NaN();
              gemm_bf16(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, got.data(), ldc, ctx);
              // The same rounded values summed in fp32 in another order than
              // the reference's double: |terms| <= 4, K <= 301.
              EXPECT_LE(max_abs_diff(got, ref), 1e-4) << "ta=" << ta << " tb=" << tb << " K=" << K << " alpha=" << alpha
                                                      << " beta=" << beta << ", " << describe(ctx);
              for (int64_t i = 0; i < M; ++i)
                for (int64_t j = N; j < ldc; ++j) ASSERT_EQ(got[i * ldc + j], C0[i * ldc + j]) << "padding written";
            }
          }
      }
}

// The rounding is really there: operands bf16 cannot hold (1 + 2^-10 rounds
// to 1) give the rounded product, not the fp32 one.
TEST(GemmBf16, OperandsAreRoundedToNearestEven) {
  const int64_t M = 4, N = 20, K = 16;
  const float a = 1.0f + std::ldexp(1.0f, -10), b = 3.0f + std::ldexp(1.0f, -6);  // b rounds to 3 + 2^-6 (kept)
  const std::vector<float> A(static_cast<std::size_t>(M * K), a), B(static_cast<std::size_t>(K * N), b);
  for (const ExecContext& ctx : contexts()) {
    std::vector<float> C(static_cast<std::size_t>(M * N), 0.0f);
    gemm_bf16(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, C.data(), N, ctx);
    for (float c : C) EXPECT_EQ(c, static_cast<float>(K) * bf16_to_f32(f32_to_bf16(b))) << describe(ctx);
  }
}

// ExecContext::bf16_products sends kernels::gemm (and so every Linear and
// head of training) through it; off, the same call stays fp32.
TEST(GemmBf16, ContextFlagRoutesGemm) {
  const int64_t M = 33, N = 65, K = 129;
  const auto A = random_floats(static_cast<std::size_t>(M * K), 21);
  const auto B = random_floats(static_cast<std::size_t>(N * K), 22);
  for (ExecContext ctx : contexts()) {
    std::vector<float> direct(static_cast<std::size_t>(M * N)), routed(direct.size()), fp32(direct.size());
    gemm_bf16(false, true, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, direct.data(), N, ctx);
    gemm(false, true, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, routed.data(), N, ctx);
    EXPECT_EQ(routed, direct) << describe(ctx);
    ctx.bf16_products = false;
    gemm(false, true, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, fp32.data(), N, ctx);
    // Rounding both operands moves a 129-term sum of products in [-1, 1] by
    // about 1e-2; fp32 alone by about 1e-6.
    EXPECT_GT(max_abs_diff(fp32, direct), 1e-4) << describe(ctx);
    EXPECT_LT(max_abs_diff(fp32, direct), 0.1) << describe(ctx);
  }
}

// A large operand reused by few rows stays fp32 (gemm_bf16_pays_off): the
// routed product is then exactly the fp32 one.
TEST(GemmBf16, LargeOperandWithFewRowsStaysFp32) {
  EXPECT_FALSE(gemm_bf16_pays_off(77, 50000, 768));   // MLM decoder: few masked rows, the tied embedding
  EXPECT_FALSE(gemm_bf16_pays_off(50000, 77, 768));   // the same, transposed
  EXPECT_TRUE(gemm_bf16_pays_off(50000, 768, 77));    // its weight gradient: both operands small or reused
  EXPECT_TRUE(gemm_bf16_pays_off(512, 768, 3072));    // an encoder product
  EXPECT_TRUE(gemm_bf16_pays_off(99, 32, 64));        // small: rounding is cheap whatever the reuse
  const int64_t M = 8, N = 1024, K = 1024;
  const auto A = random_floats(static_cast<std::size_t>(M * K), 31);
  const auto B = random_floats(static_cast<std::size_t>(N * K), 32);
  for (ExecContext ctx : contexts()) {
    std::vector<float> routed(static_cast<std::size_t>(M * N)), fp32(routed.size());
    gemm(false, true, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, routed.data(), N, ctx);
    ctx.bf16_products = false;
    gemm(false, true, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, fp32.data(), N, ctx);
    EXPECT_EQ(routed, fp32) << describe(ctx);
  }
}

// Registered copies (a training step's weights, rounded once) are found by
// address, shape and stride, and read instead of the operand: changing the
// operand afterwards does not change the product until it is rounded again.
TEST(GemmBf16, RegisteredCopiesStandInForTheirOperands) {
  const int64_t M = 40, N = 48, K = 64;
  const auto A = random_floats(static_cast<std::size_t>(M * K), 41);
  auto W = random_floats(static_cast<std::size_t>(N * K), 42);  // (N, K): the Linear layout
  const auto W0 = W;
  const ExecContext plain{1, best_isa(), default_gemm_backend(), true};
  RoundedOperands rounded;
  rounded.round(W.data(), N, K, plain);
  const uint16_t* copy = rounded.find(W.data(), N, K, K);
  ASSERT_NE(copy, nullptr);
  for (std::size_t i = 0; i < W.size(); ++i) ASSERT_EQ(copy[i], f32_to_bf16(W[i]).bits);
  EXPECT_EQ(rounded.find(W.data(), K, N, N), nullptr);      // another shape
  EXPECT_EQ(rounded.find(W.data(), N - 1, K, K), nullptr);  // another row count
  EXPECT_EQ(rounded.find(W.data(), N, K, K + 1), nullptr);  // not dense
  EXPECT_EQ(rounded.find(A.data(), M, K, K), nullptr);      // never registered

  for (float& w : W) w = -w;  // the operand changes, the copy does not
  for (ExecContext ctx : contexts()) {
    ctx.rounded = &rounded;
    std::vector<float> forward(static_cast<std::size_t>(M * N)), before(forward.size()), after(forward.size());
    std::vector<float> back(static_cast<std::size_t>(M * K)), back_before(back.size());
    const ExecContext fresh{ctx.threads, ctx.isa, ctx.gemm, true};  // no registered copies
    gemm_bf16(false, true, M, N, K, 1.0f, A.data(), K, W.data(), K, 0.0f, forward.data(), N, ctx);
    gemm(false, true, M, N, K, 1.0f, A.data(), K, W0.data(), K, 0.0f, before.data(), N, fresh);
    gemm(false, true, M, N, K, 1.0f, A.data(), K, W.data(), K, 0.0f, after.data(), N, fresh);
    // The input gradient's product reads the same copy the other way round: (M, N) x (N, K).
    gemm_bf16(false, false, M, K, N, 1.0f, before.data(), N, W.data(), K, 0.0f, back.data(), K, ctx);
    gemm(false, false, M, K, N, 1.0f, before.data(), N, W0.data(), K, 0.0f, back_before.data(), K, fresh);
    if (gemm_bf16_native(ctx)) {
      EXPECT_EQ(forward, before) << describe(ctx);
      EXPECT_EQ(back, back_before) << describe(ctx);
    } else {  // the fallback rounds every operand afresh
      EXPECT_EQ(forward, after) << describe(ctx);
    }
  }
  rounded.clear();
  EXPECT_EQ(rounded.find(W.data(), N, K, K), nullptr);
  rounded.round(W.data(), N, K, plain);
  EXPECT_EQ(rounded.find(W.data(), N, K, K)[0], f32_to_bf16(W[0]).bits);
}

// rounding_once: one call's operand rounded into a scratch set that searches
// the step's set behind it; a context without native products is unchanged.
TEST(GemmBf16, RoundingOnceAddsACopyInFrontOfTheOuterSet) {
  const int64_t M = 40, N = 48, K = 64;
  auto A = random_floats(static_cast<std::size_t>(M * K), 51);
  const auto A0 = A;
  const auto W = random_floats(static_cast<std::size_t>(N * K), 52);
  for (ExecContext ctx : contexts()) {
    RoundedOperands outer, scratch;
    outer.round(W.data(), N, K, ctx);
    ctx.rounded = &outer;
    A = A0;
    const ExecContext run = rounding_once(A.data(), M, K, scratch, ctx);
    if (!gemm_bf16_native(ctx)) {
      EXPECT_EQ(run.rounded, &outer) << describe(ctx);
      EXPECT_EQ(scratch.find(A.data(), M, K, K), nullptr) << describe(ctx);
      continue;
    }
    ASSERT_EQ(run.rounded, &scratch) << describe(ctx);
    const uint16_t* a_copy = run.rounded->find(A.data(), M, K, K);
    ASSERT_NE(a_copy, nullptr);
    EXPECT_EQ(a_copy[7], f32_to_bf16(A0[7]).bits);
    EXPECT_EQ(run.rounded->find(W.data(), N, K, K), outer.find(W.data(), N, K, K));  // through the outer set
    EXPECT_EQ(outer.find(A.data(), M, K, K), nullptr);  // the outer set is not touched
    // The product reads the copy made before A changed.
    for (float& a : A) a *= 3.0f;
    std::vector<float> got(static_cast<std::size_t>(M * N)), want(got.size());
    gemm(false, true, M, N, K, 1.0f, A.data(), K, W.data(), K, 0.0f, got.data(), N, run);
    gemm(false, true, M, N, K, 1.0f, A0.data(), K, W.data(), K, 0.0f, want.data(), N, ctx);
    EXPECT_EQ(got, want) << describe(ctx);
    // A second call starts afresh: the old copy is retired.
    std::vector<float> other(A.size(), 1.0f);
    const ExecContext next = rounding_once(other.data(), M, K, scratch, ctx);
    EXPECT_EQ(next.rounded->find(A.data(), M, K, K), nullptr);
    EXPECT_THROW(rounding_once(A.data(), M, K, outer, ctx), Error);  // a set cannot search itself
  }
}

TEST(GemmBf16, EmptyProductsAndBadArguments) {
  for (const ExecContext& ctx : contexts()) {
    std::vector<float> C{1.0f, 2.0f, 3.0f, 4.0f};
    gemm_bf16(false, false, 2, 2, 0, 1.0f, nullptr, 1, nullptr, 2, 0.5f, C.data(), 2, ctx);  // C = beta * C
    EXPECT_EQ(C, (std::vector<float>{0.5f, 1.0f, 1.5f, 2.0f})) << describe(ctx);
    gemm_bf16(false, false, 0, 2, 3, 1.0f, nullptr, 3, nullptr, 2, 0.0f, C.data(), 2, ctx);  // no rows: nothing
    EXPECT_EQ(C, (std::vector<float>{0.5f, 1.0f, 1.5f, 2.0f}));
    EXPECT_THROW(gemm_bf16(false, false, -1, 2, 2, 1.0f, C.data(), 2, C.data(), 2, 0.0f, C.data(), 2, ctx), Error);
    EXPECT_THROW(gemm_bf16(false, false, 2, 2, 2, 1.0f, C.data(), 1, C.data(), 2, 0.0f, C.data(), 2, ctx), Error);
  }
  EXPECT_FALSE(parse_product_precision("fp32"));
  EXPECT_TRUE(parse_product_precision("bf16"));
  EXPECT_THROW(parse_product_precision("fp16"), Error);
  EXPECT_THROW(parse_product_precision(""), Error);
}

}  // namespace
}  // namespace roformer::kernels
