// The products on bf16 weights in interleaved groups of rows (bf16 emulated
// on CPUs without bf16 dot products): the packing against the layout's
// formula, the plain loops against sums in double precision and their fixed
// lane order, the AVX2 loops against the plain ones bit for bit at every row
// count, depths around a step, with and without a bias, and only the
// asked-for outputs written; the widening back to rows, every bit pattern.
#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/bf16_rows.h"
#include "roformer/dtype.h"
#include "roformer/error.h"

namespace roformer::kernels {
namespace {

struct Operands {
  std::vector<float> x, bias, weight;  // weight (out, in) fp32
  HugePageVector<uint16_t> w;          // packed
};

Operands random_operands(int64_t rows, int64_t out, int64_t in, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Operands o;
  o.x.resize(static_cast<std::size_t>(rows * in));
  o.weight.resize(static_cast<std::size_t>(out * in));
  o.bias.resize(static_cast<std::size_t>(out));
  for (auto& v : o.x) v = normal(gen);
  for (auto& v : o.weight) v = normal(gen);
  for (auto& v : o.bias) v = normal(gen);
  o.w = pack_bf16_rows(o.weight.data(), out, in);
  return o;
}

float rounded(float v) { return bf16_to_f32(f32_to_bf16(v)); }

TEST(Bf16Rows, PackingFollowsTheLayoutWithZeroPadding) {
  const int64_t out = 11, in = 13, padded_in = 16;
  ASSERT_EQ(bf16_rows_padded_in(in), padded_in);
  ASSERT_EQ(bf16_rows_padded_in(16), 16);
  std::vector<float> weight(static_cast<std::size_t>(out * in));
  for (std::size_t i = 0; i < weight.size(); ++i) weight[i] = 1.0f + static_cast<float>(i) / 256.0f;
  const HugePageVector<uint16_t> packed = pack_bf16_rows(weight.data(), out, in);
  ASSERT_EQ(packed.size(), static_cast<std::size_t>(2 * 8 * padded_in));  // two groups of eight rows
  std::vector<bool> seen(packed.size(), false);
  for (int64_t o = 0; o < out; ++o)
    for (int64_t k = 0; k < in; ++k) {
      const int64_t at = (o / 8) * 8 * padded_in + (k / 8) * 64 + (o % 8) * 8 + k % 8;
      ASSERT_EQ(packed[static_cast<std::size_t>(at)], f32_to_bf16(weight[o * in + k]).bits) << o << "," << k;
      seen[static_cast<std::size_t>(at)] = true;
    }
  for (std::size_t i = 0; i < packed.size(); ++i) {
    if (!seen[i]) {
      ASSERT_EQ(packed[i], 0) << i;
    }
  }
  // Rounded to nearest even: 1 + half an ulp goes down, the odd one up.
  const float halfway[2] = {1.0f + std::ldexp(1.0f, -8), bf16_to_f32(bf16{0x3f81}) + std::ldexp(1.0f, -8)};
  const HugePageVector<uint16_t> ties = pack_bf16_rows(halfway, 1, 2);
  EXPECT_EQ(ties[0], 0x3f80);
  EXPECT_EQ(ties[1], 0x3f82);
}

TEST(Bf16Rows, PlainLoopsSumInTheStatedOrder) {
  const int64_t rows = 2, out = 3, in = 29;
  const Operands o = random_operands(rows, out, in, 7);
  std::vector<float> y(static_cast<std::size_t>(rows * out));
  bf16_rows_product_ref(o.x.data(), rows, in, o.w.data(), out, o.bias.data(), y.data(), 0, out);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t n = 0; n < out; ++n) {
      double exact = o.bias[n], magnitude = std::abs(o.bias[n]);
      float lane[8] = {};
      for (int64_t k = 0; k < in; ++k) {
        const float w = rounded(o.weight[n * in + k]), x = o.x[r * in + k];
        exact += static_cast<double>(x) * w;
        magnitude += std::abs(static_cast<double>(x) * w);
        lane[k % 8] = std::fma(x, w, lane[k % 8]);
      }
      // Close to the exact sum, at a few fp32 roundings of its terms' size...
      EXPECT_NEAR(y[r * out + n], exact, magnitude * 8 * std::numeric_limits<float>::epsilon()) << r << "," << n;
      // ...and exactly the lane order the header states.
      const float sum = ((lane[0] + lane[4]) + (lane[2] + lane[6])) + ((lane[1] + lane[5]) + (lane[3] + lane[7]));
      EXPECT_EQ(y[r * out + n], sum + o.bias[n]) << r << "," << n;
    }
}

TEST(Bf16Rows, Avx2LoopEqualsPlainLoopsBitForBit) {
  if (!isa_supported(Isa::Avx2)) GTEST_SKIP() << "this CPU lacks AVX2 and FMA";
  EXPECT_EQ(bf16_rows_kernels(Isa::Scalar).product, &bf16_rows_product_ref);
  EXPECT_EQ(bf16_rows_kernels(Isa::Avx2).product, &bf16_rows_product_avx2);
  const int64_t out = 70;  // eight groups and a part
  const float sentinel = std::numeric_limits<float>::quiet_NaN();
  for (int64_t in : {int64_t{1}, int64_t{7}, int64_t{8}, int64_t{9}, int64_t{100}, int64_t{768}, int64_t{3071}})
    for (int64_t rows : {int64_t{1}, int64_t{2}, int64_t{3}, int64_t{4}, int64_t{5}, int64_t{9}})
      for (bool with_bias : {false, true}) {
        const Operands o = random_operands(rows, out, in, static_cast<uint32_t>(in * 10 + rows));
        const float* bias = with_bias ? o.bias.data() : nullptr;
        std::vector<float> want(static_cast<std::size_t>(rows * out)), got(want.size(), sentinel);
        bf16_rows_product_ref(o.x.data(), rows, in, o.w.data(), out, bias, want.data(), 0, out);
        // Two ranges of outputs, as two tasks would take them (the first
        // ending inside a group).
        bf16_rows_product_avx2(o.x.data(), rows, in, o.w.data(), out, bias, got.data(), 0, 35);
        bf16_rows_product_avx2(o.x.data(), rows, in, o.w.data(), out, bias, got.data(), 40, out);
        bf16_rows_product_avx2(o.x.data(), rows, in, o.w.data(), out, bias, got.data(), 32, 40);
        ASSERT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float)))
            << "in " << in << " rows " << rows << " bias " << with_bias;
        // One range alone leaves the other outputs untouched.
        std::vector<float> part(want.size(), sentinel);
        bf16_rows_product_avx2(o.x.data(), rows, in, o.w.data(), out, bias, part.data(), 16, 29);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t n = 0; n < out; ++n) {
            if (n >= 16 && n < 29) {
              ASSERT_EQ(part[r * out + n], want[r * out + n]) << r << "," << n;
            } else {
              ASSERT_TRUE(std::isnan(part[r * out + n])) << r << "," << n;
            }
          }
      }
}

TEST(Bf16Rows, WideningGivesTheRoundedRowsBack) {
  for (int64_t in : {int64_t{1}, int64_t{8}, int64_t{13}, int64_t{768}}) {
    const int64_t out = 21;
    const Operands o = random_operands(1, out, in, static_cast<uint32_t>(in));
    std::vector<float> plain(static_cast<std::size_t>(out * in), -1.0f);
    widen_bf16_rows_ref(o.w.data(), in, 0, out, plain.data());
    for (int64_t i = 0; i < out * in; ++i) ASSERT_EQ(plain[i], rounded(o.weight[i])) << in << ": " << i;
    // Rows [8, 19): a range starting at a group, ending inside one.
    std::vector<float> part(static_cast<std::size_t>(11 * in), -1.0f);
    widen_bf16_rows_ref(o.w.data(), in, 8, 19, part.data());
    ASSERT_TRUE(std::equal(part.begin(), part.end(), plain.begin() + 8 * in)) << in;
    if (!isa_supported(Isa::Avx2)) continue;
    std::vector<float> vec(plain.size(), -1.0f), vec_part(part.size(), -1.0f);
    widen_bf16_rows_avx2(o.w.data(), in, 0, out, vec.data());
    widen_bf16_rows_avx2(o.w.data(), in, 8, 19, vec_part.data());
    ASSERT_EQ(vec, plain) << in;
    ASSERT_EQ(vec_part, part) << in;
  }
}

TEST(Bf16Rows, WideningKeepsEveryBitPattern) {
  // Every pattern (NaNs, infinities, denormals, both zeros) as a weight
  // value: 4,096 rows of 16, packed by hand (two steps of a group each).
  const int64_t out = 4096, in = 16;
  std::vector<uint16_t> packed(static_cast<std::size_t>(out * in));
  for (int64_t o = 0; o < out; ++o)
    for (int64_t k = 0; k < in; ++k)
      packed[static_cast<std::size_t>((o / 8) * 8 * in + (k / 8) * 64 + (o % 8) * 8 + k % 8)] =
          static_cast<uint16_t>(o * in + k);
  std::vector<float> plain(packed.size());
  widen_bf16_rows_ref(packed.data(), in, 0, out, plain.data());
  for (std::size_t i = 0; i < plain.size(); ++i) {
    uint32_t u = 0;
    std::memcpy(&u, &plain[i], sizeof(u));
    ASSERT_EQ(u, static_cast<uint32_t>(i) << 16) << i;
  }
  EXPECT_EQ(plain[0x3f80], 1.0f);
  EXPECT_EQ(plain[0xc000], -2.0f);
  if (!isa_supported(Isa::Avx2)) GTEST_SKIP() << "this CPU lacks AVX2 and FMA";
  EXPECT_EQ(bf16_rows_kernels(Isa::Avx2).widen, &widen_bf16_rows_avx2);
  std::vector<float> vec(plain.size());
  widen_bf16_rows_avx2(packed.data(), in, 0, out, vec.data());
  ASSERT_EQ(0, std::memcmp(vec.data(), plain.data(), vec.size() * sizeof(float)));
}

TEST(Bf16Rows, AnInstructionSetTheCpuLacksIsAnError) {
  if (isa_supported(Isa::Avx512)) GTEST_SKIP() << "this CPU has every instruction set";
  EXPECT_THROW(bf16_rows_kernels(Isa::Avx512), Error);
}

}  // namespace
}  // namespace roformer::kernels
