// The int8 sums on weights packed into column panels (kernels/int8_panels.h):
// the packing against the layout's formula and back, the plain loop against
// sums in 64-bit integers, the AVX2 loop against the plain one bit for bit
// at every row count around a pass (one or two rows take two panels a pass)
// and a row block, odd and even depths around an input block, partial
// panels, the extreme codes, only the asked-for panels written; the
// threaded sums at any team size.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "kernels/int8_panels.h"
#include "roformer/error.h"

namespace roformer::kernels {
namespace {

struct PanelCodes {
  std::vector<uint8_t> x;
  std::vector<int8_t> q;   // (out, in)
  HugePageVector<int8_t> w;  // packed
};

PanelCodes random_panel_codes(int64_t rows, int64_t out, int64_t in, uint32_t seed, bool extreme) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> ux(0, 255), uw(-128, 127), pick(0, 1);
  PanelCodes c;
  c.x.resize(static_cast<std::size_t>(rows * in));
  c.q.resize(static_cast<std::size_t>(out * in));
  // Extreme: every code at the end of its range, the largest sums there are.
  for (auto& v : c.x) v = static_cast<uint8_t>(extreme ? 255 : ux(gen));
  for (auto& v : c.q) v = static_cast<int8_t>(extreme ? (pick(gen) != 0 ? 127 : -128) : uw(gen));
  c.w = pack_int8_panels(c.q.data(), out, in);
  return c;
}

TEST(Int8Panels, PackingFollowsTheLayoutWithZeroPadding) {
  // Two panels, the second partial; two input blocks, the second of an odd depth padded to 4.
  const int64_t out = 21, in = 771, padded_out = 32, padded_in = 772;
  ASSERT_EQ(int8_panels_padded_out(out), padded_out);
  ASSERT_EQ(int8_panels_padded_in(in), padded_in);
  ASSERT_EQ(int8_panels_padded_in(768), 768);
  std::vector<int8_t> q(static_cast<std::size_t>(out * in));
  for (std::size_t i = 0; i < q.size(); ++i) q[i] = static_cast<int8_t>(1 + i % 120);  // never 0
  const HugePageVector<int8_t> packed = pack_int8_panels(q.data(), out, in);
  ASSERT_EQ(packed.size(), static_cast<std::size_t>(padded_out * padded_in));
  std::vector<bool> seen(packed.size(), false);
  for (int64_t o = 0; o < out; ++o)
    for (int64_t k = 0; k < in; ++k) {
      const int64_t depth = k < 768 ? 768 : 4;
      const int64_t at =
          (k / 768) * 768 * padded_out + (o / 16) * depth * 16 + (k % 768) / 2 * 32 + (o % 16) * 2 + k % 2;
      ASSERT_EQ(packed[static_cast<std::size_t>(at)], q[o * in + k]) << o << "," << k;
      seen[static_cast<std::size_t>(at)] = true;
    }
  for (std::size_t i = 0; i < packed.size(); ++i) {
    if (!seen[i]) {
      ASSERT_EQ(packed[i], 0) << i;
    }
  }
  std::vector<int8_t> back(q.size(), -1);
  unpack_int8_panels(packed.data(), out, in, back.data());
  EXPECT_EQ(back, q);
}

TEST(Int8Panels, PlainLoopEqualsWideIntegerSums) {
  const int64_t rows = 3, out = 19, in = 801;
  for (bool extreme : {false, true}) {
    const PanelCodes c = random_panel_codes(rows, out, in, 3, extreme);
    std::vector<int32_t> sums(static_cast<std::size_t>(rows * out), -1);
    int8_panels_sums_ref(c.x.data(), rows, in, c.w.data(), out, sums.data(), 0, 2);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t o = 0; o < out; ++o) {
        int64_t want = 0;
        for (int64_t k = 0; k < in; ++k) want += int64_t{c.x[r * in + k]} * int64_t{c.q[o * in + k]};
        ASSERT_EQ(sums[r * out + o], want) << r << "," << o << " extreme " << extreme;
      }
  }
}

TEST(Int8Panels, Avx2LoopEqualsPlainLoopBitForBit) {
  if (!isa_supported(Isa::Avx2)) GTEST_SKIP() << "this CPU lacks AVX2 and FMA";
  EXPECT_EQ(int8_panels_kernel(Isa::Scalar), &int8_panels_sums_ref);
  EXPECT_EQ(int8_panels_kernel(Isa::Avx2), &int8_panels_sums_avx2);
  const int64_t out = 61;  // three panels and a partial one (13 columns)
  constexpr int32_t kUnset = -7;
  for (int64_t in : {int64_t{1}, int64_t{2}, int64_t{7}, int64_t{767}, int64_t{768}, int64_t{769}, int64_t{1601}})
    for (int64_t rows : {int64_t{1}, int64_t{2}, int64_t{3}, int64_t{4}, int64_t{5}, int64_t{6}, int64_t{7},
                         int64_t{8}, int64_t{13}, int64_t{128}, int64_t{131}, int64_t{133}, int64_t{280}})
      for (bool extreme : {false, true}) {
        if (in == 1601 && rows > 13) continue;  // the plain loop over every product would dominate the suite
        const PanelCodes c = random_panel_codes(rows, out, in, static_cast<uint32_t>(in * 1000 + rows), extreme);
        std::vector<int32_t> want(static_cast<std::size_t>(rows * out)), got(want.size(), kUnset);
        int8_panels_sums_ref(c.x.data(), rows, in, c.w.data(), out, want.data(), 0, 4);
        // The panels in two ranges, as two threads would take them.
        int8_panels_sums_avx2(c.x.data(), rows, in, c.w.data(), out, got.data(), 0, 1);
        int8_panels_sums_avx2(c.x.data(), rows, in, c.w.data(), out, got.data(), 1, 4);
        ASSERT_EQ(got, want) << "in " << in << " rows " << rows << " extreme " << extreme;
        // One range alone leaves the other columns untouched, the padding included.
        std::vector<int32_t> part(want.size(), kUnset);
        int8_panels_sums_avx2(c.x.data(), rows, in, c.w.data(), out, part.data(), 1, 2);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t n = 0; n < out; ++n)
            ASSERT_EQ(part[r * out + n], n >= 16 && n < 32 ? want[r * out + n] : kUnset) << r << "," << n;
      }
}

TEST(Int8Panels, ThreadedSumsAreTheSameAtAnyTeamSize) {
  const int64_t rows = 37, out = 200, in = 901;
  const PanelCodes c = random_panel_codes(rows, out, in, 11, false);
  std::vector<int32_t> want(static_cast<std::size_t>(rows * out));
  int8_panels_sums_ref(c.x.data(), rows, in, c.w.data(), out, want.data(), 0, 13);
  for (Isa isa : supported_isas())
    for (int threads : {1, 2, 3, 16}) {
      ExecContext ctx;
      ctx.isa = isa;
      ctx.threads = threads;
      std::vector<int32_t> got(want.size(), -1);
      int8_panels_sums(c.x.data(), rows, in, c.w.data(), out, got.data(), ctx);
      ASSERT_EQ(got, want) << isa_name(isa) << " threads " << threads;
    }
  ExecContext ctx;
  std::vector<int32_t> untouched(want.size(), 7);
  int8_panels_sums(c.x.data(), 0, in, c.w.data(), out, untouched.data(), ctx);
  EXPECT_EQ(untouched[0], 7);  // no rows: nothing written
}

}  // namespace
}  // namespace roformer::kernels
