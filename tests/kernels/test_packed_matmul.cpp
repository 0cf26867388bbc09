// Products with packed weights, fp32 and bf16 (oneDNN, or the fallback path
// on CPUs without native bf16), against double-accumulated references, with
// and without the fused epilogue (activation, residual add); prepared inputs,
// and products of one input run together.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "kernels/epilogue_cases.h"
#include "kernels/f32_panels.h"
#include "kernels/gemm.h"
#include "kernels/packed_matmul.h"
#include "roformer/dtype.h"
#include "roformer/error.h"
#include "support/test_support.h"

namespace roformer::kernels {
namespace {

using roformer::testing::max_scaled_diff;
using roformer::testing::random_floats;

// The code behind native bf16 products this CPU has for an input width.
std::vector<Bf16Kernel> bf16_kernels(int64_t in) {
  std::vector<Bf16Kernel> kernels{Bf16Kernel::Library};
  if (cpu_has_avx512_bf16() && in % 2 == 0) kernels.push_back(Bf16Kernel::Panels);
  return kernels;
}

TEST(PackedMatmulBf16, WeightsAreRoundedToNearestEven) {
  const int64_t out = 37, in = 53;
  auto w = random_floats(static_cast<std::size_t>(out * in), 11);
  // Values exactly halfway between two bf16 numbers: ties go to the even one.
  w[0] = bf16_to_f32(bf16{0x3f80}) + std::ldexp(1.0f, -8);  // 1 + half an ulp -> 1
  w[1] = bf16_to_f32(bf16{0x3f81}) + std::ldexp(1.0f, -8);  // odd + half -> next even
  for (bool emulate : {false, true}) {
    const PackedMatmul m(w.data(), out, in, MatmulPrecision::Bf16, emulate);
    EXPECT_EQ(m.out_features(), out);
    EXPECT_EQ(m.in_features(), in);
    EXPECT_EQ(m.emulated(), emulate || !PackedMatmul::native_bf16()) << m.kernel_name();
    std::vector<float> back(w.size());
    m.unpack(back.data());
    for (std::size_t i = 0; i < w.size(); ++i) ASSERT_EQ(back[i], bf16_to_f32(f32_to_bf16(w[i]))) << i;
    EXPECT_EQ(back[0], 1.0f);
    EXPECT_EQ(back[1], bf16_to_f32(bf16{0x3f82}));
  }
}

TEST(PackedMatmulBf16, EqualsReferenceOnRoundedInputs) {
  // Shapes of a tiny and a real layer; rows 1 (decoding), odd and large.
  struct Case {
    int64_t out, in;
  };
  for (const Case c : {Case{5, 3}, Case{96, 64}, Case{130, 2}, Case{768, 300}}) {
    auto w = random_floats(static_cast<std::size_t>(c.out * c.in), 21);
    auto bias = random_floats(static_cast<std::size_t>(c.out), 22);
    for (bool emulate : {false, true})
    for (Bf16Kernel kernel : bf16_kernels(c.in)) {
    const PackedMatmul m(w.data(), c.out, c.in, MatmulPrecision::Bf16, emulate, kernel);
    EXPECT_EQ(m.bf16_panels(), !emulate && kernel == Bf16Kernel::Panels) << m.kernel_name();
    // 1 to 4 rows: a decoding step's, through the streaming loop where it applies.
    for (int64_t rows : {int64_t{1}, int64_t{2}, int64_t{4}, int64_t{7}, int64_t{130}, int64_t{400}}) {
      auto x = random_floats(static_cast<std::size_t>(rows * c.in), 23);
      for (bool with_bias : {false, true}) {
        std::vector<float> want(static_cast<std::size_t>(rows * c.out));
        gemm_bf16_ref(x.data(), rows, w.data(), c.out, c.in, with_bias ? bias.data() : nullptr, want.data());
        for (int threads : {1, 2}) {
          std::vector<float> got(want.size(), -7.0f);
          m.forward(x.data(), rows, with_bias ? bias.data() : nullptr, got.data(), ExecContext{threads});
          // Same bf16 products; only the fp32 accumulation order differs
          // (|terms| <= 1, at most 300 of them).
          EXPECT_LE(max_scaled_diff(got, want), 2e-5)
              << "out=" << c.out << " in=" << c.in << " rows=" << rows << " bias=" << with_bias << " threads=" << threads
              << " " << m.kernel_name();
        }
      }
    }
    }
  }
}

TEST(PackedMatmulBf16, EmulatedProductIsThePanelsLoopOnRoundedActivations) {
  // Two input blocks, a partial panel, and more rows than one block of
  // rounded activations (256): bit for bit the panels' plain loop on the
  // bf16 values of x, and near the double-precision reference.
  const int64_t out = 40, in = 800;
  auto w = random_floats(static_cast<std::size_t>(out * in), 41);
  auto bias = random_floats(static_cast<std::size_t>(out), 42);
  const PackedMatmul m(w.data(), out, in, MatmulPrecision::Bf16, true);
  ASSERT_TRUE(m.emulated());
  const HugePageVector<uint16_t> panels = pack_bf16_weight_panels(w.data(), out, in);
  for (int64_t rows : {int64_t{1}, int64_t{3}, int64_t{300}}) {
    auto x = random_floats(static_cast<std::size_t>(rows * in), 43);
    std::vector<float> rounded(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) rounded[i] = bf16_to_f32(f32_to_bf16(x[i]));
    std::vector<float> chain(static_cast<std::size_t>(rows * out)), near(chain.size());
    bf16_weight_panels_product_ref(rounded.data(), rows, in, panels.data(), out, bias.data(), chain.data(), 0,
                                   f32_panels_padded_out(out) / kF32PanelWidth);
    gemm_bf16_ref(x.data(), rows, w.data(), out, in, bias.data(), near.data());
    for (int threads : {1, 2}) {
      std::vector<float> got(chain.size(), -7.0f);
      m.forward(x.data(), rows, bias.data(), got.data(), ExecContext{threads});
      EXPECT_EQ(got, chain) << "rows=" << rows << " threads=" << threads;
      EXPECT_LE(max_scaled_diff(got, near), 2e-5) << "rows=" << rows;
    }
  }
}

TEST(PackedMatmulBf16, IsCloseToFp32AsBf16RoundingPredicts) {
  // bf16 keeps 8 significant bits: each product carries a relative error of
  // about 2^-8, and over K random-sign terms the sum's error grows like sqrt(K).
  const int64_t out = 64, in = 256, rows = 32;
  auto w = random_floats(static_cast<std::size_t>(out * in), 31);
  auto x = random_floats(static_cast<std::size_t>(rows * in), 32);
  std::vector<float> exact(static_cast<std::size_t>(rows * out)), got(exact.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double acc = 0;
      for (int64_t i = 0; i < in; ++i) acc += static_cast<double>(x[r * in + i]) * w[o * in + i];
      exact[r * out + o] = static_cast<float>(acc);
    }
  const PackedMatmul m(w.data(), out, in, MatmulPrecision::Bf16);
  m.forward(x.data(), rows, nullptr, got.data(), ExecContext{1});
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(static_cast<double>(got[i]) - exact[i]));
  EXPECT_GT(worst, 1e-5);  // it really is reduced precision
  EXPECT_LT(worst, 8.0 * std::sqrt(static_cast<double>(in)) * std::ldexp(1.0, -8) / 3.0);
}

TEST(PackedMatmul, BadShapesAreClearErrors) {
  const std::vector<float> w(6, 1.0f);
  EXPECT_THROW(PackedMatmul(w.data(), 0, 6, MatmulPrecision::F32), Error);
  // Pairs of input features need an even width.
  EXPECT_THROW(PackedMatmul(w.data(), 2, 3, MatmulPrecision::Bf16, false, Bf16Kernel::Panels), Error);
  const PackedMatmul m(w.data(), 2, 3, MatmulPrecision::Bf16);
  float y = 0;
  EXPECT_THROW(m.forward(w.data(), -1, nullptr, &y, ExecContext{1}), Error);
  m.forward(w.data(), 0, nullptr, &y, ExecContext{1});  // nothing to do
  EXPECT_EQ(y, 0.0f);
}

// fp32 packs: the same weights bit for bit, and the product of the plain
// fp32 GEMM up to accumulation order.
TEST(PackedMatmulF32, EqualsReference) {
  struct Case {
    int64_t out, in;
  };
  for (const Case c : {Case{5, 3}, Case{96, 64}, Case{768, 300}}) {
    auto w = random_floats(static_cast<std::size_t>(c.out * c.in), 41);
    auto bias = random_floats(static_cast<std::size_t>(c.out), 42);
    for (bool emulate : {false, true}) {
      const PackedMatmul m(w.data(), c.out, c.in, MatmulPrecision::F32, emulate);
      EXPECT_EQ(m.emulated(), emulate) << m.kernel_name();
      EXPECT_EQ(m.uses_f32_panels(), !emulate && PackedMatmul::own_f32_panels()) << m.kernel_name();
      const HugePageVector<float> panels = pack_f32_panels(w.data(), c.out, c.in);
      std::vector<float> back(w.size());
      m.unpack(back.data());
      EXPECT_EQ(back, w);
      for (int64_t rows : {int64_t{1}, int64_t{3}, int64_t{4}, int64_t{7}, int64_t{130}}) {
        auto x = random_floats(static_cast<std::size_t>(rows * c.in), 43);
        for (bool with_bias : {false, true}) {
          std::vector<float> want(static_cast<std::size_t>(rows * c.out));
          if (with_bias)
            for (int64_t r = 0; r < rows; ++r) std::copy(bias.begin(), bias.end(), want.begin() + r * c.out);
          gemm_ref(false, true, rows, c.out, c.in, 1.0f, x.data(), c.in, w.data(), c.in, with_bias ? 1.0f : 0.0f,
                   want.data(), c.out);
          for (int threads : {1, 2}) {
            std::vector<float> got(want.size(), -7.0f);
            m.forward(x.data(), rows, with_bias ? bias.data() : nullptr, got.data(), ExecContext{threads});
            EXPECT_LE(max_scaled_diff(got, want), 2e-6)
                << "out=" << c.out << " in=" << c.in << " rows=" << rows << " bias=" << with_bias
                << " threads=" << threads << " " << m.kernel_name();
            if (m.uses_f32_panels()) {  // our panels: exactly their plain loop's chain of sums
              std::vector<float> chain(want.size());
              f32_panels_product_ref(x.data(), rows, c.in, panels.data(), c.out, with_bias ? bias.data() : nullptr,
                                     chain.data(), 0, f32_panels_padded_out(c.out) / kF32PanelWidth);
              EXPECT_EQ(got, chain) << "out=" << c.out << " in=" << c.in << " rows=" << rows;
            }
          }
        }
      }
    }
  }
}

// The fused epilogue equals the product followed by the separate passes:
// every activation, with and without a residual, both precisions, packed
// and fallback paths.
TEST(PackedMatmul, FusedEpilogueEqualsSeparatePasses) {
  const int64_t out = 200, in = 96;
  auto w = random_floats(static_cast<std::size_t>(out * in), 51);
  auto bias = random_floats(static_cast<std::size_t>(out), 52);
  for (MatmulPrecision precision : {MatmulPrecision::F32, MatmulPrecision::Bf16})
    for (bool emulate : {false, true})
      for (Bf16Kernel kernel : bf16_kernels(in)) {
      const PackedMatmul m(w.data(), out, in, precision, emulate, kernel);
      for (int64_t rows : {int64_t{1}, int64_t{4}, int64_t{33}}) {
        auto x = random_floats(static_cast<std::size_t>(rows * in), 53);
        auto residual = random_floats(static_cast<std::size_t>(rows * out), 54);
        std::vector<float> plain(static_cast<std::size_t>(rows * out));
        m.forward(x.data(), rows, bias.data(), plain.data(), ExecContext{1});
        for (const auto& [e, name] : every_epilogue(residual.data())) {
          std::vector<float> want = plain;
          apply_epilogue(want.data(), rows, out, e, ExecContext{1, Isa::Scalar});
          std::vector<float> got(want.size(), -7.0f);
          m.forward(x.data(), rows, bias.data(), got.data(), ExecContext{2}, e);
          // oneDNN's erf/tanh differ from libm's in the last bits.
          EXPECT_LE(max_scaled_diff(got, want), 2e-6) << "precision=" << static_cast<int>(precision)
                                                      << " emulate=" << emulate << " rows=" << rows << " " << name
                                                      << " " << m.kernel_name();
        }
      }
    }
}

// Prepared activations (PackedInput): the same bits as the plain forward,
// for every precision on both paths, and one preparation serves a second
// product of the same input width, as Q, K and V share theirs.
TEST(PackedInput, PreparedActivationsGiveTheSameBitsAsThePlainForward) {
  const int64_t out = 96, in = 80, rows = 37;
  const auto w1 = random_floats(static_cast<std::size_t>(out * in), 61);
  const auto w2 = random_floats(static_cast<std::size_t>(out * in), 62);
  const auto bias = random_floats(static_cast<std::size_t>(out), 63);
  const auto x = random_floats(static_cast<std::size_t>(rows * in), 64);
  for (MatmulPrecision precision : {MatmulPrecision::F32, MatmulPrecision::Bf16, MatmulPrecision::Int8})
    for (bool emulate : {false, true}) {
      const PackedMatmul m1(w1.data(), out, in, precision, emulate), m2(w2.data(), out, in, precision, emulate);
      for (int threads : {1, 2}) {
        const ExecContext ctx{threads};
        PackedInput input;
        m1.prepare(x.data(), rows, input, ctx);
        EXPECT_EQ(input.rows(), rows);
        EXPECT_EQ(input.features(), in);
        for (const PackedMatmul* m : {&m1, &m2}) {
          std::vector<float> want(static_cast<std::size_t>(rows * out)), got(want.size(), -7.0f);
          m->forward(x.data(), rows, bias.data(), want.data(), ctx);
          m->forward(input, bias.data(), got.data(), ctx);
          EXPECT_EQ(got, want) << "precision " << static_cast<int>(precision) << " emulate " << emulate << " threads "
                               << threads << (m == &m2 ? " (second product)" : "");
        }
      }
    }
}

// A feed-forward block y = down(gelu(up(x))) + residual, run with the fp32
// hand-over (want) and with up storing its output prepared for down (got).
struct FeedForwardRun {
  static constexpr int64_t kHidden = 64, kInner = 160, kRows = 41;
  int64_t rows = kRows;  // kRows at most
  std::vector<float> w_up = random_floats(static_cast<std::size_t>(kInner * kHidden), 71);
  std::vector<float> w_down = random_floats(static_cast<std::size_t>(kHidden * kInner), 72);
  std::vector<float> b_up = random_floats(static_cast<std::size_t>(kInner), 73);
  std::vector<float> b_down = random_floats(static_cast<std::size_t>(kHidden), 74);
  std::vector<float> x = random_floats(static_cast<std::size_t>(kRows * kHidden), 75);
  std::vector<float> residual = random_floats(static_cast<std::size_t>(kRows * kHidden), 76);
  std::vector<float> want, got;

  void run(const PackedMatmul& up, const PackedMatmul& down, const ExecContext& ctx) {
    const Epilogue gelu{Activation::Gelu, nullptr}, add{std::nullopt, residual.data()};
    std::vector<float> h(static_cast<std::size_t>(rows * kInner));
    want.assign(static_cast<std::size_t>(rows * kHidden), 0.0f);
    got.assign(want.size(), -7.0f);
    up.forward(x.data(), rows, b_up.data(), h.data(), ctx, gelu);
    down.forward(h.data(), rows, b_down.data(), want.data(), ctx, add);
    PackedInput input, between;
    up.prepare(x.data(), rows, input, ctx);
    up.forward(input, b_up.data(), between, ctx, gelu);
    EXPECT_EQ(between.rows(), rows);
    EXPECT_EQ(between.features(), kInner);
    down.forward(between, b_down.data(), got.data(), ctx, add);
  }
};

// A native bf16 product storing its output as bf16 for the next product
// gives what the fp32 output converted to bf16 gives.
TEST(PackedInput, Bf16OutputFeedsTheNextProduct) {
  if (!PackedMatmul::native_bf16()) GTEST_SKIP() << "no native bf16 products on this CPU";
  FeedForwardRun f;
  for (Bf16Kernel kernel : bf16_kernels(f.kHidden)) {
    const PackedMatmul up(f.w_up.data(), f.kInner, f.kHidden, MatmulPrecision::Bf16, false, kernel);
    const PackedMatmul down(f.w_down.data(), f.kHidden, f.kInner, MatmulPrecision::Bf16, false, kernel);
    ASSERT_TRUE(up.feeds(down));
    EXPECT_FALSE(down.feeds(down));  // input width 160, output 64
    // 2 rows: a decoding step's, through the streaming loop where it applies.
    for (int64_t rows : {int64_t{2}, f.kRows})
      for (int threads : {1, 2}) {
        f.rows = rows;
        f.run(up, down, ExecContext{threads});
        // Both round the same fp32 GELU outputs to bf16 once; the second product
        // then multiplies the same bf16 values.
        EXPECT_LE(max_scaled_diff(f.got, f.want), 1e-6) << rows << " rows, " << threads << " thread(s), "
                                                        << up.kernel_name();
      }
  }
}

// An int8 product quantizing its output for the next int8 product, chunk by
// chunk as it rescales, gives the same bits as the fp32 output quantized by
// the next product itself, on the oneDNN and the fallback path.
TEST(PackedInput, Int8OutputFeedsTheNextProductBitForBit) {
  FeedForwardRun f;
  for (bool emulate : {false, true}) {
    const PackedMatmul up(f.w_up.data(), f.kInner, f.kHidden, MatmulPrecision::Int8, emulate);
    const PackedMatmul down(f.w_down.data(), f.kHidden, f.kInner, MatmulPrecision::Int8, !emulate);
    ASSERT_TRUE(up.feeds(down));  // either path reads the other's codes
    // 3 rows: a decoding step's, through the streaming loop where it applies.
    for (int64_t rows : {int64_t{3}, f.kRows})
      for (int threads : {1, 2}) {
        f.rows = rows;
        f.run(up, down, ExecContext{threads});
        EXPECT_EQ(f.got, f.want) << "emulate " << emulate << ", " << threads << " thread(s), rows " << rows;
      }
  }
}

// Products of one prepared input run together (a layer's Q, K and V) give
// each product's own bits, whether they stream in one region (1-4 rows) or
// run one after another (more rows, emulated packs, bf16 panels); every
// precision, 1 and 2 threads, the vector and the plain loops, widths with
// partial panels and tasks.
TEST(PackedMatmul, ProductsRunTogetherGiveEachProductsOwnBits) {
  const int64_t in = 96;
  const int64_t outs[] = {200, 64, 130};  // 4, 1 and 3 panels: a partial task, a whole one, a partial panel
  std::vector<std::vector<float>> weights, biases;
  for (int i = 0; i < 3; ++i) {
    weights.push_back(random_floats(static_cast<std::size_t>(outs[i] * in), 91 + i));
    biases.push_back(random_floats(static_cast<std::size_t>(outs[i]), 95 + i));
  }
  struct Case {
    MatmulPrecision precision;
    bool emulate;
    Bf16Kernel kernel;
  };
  std::vector<Case> cases{{MatmulPrecision::F32, false, Bf16Kernel::Auto},
                          {MatmulPrecision::Int8, false, Bf16Kernel::Auto},
                          {MatmulPrecision::Int8, true, Bf16Kernel::Auto},
                          {MatmulPrecision::Bf16, true, Bf16Kernel::Auto}};
  for (Bf16Kernel k : bf16_kernels(in)) cases.push_back({MatmulPrecision::Bf16, false, k});
  for (const Case& c : cases) {
    std::vector<std::unique_ptr<PackedMatmul>> packs;
    for (int i = 0; i < 3; ++i)
      packs.push_back(std::make_unique<PackedMatmul>(weights[i].data(), outs[i], in, c.precision, c.emulate, c.kernel));
    for (int64_t rows : {int64_t{1}, int64_t{3}, int64_t{4}, int64_t{6}})
      for (const ExecContext& ctx : {ExecContext{1}, ExecContext{2}, ExecContext{2, Isa::Scalar}}) {
        const int threads = ctx.threads;
        const auto x = random_floats(static_cast<std::size_t>(rows * in), 99);
        PackedInput input;
        packs[0]->prepare(x.data(), rows, input, ctx);
        std::vector<std::vector<float>> want(3), got(3);
        PackedMatmul::Target targets[3];
        for (int i = 0; i < 3; ++i) {
          want[i].assign(static_cast<std::size_t>(rows * outs[i]), 0.0f);
          got[i].assign(want[i].size(), -7.0f);
          packs[i]->forward(input, biases[i].data(), want[i].data(), ctx);
          targets[i] = {packs[i].get(), i == 1 ? nullptr : biases[i].data(), got[i].data()};
        }
        // Without a bias, the middle product's own forward without one.
        packs[1]->forward(input, nullptr, want[1].data(), ctx);
        PackedMatmul::forward_together(input, targets, ctx);
        for (int i = 0; i < 3; ++i)
          EXPECT_EQ(got[i], want[i]) << packs[i]->kernel_name() << " emulate " << c.emulate << " product " << i
                                     << " rows " << rows << " threads " << threads << " " << isa_name(ctx.isa);
      }
  }
  // More than 8 products, and activations prepared for another precision, are refused.
  const PackedMatmul f32(weights[0].data(), outs[0], in, MatmulPrecision::F32);
  const PackedMatmul int8(weights[0].data(), outs[0], in, MatmulPrecision::Int8);
  const auto x = random_floats(static_cast<std::size_t>(in), 98);
  std::vector<float> y(static_cast<std::size_t>(outs[0]));
  PackedInput input;
  int8.prepare(x.data(), 1, input, ExecContext{1});
  std::vector<PackedMatmul::Target> nine(9, PackedMatmul::Target{&int8, nullptr, y.data()});
  EXPECT_THROW(PackedMatmul::forward_together(input, nine, ExecContext{1}), Error);
  if (f32.streams_few_rows(ExecContext{1})) {  // one product after another, fp32 reads the rows the codes came from
    const PackedMatmul::Target wrong[1] = {{&f32, nullptr, y.data()}};
    EXPECT_THROW(PackedMatmul::forward_together(input, wrong, ExecContext{1}), Error);
  }
}

TEST(PackedInput, MismatchesAreClearErrors) {
  const int64_t out = 8, in = 6, rows = 3;
  const auto w = random_floats(static_cast<std::size_t>(out * in), 81);
  const auto x = random_floats(static_cast<std::size_t>(rows * 2 * in), 82);
  const ExecContext ctx{1};
  std::vector<float> y(static_cast<std::size_t>(rows * 2 * out));
  const PackedMatmul f32(w.data(), out, in, MatmulPrecision::F32);
  const PackedMatmul int8(w.data(), out, in, MatmulPrecision::Int8);
  const PackedMatmul wide(x.data(), 3, 2 * in, MatmulPrecision::F32);  // another input width
  PackedInput prepared;
  EXPECT_THROW(f32.forward(prepared, nullptr, y.data(), ctx), Error);  // never prepared
  f32.prepare(x.data(), rows, prepared, ctx);
  EXPECT_THROW(int8.forward(prepared, nullptr, y.data(), ctx), Error);  // fp32 rows, not int8 codes
  EXPECT_THROW(wide.forward(prepared, nullptr, y.data(), ctx), Error);  // 6 features, not 12
  const PackedMatmul f32_next(w.data(), in, out, MatmulPrecision::F32);
  EXPECT_FALSE(f32.feeds(f32_next));
  EXPECT_FALSE(int8.feeds(f32_next));
  PackedInput out_bf16;
  EXPECT_THROW(f32.forward(prepared, nullptr, out_bf16, ctx), Error);  // fp32 products store fp32
  EXPECT_THROW(f32.prepare(x.data(), -1, prepared, ctx), Error);
  if (PackedMatmul::native_bf16()) {
    const PackedMatmul bf16(w.data(), out, in, MatmulPrecision::Bf16);
    EXPECT_THROW(bf16.forward(prepared, nullptr, y.data(), ctx), Error);  // fp32 rows, not bf16 values
    PackedInput bx;
    bf16.prepare(x.data(), rows, bx, ctx);
    EXPECT_THROW(bf16.forward(bx, nullptr, bx, ctx), Error);  // output over its own input
    EXPECT_THROW(bf16.forward(bx, nullptr, out_bf16, ctx, {std::nullopt, y.data()}), Error);  // no residual
    const PackedMatmul next(w.data(), in, out, MatmulPrecision::F32);
    bf16.forward(bx, nullptr, out_bf16, ctx);
    EXPECT_THROW(next.forward(out_bf16, nullptr, y.data(), ctx), Error);  // bf16 values, no fp32 rows
  }
}

}  // namespace
}  // namespace roformer::kernels
