// Dynamic int8 quantization (kernels/quantize.h): what a quantized value
// means (|dequantized - x| <= scale / 2, 0 exact, the range's ends at 0 and
// 255), the AVX-512 loops against the plain ones bit for bit, and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/quantize.h"
#include "roformer/error.h"
#include "support/test_support.h"

namespace roformer::kernels {
namespace {

using roformer::testing::random_floats;

// Rows that stress the range logic: mixed, all positive, all negative, all
// zero, one huge value among small ones, denormal-sized values.
std::vector<float> awkward_rows(int64_t rows, int64_t cols, uint32_t seed) {
  auto x = random_floats(static_cast<std::size_t>(rows * cols), seed, -3.0f, 3.0f);
  for (int64_t r = 0; r < rows; ++r) {
    float* row = x.data() + r * cols;
    switch (r % 6) {
      case 1: for (int64_t c = 0; c < cols; ++c) row[c] = std::fabs(row[c]) + 0.5f; break;
      case 2: for (int64_t c = 0; c < cols; ++c) row[c] = -std::fabs(row[c]) - 0.25f; break;
      case 3: for (int64_t c = 0; c < cols; ++c) row[c] = 0.0f; break;
      case 4: row[cols / 2] = 1e30f; break;
      case 5: for (int64_t c = 0; c < cols; ++c) row[c] *= 1e-39f; break;
      default: break;
    }
  }
  return x;
}

TEST(Quantize, RowParametersMapTheRangeOntoZeroTo255) {
  const RowQuant p = row_quant(-1.0f, 3.0f);
  EXPECT_FLOAT_EQ(p.scale, 4.0f / 255.0f);
  EXPECT_EQ(p.zero, 64);  // round(1 / (4 / 255)) = round(63.75)
  // Ranges that do not hold 0 are widened to it.
  EXPECT_EQ(row_quant(2.0f, 5.0f).zero, 0);
  EXPECT_FLOAT_EQ(row_quant(2.0f, 5.0f).scale, 5.0f / 255.0f);
  EXPECT_EQ(row_quant(-5.0f, -2.0f).zero, 255);
  // All zero, or too small for a finite 1 / scale: scale 1, everything to 0.
  EXPECT_EQ(row_quant(0.0f, 0.0f).scale, 1.0f);
  EXPECT_EQ(row_quant(0.0f, 0.0f).zero, 0);
  EXPECT_EQ(row_quant(-1e-40f, 1e-40f).scale, 1.0f);
}

TEST(Quantize, ActivationsDequantizeWithinHalfAStep) {
  const int64_t rows = 12, cols = 77;
  const auto x = awkward_rows(rows, cols, 5);
  std::vector<uint8_t> q(x.size());
  std::vector<RowQuant> p(rows);
  ASSERT_TRUE(quantize_rows_ref(x.data(), rows, cols, q.data(), p.data()));
  for (int64_t r = 0; r < rows; ++r) {
    const double s = p[r].scale;
    int lowest = 255, highest = 0;
    for (int64_t c = 0; c < cols; ++c) {
      const double v = x[r * cols + c], back = (static_cast<int>(q[r * cols + c]) - p[r].zero) * s;
      // Half a step, plus the float rounding of v / s.
      ASSERT_LE(std::fabs(back - v), 0.5 * s * (1.0 + 1e-5) + 1e-37) << r << " " << c;
      if (v == 0.0) {
        ASSERT_EQ(q[r * cols + c], p[r].zero) << "0 must be exact";
      }
      lowest = std::min<int>(lowest, q[r * cols + c]);
      highest = std::max<int>(highest, q[r * cols + c]);
    }
    // Mixed-sign rows use the whole code range.
    if (r % 6 == 0) {
      EXPECT_EQ(lowest, 0) << r;
    }
    if (r % 6 == 0 || r % 6 == 1 || r % 6 == 4) {
      EXPECT_EQ(highest, 255) << r;
    }
  }
}

TEST(Quantize, WeightsAreSymmetricPerRow) {
  const int64_t out = 9, in = 40;
  auto w = random_floats(static_cast<std::size_t>(out * in), 8, -2.0f, 2.0f);
  for (int64_t i = 0; i < in; ++i) w[3 * in + i] = 0.0f;  // an all-zero row
  std::vector<int8_t> q(w.size());
  std::vector<float> scale(out);
  quantize_weights_s8(w.data(), out, in, q.data(), scale.data());
  for (int64_t o = 0; o < out; ++o) {
    int peak = 0;
    for (int64_t i = 0; i < in; ++i) {
      const double v = w[o * in + i], back = q[o * in + i] * static_cast<double>(scale[o]);
      ASSERT_LE(std::fabs(back - v), 0.5 * scale[o] * (1.0 + 1e-5)) << o << " " << i;
      ASSERT_GE(q[o * in + i], -127);
      peak = std::max(peak, std::abs(static_cast<int>(q[o * in + i])));
    }
    if (o == 3) {
      EXPECT_EQ(scale[o], 1.0f);
      EXPECT_EQ(peak, 0);
    } else {
      EXPECT_EQ(peak, 127) << o;
    }
  }
  w[5] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(quantize_weights_s8(w.data(), out, in, q.data(), scale.data()), Error);
}

TEST(Quantize, WeightRowAvx2LoopEqualsPlainLoop) {
  if (!isa_supported(Isa::Avx2)) GTEST_SKIP() << "this CPU lacks AVX2 and FMA";
  // Ties of either parity (to even), values past the clamp, zeros of both signs.
  const std::vector<float> awkward = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 126.5f, -126.5f, 127.4f, -127.6f,
                                      200.0f, -300.0f, 0.0f, -0.0f, 1e-30f, -1e-30f, 63.49999f, 63.5f};
  for (int64_t in : {int64_t{1}, int64_t{7}, int64_t{8}, int64_t{9}, int64_t{18}, int64_t{40}, int64_t{768}})
    for (float s : {1.0f, 0.0123f, 3.7f}) {
      auto row = random_floats(static_cast<std::size_t>(in), static_cast<uint32_t>(in), -130.0f * s, 130.0f * s);
      for (std::size_t i = 0; i < row.size() && i < awkward.size(); ++i) row[i] = awkward[i] * s;
      std::vector<int8_t> want(row.size(), 99), got(row.size(), 99);
      quantize_weight_row_ref(row.data(), in, s, want.data());
      quantize_weight_row_avx2(row.data(), in, s, got.data());
      ASSERT_EQ(got, want) << "in " << in << " s " << s;
    }
}

TEST(Quantize, WeightRowPeakAvx2LoopEqualsPlainLoop) {
  if (!isa_supported(Isa::Avx2)) GTEST_SKIP() << "this CPU lacks AVX2 and FMA";
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t in : {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{8}, int64_t{31}, int64_t{32}, int64_t{33},
                     int64_t{77}, int64_t{768}}) {
    auto row = random_floats(static_cast<std::size_t>(in), static_cast<uint32_t>(in) + 5, -3.0f, 3.0f);
    float want = -1.0f, got = -2.0f;
    ASSERT_TRUE(weight_row_peak_ref(row.data(), in, &want));
    ASSERT_TRUE(weight_row_peak_avx2(row.data(), in, &got));
    ASSERT_EQ(got, want) << "in " << in;
    // The peak at every position, of either sign (each lane, chain and the tail).
    for (int64_t at = 0; at < in; ++at) {
      auto peaked = row;
      peaked[static_cast<std::size_t>(at)] = at % 2 == 0 ? 9.5f : -9.5f;
      ASSERT_TRUE(weight_row_peak_avx2(peaked.data(), in, &got));
      ASSERT_EQ(got, 9.5f) << "in " << in << " at " << at;
      for (float bad : {inf, -inf, nan}) {
        auto broken = row;
        broken[static_cast<std::size_t>(at)] = bad;
        ASSERT_FALSE(weight_row_peak_avx2(broken.data(), in, &got)) << "in " << in << " at " << at << " " << bad;
        ASSERT_FALSE(weight_row_peak_ref(broken.data(), in, &got)) << "in " << in << " at " << at << " " << bad;
      }
    }
  }
  // An all-zero row (either sign) peaks at +0.
  const std::vector<float> zeros = {0.0f, -0.0f, 0.0f, -0.0f, -0.0f, 0.0f, 0.0f, -0.0f, -0.0f};
  float got = -1.0f;
  ASSERT_TRUE(weight_row_peak_avx2(zeros.data(), static_cast<int64_t>(zeros.size()), &got));
  EXPECT_EQ(got, 0.0f);
  EXPECT_FALSE(std::signbit(got));
}

// The vector sets this CPU can run (AVX2, AVX-512), each against the plain loops.
std::vector<Isa> vector_isas() {
  std::vector<Isa> isas;
  for (Isa isa : {Isa::Avx2, Isa::Avx512})
    if (isa_supported(isa)) isas.push_back(isa);
  return isas;
}

TEST(Quantize, VectorLoopsEqualPlainLoopsBitForBit) {
  if (vector_isas().empty()) GTEST_SKIP() << "neither AVX2 nor AVX-512 on this CPU";
  EXPECT_EQ(quant_kernels(Isa::Scalar).quantize_rows, &quantize_rows_ref);
  for (Isa isa : vector_isas())
  for (int64_t cols : {int64_t{1}, int64_t{7}, int64_t{8}, int64_t{9}, int64_t{15}, int64_t{16}, int64_t{17},
                       int64_t{40}, int64_t{768}}) {
    const QuantKernels k = quant_kernels(isa);
    EXPECT_NE(k.quantize_rows, &quantize_rows_ref) << isa_name(isa);
    const int64_t rows = 13;
    const auto x = awkward_rows(rows, cols, static_cast<uint32_t>(cols));
    std::vector<uint8_t> qa(x.size()), qb(x.size());
    std::vector<RowQuant> pa(rows), pb(rows);
    ASSERT_TRUE(quantize_rows_ref(x.data(), rows, cols, qa.data(), pa.data()));
    ASSERT_TRUE(k.quantize_rows(x.data(), rows, cols, qb.data(), pb.data()));
    for (int64_t r = 0; r < rows; ++r) {
      ASSERT_EQ(pa[r].scale, pb[r].scale) << isa_name(isa) << " " << cols << " " << r;
      ASSERT_EQ(pa[r].zero, pb[r].zero) << isa_name(isa) << " " << cols << " " << r;
    }
    ASSERT_EQ(qa, qb) << isa_name(isa) << " " << cols;

    // The rescale, with and without bias, on sums of either sign.
    const int64_t out = cols;
    std::vector<int32_t> acc(static_cast<std::size_t>(rows * out)), w_sum(static_cast<std::size_t>(out));
    for (std::size_t i = 0; i < acc.size(); ++i) acc[i] = static_cast<int32_t>((i * 7919) % 200001) - 100000;
    for (std::size_t i = 0; i < w_sum.size(); ++i) w_sum[i] = static_cast<int32_t>((i * 104729) % 20001) - 10000;
    const auto w_scale = random_floats(static_cast<std::size_t>(out), 3, 1e-4f, 1e-2f);
    const auto bias = random_floats(static_cast<std::size_t>(out), 4);
    for (const float* b : {static_cast<const float*>(nullptr), bias.data()}) {
      std::vector<float> ya(acc.size(), -1.0f), yb(acc.size(), -2.0f);
      dequantize_rows_ref(acc.data(), rows, out, pa.data(), w_scale.data(), w_sum.data(), b, ya.data());
      k.dequantize_rows(acc.data(), rows, out, pa.data(), w_scale.data(), w_sum.data(), b, yb.data());
      ASSERT_EQ(ya, yb) << isa_name(isa) << " " << cols << (b != nullptr ? " with bias" : " without bias");
    }
  }
}

TEST(Quantize, NonFiniteActivationsAreReported) {
  const int64_t rows = 3, cols = 21;
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    auto x = random_floats(static_cast<std::size_t>(rows * cols), 6);
    x[cols + 17] = bad;
    std::vector<uint8_t> q(x.size());
    std::vector<RowQuant> p(rows);
    EXPECT_FALSE(quantize_rows_ref(x.data(), rows, cols, q.data(), p.data()));
    for (Isa isa : vector_isas())
      EXPECT_FALSE(quant_kernels(isa).quantize_rows(x.data(), rows, cols, q.data(), p.data())) << isa_name(isa);
  }
}

}  // namespace
}  // namespace roformer::kernels
