// int8 products with packed weights (PackedMatmul, MatmulPrecision::Int8):
// oneDNN's int32 sums against exact integer sums computed here, the fallback
// path against oneDNN bit for bit, the quantization error against its bound,
// the epilogue, thread independence, and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/elementwise.h"
#include "kernels/packed_matmul.h"
#include "kernels/quantize.h"
#include "roformer/error.h"
#include "support/test_support.h"

namespace roformer::kernels {
namespace {

using roformer::testing::max_scaled_diff;
using roformer::testing::random_floats;

// y = act(x W^T + b) + residual from the quantized operands, with exact
// integer sums and the rescale in double: what the int8 product must equal
// up to its one float rescale.
std::vector<double> quantized_reference(const std::vector<float>& x, int64_t rows, const std::vector<float>& w,
                                        int64_t out, int64_t in, const float* bias) {
  std::vector<uint8_t> qx(x.size());
  std::vector<RowQuant> p(static_cast<std::size_t>(rows));
  EXPECT_TRUE(quantize_rows_ref(x.data(), rows, in, qx.data(), p.data()));
  std::vector<int8_t> qw(w.size());
  std::vector<float> ws(static_cast<std::size_t>(out));
  quantize_weights_s8(w.data(), out, in, qw.data(), ws.data());
  std::vector<double> y(static_cast<std::size_t>(rows * out));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      int64_t sum = 0;
      for (int64_t i = 0; i < in; ++i)
        sum += (static_cast<int64_t>(qx[r * in + i]) - p[r].zero) * static_cast<int64_t>(qw[o * in + i]);
      y[r * out + o] = static_cast<double>(p[r].scale) * ws[o] * static_cast<double>(sum) + (bias ? bias[o] : 0.0);
    }
  return y;
}

struct Shape {
  int64_t out, in;
};
// A tiny layer, a real one, and one whose 4096 outputs make the product run
// in several row blocks.
const Shape kShapes[] = {{5, 3}, {96, 64}, {768, 300}, {4096, 24}};

TEST(PackedMatmulInt8, SumsAreExact) {
  for (const Shape c : kShapes) {
    const auto w = random_floats(static_cast<std::size_t>(c.out * c.in), 31);
    const auto bias = random_floats(static_cast<std::size_t>(c.out), 32);
    for (bool emulate : {false, true}) {
      const PackedMatmul m(w.data(), c.out, c.in, MatmulPrecision::Int8, emulate);
      EXPECT_EQ(m.emulated(), emulate || !PackedMatmul::native_int8()) << m.kernel_name();
      for (int64_t rows : {int64_t{1}, int64_t{7}, int64_t{150}}) {
        const auto x = random_floats(static_cast<std::size_t>(rows * c.in), 33, -2.0f, 3.0f);
        for (bool with_bias : {false, true}) {
          const auto want = quantized_reference(x, rows, w, c.out, c.in, with_bias ? bias.data() : nullptr);
          std::vector<float> got(want.size(), -7.0f);
          m.forward(x.data(), rows, with_bias ? bias.data() : nullptr, got.data(), ExecContext{1});
          double worst = 0.0;
          for (std::size_t i = 0; i < want.size(); ++i)
            worst = std::max(worst, std::fabs(got[i] - want[i]) / std::max(1.0, std::fabs(want[i])));
          // Exact sums leave only the float rescale: a few ulps.
          EXPECT_LE(worst, 1e-6) << c.out << "x" << c.in << " rows " << rows << " emulate " << emulate;
        }
      }
    }
  }
}

TEST(PackedMatmulInt8, FallbackEqualsNativeBitForBitWithEpilogue) {
  if (!PackedMatmul::native_int8()) GTEST_SKIP() << "no native int8 products on this CPU";
  for (const Shape c : kShapes) {
    const auto w = random_floats(static_cast<std::size_t>(c.out * c.in), 41);
    const auto bias = random_floats(static_cast<std::size_t>(c.out), 42);
    const PackedMatmul native(w.data(), c.out, c.in, MatmulPrecision::Int8);
    const PackedMatmul fallback(w.data(), c.out, c.in, MatmulPrecision::Int8, true);
    // 1 to 4 rows (a decoding step's) take the streaming loop where the
    // weights' layout allows; 150 take oneDNN's product in row blocks.
    for (int64_t rows : {int64_t{1}, int64_t{2}, int64_t{4}, int64_t{150}}) {
      const auto x = random_floats(static_cast<std::size_t>(rows * c.in), 43);
      const auto residual = random_floats(static_cast<std::size_t>(rows * c.out), 44);
      Epilogue e;
      e.activation = Activation::Gelu;
      e.residual = residual.data();
      std::vector<float> reference;
      for (int threads : {1, 2}) {
        for (const PackedMatmul* m : {&native, &fallback}) {
          std::vector<float> got(static_cast<std::size_t>(rows * c.out), -7.0f);
          m->forward(x.data(), rows, bias.data(), got.data(), ExecContext{threads}, e);
          if (reference.empty()) reference = got;
          ASSERT_EQ(got, reference) << c.out << "x" << c.in << " rows " << rows << " threads " << threads << " "
                                    << m->kernel_name();
        }
      }
      // The epilogue is the fp32 one applied to the rescaled product.
      std::vector<float> plain(reference.size());
      native.forward(x.data(), rows, bias.data(), plain.data(), ExecContext{1});
      apply_epilogue(plain.data(), rows, c.out, e, ExecContext{1});
      EXPECT_EQ(plain, reference) << c.out << "x" << c.in << " rows " << rows;
    }
  }
}

TEST(PackedMatmulInt8, ErrorAgainstFp32WithinTheQuantizationBound) {
  // |x w - x^ w^| <= |x| |w - w^| + |w^| |x - x^| per term, with each
  // rounding at most half a step: the bound, summed over the depth.
  const int64_t out = 64, in = 200, rows = 9;
  const auto w = random_floats(static_cast<std::size_t>(out * in), 51, -0.5f, 0.5f);
  const auto x = random_floats(static_cast<std::size_t>(rows * in), 52, -4.0f, 4.0f);
  const PackedMatmul m(w.data(), out, in, MatmulPrecision::Int8);
  std::vector<float> y(static_cast<std::size_t>(rows * out));
  m.forward(x.data(), rows, nullptr, y.data(), ExecContext{1});
  std::vector<uint8_t> qx(x.size());
  std::vector<RowQuant> p(rows);
  ASSERT_TRUE(quantize_rows_ref(x.data(), rows, in, qx.data(), p.data()));
  std::vector<float> wq(w.size());
  m.unpack(wq.data());
  double largest = 0.0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double exact = 0.0, bound = 0.0;
      double w_step = 0.0;
      for (int64_t i = 0; i < in; ++i) w_step = std::max(w_step, std::fabs(static_cast<double>(w[o * in + i])));
      w_step /= 127.0;
      for (int64_t i = 0; i < in; ++i) {
        exact += static_cast<double>(x[r * in + i]) * w[o * in + i];
        bound += std::fabs(x[r * in + i]) * 0.5 * w_step + std::fabs(wq[o * in + i]) * 0.5 * p[r].scale;
      }
      const double err = std::fabs(y[r * out + o] - exact);
      ASSERT_LE(err, bound * (1.0 + 1e-4) + 1e-5) << r << " " << o;
      largest = std::max(largest, err);
    }
  EXPECT_GT(largest, 1e-4) << "the quantization should show";
}

TEST(PackedMatmulInt8, UnpackGivesTheQuantizedWeights) {
  const int64_t out = 33, in = 70;
  const auto w = random_floats(static_cast<std::size_t>(out * in), 61);
  std::vector<int8_t> q(w.size());
  std::vector<float> scale(out);
  quantize_weights_s8(w.data(), out, in, q.data(), scale.data());
  for (bool emulate : {false, true}) {
    const PackedMatmul m(w.data(), out, in, MatmulPrecision::Int8, emulate);
    EXPECT_EQ(m.precision(), MatmulPrecision::Int8);
    std::vector<float> back(w.size());
    m.unpack(back.data());
    for (int64_t o = 0; o < out; ++o)
      for (int64_t i = 0; i < in; ++i) ASSERT_EQ(back[o * in + i], q[o * in + i] * scale[o]) << o << " " << i;
  }
}

TEST(PackedMatmulInt8, BadInputIsAClearError) {
  const auto w = random_floats(64 * 8, 71);
  const PackedMatmul m(w.data(), 8, 64, MatmulPrecision::Int8);
  auto x = random_floats(3 * 64, 72);
  x[100] = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> y(3 * 8);
  for (int threads : {1, 2}) EXPECT_THROW(m.forward(x.data(), 3, nullptr, y.data(), ExecContext{threads}), Error);
  // Depths whose int32 sums could overflow are refused up front.
  const int64_t deep = kMaxInt8Depth + 1;
  const std::vector<float> wide(static_cast<std::size_t>(deep), 0.5f);
  EXPECT_THROW(PackedMatmul(wide.data(), 1, deep, MatmulPrecision::Int8), Error);
}

}  // namespace
}  // namespace roformer::kernels
