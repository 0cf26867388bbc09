// fp32 products on weights packed into column panels (kernels/f32_panels.h),
// fp32 or bf16 weights: the packing against the layout's formula (bf16:
// rounded to nearest even) and back, the plain loops against sums in double
// precision and their stated order, the AVX2 loops against the plain ones
// bit for bit at every row count around a pass (one or two rows take two
// panels a pass) and a row block, depths
// around an input block, partial panels, with and without a bias, and only
// the asked-for panels written; the threaded products at any team size.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/f32_panels.h"
#include "roformer/dtype.h"
#include "roformer/error.h"

namespace roformer::kernels {
namespace {

struct PanelOperands {
  std::vector<float> x, bias, weight;  // weight (out, in)
  HugePageVector<float> w;             // packed
  HugePageVector<uint16_t> w_bf16;     // packed as bf16
};

PanelOperands random_panel_operands(int64_t rows, int64_t out, int64_t in, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  PanelOperands o;
  o.x.resize(static_cast<std::size_t>(rows * in));
  o.weight.resize(static_cast<std::size_t>(out * in));
  o.bias.resize(static_cast<std::size_t>(out));
  for (auto& v : o.x) v = normal(gen);
  for (auto& v : o.weight) v = normal(gen);
  for (auto& v : o.bias) v = normal(gen);
  o.w = pack_f32_panels(o.weight.data(), out, in);
  o.w_bf16 = pack_bf16_weight_panels(o.weight.data(), out, in);
  return o;
}

float rounded(float v) { return bf16_to_f32(f32_to_bf16(v)); }

// The packed weights of either kind, and their loops.
struct Fp32Weights {
  static const float* of(const PanelOperands& o) { return o.w.data(); }
  static float value(float v) { return v; }
  static constexpr auto ref = f32_panels_product_ref;
  static constexpr auto avx2 = f32_panels_product_avx2;
  static constexpr auto forward = f32_panels_forward;
};
struct Bf16Weights {
  static const uint16_t* of(const PanelOperands& o) { return o.w_bf16.data(); }
  static float value(float v) { return rounded(v); }
  static constexpr auto ref = bf16_weight_panels_product_ref;
  static constexpr auto avx2 = bf16_weight_panels_product_avx2;
  static constexpr auto forward = bf16_weight_panels_forward;
};

TEST(F32Panels, PackingFollowsTheLayoutWithZeroPadding) {
  const int64_t out = 21, in = 770, padded_out = 32;  // two panels, the second partial; two input blocks
  ASSERT_EQ(f32_panels_padded_out(out), padded_out);
  ASSERT_EQ(f32_panels_padded_out(32), 32);
  std::vector<float> weight(static_cast<std::size_t>(out * in));
  for (std::size_t i = 0; i < weight.size(); ++i) weight[i] = 1.0f + static_cast<float>(i);
  const HugePageVector<float> packed = pack_f32_panels(weight.data(), out, in);
  ASSERT_EQ(packed.size(), static_cast<std::size_t>(padded_out * in));
  std::vector<bool> seen(packed.size(), false);
  for (int64_t o = 0; o < out; ++o)
    for (int64_t k = 0; k < in; ++k) {
      const int64_t depth = k < 768 ? 768 : 2;
      const int64_t at = (k / 768) * 768 * padded_out + (o / 16) * depth * 16 + (k % 768) * 16 + o % 16;
      ASSERT_EQ(packed[static_cast<std::size_t>(at)], weight[o * in + k]) << o << "," << k;
      seen[static_cast<std::size_t>(at)] = true;
    }
  for (std::size_t i = 0; i < packed.size(); ++i) {
    if (!seen[i]) {
      ASSERT_EQ(packed[i], 0.0f) << i;
    }
  }
  std::vector<float> back(weight.size(), -1.0f);
  unpack_f32_panels(packed.data(), out, in, back.data());
  EXPECT_EQ(back, weight);

  // bf16: the same places, rounded to nearest even, zeros in the padding.
  for (std::size_t i = 0; i < weight.size(); ++i) weight[i] = 1.0f + static_cast<float>(i) / 1024.0f;
  const HugePageVector<uint16_t> halves = pack_bf16_weight_panels(weight.data(), out, in);
  ASSERT_EQ(halves.size(), packed.size());
  for (int64_t o = 0; o < out; ++o)
    for (int64_t k = 0; k < in; ++k) {
      const int64_t depth = k < 768 ? 768 : 2;
      const int64_t at = (k / 768) * 768 * padded_out + (o / 16) * depth * 16 + (k % 768) * 16 + o % 16;
      ASSERT_EQ(halves[static_cast<std::size_t>(at)], f32_to_bf16(weight[o * in + k]).bits) << o << "," << k;
    }
  for (std::size_t i = 0; i < halves.size(); ++i) {
    if (!seen[i]) {
      ASSERT_EQ(halves[i], 0) << i;
    }
  }
  unpack_bf16_weight_panels(halves.data(), out, in, back.data());
  for (std::size_t i = 0; i < weight.size(); ++i) ASSERT_EQ(back[i], rounded(weight[i])) << i;
  const float halfway[2] = {1.0f + std::ldexp(1.0f, -8), bf16_to_f32(bf16{0x3f81}) + std::ldexp(1.0f, -8)};
  const HugePageVector<uint16_t> ties = pack_bf16_weight_panels(halfway, 2, 1);
  EXPECT_EQ(ties[0], 0x3f80);
  EXPECT_EQ(ties[1], 0x3f82);
}

template <class Weights>
class F32PanelsOf : public ::testing::Test {};
using WeightKinds = ::testing::Types<Fp32Weights, Bf16Weights>;
TYPED_TEST_SUITE(F32PanelsOf, WeightKinds);

TYPED_TEST(F32PanelsOf, PlainLoopSumsInTheStatedOrder) {
  const int64_t rows = 3, out = 19, in = 800;
  const PanelOperands o = random_panel_operands(rows, out, in, 5);
  std::vector<float> y(static_cast<std::size_t>(rows * out));
  TypeParam::ref(o.x.data(), rows, in, TypeParam::of(o), out, o.bias.data(), y.data(), 0, 2);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t n = 0; n < out; ++n) {
      double exact = o.bias[n], magnitude = std::abs(o.bias[n]);
      float chain = o.bias[n];
      for (int64_t k = 0; k < in; ++k) {
        const float w = TypeParam::value(o.weight[n * in + k]), x = o.x[r * in + k];
        exact += static_cast<double>(x) * w;
        magnitude += std::abs(static_cast<double>(x) * w);
        chain = std::fma(x, w, chain);
      }
      // Close to the exact sum, at the rounding of a chain of in additions...
      EXPECT_NEAR(y[r * out + n], exact, magnitude * in * std::numeric_limits<float>::epsilon()) << r << "," << n;
      // ...and exactly the order the header states.
      EXPECT_EQ(y[r * out + n], chain) << r << "," << n;
    }
}

TYPED_TEST(F32PanelsOf, Avx2LoopEqualsPlainLoopBitForBit) {
  if (!isa_supported(Isa::Avx2)) GTEST_SKIP() << "this CPU lacks AVX2 and FMA";
  EXPECT_EQ(f32_panels_kernel(Isa::Scalar), &f32_panels_product_ref);
  EXPECT_EQ(f32_panels_kernel(Isa::Avx2), &f32_panels_product_avx2);
  EXPECT_EQ(bf16_weight_panels_kernel(Isa::Scalar), &bf16_weight_panels_product_ref);
  EXPECT_EQ(bf16_weight_panels_kernel(Isa::Avx2), &bf16_weight_panels_product_avx2);
  const int64_t out = 61;  // three panels and a partial one (13 columns)
  const float sentinel = std::numeric_limits<float>::quiet_NaN();
  for (int64_t in : {int64_t{1}, int64_t{7}, int64_t{767}, int64_t{768}, int64_t{769}, int64_t{1600}})
    for (int64_t rows : {int64_t{1}, int64_t{2}, int64_t{3}, int64_t{4}, int64_t{5}, int64_t{6}, int64_t{7},
                         int64_t{8}, int64_t{13}, int64_t{128}, int64_t{131}, int64_t{133}, int64_t{280}})
      for (bool with_bias : {false, true}) {
        if (in == 1600 && rows > 13) continue;  // the scalar chain over every product would dominate the suite
        const PanelOperands o = random_panel_operands(rows, out, in, static_cast<uint32_t>(in * 1000 + rows));
        const float* bias = with_bias ? o.bias.data() : nullptr;
        std::vector<float> want(static_cast<std::size_t>(rows * out)), got(want.size(), sentinel);
        TypeParam::ref(o.x.data(), rows, in, TypeParam::of(o), out, bias, want.data(), 0, 4);
        // The panels in two ranges, as two threads would take them.
        TypeParam::avx2(o.x.data(), rows, in, TypeParam::of(o), out, bias, got.data(), 0, 1);
        TypeParam::avx2(o.x.data(), rows, in, TypeParam::of(o), out, bias, got.data(), 1, 4);
        ASSERT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float)))
            << "in " << in << " rows " << rows << " bias " << with_bias;
        // One range alone leaves the other columns untouched, the padding included.
        std::vector<float> part(want.size(), sentinel);
        TypeParam::avx2(o.x.data(), rows, in, TypeParam::of(o), out, bias, part.data(), 1, 2);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t n = 0; n < out; ++n) {
            if (n >= 16 && n < 32) {
              ASSERT_EQ(part[r * out + n], want[r * out + n]) << r << "," << n;
            } else {
              ASSERT_TRUE(std::isnan(part[r * out + n])) << r << "," << n;
            }
          }
      }
}

TYPED_TEST(F32PanelsOf, ThreadedProductIsTheSameAtAnyTeamSize) {
  const int64_t rows = 37, out = 200, in = 900;
  const PanelOperands o = random_panel_operands(rows, out, in, 11);
  std::vector<float> want(static_cast<std::size_t>(rows * out));
  TypeParam::ref(o.x.data(), rows, in, TypeParam::of(o), out, o.bias.data(), want.data(), 0, 13);
  for (Isa isa : supported_isas())
    for (int threads : {1, 2, 3, 16}) {
      ExecContext ctx;
      ctx.isa = isa;
      ctx.threads = threads;
      std::vector<float> got(want.size(), std::numeric_limits<float>::quiet_NaN());
      TypeParam::forward(o.x.data(), rows, in, TypeParam::of(o), out, o.bias.data(), got.data(), ctx);
      ASSERT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float)))
          << isa_name(isa) << " threads " << threads;
    }
  ExecContext ctx;
  std::vector<float> untouched(want.size(), 7.0f);
  TypeParam::forward(o.x.data(), 0, in, TypeParam::of(o), out, o.bias.data(), untouched.data(), ctx);
  EXPECT_EQ(untouched[0], 7.0f);  // no rows: nothing written
}

}  // namespace
}  // namespace roformer::kernels
