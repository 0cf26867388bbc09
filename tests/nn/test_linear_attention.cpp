// RoPE linear attention (RoFormer paper eq. 19) against the direct O(T^2)
// double sum, classic linear attention, RoPE's relative-position property,
// causality, finite differences, thread-count independence and FAVOR+'s
// defining property (an unbiased estimate of softmax attention's kernel).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "nn/linear_attention.h"
#include "roformer/error.h"
#include "support/test_support.h"

namespace roformer::nn {
namespace {

using testing::max_abs;
using testing::max_abs_diff;
using testing::random_floats;

std::vector<double> to_double(const std::vector<float>& x) { return std::vector<double>(x.begin(), x.end()); }

std::vector<int64_t> iota_positions(int64_t T, int64_t start) {
  std::vector<int64_t> p(static_cast<std::size_t>(T));
  std::iota(p.begin(), p.end(), start);
  return p;
}

// Row 0 all real; row 1 with padding at the end and one hole in the middle.
std::vector<uint8_t> padding_mask(int64_t B, int64_t T) {
  std::vector<uint8_t> mask(static_cast<std::size_t>(B * T), 1);
  for (int64_t b = 1; b < B; ++b) {
    for (int64_t t = std::max<int64_t>(1, T - 4); t < T; ++t) mask[b * T + t] = 0;
    if (T > 3) mask[b * T + T / 2] = 0;
  }
  return mask;
}

// max |a - ref| / max(1, max |ref|).
double scaled_error(const std::vector<float>& a, const std::vector<double>& ref) {
  double err = 0, scale = 1;
  for (std::size_t i = 0; i < a.size(); ++i) {
    err = std::max(err, std::fabs(static_cast<double>(a[i]) - ref[i]));
    scale = std::max(scale, std::fabs(ref[i]));
  }
  return err / scale;
}
double scaled_error(const std::vector<double>& a, const std::vector<double>& ref) {
  double err = 0, scale = 1;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(a[i] - ref[i]);
    if (!(d <= err)) err = d;  // NaN fails
    scale = std::max(scale, std::fabs(ref[i]));
  }
  return err / scale;
}

struct Case {
  FeatureMap map;
  int64_t head_dim;
  int64_t favor_features;
  bool causal;
  bool rope;
};

std::string describe(const Case& c) {
  return std::string(feature_map_name(c.map)) + " d=" + std::to_string(c.head_dim) +
         " m=" + std::to_string(c.favor_features) + (c.causal ? " causal" : " bidirectional") +
         (c.rope ? " rope" : " no-rope");
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (bool causal : {false, true})
    for (bool rope : {false, true})
      for (int64_t d : {8, 16}) {
        cases.push_back({FeatureMap::EluPlusOne, d, 0, causal, rope});
        cases.push_back({FeatureMap::Relu, d, 0, causal, rope});
        for (int64_t m : {0, 8, 12}) cases.push_back({FeatureMap::Favor, d, m, causal, rope});
      }
  return cases;
}

LinearAttentionConfig config_of(const Case& c, int64_t heads = 2) {
  LinearAttentionConfig cfg;
  cfg.heads = heads;
  cfg.head_dim = c.head_dim;
  cfg.feature_map = c.map;
  cfg.favor_features = c.favor_features;
  cfg.favor_seed = 42;
  cfg.causal = c.causal;
  cfg.rope = c.rope;
  return cfg;
}

TEST(LinearAttention, ForwardMatchesDirectDoubleSum) {
  const int64_t B = 2, heads = 2;
  double worst_f32 = 0, worst_f64 = 0;
  uint32_t seed = 1;
  for (const Case& c : all_cases()) {
    for (int64_t T : {1, 13, 37}) {
      for (int64_t start : {0, 1000}) {
        const LinearAttentionConfig cfg = config_of(c, heads);
        const LinearAttention attn(cfg);
        const std::size_t n = static_cast<std::size_t>(B * T * heads * c.head_dim);
        const auto q = random_floats(n, seed++), k = random_floats(n, seed++), v = random_floats(n, seed++);
        const auto pos = iota_positions(T, start);
        const auto mask = padding_mask(B, T);
        for (const uint8_t* valid : {static_cast<const uint8_t*>(nullptr), mask.data()}) {
          std::vector<double> ref(n);
          const auto qd = to_double(q), kd = to_double(k), vd = to_double(v);
          linear_attention_reference(cfg, qd.data(), kd.data(), vd.data(), B, T, pos.data(), valid, ref.data());
          std::vector<float> out(n, -7.0f);
          attn.forward(q.data(), k.data(), v.data(), B, T, pos.data(), valid, out.data(), nullptr, ExecContext{1});
          std::vector<double> out64(n, -7.0);
          attn.forward(qd.data(), kd.data(), vd.data(), B, T, pos.data(), valid, out64.data(), nullptr,
                       ExecContext{1});
          const double e32 = scaled_error(out, ref), e64 = scaled_error(out64, ref);
          worst_f32 = std::max(worst_f32, e32);
          worst_f64 = std::max(worst_f64, e64);
          // f32: only the final rounding differs. f64: summation order; ReLU with
          // RoPE can leave a denominator small next to the numerator, which
          // magnifies rounding (measured 1.4e-11), hence 1e-9 and not 1e-14.
          ASSERT_LE(e32, 1e-5) << describe(c) << " T=" << T << " start=" << start << " mask=" << (valid != nullptr);
          ASSERT_LE(e64, 1e-9) << describe(c) << " T=" << T << " start=" << start << " mask=" << (valid != nullptr);
        }
      }
    }
  }
  std::printf("forward vs direct sum: max scaled error f32 %.3g, f64 %.3g\n", worst_f32, worst_f64);
}

TEST(LinearAttention, ReferenceIsNotTrivial) {
  // The cases above must exercise RoPE and padding: both change the output.
  Case c{FeatureMap::EluPlusOne, 8, 0, false, true};
  const int64_t B = 2, T = 9, heads = 2;
  const std::size_t n = static_cast<std::size_t>(B * T * heads * 8);
  const auto q = to_double(random_floats(n, 5)), k = to_double(random_floats(n, 6)), v = to_double(random_floats(n, 7));
  const auto pos = iota_positions(T, 0);
  const auto mask = padding_mask(B, T);
  std::vector<double> with_rope(n), without_rope(n), masked(n);
  LinearAttentionConfig cfg = config_of(c, heads);
  linear_attention_reference(cfg, q.data(), k.data(), v.data(), B, T, pos.data(), nullptr, with_rope.data());
  linear_attention_reference(cfg, q.data(), k.data(), v.data(), B, T, pos.data(), mask.data(), masked.data());
  cfg.rope = false;
  linear_attention_reference(cfg, q.data(), k.data(), v.data(), B, T, pos.data(), nullptr, without_rope.data());
  EXPECT_GT(scaled_error(with_rope, without_rope), 1e-3);
  EXPECT_GT(scaled_error(with_rope, masked), 1e-3);
}

TEST(LinearAttention, RopeScoresDependOnlyOnRelativePosition) {
  // Shifting every position by a constant leaves each numerator score
  // (R_m f)^T (R_n g) = f^T R_{n-m} g, hence the output, unchanged.
  const int64_t B = 2, T = 23, heads = 2;
  for (const Case& c : all_cases()) {
    if (!c.rope) continue;
    const LinearAttention attn(config_of(c, heads));
    const std::size_t n = static_cast<std::size_t>(B * T * heads * c.head_dim);
    const auto q = random_floats(n, 11), k = random_floats(n, 12), v = random_floats(n, 13);
    const auto mask = padding_mask(B, T);
    std::vector<float> base(n), shifted(n), reordered(n);
    const auto p0 = iota_positions(T, 0), p1 = iota_positions(T, 1000 + 777);
    attn.forward(q.data(), k.data(), v.data(), B, T, p0.data(), mask.data(), base.data(), nullptr, ExecContext{1});
    attn.forward(q.data(), k.data(), v.data(), B, T, p1.data(), mask.data(), shifted.data(), nullptr, ExecContext{1});
    EXPECT_LE(max_abs_diff(base, shifted), 1e-5 * std::max(1.0, max_abs(base))) << describe(c);
    // ...while changing relative distances does change it.
    std::vector<int64_t> p2 = p0;
    for (int64_t t = 0; t < T; ++t) p2[t] = 3 * t;
    attn.forward(q.data(), k.data(), v.data(), B, T, p2.data(), mask.data(), reordered.data(), nullptr,
                 ExecContext{1});
    EXPECT_GT(max_abs_diff(base, reordered), 1e-3 * max_abs(base)) << describe(c);
  }
}

// Classic linear attention (Katharopoulos et al. 2020) written from scratch:
// out_m = phi(q_m)^T (sum_n phi(k_n) v_n^T) / (phi(q_m)^T sum_n phi(k_n) + eps).
std::vector<double> classic_linear_attention(const LinearAttention& attn, const std::vector<float>& q,
                                             const std::vector<float>& k, const std::vector<float>& v, int64_t B,
                                             int64_t T, const uint8_t* valid) {
  const LinearAttentionConfig& cfg = attn.config();
  const int64_t NH = cfg.heads, D = cfg.head_dim, H = NH * D;
  const int64_t F = cfg.feature_map == FeatureMap::Favor ? attn.feature_dim() : D;
  auto phi = [&](const float* x) {
    std::vector<double> f(static_cast<std::size_t>(F));
    if (cfg.feature_map == FeatureMap::EluPlusOne) {
      for (int64_t i = 0; i < D; ++i) f[i] = x[i] > 0 ? 1.0 + x[i] : std::exp(static_cast<double>(x[i]));
    } else if (cfg.feature_map == FeatureMap::Relu) {
      for (int64_t i = 0; i < D; ++i) f[i] = x[i] > 0 ? static_cast<double>(x[i]) : 0.0;
    } else {  // softmax kernel estimate exp(w.x/d^(1/4) - |x|^2/(2 sqrt d)) / sqrt(m)
      const auto& W = attn.projection();
      double sq = 0;
      for (int64_t i = 0; i < D; ++i) sq += static_cast<double>(x[i]) * x[i];
      for (int64_t j = 0; j < F; ++j) {
        double dot = 0;
        for (int64_t i = 0; i < D; ++i) dot += W[j * D + i] * x[i];
        f[j] = std::exp(dot / std::pow(D, 0.25) - sq / (2 * std::sqrt(static_cast<double>(D)))) /
               std::sqrt(static_cast<double>(F));
      }
    }
    return f;
  };
  std::vector<double> out(q.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < NH; ++h) {
      std::vector<double> KV(static_cast<std::size_t>(F * D), 0.0), ksum(static_cast<std::size_t>(F), 0.0);
      for (int64_t t = 0; t < T; ++t) {
        if (valid != nullptr && !valid[b * T + t]) continue;
        const auto fk = phi(k.data() + (b * T + t) * H + h * D);
        for (int64_t i = 0; i < F; ++i) {
          ksum[i] += fk[i];
          for (int64_t j = 0; j < D; ++j) KV[i * D + j] += fk[i] * v[(b * T + t) * H + h * D + j];
        }
      }
      for (int64_t t = 0; t < T; ++t) {
        const auto fq = phi(q.data() + (b * T + t) * H + h * D);
        double den = cfg.eps;
        for (int64_t i = 0; i < F; ++i) den += fq[i] * ksum[i];
        for (int64_t j = 0; j < D; ++j) {
          double num = 0;
          for (int64_t i = 0; i < F; ++i) num += fq[i] * KV[i * D + j];
          out[(b * T + t) * H + h * D + j] = num / den;
        }
      }
    }
  return out;
}

TEST(LinearAttention, RopeOffIsClassicLinearAttention) {
  const int64_t B = 2, T = 29, heads = 2;
  for (const Case& c : all_cases()) {
    if (c.rope || c.causal) continue;
    const LinearAttention attn(config_of(c, heads));
    const std::size_t n = static_cast<std::size_t>(B * T * heads * c.head_dim);
    const auto q = random_floats(n, 21), k = random_floats(n, 22), v = random_floats(n, 23);
    const auto pos = iota_positions(T, 1000);
    const auto mask = padding_mask(B, T);
    std::vector<float> out(n);
    attn.forward(q.data(), k.data(), v.data(), B, T, pos.data(), mask.data(), out.data(), nullptr, ExecContext{1});
    EXPECT_LE(scaled_error(out, classic_linear_attention(attn, q, k, v, B, T, mask.data())), 1e-5) << describe(c);
    // Without RoPE the positions do not matter (and may be absent).
    std::vector<float> no_pos(n);
    attn.forward(q.data(), k.data(), v.data(), B, T, nullptr, mask.data(), no_pos.data(), nullptr, ExecContext{1});
    EXPECT_EQ(out, no_pos) << describe(c);
  }
}

TEST(LinearAttention, CausalOutputIgnoresLaterTokens) {
  const int64_t B = 2, T = 31, heads = 2;
  for (const Case& c : all_cases()) {
    if (!c.causal) continue;
    const LinearAttention attn(config_of(c, heads));
    const int64_t H = heads * c.head_dim;
    const std::size_t n = static_cast<std::size_t>(B * T * H);
    const auto q = random_floats(n, 31), k = random_floats(n, 32), v = random_floats(n, 33);
    const auto pos = iota_positions(T, 1000);
    const auto mask = padding_mask(B, T);
    std::vector<float> out(n);
    attn.forward(q.data(), k.data(), v.data(), B, T, pos.data(), mask.data(), out.data(), nullptr, ExecContext{1});
    for (int64_t cut : {int64_t{0}, int64_t{10}, T - 2}) {
      auto q2 = q, k2 = k, v2 = v;
      const auto noise = random_floats(n, 34 + static_cast<uint32_t>(cut), -3.0f, 3.0f);
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = cut + 1; t < T; ++t)
          for (int64_t j = 0; j < H; ++j) {
            const std::size_t i = static_cast<std::size_t>((b * T + t) * H + j);
            q2[i] = noise[i];
            k2[i] = -noise[i];
            v2[i] = 0.5f * noise[i];
          }
      std::vector<float> out2(n);
      attn.forward(q2.data(), k2.data(), v2.data(), B, T, pos.data(), mask.data(), out2.data(), nullptr,
                   ExecContext{1});
      bool later_changed = false;
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < T; ++t)
          for (int64_t j = 0; j < H; ++j) {
            const std::size_t i = static_cast<std::size_t>((b * T + t) * H + j);
            if (t <= cut) {
              ASSERT_EQ(out[i], out2[i]) << describe(c) << " cut " << cut << " t " << t;
            } else if (out[i] != out2[i]) {
              later_changed = true;
            }
          }
      EXPECT_TRUE(later_changed) << describe(c);
    }
  }
}

// Central differences with one Richardson step, (4 D(h/2) - D(h)) / 3:
// truncation error O(h^4), so with h = 1e-5 in double what is left is
// rounding, ~1e-10 of the gradients' scale.
template <typename Loss>
double derivative(Loss&& loss_at, double x0, double h) {
  auto central = [&](double step) { return (loss_at(x0 + step) - loss_at(x0 - step)) / (2 * step); };
  const double coarse = central(h), fine = central(h / 2);
  loss_at(x0);
  return (4 * fine - coarse) / 3;
}

// Gradients are checked with the double instantiation of the same templated
// implementation: finite differences in double (above) are accurate to
// ~1e-10 of the gradients' scale, so the analytic gradients are held to 1e-6
// of it. In float, h ~ 1e-3 differences carry ~1e-3 relative noise and would
// only catch gross errors. The float path then only has to agree with the
// double one to float rounding.
TEST(LinearAttention, BackwardMatchesFiniteDifferences) {
  const int64_t B = 2, T = 7, heads = 2;
  double worst_fd = 0, worst_f32 = 0;
  uint32_t seed = 100;
  std::vector<Case> cases;
  for (bool causal : {false, true})
    for (bool rope : {false, true}) {
      cases.push_back({FeatureMap::EluPlusOne, 4, 0, causal, rope});
      cases.push_back({FeatureMap::Relu, 4, 0, causal, rope});
      cases.push_back({FeatureMap::Favor, 4, 6, causal, rope});
    }
  for (const Case& c : cases) {
    LinearAttentionConfig cfg = config_of(c, heads);
    // ReLU features of a query and its only visible key can have disjoint
    // supports: then the denominator is eps and the numerator is zero only up
    // to rounding (R_m^T R_m = I in exact arithmetic), which 1/eps = 1e6
    // magnifies into finite-difference noise of ~1e-6. A larger eps keeps the
    // differences clean; the analytic gradient does not depend on its size.
    if (c.map == FeatureMap::Relu) cfg.eps = 1e-3f;
    const LinearAttention attn(cfg);
    const std::size_t n = static_cast<std::size_t>(B * T * heads * c.head_dim);
    auto qf = random_floats(n, seed++), kf = random_floats(n, seed++);
    const auto vf = random_floats(n, seed++), gf = random_floats(n, seed++);
    if (c.map == FeatureMap::Relu) {
      // Keep ReLU's inputs at least 0.1 from its kink, where the loss is not
      // differentiable and a difference step could straddle it.
      for (auto* x : {&qf, &kf})
        for (float& e : *x) e = std::copysign(0.1f + 0.9f * std::fabs(e), e);
    }
    const auto q = to_double(qf), k = to_double(kf), v = to_double(vf), G = to_double(gf);
    const auto pos = iota_positions(T, 1000);
    const auto mask = padding_mask(B, T);
    const ExecContext ctx{1};
    LinearAttentionSavedF64 saved;
    std::vector<double> out(n), dq(n, 9.0), dk(n, 9.0), dv(n, 9.0);
    attn.forward(q.data(), k.data(), v.data(), B, T, pos.data(), mask.data(), out.data(), &saved, ctx);
    attn.backward(q.data(), k.data(), v.data(), saved, G.data(), B, T, pos.data(), mask.data(), dq.data(), dk.data(),
                  dv.data(), ctx);
    auto loss = [&](const std::vector<double>& q2, const std::vector<double>& k2, const std::vector<double>& v2) {
      std::vector<double> o(n);
      attn.forward(q2.data(), k2.data(), v2.data(), B, T, pos.data(), mask.data(), o.data(), nullptr, ctx);
      double L = 0;
      for (std::size_t i = 0; i < n; ++i) L += o[i] * G[i];
      return L;
    };
    const double h = 1e-5;
    auto numeric = [&](int which) {
      std::vector<double> g(n);
      for (std::size_t i = 0; i < n; ++i) {
        auto q2 = q, k2 = k, v2 = v;
        std::vector<double>& x = which == 0 ? q2 : which == 1 ? k2 : v2;
        g[i] = derivative(
            [&](double xi) {
              x[i] = xi;
              return loss(q2, k2, v2);
            },
            x[i], h);
      }
      return g;
    };
    const double eq = scaled_error(dq, numeric(0)), ek = scaled_error(dk, numeric(1)),
                 ev = scaled_error(dv, numeric(2));
    worst_fd = std::max({worst_fd, eq, ek, ev});
    EXPECT_LE(eq, 1e-6) << describe(c) << " dq";
    EXPECT_LE(ek, 1e-6) << describe(c) << " dk";
    EXPECT_LE(ev, 1e-6) << describe(c) << " dv";
    // Padded keys take no gradient.
    const int64_t H = heads * c.head_dim;
    for (int64_t t = 0; t < T; ++t)
      if (!mask[T + t])
        for (int64_t j = 0; j < H; ++j) {
          EXPECT_EQ(dk[(T + t) * H + j], 0.0);
          EXPECT_EQ(dv[(T + t) * H + j], 0.0);
        }

    // The float entry points: same inputs, rounded once on the way out.
    LinearAttentionSaved saved32;
    std::vector<float> out32(n), dq32(n, 9.0f), dk32(n, 9.0f), dv32(n, 9.0f);
    attn.forward(qf.data(), kf.data(), vf.data(), B, T, pos.data(), mask.data(), out32.data(), &saved32, ctx);
    attn.backward(qf.data(), kf.data(), vf.data(), saved32, gf.data(), B, T, pos.data(), mask.data(), dq32.data(),
                  dk32.data(), dv32.data(), ctx);
    const double e32 = std::max({scaled_error(dq32, dq), scaled_error(dk32, dk), scaled_error(dv32, dv)});
    worst_f32 = std::max(worst_f32, e32);
    EXPECT_LE(e32, 1e-5) << describe(c);
  }
  std::printf("backward: max scaled error vs central differences (f64) %.3g; f32 vs f64 gradients %.3g\n", worst_fd,
              worst_f32);
}

TEST(LinearAttention, BackwardMatchesFiniteDifferencesAtRealisticSize) {
  // One bigger check (head_dim 16, FAVOR m 12, T 37) on a sample of entries.
  double worst = 0;
  for (bool causal : {false, true}) {
    const Case c{FeatureMap::Favor, 16, 12, causal, true};
    const int64_t B = 2, T = 37, heads = 2;
    const LinearAttention attn(config_of(c, heads));
    const std::size_t n = static_cast<std::size_t>(B * T * heads * c.head_dim);
    const auto q = to_double(random_floats(n, 201)), k = to_double(random_floats(n, 202)),
               v = to_double(random_floats(n, 203)), G = to_double(random_floats(n, 204));
    const auto pos = iota_positions(T, 1000);
    const auto mask = padding_mask(B, T);
    const ExecContext ctx{1};
    LinearAttentionSavedF64 saved;
    std::vector<double> out(n), dq(n), dk(n), dv(n);
    attn.forward(q.data(), k.data(), v.data(), B, T, pos.data(), mask.data(), out.data(), &saved, ctx);
    attn.backward(q.data(), k.data(), v.data(), saved, G.data(), B, T, pos.data(), mask.data(), dq.data(), dk.data(),
                  dv.data(), ctx);
    const double scale = std::max({1.0, max_abs(std::vector<float>(dq.begin(), dq.end())),
                                   max_abs(std::vector<float>(dk.begin(), dk.end())),
                                   max_abs(std::vector<float>(dv.begin(), dv.end()))});
    auto loss = [&](const std::vector<double>& q2, const std::vector<double>& k2, const std::vector<double>& v2) {
      std::vector<double> o(n);
      attn.forward(q2.data(), k2.data(), v2.data(), B, T, pos.data(), mask.data(), o.data(), nullptr, ctx);
      double L = 0;
      for (std::size_t i = 0; i < n; ++i) L += o[i] * G[i];
      return L;
    };
    for (std::size_t i = 3; i < n; i += 37) {
      for (int which = 0; which < 3; ++which) {
        auto q2 = q, k2 = k, v2 = v;
        std::vector<double>& x = which == 0 ? q2 : which == 1 ? k2 : v2;
        const double fd = derivative(
            [&](double xi) {
              x[i] = xi;
              return loss(q2, k2, v2);
            },
            x[i], 1e-5);
        const double analytic = which == 0 ? dq[i] : which == 1 ? dk[i] : dv[i];
        worst = std::max(worst, std::fabs(analytic - fd) / scale);
        EXPECT_NEAR(analytic, fd, 1e-6 * scale) << "causal " << causal << " tensor " << which << " entry " << i;
      }
    }
  }
  std::printf("backward (d 16, FAVOR m 12, T 37): max scaled error vs finite differences %.3g\n", worst);
}

TEST(LinearAttention, ThreadCountDoesNotChangeBits) {
  const int64_t B = 2, T = 50, heads = 3;
  for (const Case& c : all_cases()) {
    if (c.head_dim != 16) continue;
    const LinearAttention attn(config_of(c, heads));
    const std::size_t n = static_cast<std::size_t>(B * T * heads * c.head_dim);
    const auto q = random_floats(n, 41), k = random_floats(n, 42), v = random_floats(n, 43), g = random_floats(n, 44);
    const auto pos = iota_positions(T, 7);
    const auto mask = padding_mask(B, T);
    std::vector<float> out[2], dq[2], dk[2], dv[2];
    for (int threads : {1, 2}) {
      const int i = threads - 1;
      out[i].assign(n, 0.0f);
      dq[i].assign(n, 0.0f);
      dk[i].assign(n, 0.0f);
      dv[i].assign(n, 0.0f);
      LinearAttentionSaved saved;
      attn.forward(q.data(), k.data(), v.data(), B, T, pos.data(), mask.data(), out[i].data(), &saved,
                   ExecContext{threads});
      attn.backward(q.data(), k.data(), v.data(), saved, g.data(), B, T, pos.data(), mask.data(), dq[i].data(),
                    dk[i].data(), dv[i].data(), ExecContext{threads});
    }
    EXPECT_EQ(out[0], out[1]) << describe(c);
    EXPECT_EQ(dq[0], dq[1]) << describe(c);
    EXPECT_EQ(dk[0], dk[1]) << describe(c);
    EXPECT_EQ(dv[0], dv[1]) << describe(c);
  }
}

TEST(LinearAttention, SavedStateIsReusedAndChecked) {
  const Case c{FeatureMap::EluPlusOne, 8, 0, true, true};
  const LinearAttention attn(config_of(c, 2));
  const int64_t B = 2, T = 12;
  const std::size_t n = static_cast<std::size_t>(B * T * 16);
  const auto q = random_floats(n, 51), k = random_floats(n, 52), v = random_floats(n, 53);
  const auto pos = iota_positions(T, 0);
  std::vector<float> out(n), out2(n), d(n);
  LinearAttentionSaved saved;
  attn.forward(q.data(), k.data(), v.data(), B, T, pos.data(), nullptr, out.data(), &saved, ExecContext{1});
  const float* buffer = saved.out.data();
  const double* den = saved.den.data();
  attn.forward(q.data(), k.data(), v.data(), B, T, pos.data(), nullptr, out2.data(), &saved, ExecContext{1});
  EXPECT_EQ(saved.out.data(), buffer);
  EXPECT_EQ(saved.den.data(), den);
  EXPECT_EQ(saved.out, out);
  EXPECT_EQ(out, out2);
  // A backward with another shape than the saved forward is refused.
  EXPECT_THROW(attn.backward(q.data(), k.data(), v.data(), saved, out.data(), B, T - 1, pos.data(), nullptr, d.data(),
                             d.data(), d.data(), ExecContext{1}),
               Error);
}

TEST(LinearAttention, ReluWithNoActiveFeatureGivesZeroNotNaN) {
  // A query with all-negative entries has phi(q) = 0: numerator and
  // denominator vanish, eps keeps the output 0 (and its gradient finite).
  const Case c{FeatureMap::Relu, 4, 0, false, true};
  const LinearAttention attn(config_of(c, 1));
  const int64_t B = 1, T = 3;
  std::vector<float> q = {-1, -2, -0.5f, -0.1f, 1, 2, 3, 4, 0.5f, -1, 0.25f, 1};
  std::vector<float> k = {1, 0.5f, 0.2f, 1, -1, -1, -1, -1, 0.3f, 0.3f, 0.3f, 0.3f};
  std::vector<float> v = random_floats(12, 61);
  const auto pos = iota_positions(T, 0);
  std::vector<float> out(12), dq(12), dk(12), dv(12), g = random_floats(12, 62);
  LinearAttentionSaved saved;
  attn.forward(q.data(), k.data(), v.data(), B, T, pos.data(), nullptr, out.data(), &saved, ExecContext{1});
  for (int j = 0; j < 4; ++j) EXPECT_EQ(out[j], 0.0f);
  attn.backward(q.data(), k.data(), v.data(), saved, g.data(), B, T, pos.data(), nullptr, dq.data(), dk.data(),
                dv.data(), ExecContext{1});
  for (std::size_t i = 0; i < 12; ++i) {
    EXPECT_TRUE(std::isfinite(out[i]));
    EXPECT_TRUE(std::isfinite(dq[i]) && std::isfinite(dk[i]) && std::isfinite(dv[i]));
  }
}

TEST(LinearAttention, BadConfigurationsThrow) {
  LinearAttentionConfig ok;
  ok.heads = 2;
  ok.head_dim = 8;
  EXPECT_NO_THROW(LinearAttention{ok});

  auto with = [&](auto change) {
    LinearAttentionConfig c = ok;
    change(c);
    return c;
  };
  EXPECT_THROW(LinearAttention(with([](LinearAttentionConfig& c) {
                 c.feature_map = FeatureMap::Favor;
                 c.favor_features = 7;
               })),
               Error);
  EXPECT_THROW(LinearAttention(with([](LinearAttentionConfig& c) { c.favor_features = -2; })), Error);
  EXPECT_THROW(LinearAttention(with([](LinearAttentionConfig& c) { c.heads = 0; })), Error);
  EXPECT_THROW(LinearAttention(with([](LinearAttentionConfig& c) { c.heads = -1; })), Error);
  EXPECT_THROW(LinearAttention(with([](LinearAttentionConfig& c) { c.head_dim = 0; })), Error);
  EXPECT_THROW(LinearAttention(with([](LinearAttentionConfig& c) { c.rope_base = 0; })), Error);
  EXPECT_THROW(LinearAttention(with([](LinearAttentionConfig& c) { c.eps = -1e-3f; })), Error);
  // RoPE rotates pairs: an odd feature dimension cannot be rotated (without RoPE it is fine).
  EXPECT_THROW(LinearAttention(with([](LinearAttentionConfig& c) { c.head_dim = 7; })), Error);
  EXPECT_NO_THROW(LinearAttention(with([](LinearAttentionConfig& c) {
    c.head_dim = 7;
    c.rope = false;
  })));

  EXPECT_EQ(parse_feature_map("elu"), FeatureMap::EluPlusOne);
  EXPECT_EQ(parse_feature_map("relu"), FeatureMap::Relu);
  EXPECT_EQ(parse_feature_map("favor"), FeatureMap::Favor);
  for (FeatureMap m : {FeatureMap::EluPlusOne, FeatureMap::Relu, FeatureMap::Favor})
    EXPECT_EQ(parse_feature_map(feature_map_name(m)), m);
  EXPECT_THROW(parse_feature_map("softmax"), Error);
  EXPECT_THROW(parse_feature_map(""), Error);
  EXPECT_THROW(parse_feature_map("ELU"), Error);

  // RoPE without positions is refused.
  const LinearAttention attn(ok);
  std::vector<float> x(16, 0.5f), out(16);
  EXPECT_THROW(attn.forward(x.data(), x.data(), x.data(), 1, 1, nullptr, nullptr, out.data(), nullptr, ExecContext{1}),
               Error);
}

TEST(LinearAttention, FavorProjectionIsDeterministicStandardNormal) {
  const auto a = favor_projection(4096, 16, 3), b = favor_projection(4096, 16, 3), c = favor_projection(4096, 16, 4);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  double mean = 0, var = 0, fourth = 0;
  for (double x : a) mean += x;
  mean /= static_cast<double>(a.size());
  for (double x : a) {
    var += (x - mean) * (x - mean);
    fourth += std::pow(x - mean, 4);
  }
  var /= static_cast<double>(a.size());
  fourth /= static_cast<double>(a.size());
  EXPECT_NEAR(mean, 0.0, 0.02);
  EXPECT_NEAR(var, 1.0, 0.03);
  EXPECT_NEAR(fourth / (var * var), 3.0, 0.15);  // Gaussian kurtosis
  // The same matrix is what a LinearAttention with that seed uses.
  LinearAttentionConfig cfg;
  cfg.heads = 1;
  cfg.head_dim = 16;
  cfg.feature_map = FeatureMap::Favor;
  cfg.favor_features = 4096;
  cfg.favor_seed = 3;
  EXPECT_EQ(LinearAttention(cfg).projection(), a);
  // Default m is head_dim.
  cfg.favor_features = 0;
  EXPECT_EQ(LinearAttention(cfg).feature_dim(), 16);
  EXPECT_EQ(LinearAttention(cfg).projection().size(), 16u * 16u);
}

TEST(LinearAttention, FavorEstimatesTheSoftmaxKernel) {
  // E_w[phi(q)^T phi(k)] = exp(q^T k / sqrt(d)) for w ~ N(0, I): with m = 4096
  // features the estimate is within a few percent.
  const int64_t d = 16, m = 4096;
  LinearAttentionConfig cfg;
  cfg.heads = 1;
  cfg.head_dim = d;
  cfg.feature_map = FeatureMap::Favor;
  cfg.favor_features = m;
  cfg.favor_seed = 2021;
  const LinearAttention attn(cfg);
  EXPECT_LT(attn.favor_max_log_feature(), 60.0);
  const int pairs = 200;
  const auto xs = random_floats(static_cast<std::size_t>(2 * pairs * d), 71, -0.6f, 0.6f);
  std::vector<double> fq(static_cast<std::size_t>(m)), fk(fq.size());
  double sum_est = 0, sum_exact = 0, worst = 0;
  for (int p = 0; p < pairs; ++p) {
    std::vector<double> q(xs.begin() + 2 * p * d, xs.begin() + (2 * p + 1) * d);
    std::vector<double> k(xs.begin() + (2 * p + 1) * d, xs.begin() + (2 * p + 2) * d);
    attn.features(q.data(), fq.data());
    attn.features(k.data(), fk.data());
    double est = 0, dot = 0;
    for (int64_t j = 0; j < m; ++j) est += fq[j] * fk[j];
    for (int64_t i = 0; i < d; ++i) dot += q[i] * k[i];
    const double exact = std::exp(dot / std::sqrt(static_cast<double>(d)));
    for (int64_t j = 0; j < m; ++j) ASSERT_GT(fq[j], 0.0);  // positive features
    sum_est += est;
    sum_exact += exact;
    worst = std::max(worst, std::fabs(est / exact - 1));
  }
  const double mean_rel = std::fabs(sum_est / sum_exact - 1);
  std::printf("FAVOR+ m=%lld: mean relative error %.4f, worst pair %.4f\n", static_cast<long long>(m), mean_rel, worst);
  EXPECT_LT(mean_rel, 0.02);
  EXPECT_LT(worst, 0.08);
}

}  // namespace
}  // namespace roformer::nn
