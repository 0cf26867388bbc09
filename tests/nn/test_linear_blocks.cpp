// The multi-product helpers of nn/linear.h against the layers run one by
// one: forward_same_input (Q, K and V from one prepared input) gives the
// same bits; feed_forward (bf16 hidden activations handed from product to
// product) gives what the fp32 hand-over gives, for every kind of product;
// Linear::backward with bf16 products, which rounds dy once for its two
// products, gives the bits of the two products each rounding on its own.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/gemm.h"
#include "kernels/gemm_bf16.h"
#include "kernels/packed_matmul.h"
#include "nn/linear.h"
#include "roformer/error.h"
#include "support/test_support.h"

namespace roformer::nn {
namespace {

using kernels::MatmulPrecision;
using testing::max_scaled_diff;
using testing::random_floats;

Linear random_linear(int64_t out, int64_t in, uint32_t seed) {
  Linear l;
  l.weight = Tensor::from_vector({out, in}, random_floats(static_cast<std::size_t>(out * in), seed, -0.3f, 0.3f));
  l.bias = Tensor::from_vector({out}, random_floats(static_cast<std::size_t>(out), seed + 1, -0.2f, 0.2f));
  return l;
}

// Unpacked layers, and packed ones of each precision.
std::vector<std::optional<MatmulPrecision>> kinds() {
  return {std::nullopt, MatmulPrecision::F32, MatmulPrecision::Bf16, MatmulPrecision::Int8};
}

TEST(LinearBlocks, SharedInputGivesTheSameBitsAsSeparateProducts) {
  const int64_t hidden = 48, rows = 29;
  const auto x = random_floats(static_cast<std::size_t>(rows * hidden), 3);
  for (const auto kind : kinds()) {
    Linear q = random_linear(hidden, hidden, 10), k = random_linear(hidden, hidden, 20), v = random_linear(hidden, hidden, 30);
    if (kind) {
      q.pack(*kind);
      k.pack(*kind);
      v.pack(*kind);
    }
    for (int threads : {1, 2}) {
      const ExecContext ctx{threads};
      std::vector<float> want(static_cast<std::size_t>(3 * rows * hidden)), got(want.size(), -7.0f);
      q.forward(x.data(), rows, want.data(), ctx);
      k.forward(x.data(), rows, want.data() + rows * hidden, ctx);
      v.forward(x.data(), rows, want.data() + 2 * rows * hidden, ctx);
      forward_same_input(x.data(), rows,
                         {{q, got.data()}, {k, got.data() + rows * hidden}, {v, got.data() + 2 * rows * hidden}}, ctx);
      EXPECT_EQ(got, want) << "kind " << (kind ? static_cast<int>(*kind) : -1) << ", " << threads << " thread(s)";
    }
  }
  // Layers packed differently fall back to one preparation each.
  Linear q = random_linear(hidden, hidden, 10), k = random_linear(hidden, hidden, 20);
  q.pack(MatmulPrecision::Int8);
  k.pack(MatmulPrecision::F32);
  std::vector<float> want(static_cast<std::size_t>(2 * rows * hidden)), got(want.size(), -7.0f);
  q.forward(x.data(), rows, want.data(), ExecContext{1});
  k.forward(x.data(), rows, want.data() + rows * hidden, ExecContext{1});
  forward_same_input(x.data(), rows, {{q, got.data()}, {k, got.data() + rows * hidden}}, ExecContext{1});
  EXPECT_EQ(got, want);
}

TEST(LinearBlocks, FeedForwardEqualsTheTwoProductsInFp32HandOver) {
  const int64_t hidden = 48, inner = 112, rows = 29;
  const auto x = random_floats(static_cast<std::size_t>(rows * hidden), 5);
  const auto residual = random_floats(static_cast<std::size_t>(rows * hidden), 6);
  for (const auto kind : kinds()) {
    Linear up = random_linear(inner, hidden, 40), down = random_linear(hidden, inner, 50);
    if (kind) {
      up.pack(*kind);
      down.pack(*kind);
    }
    for (int threads : {1, 2}) {
      const ExecContext ctx{threads};
      std::vector<float> h(static_cast<std::size_t>(rows * inner)), want(static_cast<std::size_t>(rows * hidden));
      up.forward(x.data(), rows, h.data(), ctx, {kernels::Activation::Gelu});
      down.forward(h.data(), rows, want.data(), ctx, {std::nullopt, residual.data()});
      std::vector<float> scratch(h.size(), -7.0f), got(want.size(), -7.0f);
      feed_forward(up, down, kernels::Activation::Gelu, x.data(), rows, scratch.data(), got.data(), residual.data(), ctx);
      // The bf16 hand-over rounds the same fp32 GELU outputs to the same bf16
      // values as the fp32 one does before its product; the rest is identical.
      EXPECT_LE(max_scaled_diff(got, want), 1e-6) << "kind " << (kind ? static_cast<int>(*kind) : -1) << ", "
                                                  << threads << " thread(s)";
    }
  }
}

LayerNorm random_norm(int64_t n, uint32_t seed) {
  LayerNorm ln;
  ln.weight = Tensor::from_vector({n}, random_floats(static_cast<std::size_t>(n), seed, 0.5f, 1.5f));
  ln.bias = Tensor::from_vector({n}, random_floats(static_cast<std::size_t>(n), seed + 1, -0.5f, 0.5f));
  return ln;
}

// A LayerNorm that writes its output's bf16 copy straight into the next
// products' prepared input (PackedMatmul::bf16_destination) must hand them
// exactly what preparing its fp32 output afterwards would: the same bits out
// of Q/K/V and of the feed-forward block. Only native bf16 packs take it.
TEST(LinearBlocks, LayerNormWritingTheBf16InputGivesTheSameBits) {
  const int64_t hidden = 48, inner = 112, rows = 29;
  const auto x = random_floats(static_cast<std::size_t>(rows * hidden), 7, -2.0f, 2.0f);
  const LayerNorm ln = random_norm(hidden, 60);
  for (const auto kind : kinds()) {
    Linear q = random_linear(hidden, hidden, 10), k = random_linear(hidden, hidden, 20), v = random_linear(hidden, hidden, 30);
    Linear up = random_linear(inner, hidden, 40), down = random_linear(hidden, inner, 50);
    if (kind)
      for (Linear* l : {&q, &k, &v, &up, &down}) l->pack(*kind);
    const bool native = kind == MatmulPrecision::Bf16 && kernels::PackedMatmul::native_bf16();
    for (int threads : {1, 2}) {
      const ExecContext ctx{threads};
      std::vector<float> y(x.size()), want(static_cast<std::size_t>(3 * rows * hidden));
      ln.forward(x.data(), y.data(), rows, ctx);
      forward_same_input(y.data(), rows,
                         {{q, want.data()}, {k, want.data() + rows * hidden}, {v, want.data() + 2 * rows * hidden}}, ctx);
      std::vector<float> scratch(static_cast<std::size_t>(rows * inner)), ffn_want(x.size());
      feed_forward(up, down, kernels::Activation::Gelu, y.data(), rows, scratch.data(), ffn_want.data(), x.data(), ctx);

      kernels::PackedInput input;
      std::vector<float> y2(x.size(), -7.0f);
      const kernels::PackedMatmul* p = q.packed_for(ctx);
      uint16_t* dst = p != nullptr ? p->bf16_destination(y2.data(), rows, input) : nullptr;
      ASSERT_EQ(dst != nullptr, native) << "kind " << (kind ? static_cast<int>(*kind) : -1);
      if (!native) continue;
      ln.forward(x.data(), y2.data(), rows, ctx, dst);
      EXPECT_EQ(y2, y) << "the fp32 output changed";
      std::vector<float> got(want.size(), -7.0f), ffn_got(x.size(), -7.0f);
      forward_same_input(y2.data(), rows,
                         {{q, got.data()}, {k, got.data() + rows * hidden}, {v, got.data() + 2 * rows * hidden}}, ctx,
                         &input);
      EXPECT_EQ(got, want) << threads << " thread(s)";
      feed_forward(up, down, kernels::Activation::Gelu, y2.data(), rows, scratch.data(), ffn_got.data(), x.data(), ctx,
                   &input);
      EXPECT_EQ(ffn_got, ffn_want) << threads << " thread(s)";
      // A prepared input of another row count is refused.
      EXPECT_THROW(forward_same_input(y2.data(), rows - 1, {{q, got.data()}, {k, got.data() + rows * hidden}}, ctx,
                                      &input),
                   Error);
    }
  }
}

TEST(LinearBlocks, Bf16BackwardRoundsDyOnceWithTheSameBits) {
  const int64_t rows = 160, in = 96, out = 144;  // every product large enough to take bf16
  const Linear layer = random_linear(out, in, 60);
  const auto x = random_floats(static_cast<std::size_t>(rows * in), 61);
  const auto dy = random_floats(static_cast<std::size_t>(rows * out), 62);
  const auto dx0 = random_floats(static_cast<std::size_t>(rows * in), 63);
  for (int threads : {1, 2}) {
    const ExecContext ctx{threads, best_isa(), GemmBackend::OneDnn, true};
    Linear grad = random_linear(out, in, 64);  // gradients accumulate onto what is there
    const std::vector<float> gw0(grad.weight.data<float>(), grad.weight.data<float>() + out * in);
    std::vector<float> dx = dx0;
    layer.backward(x.data(), dy.data(), rows, dx.data(), true, grad, ctx);
    // The same two products, each rounding its own operands.
    std::vector<float> want_dx = dx0, want_gw = gw0;
    kernels::gemm(false, false, rows, in, out, 1.0f, dy.data(), out, layer.weight.data<float>(), in, 1.0f,
                  want_dx.data(), in, ctx);
    kernels::gemm(true, false, out, in, rows, 1.0f, dy.data(), out, x.data(), in, 1.0f, want_gw.data(), in, ctx);
    EXPECT_EQ(dx, want_dx) << threads << " thread(s)";
    EXPECT_EQ(std::vector<float>(grad.weight.data<float>(), grad.weight.data<float>() + out * in), want_gw)
        << threads << " thread(s)";
    // And they are bf16 products: fp32 ones differ.
    ExecContext fp32 = ctx;
    fp32.bf16_products = false;
    std::vector<float> fp32_dx = dx0;
    kernels::gemm(false, false, rows, in, out, 1.0f, dy.data(), out, layer.weight.data<float>(), in, 1.0f,
                  fp32_dx.data(), in, fp32);
    EXPECT_GT(max_scaled_diff(dx, fp32_dx), 1e-4);
  }
}

}  // namespace
}  // namespace roformer::nn
