#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "roformer/dtype.h"

namespace roformer {
namespace {

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Every one of the 65,536 halves against the compiler's own binary16 type.
TEST(Dtype, HalfToFloatMatchesTheCompilersFloat16OnEveryValue) {
  int nans = 0;
  for (uint32_t h = 0; h <= 0xffffu; ++h) {
    const auto half = static_cast<uint16_t>(h);
    _Float16 reference;
    std::memcpy(&reference, &half, 2);
    const float want = static_cast<float>(reference);
    const float got = f16_to_f32(half);
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(got)) << std::hex << h;
      ASSERT_EQ(bits_of(got) >> 31, h >> 15) << std::hex << h;  // sign kept
      ++nans;
      continue;
    }
    ASSERT_EQ(bits_of(got), bits_of(want)) << std::hex << h;
  }
  EXPECT_EQ(nans, 2 * 1023);
}

TEST(Dtype, HalfSpecialValues) {
  EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_f32(0xc000), -2.0f);
  EXPECT_EQ(f16_to_f32(0x7bff), 65504.0f);                 // largest finite
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));    // smallest subnormal
  EXPECT_EQ(f16_to_f32(0x0400), std::ldexp(1.0f, -14));    // smallest normal
  EXPECT_EQ(bits_of(f16_to_f32(0x8000)), 0x80000000u);     // -0 keeps its sign
  EXPECT_TRUE(std::isinf(f16_to_f32(0x7c00)) && f16_to_f32(0x7c00) > 0);
  EXPECT_TRUE(std::isinf(f16_to_f32(0xfc00)) && f16_to_f32(0xfc00) < 0);
}

TEST(Dtype, Bf16RoundsToNearestEvenAndKeepsNan) {
  // 1 + 2^-8 lies halfway between two bf16 values: ties go to the even one (1.0).
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f + std::ldexp(1.0f, -8))), 1.0f);
  // 1 + 3·2^-8 is halfway too; the even neighbour is 1 + 2^-6.
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8))), 1.0f + std::ldexp(1.0f, -6));
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f + std::ldexp(1.0f, -7))), 1.0f + std::ldexp(1.0f, -7));
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::nanf("")))));
  uint32_t tiny_nan = 0x7f800001u;  // payload only in the low bits: must not round to inf
  float f;
  std::memcpy(&f, &tiny_nan, 4);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(f))));
}

}  // namespace
}  // namespace roformer
