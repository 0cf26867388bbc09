// The int8 sums on plain weights (CPUs without int8 dot products): the plain
// loops against sums in 64-bit integers, the AVX2 loop against the plain one
// bit for bit, at every row count of a group and depths around a step, with
// the extreme codes, and only the asked-for output rows written.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "kernels/int8_sums.h"
#include "roformer/error.h"

namespace roformer::kernels {
namespace {

struct Codes {
  std::vector<uint8_t> x;
  std::vector<int8_t> w;
};

Codes random_codes(int64_t rows, int64_t out, int64_t in, uint32_t seed, bool extreme) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> ux(0, 255), uw(-128, 127), pick(0, 1);
  Codes c;
  c.x.resize(static_cast<std::size_t>(rows * in));
  c.w.resize(static_cast<std::size_t>(out * in));
  // Extreme: every code at the end of its range, the largest sums there are.
  for (auto& v : c.x) v = static_cast<uint8_t>(extreme ? 255 : ux(gen));
  for (auto& v : c.w) v = static_cast<int8_t>(extreme ? (pick(gen) != 0 ? 127 : -128) : uw(gen));
  return c;
}

TEST(Int8Sums, PlainLoopsEqualWideIntegerSums) {
  const int64_t rows = 3, out = 5, in = 37;
  const Codes c = random_codes(rows, out, in, 1, false);
  std::vector<int32_t> sums(static_cast<std::size_t>(rows * out), -1);
  int8_sums_ref(c.x.data(), rows, in, c.w.data(), out, 0, out, sums.data());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      int64_t want = 0;
      for (int64_t k = 0; k < in; ++k) want += int64_t{c.x[r * in + k]} * int64_t{c.w[o * in + k]};
      EXPECT_EQ(sums[r * out + o], want) << r << "," << o;
    }
}

TEST(Int8Sums, Avx2LoopEqualsPlainLoopsBitForBit) {
  if (!isa_supported(Isa::Avx2)) GTEST_SKIP() << "this CPU lacks AVX2 and FMA";
  EXPECT_EQ(int8_sums_kernel(Isa::Scalar), &int8_sums_ref);
  EXPECT_EQ(int8_sums_kernel(Isa::Avx2), &int8_sums_avx2);
  const int64_t out = 70;
  for (int64_t in : {int64_t{1}, int64_t{15}, int64_t{16}, int64_t{17}, int64_t{100}, int64_t{768}, int64_t{3072}})
    for (int64_t rows : {int64_t{1}, int64_t{2}, int64_t{3}, int64_t{4}, int64_t{5}, int64_t{9}})
      for (bool extreme : {false, true}) {
        const Codes c = random_codes(rows, out, in, static_cast<uint32_t>(in * 10 + rows), extreme);
        std::vector<int32_t> want(static_cast<std::size_t>(rows * out), -1), got(want.size(), -1);
        int8_sums_ref(c.x.data(), rows, in, c.w.data(), out, 0, out, want.data());
        // Two ranges of output rows, as two tasks would take them.
        int8_sums_avx2(c.x.data(), rows, in, c.w.data(), out, 0, 33, got.data());
        int8_sums_avx2(c.x.data(), rows, in, c.w.data(), out, 33, out, got.data());
        ASSERT_EQ(got, want) << "in " << in << " rows " << rows << " extreme " << extreme;
        // One range alone leaves the other output rows untouched.
        std::vector<int32_t> part(want.size(), -1);
        int8_sums_avx2(c.x.data(), rows, in, c.w.data(), out, 10, 20, part.data());
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t o = 0; o < out; ++o)
            ASSERT_EQ(part[r * out + o], o >= 10 && o < 20 ? want[r * out + o] : -1) << r << "," << o;
      }
}

}  // namespace
}  // namespace roformer::kernels
