// Few-row products on blocked weights (the decoding step's): the layouts'
// packers against the offsets they document, the plain loop against a
// double-accumulated product on nn.Linear weights, the vector loops against
// the plain one, the int8 sums against exact ones, and the threaded
// product's independence of the thread count.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/blocked_gemv.h"
#include "kernels/packed_matmul.h"
#include "roformer/dtype.h"
#include "roformer/error.h"
#include "support/test_support.h"

namespace roformer::kernels {
namespace {

using roformer::testing::max_scaled_diff;
using roformer::testing::random_floats;

struct GemvShape {
  int64_t out, in;
};
// Widths with tails everywhere: K not a multiple of 16 or 32 (odd too), N
// not a multiple of 16 or 64, and a real layer's.
const GemvShape kGemvShapes[] = {{1, 1}, {5, 3}, {64, 16}, {100, 33}, {200, 77}, {768, 768}};

float round_bf16(float v) { return bf16_to_f32(f32_to_bf16(v)); }

struct Packed {
  std::vector<float> f32;
  std::vector<uint16_t> bf16;
  BlockedWeights view(BlockedLayout layout, const GemvShape& s) const {
    const int64_t block = blocked_k_block(layout);
    const void* data = layout == BlockedLayout::F32x16x64 ? static_cast<const void*>(f32.data())
                                                           : static_cast<const void*>(bf16.data());
    return BlockedWeights{layout, data, s.in, s.out, (s.in + block - 1) / block * block};
  }
};

TEST(BlockedGemv, PackersPutEachValueWhereTheLayoutSays) {
  const GemvShape s{130, 37};
  const auto w = random_floats(static_cast<std::size_t>(s.out * s.in), 1);
  const Packed p{pack_blocked_f32(w.data(), s.out, s.in), pack_blocked_bf16(w.data(), s.out, s.in)};
  // Three panels over K padded to 48 (fp32) or 64 (bf16).
  EXPECT_EQ(p.f32.size(), 3u * 64 * 48);
  EXPECT_EQ(p.bf16.size(), 3u * 64 * 64);
  const BlockedWeights f = p.view(BlockedLayout::F32x16x64, s), b = p.view(BlockedLayout::Bf16x32x64, s);
  for (int64_t n = 0; n < s.out; ++n)
    for (int64_t k = 0; k < s.in; ++k) {
      const float v = w[static_cast<std::size_t>(n * s.in + k)];
      ASSERT_EQ(p.f32[static_cast<std::size_t>((n / 64) * 48 * 64 + k * 64 + n % 64)], v) << n << " " << k;
      ASSERT_EQ(p.bf16[static_cast<std::size_t>((n / 64) * 64 * 64 + (k / 2) * 128 + (n % 64) * 2 + k % 2)],
                f32_to_bf16(v).bits);
      ASSERT_EQ(blocked_offset(f, k, n), (n / 64) * 48 * 64 + k * 64 + n % 64);
      ASSERT_EQ(blocked_offset(b, k, n), (n / 64) * 64 * 64 + (k / 2) * 128 + (n % 64) * 2 + k % 2);
    }
  // Padding stays zero: the last panel's columns past N, the rows past K.
  double padding = 0;
  for (int64_t k = 0; k < 48; ++k)
    for (int64_t n = 130; n < 192; ++n) padding += std::fabs(p.f32[static_cast<std::size_t>(2 * 48 * 64 + k * 64 + n % 64)]);
  for (int64_t k = 37; k < 48; ++k)
    for (int64_t n = 0; n < 64; ++n) padding += std::fabs(p.f32[static_cast<std::size_t>(k * 64 + n)]);
  EXPECT_EQ(padding, 0.0);
}

// The plain loop on both layouts against products accumulated in double on
// the weights as given (fp32), or on the bf16-rounded inputs (bf16).
TEST(BlockedGemv, PlainLoopEqualsDoubleAccumulatedProducts) {
  for (const GemvShape& s : kGemvShapes) {
    const auto w = random_floats(static_cast<std::size_t>(s.out * s.in), 2);
    const auto bias = random_floats(static_cast<std::size_t>(s.out), 3);
    const Packed p{pack_blocked_f32(w.data(), s.out, s.in), pack_blocked_bf16(w.data(), s.out, s.in)};
    for (int64_t rows = 1; rows <= kGemvMaxRows; ++rows) {
      const auto x = random_floats(static_cast<std::size_t>(rows * s.in), 4);
      std::vector<uint16_t> xb(x.size());
      for (std::size_t i = 0; i < x.size(); ++i) xb[i] = f32_to_bf16(x[i]).bits;
      for (bool with_bias : {false, true}) {
        const float* b = with_bias ? bias.data() : nullptr;
        std::vector<float> want32(static_cast<std::size_t>(rows * s.out)), want16(want32.size());
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t n = 0; n < s.out; ++n) {
            double a32 = with_bias ? bias[n] : 0.0, a16 = a32;
            for (int64_t k = 0; k < s.in; ++k) {
              const float xv = x[static_cast<std::size_t>(r * s.in + k)], wv = w[static_cast<std::size_t>(n * s.in + k)];
              a32 += static_cast<double>(xv) * wv;
              a16 += static_cast<double>(round_bf16(xv)) * round_bf16(wv);
            }
            want32[static_cast<std::size_t>(r * s.out + n)] = static_cast<float>(a32);
            want16[static_cast<std::size_t>(r * s.out + n)] = static_cast<float>(a16);
          }
        std::vector<float> got32(want32.size(), -7.0f), got16(want32.size(), -7.0f);
        const int64_t panels = (s.out + 63) / 64;
        blocked_gemv_ref(p.view(BlockedLayout::F32x16x64, s), x.data(), rows, b, got32.data(), 0, panels);
        blocked_gemv_ref(p.view(BlockedLayout::Bf16x32x64, s), xb.data(), rows, b, got16.data(), 0, panels);
        // fp32 sums of up to 768 terms of magnitude <= 1.
        EXPECT_LE(max_scaled_diff(got32, want32), 2e-6) << s.out << "x" << s.in << " rows " << rows;
        EXPECT_LE(max_scaled_diff(got16, want16), 2e-6) << s.out << "x" << s.in << " rows " << rows;
      }
    }
  }
}

TEST(BlockedGemv, VectorLoopsMatchThePlainOne) {
  if (!isa_supported(Isa::Avx512)) GTEST_SKIP() << "this CPU has no AVX-512; the plain loop runs everywhere";
  for (const GemvShape& s : kGemvShapes) {
    const auto w = random_floats(static_cast<std::size_t>(s.out * s.in), 5);
    const auto bias = random_floats(static_cast<std::size_t>(s.out), 6);
    const Packed p{pack_blocked_f32(w.data(), s.out, s.in), pack_blocked_bf16(w.data(), s.out, s.in)};
    const int64_t panels = (s.out + 63) / 64;
    for (int64_t rows = 1; rows <= kGemvMaxRows; ++rows) {
      const auto x = random_floats(static_cast<std::size_t>(rows * s.in), 7);
      std::vector<uint16_t> xb(x.size());
      for (std::size_t i = 0; i < x.size(); ++i) xb[i] = f32_to_bf16(x[i]).bits;
      std::vector<float> want(static_cast<std::size_t>(rows * s.out)), got(want.size(), -7.0f);
      // fp32: one fused multiply-add chain per column in k order, as the plain loop: the same bits.
      const BlockedWeights f = p.view(BlockedLayout::F32x16x64, s);
      blocked_gemv_ref(f, x.data(), rows, bias.data(), want.data(), 0, panels);
      blocked_gemv_f32_avx512(f, x.data(), rows, bias.data(), got.data(), 0, panels);
      EXPECT_EQ(got, want) << s.out << "x" << s.in << " rows " << rows;
      if (!cpu_has_avx512_bf16()) continue;
      // bf16: vdpbf16ps adds a pair's two exact products in its own order (and
      // flushes denormals); the plain loop adds them one at a time.
      const BlockedWeights b = p.view(BlockedLayout::Bf16x32x64, s);
      std::fill(got.begin(), got.end(), -7.0f);
      blocked_gemv_ref(b, xb.data(), rows, bias.data(), want.data(), 0, panels);
      blocked_gemv_bf16_avx512bf16(b, xb.data(), rows, bias.data(), got.data(), 0, panels);
      EXPECT_LE(max_scaled_diff(got, want), 2e-6) << s.out << "x" << s.in << " rows " << rows;
      EXPECT_NE(got[0], -7.0f);
    }
  }
}

// Panels in fixed chunks, one thread each: the same bits for any count; and
// the kernel a context picks.
TEST(BlockedGemv, ThreadedProductIsIndependentOfTheThreadCount) {
  const GemvShape s{1000, 96};
  const auto w = random_floats(static_cast<std::size_t>(s.out * s.in), 8);
  const auto bias = random_floats(static_cast<std::size_t>(s.out), 9);
  const Packed p{pack_blocked_f32(w.data(), s.out, s.in), pack_blocked_bf16(w.data(), s.out, s.in)};
  for (BlockedLayout layout : {BlockedLayout::F32x16x64, BlockedLayout::Bf16x32x64}) {
    const BlockedWeights v = p.view(layout, s);
    const auto x = random_floats(static_cast<std::size_t>(3 * s.in), 10);
    std::vector<uint16_t> xb(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) xb[i] = f32_to_bf16(x[i]).bits;
    const void* xin = layout == BlockedLayout::F32x16x64 ? static_cast<const void*>(x.data())
                                                          : static_cast<const void*>(xb.data());
    std::vector<float> one(static_cast<std::size_t>(3 * s.out), -7.0f), three(one.size(), -8.0f);
    blocked_gemv(v, xin, 3, bias.data(), one.data(), ExecContext{1});
    blocked_gemv(v, xin, 3, bias.data(), three.data(), ExecContext{3});
    EXPECT_EQ(one, three) << static_cast<int>(layout);
    std::vector<float> plain(one.size());
    blocked_gemv(v, xin, 3, bias.data(), plain.data(), ExecContext{2, Isa::Scalar});
    EXPECT_LE(max_scaled_diff(one, plain), 2e-6);
    EXPECT_EQ(blocked_gemv_kernel(layout, Isa::Scalar), &blocked_gemv_ref);
  }
  std::vector<float> y(static_cast<std::size_t>(s.out) * 8);
  const std::vector<float> x(static_cast<std::size_t>(s.in) * 8, 1.0f);
  EXPECT_THROW(blocked_gemv(p.view(BlockedLayout::F32x16x64, s), x.data(), kGemvMaxRows + 1, nullptr, y.data(),
                            ExecContext{1}),
               Error);
  EXPECT_THROW(blocked_gemv(p.view(BlockedLayout::F32x16x64, s), x.data(), 0, nullptr, y.data(), ExecContext{1}),
               Error);
}

// int8: the packer against the offsets the layout documents, and every loop
// against exact sums on the weights as given (nn.Linear's layout): integer
// sums, so equal, for every width, row count and range of panels.
TEST(BlockedGemv, Int8SumsAreExactOnEveryLoop) {
  std::vector<BlockedSumsKernel> loops{&blocked_sums_ref};
  if (cpu_has_avx512_vnni()) loops.push_back(&blocked_sums_s8_avx512vnni);
  EXPECT_EQ(blocked_sums_kernel(Isa::Scalar), &blocked_sums_ref);
  if (isa_supported(Isa::Avx512)) {
    EXPECT_EQ(blocked_sums_kernel(Isa::Avx512), loops.back());
  }
  EXPECT_THROW(blocked_gemv_kernel(BlockedLayout::S8x64x64, Isa::Scalar), Error);
  uint32_t state = 12345;
  auto next = [&state] {
    state = state * 1664525u + 1013904223u;
    return state >> 8;
  };
  for (const GemvShape& s : kGemvShapes) {
    std::vector<int8_t> w(static_cast<std::size_t>(s.out * s.in));
    // The extremes included: 255 * -127 and 255 * 127 summed over the depth.
    for (auto& v : w) v = static_cast<int8_t>(static_cast<int>(next() % 255) - 127);
    w[0] = 127;
    w.back() = -127;
    const auto packed = pack_blocked_s8(w.data(), s.out, s.in);
    const int64_t padded_in = (s.in + 63) / 64 * 64, panels = (s.out + 63) / 64;
    ASSERT_EQ(packed.size(), static_cast<std::size_t>(panels * 64 * padded_in));
    const BlockedWeights view{BlockedLayout::S8x64x64, packed.data(), s.in, s.out, padded_in};
    for (int64_t n = 0; n < s.out; ++n)
      for (int64_t k = 0; k < s.in; ++k) {
        const int64_t at = (n / 64) * padded_in * 64 + (k / 4) * 256 + (n % 64) * 4 + k % 4;
        ASSERT_EQ(blocked_offset(view, k, n), at);
        ASSERT_EQ(packed[static_cast<std::size_t>(at)], w[static_cast<std::size_t>(n * s.in + k)]);
      }
    for (int64_t rows = 1; rows <= kGemvMaxRows; ++rows) {
      std::vector<uint8_t> x(static_cast<std::size_t>(rows * s.in));
      for (auto& v : x) v = static_cast<uint8_t>(next() % 256);
      x[0] = 255;
      std::vector<int32_t> want(static_cast<std::size_t>(rows * s.out));
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t n = 0; n < s.out; ++n) {
          int32_t sum = 0;
          for (int64_t k = 0; k < s.in; ++k)
            sum += int32_t{x[static_cast<std::size_t>(r * s.in + k)]} * w[static_cast<std::size_t>(n * s.in + k)];
          want[static_cast<std::size_t>(r * s.out + n)] = sum;
        }
      for (BlockedSumsKernel loop : loops) {
        std::vector<int32_t> got(want.size(), -7);
        loop(view, x.data(), rows, got.data(), 0, panels);
        EXPECT_EQ(got, want) << s.out << "x" << s.in << " rows " << rows;
        // The last panel alone: its columns and nothing else.
        std::vector<int32_t> part(want.size(), -7);
        loop(view, x.data(), rows, part.data(), panels - 1, panels);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t n = 0; n < s.out; ++n) {
            const auto i = static_cast<std::size_t>(r * s.out + n);
            ASSERT_EQ(part[i], n >= (panels - 1) * 64 ? want[i] : -7) << s.out << "x" << s.in << " " << r << " " << n;
          }
      }
    }
  }
}

// oneDNN packs weights for its AVX-512 kernels (fp32; bf16 on AVX512-BF16;
// int8 on AVX512-VNNI) in the layouts these loops read, and PackedMatmul recognises them from the
// descriptor: decoding takes this path. (On AMX, oneDNN may pick another bf16
// layout; the products then stay oneDNN's.)
TEST(BlockedGemv, PackedWeightsOnAvx512StreamThroughIt) {
  if (!isa_supported(Isa::Avx512)) GTEST_SKIP() << "oneDNN packs other layouts without AVX-512";
  ExecContext ctx{1};
  ctx.isa = Isa::Avx512;
  const auto w = random_floats(768 * 200, 11);
  const PackedMatmul f32(w.data(), 200, 768, MatmulPrecision::F32);
  EXPECT_TRUE(f32.streams_few_rows(ctx)) << f32.kernel_name();
  const PackedMatmul bf16(w.data(), 200, 768, MatmulPrecision::Bf16);
  if (bf16.kernel_name() == "brg:avx512_core_bf16") {
    EXPECT_TRUE(bf16.streams_few_rows(ctx));
  }
  // int8 on AVX512-VNNI: u8 activations, so oneDNN adds no compensation to the layout.
  const PackedMatmul int8(w.data(), 200, 768, MatmulPrecision::Int8);
  if (int8.kernel_name() == "brg:avx512_core_vnni") {
    EXPECT_TRUE(int8.streams_few_rows(ctx));
  }
  const PackedMatmul emulated(w.data(), 200, 768, MatmulPrecision::F32, true);
  EXPECT_FALSE(emulated.streams_few_rows(ctx));
  const PackedMatmul emulated_int8(w.data(), 200, 768, MatmulPrecision::Int8, true);
  EXPECT_FALSE(emulated_int8.streams_few_rows(ctx));
}

// The blocked layouts are oneDNN's, packed for the CPU whatever isa a
// context names. A product of a few rows streams them through our loops only
// where the context's isa has a vector loop for the layout (or is Scalar,
// which asks for the plain loops); otherwise oneDNN's own product runs, as
// for longer inputs. Under --isa avx2 on an AVX-512 CPU, decoding once ran
// every weight product through the plain loop (generating took 11x as long).
TEST(BlockedGemv, FewRowsStreamOnlyThroughAVectorLoopOrWhenScalarIsAsked) {
  const int64_t out = 200, in = 768;
  const auto w = random_floats(static_cast<std::size_t>(out * in), 12);
  const auto x = random_floats(static_cast<std::size_t>(kGemvMaxRows * in), 13);
  const auto bias = random_floats(static_cast<std::size_t>(out), 14);
  int vector_streams = 0;
  for (const MatmulPrecision precision : {MatmulPrecision::F32, MatmulPrecision::Bf16, MatmulPrecision::Int8}) {
    const PackedMatmul m(w.data(), out, in, precision);
    std::vector<float> want;  // the product under the first isa, Scalar (the plain loops)
    for (const Isa isa : supported_isas()) {
      ExecContext ctx{1};
      ctx.isa = isa;
      const bool streams = m.streams_few_rows(ctx);
      // Only AVX-512 has loops for oneDNN's blocked layouts.
      if (streams && isa != Isa::Scalar) {
        EXPECT_EQ(isa, Isa::Avx512) << m.kernel_name();
        ++vector_streams;
      }
      if (isa_supported(Isa::Avx512) && isa == Isa::Avx2) {
        EXPECT_FALSE(streams) << m.kernel_name();
      }
      // Whichever code runs, one row still gets the same product.
      std::vector<float> y(static_cast<std::size_t>(out));
      m.forward(x.data(), 1, bias.data(), y.data(), ctx);
      if (want.empty()) {
        want = y;
        continue;
      }
      for (int64_t n = 0; n < out; ++n) {
        const auto i = static_cast<std::size_t>(n);
        ASSERT_NEAR(y[i], want[i], 1e-4f * (1.0f + std::fabs(want[i]))) << isa_name(isa) << " column " << n;
      }
    }
  }
  // On AVX-512, oneDNN's fp32 layout is one our loop reads: the fast path is kept.
  if (isa_supported(Isa::Avx512)) {
    EXPECT_GE(vector_streams, 1);
  }
}

}  // namespace
}  // namespace roformer::kernels
