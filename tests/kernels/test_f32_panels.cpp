// fp32 products on weights packed into column panels (kernels/f32_panels.h):
// the packing against the layout's formula and back, the plain loop against
// sums in double precision and its stated order, the AVX2 loop against the
// plain one bit for bit at every row count around a pass and a row block,
// depths around an input block, partial panels, with and without a bias, and
// only the asked-for panels written; the threaded product at any team size.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/f32_panels.h"
#include "roformer/error.h"

namespace roformer::kernels {
namespace {

struct PanelOperands {
  std::vector<float> x, bias, weight;  // weight (out, in)
  HugePageVector<float> w;             // packed
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
  return o;
}

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
}

TEST(F32Panels, PlainLoopSumsInTheStatedOrder) {
  const int64_t rows = 3, out = 19, in = 800;
  const PanelOperands o = random_panel_operands(rows, out, in, 5);
  std::vector<float> y(static_cast<std::size_t>(rows * out));
  f32_panels_product_ref(o.x.data(), rows, in, o.w.data(), out, o.bias.data(), y.data(), 0, 2);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t n = 0; n < out; ++n) {
      double exact = o.bias[n], magnitude = std::abs(o.bias[n]);
      float chain = o.bias[n];
      for (int64_t k = 0; k < in; ++k) {
        const float w = o.weight[n * in + k], x = o.x[r * in + k];
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

TEST(F32Panels, Avx2LoopEqualsPlainLoopBitForBit) {
  if (!isa_supported(Isa::Avx2)) GTEST_SKIP() << "this CPU lacks AVX2 and FMA";
  EXPECT_EQ(f32_panels_kernel(Isa::Scalar), &f32_panels_product_ref);
  EXPECT_EQ(f32_panels_kernel(Isa::Avx2), &f32_panels_product_avx2);
  const int64_t out = 61;  // three panels and a partial one (13 columns)
  const float sentinel = std::numeric_limits<float>::quiet_NaN();
  for (int64_t in : {int64_t{1}, int64_t{7}, int64_t{767}, int64_t{768}, int64_t{769}, int64_t{1600}})
    for (int64_t rows : {int64_t{1}, int64_t{2}, int64_t{3}, int64_t{4}, int64_t{5}, int64_t{6}, int64_t{7},
                         int64_t{13}, int64_t{131}, int64_t{133}, int64_t{280}})
      for (bool with_bias : {false, true}) {
        if (in == 1600 && rows > 13) continue;  // the scalar chain over every product would dominate the suite
        const PanelOperands o = random_panel_operands(rows, out, in, static_cast<uint32_t>(in * 1000 + rows));
        const float* bias = with_bias ? o.bias.data() : nullptr;
        std::vector<float> want(static_cast<std::size_t>(rows * out)), got(want.size(), sentinel);
        f32_panels_product_ref(o.x.data(), rows, in, o.w.data(), out, bias, want.data(), 0, 4);
        // The panels in two ranges, as two threads would take them.
        f32_panels_product_avx2(o.x.data(), rows, in, o.w.data(), out, bias, got.data(), 0, 1);
        f32_panels_product_avx2(o.x.data(), rows, in, o.w.data(), out, bias, got.data(), 1, 4);
        ASSERT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float)))
            << "in " << in << " rows " << rows << " bias " << with_bias;
        // One range alone leaves the other columns untouched, the padding included.
        std::vector<float> part(want.size(), sentinel);
        f32_panels_product_avx2(o.x.data(), rows, in, o.w.data(), out, bias, part.data(), 1, 2);
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

TEST(F32Panels, ThreadedProductIsTheSameAtAnyTeamSize) {
  const int64_t rows = 37, out = 200, in = 900;
  const PanelOperands o = random_panel_operands(rows, out, in, 11);
  std::vector<float> want(static_cast<std::size_t>(rows * out));
  f32_panels_product_ref(o.x.data(), rows, in, o.w.data(), out, o.bias.data(), want.data(), 0, 13);
  for (Isa isa : supported_isas())
    for (int threads : {1, 2, 3, 16}) {
      ExecContext ctx;
      ctx.isa = isa;
      ctx.threads = threads;
      std::vector<float> got(want.size(), std::numeric_limits<float>::quiet_NaN());
      f32_panels_forward(o.x.data(), rows, in, o.w.data(), out, o.bias.data(), got.data(), ctx);
      ASSERT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float)))
          << isa_name(isa) << " threads " << threads;
    }
  ExecContext ctx;
  std::vector<float> untouched(want.size(), 7.0f);
  f32_panels_forward(o.x.data(), 0, in, o.w.data(), out, o.bias.data(), untouched.data(), ctx);
  EXPECT_EQ(untouched[0], 7.0f);  // no rows: nothing written
}

}  // namespace
}  // namespace roformer::kernels
