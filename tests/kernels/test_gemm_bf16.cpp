// bf16 products (oneDNN, or the emulated path on CPUs without native bf16)
// against the reference on bf16-rounded inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/gemm_bf16.h"
#include "roformer/dtype.h"
#include "roformer/error.h"
#include "support/test_support.h"

namespace roformer::kernels {
namespace {

using roformer::testing::max_scaled_diff;
using roformer::testing::random_floats;

TEST(GemmBf16, WeightsAreRoundedToNearestEven) {
  const int64_t out = 37, in = 53;
  auto w = random_floats(static_cast<std::size_t>(out * in), 11);
  // Values exactly halfway between two bf16 numbers: ties go to the even one.
  w[0] = bf16_to_f32(bf16{0x3f80}) + std::ldexp(1.0f, -8);  // 1 + half an ulp -> 1
  w[1] = bf16_to_f32(bf16{0x3f81}) + std::ldexp(1.0f, -8);  // odd + half -> next even
  for (bool emulate : {false, true}) {
    const Bf16Matmul m(w.data(), out, in, emulate);
    EXPECT_EQ(m.out_features(), out);
    EXPECT_EQ(m.in_features(), in);
    EXPECT_EQ(m.emulated(), emulate || !Bf16Matmul::native()) << m.kernel_name();
    std::vector<float> back(w.size());
    m.unpack(back.data());
    for (std::size_t i = 0; i < w.size(); ++i) ASSERT_EQ(back[i], bf16_to_f32(f32_to_bf16(w[i]))) << i;
    EXPECT_EQ(back[0], 1.0f);
    EXPECT_EQ(back[1], bf16_to_f32(bf16{0x3f82}));
  }
}

TEST(GemmBf16, EqualsReferenceOnRoundedInputs) {
  // Shapes of a tiny and a real layer; rows 1 (decoding), odd and large.
  struct Case {
    int64_t out, in;
  };
  for (const Case c : {Case{5, 3}, Case{96, 64}, Case{768, 300}}) {
    auto w = random_floats(static_cast<std::size_t>(c.out * c.in), 21);
    auto bias = random_floats(static_cast<std::size_t>(c.out), 22);
    for (bool emulate : {false, true}) {
    const Bf16Matmul m(w.data(), c.out, c.in, emulate);
    for (int64_t rows : {int64_t{1}, int64_t{7}, int64_t{130}}) {
      auto x = random_floats(static_cast<std::size_t>(rows * c.in), 23);
      for (bool with_bias : {false, true}) {
        std::vector<float> want(static_cast<std::size_t>(rows * c.out));
        gemm_bf16_ref(x.data(), rows, w.data(), c.out, c.in, with_bias ? bias.data() : nullptr, want.data());
        for (int threads : {1, 2}) {
          std::vector<float> got(want.size(), -7.0f);
          m.forward(x.data(), rows, with_bias ? bias.data() : nullptr, got.data(), ExecContext{threads});
          // Same bf16 products; only the fp32 accumulation order differs
          // (|terms| <= 1, at most 300 of them).
          EXPECT_LE(max_scaled_diff(got, want), 2e-5)
              << "out=" << c.out << " in=" << c.in << " rows=" << rows << " bias=" << with_bias << " threads=" << threads
              << " " << m.kernel_name();
        }
      }
    }
    }
  }
}

TEST(GemmBf16, IsCloseToFp32AsBf16RoundingPredicts) {
  // bf16 keeps 8 significant bits: each product carries a relative error of
  // about 2^-8, and over K random-sign terms the sum's error grows like sqrt(K).
  const int64_t out = 64, in = 256, rows = 32;
  auto w = random_floats(static_cast<std::size_t>(out * in), 31);
  auto x = random_floats(static_cast<std::size_t>(rows * in), 32);
  std::vector<float> exact(static_cast<std::size_t>(rows * out)), got(exact.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double acc = 0;
      for (int64_t i = 0; i < in; ++i) acc += static_cast<double>(x[r * in + i]) * w[o * in + i];
      exact[r * out + o] = static_cast<float>(acc);
    }
  const Bf16Matmul m(w.data(), out, in);
  m.forward(x.data(), rows, nullptr, got.data(), ExecContext{1});
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(static_cast<double>(got[i]) - exact[i]));
  EXPECT_GT(worst, 1e-5);  // it really is reduced precision
  EXPECT_LT(worst, 8.0 * std::sqrt(static_cast<double>(in)) * std::ldexp(1.0, -8) / 3.0);
}

TEST(GemmBf16, BadShapesAreClearErrors) {
  const std::vector<float> w(6, 1.0f);
  EXPECT_THROW(Bf16Matmul(w.data(), 0, 6), Error);
  const Bf16Matmul m(w.data(), 2, 3);
  float y = 0;
  EXPECT_THROW(m.forward(w.data(), -1, nullptr, &y, ExecContext{1}), Error);
  m.forward(w.data(), 0, nullptr, &y, ExecContext{1});  // nothing to do
  EXPECT_EQ(y, 0.0f);
}

}  // namespace
}  // namespace roformer::kernels
