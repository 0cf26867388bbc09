// fp32 -> bf16 activation conversion (kernels/bf16_convert.h): the plain loop
// against the definition of round-to-nearest-even (checked through the two
// neighbouring bf16 values), and the AVX-512 loop and the threaded
// conversion against the plain loop bit for bit, awkward values included.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/bf16_convert.h"
#include "roformer/cpu.h"
#include "roformer/dtype.h"
#include "roformer/error.h"
#include "support/test_support.h"

namespace roformer::kernels {
namespace {

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Random values with ties, denormals, zeros of both signs, infinities, the
// largest finite value and NaNs (quiet and signalling) mixed in.
std::vector<float> awkward_values(std::size_t n, uint32_t seed) {
  auto x = roformer::testing::random_floats(n, seed, -4.0f, 4.0f);
  const float specials[] = {0.0f,
                            -0.0f,
                            from_bits(0x3f808000u),  // 1 + half an ulp: tie, to even (down)
                            from_bits(0x3f818000u),  // tie with an odd kept part: up
                            from_bits(0x3f808001u),  // just above a tie: up
                            from_bits(0x00000001u),  // smallest denormal
                            from_bits(0x807fffffu),  // largest negative denormal: rounds to -FLT_MIN
                            std::numeric_limits<float>::max(),  // rounds up to infinity
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(),
                            from_bits(0x7fc00000u),   // quiet NaN
                            from_bits(0x7f800001u),   // signalling NaN whose payload is all in the low half
                            from_bits(0xff812345u)};  // negative signalling NaN
  for (std::size_t i = 0; i < n; i += 3) x[i] = specials[(i / 3) % std::size(specials)];
  return x;
}

TEST(Bf16Convert, PlainLoopRoundsToNearestEven) {
  const auto x = awkward_values(4000, 1);
  std::vector<uint16_t> y(x.size());
  convert_to_bf16_ref(x.data(), static_cast<int64_t>(x.size()), y.data());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const float v = x[i], r = bf16_to_f32(bf16{y[i]});
    if (std::isnan(v)) {
      EXPECT_TRUE(std::isnan(r)) << i;
      EXPECT_NE(y[i] & 0x40, 0) << "NaN must come out quiet, " << i;
      continue;
    }
    if (std::isinf(v) || std::fabs(v) >= from_bits(0x7f7f8000u)) {  // from the tie above the largest bf16 on
      EXPECT_EQ(r, std::copysign(std::numeric_limits<float>::infinity(), v)) << i;
      continue;
    }
    // r is one of the two bf16 values around v (truncated, and the next one
    // away from 0), the nearer one, and on a tie the one with an even last bit.
    uint32_t u;
    std::memcpy(&u, &v, 4);
    const uint16_t down = static_cast<uint16_t>(u >> 16), up = static_cast<uint16_t>(down + 1);
    ASSERT_TRUE(y[i] == down || y[i] == up) << i;
    const double dd = std::fabs(static_cast<double>(v) - bf16_to_f32(bf16{down}));
    const double du = std::fabs(static_cast<double>(v) - bf16_to_f32(bf16{up}));
    const uint16_t nearer = dd < du ? down : up;
    if (dd != du) {
      EXPECT_EQ(y[i], nearer) << i;
    } else {
      EXPECT_EQ(y[i] & 1, 0) << "a tie goes to the even one, " << i;
    }
  }
  EXPECT_EQ(bf16_to_f32(bf16{y[6]}), 1.0f);                        // the tie at 1 + half an ulp
  EXPECT_EQ(y[9], 0x3f82);                                          // the odd tie rounds up
  EXPECT_EQ(y[15], 0x0000);                                         // smallest denormal -> +0
  EXPECT_EQ(y[18], 0x8080);                                         // -largest denormal -> -FLT_MIN
}

TEST(Bf16Convert, VectorLoopEqualsThePlainOneBitForBit) {
  if (!isa_supported(Isa::Avx512)) GTEST_SKIP() << "this CPU has no AVX-512; the plain loop runs everywhere";
  for (std::size_t n : {std::size_t{1}, std::size_t{15}, std::size_t{16}, std::size_t{17}, std::size_t{1000}}) {
    const auto x = awkward_values(n, static_cast<uint32_t>(n));
    std::vector<uint16_t> want(n), got(n + 1, 0xabcd);
    convert_to_bf16_ref(x.data(), static_cast<int64_t>(n), want.data());
    convert_to_bf16_avx512(x.data(), static_cast<int64_t>(n), got.data());
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(got[i], want[i]) << "n " << n << " at " << i << " x " << x[i];
    EXPECT_EQ(got[n], 0xabcd) << "wrote past the end, n " << n;
  }
}

TEST(Bf16Convert, ThreadedConversionEqualsThePlainLoop) {
  const std::size_t n = 70001;  // several chunks and a ragged end
  const auto x = awkward_values(n, 9);
  std::vector<uint16_t> want(n);
  convert_to_bf16_ref(x.data(), static_cast<int64_t>(n), want.data());
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
    if (!isa_supported(isa)) continue;
    for (int threads : {1, 2}) {
      std::vector<uint16_t> got(n);
      convert_to_bf16(x.data(), static_cast<int64_t>(n), got.data(), ExecContext{threads, isa});
      EXPECT_EQ(got, want) << isa_name(isa) << ", " << threads << " thread(s)";
    }
  }
  if (!isa_supported(Isa::Avx512)) {
    std::vector<uint16_t> got(n);
    EXPECT_THROW(convert_to_bf16(x.data(), static_cast<int64_t>(n), got.data(), ExecContext{1, Isa::Avx512}), Error);
  }
}

TEST(Bf16Convert, RoundingToBf16ValuesKeepsTheConvertedValues) {
  const std::size_t n = 40001;  // several chunks and a ragged end
  const auto x = awkward_values(n, 11);
  std::vector<uint16_t> bits(n);
  convert_to_bf16_ref(x.data(), static_cast<int64_t>(n), bits.data());
  for (int threads : {1, 2}) {
    std::vector<float> in_place = x, copy(n, -1.0f);
    round_to_bf16_values(in_place.data(), static_cast<int64_t>(n), in_place.data(), ExecContext{threads});
    round_to_bf16_values(x.data(), static_cast<int64_t>(n), copy.data(), ExecContext{threads});
    for (std::size_t i = 0; i < n; ++i) {
      uint32_t u = 0, c = 0;
      std::memcpy(&u, &in_place[i], sizeof(u));
      std::memcpy(&c, &copy[i], sizeof(c));
      ASSERT_EQ(u, static_cast<uint32_t>(bits[i]) << 16) << i << ", " << threads << " thread(s)";
      ASSERT_EQ(c, u) << i << ", " << threads << " thread(s)";
    }
  }
}

}  // namespace
}  // namespace roformer::kernels
