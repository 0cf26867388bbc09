// The bf16 panel product: the weights' layout against the bf16 rounding of
// the plain matrix, the plain loops against a double-accumulated product of
// the same bf16 values, the AVX512-BF16 kernel against the plain loops, the
// fused epilogue against separate passes, and the bf16 output against the
// fp32 output rounded.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/bf16_convert.h"
#include "kernels/epilogue_cases.h"
#include "kernels/bf16_panels.h"
#include "kernels/packed_matmul.h"
#include "roformer/dtype.h"
#include "roformer/error.h"
#include "support/test_support.h"

namespace roformer::kernels {
namespace {

using roformer::testing::max_scaled_diff;
using roformer::testing::random_floats;

// The plain loops, and the AVX512-BF16 kernel where this CPU has it.
std::vector<Isa> panel_isas() {
  std::vector<Isa> isas{Isa::Scalar};
  if (cpu_has_avx512_bf16()) isas.push_back(Isa::Avx512);
  return isas;
}

std::vector<uint16_t> to_bf16(const std::vector<float>& x) {
  std::vector<uint16_t> out(x.size());
  convert_to_bf16_ref(x.data(), static_cast<int64_t>(x.size()), out.data());
  return out;
}

std::vector<float> widen(const std::vector<uint16_t>& x) {
  std::vector<float> out(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) out[i] = bf16_to_f32(bf16{x[i]});
  return out;
}

TEST(Bf16Panels, HoldTheWeightsRoundedToNearestEven) {
  // 70 and 130 outputs: a partial last panel; 2 inputs: a single pair.
  for (const auto& [out, in] : {std::pair<int64_t, int64_t>{70, 40}, {130, 2}, {64, 96}}) {
    auto w = random_floats(static_cast<std::size_t>(out * in), 1);
    w[0] = bf16_to_f32(bf16{0x3f80}) + std::ldexp(1.0f, -8);  // a tie: down to the even 1.0
    w[1] = bf16_to_f32(bf16{0x3f81}) + std::ldexp(1.0f, -8);  // a tie: up to the even 0x3f82
    const Bf16Panels panels(w.data(), out, in);
    EXPECT_EQ(panels.out(), out);
    EXPECT_EQ(panels.in(), in);
    std::vector<float> back(w.size());
    panels.unpack(back.data());
    EXPECT_EQ(back, widen(to_bf16(w))) << out << " x " << in;
    EXPECT_EQ(back[0], 1.0f);
    EXPECT_EQ(back[1], bf16_to_f32(bf16{0x3f82}));
  }
}

TEST(Bf16Panels, BadShapesAreClearErrors) {
  const std::vector<float> w(12, 1.0f);
  EXPECT_THROW(Bf16Panels(w.data(), 4, 3), Error);  // odd input width: no pairs
  EXPECT_THROW(Bf16Panels(w.data(), 0, 4), Error);
  const Bf16Panels panels(w.data(), 3, 4);
  const std::vector<uint16_t> x(8, 0x3f80);
  std::vector<float> y(6, -7.0f);
  std::vector<uint16_t> y16(6);
  const ExecContext ctx{1, Isa::Scalar};
  EXPECT_THROW(panels.forward(x.data(), 2, nullptr, {}, nullptr, nullptr, ctx), Error);  // no output
  EXPECT_THROW(panels.forward(x.data(), 2, nullptr, {}, y.data(), y16.data(), ctx), Error);  // two outputs
  EXPECT_THROW(panels.forward(x.data(), -1, nullptr, {}, y.data(), nullptr, ctx), Error);
  panels.forward(x.data(), 0, nullptr, {}, y.data(), nullptr, ctx);  // nothing to do
  EXPECT_EQ(y[0], -7.0f);
  panels.forward(x.data(), 2, nullptr, {}, y.data(), nullptr, ctx);
  EXPECT_EQ(y, std::vector<float>(6, 4.0f));
}

// Every kernel against sums in double of the same bf16 values: only the fp32
// accumulation differs. Rows past one block of 192 and every tail of 6;
// outputs with and without a partial panel; one and two threads (whole
// panels each, so the same bits).
TEST(Bf16Panels, EqualDoubleSumsOfTheSameBf16Values) {
  struct Case {
    int64_t out, in;
  };
  for (const Case c : {Case{5, 2}, Case{64, 64}, Case{200, 96}, Case{130, 300}}) {
    const auto w = random_floats(static_cast<std::size_t>(c.out * c.in), 11);
    const auto bias = random_floats(static_cast<std::size_t>(c.out), 12);
    const Bf16Panels panels(w.data(), c.out, c.in);
    std::vector<float> wr(w.size());
    panels.unpack(wr.data());
    for (int64_t rows : {int64_t{1}, int64_t{5}, int64_t{13}, int64_t{200}}) {
      const auto x16 = to_bf16(random_floats(static_cast<std::size_t>(rows * c.in), 13));
      const auto x = widen(x16);
      std::vector<float> want(static_cast<std::size_t>(rows * c.out));
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t o = 0; o < c.out; ++o) {
          double acc = bias[o];
          for (int64_t i = 0; i < c.in; ++i) acc += static_cast<double>(x[r * c.in + i]) * wr[o * c.in + i];
          want[r * c.out + o] = static_cast<float>(acc);
        }
      for (Isa isa : panel_isas()) {
        std::vector<float> one;
        for (int threads : {1, 2}) {
          std::vector<float> got(want.size(), -7.0f);
          panels.forward(x16.data(), rows, bias.data(), {}, got.data(), nullptr, ExecContext{threads, isa});
          // |terms| <= 1, at most 300 of them, each sum rounded to fp32.
          EXPECT_LE(max_scaled_diff(got, want), 2e-5)
              << c.out << " x " << c.in << ", rows " << rows << ", " << isa_name(isa) << ", threads " << threads;
          if (threads == 1) one = got;
          else EXPECT_EQ(got, one) << "the thread count changed bits";
        }
      }
    }
  }
}

// The fused bias, activation and residual equal the product followed by the
// separate passes; the bf16 output is the fp32 output rounded, bit for bit.
TEST(Bf16Panels, FusedEpilogueAndBf16Output) {
  const int64_t out = 100, in = 48, rows = 19;
  const auto w = random_floats(static_cast<std::size_t>(out * in), 21);
  const auto bias = random_floats(static_cast<std::size_t>(out), 22);
  const auto residual = random_floats(static_cast<std::size_t>(rows * out), 23);
  const auto x16 = to_bf16(random_floats(static_cast<std::size_t>(rows * in), 24, -3.0f, 3.0f));
  const Bf16Panels panels(w.data(), out, in);
  for (Isa isa : panel_isas()) {
    const ExecContext ctx{2, isa};
    std::vector<float> plain(static_cast<std::size_t>(rows * out));
    panels.forward(x16.data(), rows, bias.data(), {}, plain.data(), nullptr, ctx);
    for (const auto& [e, name] : every_epilogue(residual.data())) {
      std::vector<float> want = plain;
      apply_epilogue(want.data(), rows, out, e, ExecContext{1, Isa::Scalar});
      std::vector<float> got(want.size(), -7.0f);
      panels.forward(x16.data(), rows, bias.data(), e, got.data(), nullptr, ctx);
      // The vector GELU is an approximation within a few ulps of libm's.
      EXPECT_LE(max_scaled_diff(got, want), 2e-6) << isa_name(isa) << " " << name;
      std::vector<uint16_t> got16(want.size());
      panels.forward(x16.data(), rows, bias.data(), e, nullptr, got16.data(), ctx);
      EXPECT_EQ(got16, to_bf16(got)) << isa_name(isa) << " " << name;
    }
  }
}

}  // namespace
}  // namespace roformer::kernels
