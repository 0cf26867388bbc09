// Fused (tiled, online-softmax) attention against the materialised path it
// replaces - scores, HF's additive float-lowest mask, softmax, P V, and the
// plain backward - built from the reference GEMM (double accumulation), on
// every instruction set this CPU runs; central differences of the fused
// backward; thread-count independence.
//
// Tolerance: 2e-5 * max(1, max|ref|) per tensor, for out, lse, dq, dk and dv.
// Both sides are fp32 with sums over up to 237 keys in different orders
// (online rescaling, tile-wise partial sums, polynomial exp within 2 ulp);
// measured worst differences are below 2e-6 relative.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <cstdio>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "kernels/attention_fused.h"
#include "kernels/bf16_convert.h"
#include "kernels/elementwise.h"
#include "kernels/elementwise_backward.h"
#include "kernels/gemm.h"
#include "roformer/dtype.h"
#include "support/test_support.h"

namespace roformer::kernels {
namespace {

using testing::random_floats;

constexpr double kTol = 2e-5;

enum class Mask { None, Padded, NoKeyRow };

struct AttentionCase {
  int64_t batch = 2, heads = 2, T = 7, past = 0, D = 8;
  bool causal = false;
  Mask mask = Mask::None;
};

std::string describe(const AttentionCase& c) {
  return "B=" + std::to_string(c.batch) + " heads=" + std::to_string(c.heads) + " T=" + std::to_string(c.T) +
         " past=" + std::to_string(c.past) + " D=" + std::to_string(c.D) + (c.causal ? " causal" : "") +
         (c.mask == Mask::Padded ? " padded" : c.mask == Mask::NoKeyRow ? " padded+no-key rows" : "");
}

// Buffers laid out as SelfAttention's: q, out, dout as (B, T, hidden); k, v
// as a KV cache (B, capacity, hidden) with spare capacity, so the strides differ.
struct Problem {
  AttentionCase c;
  FusedAttention a;
  std::vector<float> q, k, v, dout;
  std::vector<uint8_t> valid;

  explicit Problem(const AttentionCase& cs, uint32_t seed = 1) : c(cs) {
    const int64_t H = c.heads * c.D, Tk = c.past + c.T, cap = Tk + 3;
    a.batch = c.batch;
    a.heads = c.heads;
    a.q_len = c.T;
    a.kv_len = Tk;
    a.head_dim = c.D;
    a.past = c.past;
    a.q_row = H;
    a.q_batch = c.T * H;
    a.kv_row = H;
    a.kv_batch = cap * H;
    a.causal = c.causal;
    // Wide enough that the softmax is far from uniform.
    q = random_floats(static_cast<std::size_t>(c.batch * c.T * H), seed, -2.0f, 2.0f);
    k = random_floats(static_cast<std::size_t>(c.batch * cap * H), seed + 1, -2.0f, 2.0f);
    v = random_floats(k.size(), seed + 2);
    dout = random_floats(q.size(), seed + 3);
    if (c.mask != Mask::None) {
      valid.assign(static_cast<std::size_t>(c.batch * Tk), 1);
      for (int64_t b = 1; b < c.batch; ++b) {
        uint8_t* row = valid.data() + b * Tk;
        if (b == 1) {  // padding at the end and one hole
          for (int64_t j = Tk - Tk / 3; j < Tk; ++j) row[j] = 0;
          if (Tk > 3) row[Tk / 2] = 0;
        } else if (b == 2) {  // padding at the start: with causal, the first queries see no key
          for (int64_t j = 0; j < std::min(Tk - 1, c.past + c.T / 2); ++j) row[j] = 0;
        } else if (c.mask == Mask::NoKeyRow) {  // every key padding
          std::fill(row, row + Tk, uint8_t{0});
        }
      }
      a.key_valid = valid.data();
    }
  }
  int64_t hidden() const { return c.heads * c.D; }
};

struct Result {
  std::vector<float> out, lse, dq, dk, dv;
};

// The materialised path exactly as SelfAttention runs it (BLAS GEMMs, tested
// against the double triple loop elsewhere): scores, + float lowest where
// hidden, softmax, P V; backward through the saved P.
Result reference(const Problem& p) {
  const AttentionCase& c = p.c;
  const FusedAttention& a = p.a;
  const int64_t T = c.T, Tk = a.kv_len, D = c.D;
  Result r;
  r.out.assign(p.q.size(), 0.0f);
  r.dq.assign(p.q.size(), 0.0f);
  r.dk.assign(p.k.size(), 0.0f);
  r.dv.assign(p.k.size(), 0.0f);
  r.lse.assign(static_cast<std::size_t>(c.batch * c.heads * T), 0.0f);
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const float masked = std::numeric_limits<float>::lowest();
  std::vector<float> s(static_cast<std::size_t>(T * Tk)), dp(s.size());
  const ExecContext blas{1, best_isa()};
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t h = 0; h < c.heads; ++h) {
      const int64_t qo = b * a.q_batch + h * D, ko = b * a.kv_batch + h * D;
      gemm(false, true, T, Tk, D, scale, p.q.data() + qo, a.q_row, p.k.data() + ko, a.kv_row, 0.0f, s.data(), Tk, blas);
      for (int64_t i = 0; i < T; ++i) {
        // lse in double from the unmasked visible scores (log(Tk) when none is visible)
        double mx = -INFINITY;
        std::vector<double> vis;
        for (int64_t j = 0; j < Tk; ++j) {
          const bool seen = (p.valid.empty() || p.valid[b * Tk + j] != 0) && (!c.causal || j <= c.past + i);
          if (seen) {
            vis.push_back(s[i * Tk + j]);
            mx = std::max(mx, vis.back());
          } else {
            s[i * Tk + j] += masked;
          }
        }
        double sum = 0;
        for (double x : vis) sum += std::exp(x - mx);
        r.lse[(b * c.heads + h) * T + i] = vis.empty() ? static_cast<float>(std::log(static_cast<double>(Tk)))
                                                       : static_cast<float>(mx + std::log(sum));
      }
      softmax_rows(s.data(), T, Tk, Tk);
      gemm(false, false, T, D, Tk, 1.0f, s.data(), Tk, p.v.data() + ko, a.kv_row, 0.0f, r.out.data() + qo, a.q_row, blas);
      gemm(false, true, T, Tk, D, 1.0f, p.dout.data() + qo, a.q_row, p.v.data() + ko, a.kv_row, 0.0f, dp.data(), Tk, blas);
      gemm(true, false, Tk, D, T, 1.0f, s.data(), Tk, p.dout.data() + qo, a.q_row, 0.0f, r.dv.data() + ko, a.kv_row, blas);
      softmax_backward_rows(s.data(), dp.data(), dp.data(), T, Tk);
      gemm(false, false, T, D, Tk, scale, dp.data(), Tk, p.k.data() + ko, a.kv_row, 0.0f, r.dq.data() + qo, a.q_row, blas);
      gemm(true, false, Tk, D, T, scale, dp.data(), Tk, p.q.data() + qo, a.q_row, 0.0f, r.dk.data() + ko, a.kv_row, blas);
    }
  return r;
}

Result fused(const Problem& p, const ExecContext& ctx, bool backward = true) {
  Result r;
  r.out.assign(p.q.size(), 0.0f);
  r.lse.assign(static_cast<std::size_t>(p.c.batch * p.c.heads * p.c.T), 0.0f);
  std::vector<float> scratch(static_cast<std::size_t>(attention_forward_scratch(p.a, ctx)));
  attention_forward_fused(p.a, p.q.data(), p.k.data(), p.v.data(), r.out.data(), r.lse.data(), scratch.data(), ctx);
  if (!backward) return r;
  r.dq.assign(p.q.size(), 0.0f);
  r.dk.assign(p.k.size(), 0.0f);
  r.dv.assign(p.k.size(), 0.0f);
  scratch.assign(static_cast<std::size_t>(attention_backward_scratch(p.a, ctx)), 0.0f);
  attention_backward_fused(p.a, p.q.data(), p.k.data(), p.v.data(), r.out.data(), p.dout.data(), r.lse.data(),
                           r.dq.data(), r.dk.data(), r.dv.data(), scratch.data(), ctx);
  return r;
}

// Expects every tensor within kTol; returns the worst relative difference.
double expect_close(const Result& got, const Result& want, const std::string& what) {
  double worst = 0;
  const std::pair<const char*, std::pair<const std::vector<float>*, const std::vector<float>*>> parts[] = {
      {"out", {&got.out, &want.out}}, {"lse", {&got.lse, &want.lse}}, {"dq", {&got.dq, &want.dq}},
      {"dk", {&got.dk, &want.dk}},    {"dv", {&got.dv, &want.dv}}};
  for (const auto& [name, pair] : parts) {
    const double e = testing::max_scaled_diff(*pair.first, *pair.second);
    EXPECT_LE(e, kTol) << what << ": " << name;
    worst = std::max(worst, e);
  }
  return worst;
}

// The masking a sweep case runs under.
struct Mode {
  bool causal;
  int64_t past;
  Mask mask;
};

AttentionCase sweep_case(int64_t D, int64_t T, const Mode& m) {
  AttentionCase c;
  c.batch = 4;
  c.D = D;
  c.T = T;
  c.causal = m.causal;
  c.past = m.past;
  c.mask = m.mask;
  return c;
}

TEST(AttentionFused, MatchesMaterialisedPathOnEveryInstructionSet) {
  const Mode modes[] = {{false, 0, Mask::None}, {false, 0, Mask::NoKeyRow}, {true, 0, Mask::Padded},
                        {true, 37, Mask::None}, {true, 37, Mask::NoKeyRow}};
  double worst = 0;
  uint32_t seed = 100;
  // T up to kDecodeMaxQueries runs the decoding path: 1 to 4 queries per
  // pass over the keys; D = 128 two per pass on AVX-512, the plain loop on
  // AVX2; D = 8 and 80 the plain loop on AVX-512.
  for (int64_t D : {8, 32, 64, 80, 128})
    for (int64_t T : {1, 2, 3, 4, 5, 7, 64, 65, 200})
      for (const Mode& m : modes) {
        const AttentionCase c = sweep_case(D, T, m);
        const Problem p(c, ++seed);
        const Result want = reference(p);
        for (Isa isa : supported_isas()) {
          const Result got = fused(p, ExecContext{1, isa});
          worst = std::max(worst, expect_close(got, want, describe(c) + " isa=" + std::string(isa_name(isa))));
        }
      }
  RecordProperty("worst_relative_difference", std::to_string(worst));
  std::printf("worst relative difference: %.3g\n", worst);
}

// The decoding path's vector loops (register blocks of keys summed by the
// lane trees, groups of up to four queries) against its plain loop
// (Isa::Scalar, one key at a time), on fp32 and bf16 keys: the same products
// summed in another order.
TEST(AttentionFused, DecodingPathMatchesItsPlainLoops) {
  const Mode modes[] = {{false, 0, Mask::NoKeyRow}, {true, 0, Mask::Padded}, {true, 37, Mask::NoKeyRow}};
  double worst = 0;
  uint32_t seed = 700;
  for (int64_t D : {16, 32, 64, 80, 128})
    for (int64_t T = 1; T <= kDecodeMaxQueries; ++T)
      for (const Mode& m : modes) {
        Problem p(sweep_case(D, T, m), ++seed);
        std::vector<uint16_t> k16(p.k.size()), v16(p.v.size());
        convert_to_bf16_ref(p.k.data(), static_cast<int64_t>(p.k.size()), k16.data());
        convert_to_bf16_ref(p.v.data(), static_cast<int64_t>(p.v.size()), v16.data());
        auto run = [&](const ExecContext& ctx, bool halves) {
          Result r;
          r.out.assign(p.q.size(), 0.0f);
          r.lse.assign(static_cast<std::size_t>(p.c.batch * p.c.heads * T), 0.0f);
          std::vector<float> scratch(static_cast<std::size_t>(attention_forward_scratch_bf16_kv(p.a, ctx)));
          if (halves) {
            attention_forward_fused_bf16_kv(p.a, p.q.data(), k16.data(), v16.data(), r.out.data(), r.lse.data(),
                                            scratch.data(), ctx);
          } else {
            attention_forward_fused(p.a, p.q.data(), p.k.data(), p.v.data(), r.out.data(), r.lse.data(),
                                    scratch.data(), ctx);
          }
          return r;
        };
        for (bool halves : {false, true}) {
          const Result plain = run(ExecContext{1, Isa::Scalar}, halves);
          for (Isa isa : supported_isas()) {
            if (isa == Isa::Scalar) continue;
            const Result fast = run(ExecContext{1, isa}, halves);
            const std::string what = describe(p.c) + " isa=" + std::string(isa_name(isa)) + (halves ? " bf16 K/V" : "");
            for (const auto& [got, want] : {std::pair{&fast.out, &plain.out}, std::pair{&fast.lse, &plain.lse}}) {
              const double e = testing::max_scaled_diff(*got, *want);
              EXPECT_LE(e, 2e-6) << what;
              worst = std::max(worst, e);
            }
          }
        }
      }
  std::printf("decoding path, vector vs plain loops: worst %.3g\n", worst);
}

// A query with no visible key averages every key uniformly (HF: all its
// scores are float lowest), whatever the causal limit says.
TEST(AttentionFused, QueryWithoutVisibleKeyAveragesAllKeys) {
  AttentionCase c;
  c.batch = 3;
  c.T = 9;
  c.past = 4;
  c.D = 16;
  c.causal = true;
  c.mask = Mask::Padded;  // row 2: keys [0, past + T/2) padding
  const Problem p(c, 7);
  for (Isa isa : supported_isas()) {
    const Result got = fused(p, ExecContext{1, isa});
    const int64_t Tk = p.a.kv_len, H = p.hidden();
    for (int64_t h = 0; h < c.heads; ++h)
      for (int64_t i = 0; i < c.T; ++i) {
        const bool sees_none = c.past + i < c.past + c.T / 2;
        for (int64_t d = 0; d < c.D; ++d) {
          double mean = 0;
          for (int64_t j = 0; j < Tk; ++j) mean += p.v[2 * p.a.kv_batch + j * H + h * c.D + d];
          mean /= static_cast<double>(Tk);
          const float o = got.out[2 * p.a.q_batch + i * H + h * c.D + d];
          if (sees_none) {
            EXPECT_NEAR(o, mean, 1e-6) << "query " << i << " isa " << isa_name(isa);
          } else {
            EXPECT_GT(std::abs(o - mean), 1e-6) << "query " << i << " sees keys, so it should not be the mean";
          }
        }
        if (sees_none) {
          EXPECT_NEAR(got.lse[(2 * c.heads + h) * c.T + i], std::log(static_cast<double>(Tk)), 1e-6);
        }
      }
  }
}

// The forward and backward on 2 and 3 threads equal the 1-thread call, bit for bit.
void expect_thread_count_independent(const Problem& p, const std::vector<Isa>& isas) {
  for (Isa isa : isas) {
    const Result one = fused(p, ExecContext{1, isa});
    for (int threads : {2, 3}) {
      const Result many = fused(p, ExecContext{threads, isa});
      const std::string what = describe(p.c) + " isa=" + std::string(isa_name(isa)) + " threads=" +
                               std::to_string(threads) + (p.a.bf16_products ? " bf16 products" : "");
      EXPECT_EQ(one.out, many.out) << what;
      EXPECT_EQ(one.lse, many.lse) << what;
      EXPECT_EQ(one.dq, many.dq) << what;
      EXPECT_EQ(one.dk, many.dk) << what;
      EXPECT_EQ(one.dv, many.dv) << what;
    }
  }
}

AttentionCase thread_case(bool causal) {
  return AttentionCase{.batch = 3, .heads = 3, .T = 130, .D = 64, .causal = causal, .mask = Mask::NoKeyRow};
}

TEST(AttentionFused, ResultsDoNotDependOnThreadCount) {
  for (const bool causal : {false, true}) {
    expect_thread_count_independent(Problem(thread_case(causal), 11), supported_isas());
    AttentionCase decoding = thread_case(causal);  // a decoding step: three queries after 130 cached keys
    decoding.T = 3;
    decoding.past = 130;
    expect_thread_count_independent(Problem(decoding, 13), supported_isas());
  }
}

// Central differences of L = sum(dout * out) through the fused forward, in
// fp32 with h = 1e-2 (L is smooth; h only trades truncation for rounding):
// 2e-3 * max(1, |grad|) covers both at these sizes. No query lacks a key here:
// for those the reference gradient is HF's formal one through the uniform
// probabilities, which the forward's value does not follow.
TEST(AttentionFused, BackwardMatchesFiniteDifferences) {
  AttentionCase c;
  c.batch = 2;
  c.heads = 2;
  c.T = 5;
  c.past = 2;
  c.D = 8;
  c.causal = true;
  c.mask = Mask::Padded;  // row 1: trailing padding and a hole
  const Problem p(c, 23);
  for (Isa isa : supported_isas()) {
    const ExecContext ctx{1, isa};
    const Result g = fused(p, ctx);
    auto loss = [&](const Problem& pp) {
      const Result r = fused(pp, ctx, false);
      double s = 0;
      for (std::size_t i = 0; i < r.out.size(); ++i) s += static_cast<double>(r.out[i]) * pp.dout[i];
      return s;
    };
    const float h = 1e-2f;
    auto check = [&](std::vector<float> Problem::*member, const std::vector<float>& grad, const char* name) {
      Problem pp = p;
      pp.a.key_valid = pp.valid.empty() ? nullptr : pp.valid.data();
      const int64_t rows = member == &Problem::q ? c.batch * c.T : c.batch * (p.a.kv_batch / p.hidden());
      for (int64_t idx = 0; idx < rows * p.hidden(); idx += 3) {
        if (member != &Problem::q) {  // skip the cache's spare rows
          const int64_t row = (idx / p.hidden()) % (p.a.kv_batch / p.hidden());
          if (row >= p.a.kv_len) continue;
        }
        float& x = (pp.*member)[static_cast<std::size_t>(idx)];
        const float x0 = x;
        x = x0 + h;
        const double up = loss(pp);
        x = x0 - h;
        const double down = loss(pp);
        x = x0;
        const double fd = (up - down) / (2.0 * h);
        const double an = grad[static_cast<std::size_t>(idx)];
        EXPECT_NEAR(an, fd, 2e-3 * std::max(1.0, std::abs(fd))) << name << "[" << idx << "] isa " << isa_name(isa);
      }
    };
    check(&Problem::q, g.dq, "dq");
    check(&Problem::k, g.dk, "dk");
    check(&Problem::v, g.dv, "dv");
  }
}

// bf16 products: attention computed exactly (double) on what the kernel
// rounds to bf16 - the scaled queries, the keys and the values - so the
// remaining differences come from the probabilities, which the kernel also
// rounds to bf16 before P V (relative error <= 2^-9 each, so |d out| <=
// 2^-9 max|v|) and from fp32 sums. Out and lse only (forward-only path).
float bf16_round(float x) { return bf16_to_f32(f32_to_bf16(x)); }

Result rounded_reference(const Problem& p) {
  const AttentionCase& c = p.c;
  const FusedAttention& a = p.a;
  const int64_t T = c.T, Tk = a.kv_len, D = c.D;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  Result r;
  r.out.assign(p.q.size(), 0.0f);
  r.lse.assign(static_cast<std::size_t>(c.batch * c.heads * T), 0.0f);
  std::vector<double> s(static_cast<std::size_t>(Tk));
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t h = 0; h < c.heads; ++h)
      for (int64_t i = 0; i < T; ++i) {
        const float* q = p.q.data() + b * a.q_batch + i * a.q_row + h * D;
        double mx = -INFINITY;
        bool any = false;
        for (int64_t j = 0; j < Tk; ++j) {
          const float* k = p.k.data() + b * a.kv_batch + j * a.kv_row + h * D;
          const bool seen = (p.valid.empty() || p.valid[b * Tk + j] != 0) && (!c.causal || j <= c.past + i);
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += static_cast<double>(bf16_round(q[d] * scale)) * bf16_round(k[d]);
          s[j] = seen ? dot : -INFINITY;
          any = any || seen;
        }
        if (!any) std::fill(s.begin(), s.end(), 0.0);  // no visible key: the uniform average
        for (double x : s) mx = std::max(mx, x);
        double sum = 0;
        for (double& x : s) sum += (x = std::exp(x - mx));
        r.lse[(b * c.heads + h) * T + i] = static_cast<float>(mx + std::log(sum));
        for (int64_t d = 0; d < D; ++d) {
          double o = 0;
          for (int64_t j = 0; j < Tk; ++j) o += s[j] * bf16_round(p.v[b * a.kv_batch + j * a.kv_row + h * D + d]);
          r.out[b * a.q_batch + i * a.q_row + h * D + d] = static_cast<float>(o / sum);
        }
      }
  return r;
}

constexpr double kBf16Tol = 4e-3;

// Where the bf16 products run: the plain emulation always, AVX-512 when the CPU has AVX512-BF16.
std::vector<Isa> bf16_isas() {
  std::vector<Isa> isas{Isa::Scalar};
  if (cpu_has_avx512_bf16()) isas.push_back(Isa::Avx512);
  return isas;
}

TEST(AttentionFusedBf16, MatchesExactAttentionOnRoundedInputs) {
  const Mode modes[] = {{false, 0, Mask::None}, {false, 0, Mask::NoKeyRow}, {true, 0, Mask::Padded},
                        {true, 37, Mask::NoKeyRow}};
  const std::vector<Isa> isas = bf16_isas();
  double worst_out = 0, worst_lse = 0, worst_fast = 0, least_vs_fp32 = INFINITY;
  uint32_t seed = 500;
  for (int64_t D : {32, 64})
    for (int64_t T : {16, 65, 200})  // 65 and 37 + 200 keys: an odd last key
      for (const Mode& m : modes) {
        const AttentionCase c = sweep_case(D, T, m);
        Problem p(c, ++seed);
        const Result want = rounded_reference(p);
        const Result fp32 = fused(p, ExecContext{1, Isa::Scalar}, false);
        p.a.bf16_products = true;
        Result emulated;
        for (Isa isa : isas) {
          const ExecContext ctx{1, isa};
          ASSERT_TRUE(uses_bf16_products(p.a, ctx)) << describe(c);
          const Result got = fused(p, ctx, false);
          const std::string what = describe(c) + " isa=" + std::string(isa_name(isa));
          const double e_out = testing::max_scaled_diff(got.out, want.out);
          const double e_lse = testing::max_scaled_diff(got.lse, want.lse);
          EXPECT_LE(e_out, kBf16Tol) << what;
          EXPECT_LE(e_lse, kTol) << what;
          worst_out = std::max(worst_out, e_out);
          worst_lse = std::max(worst_lse, e_lse);
          // The rounding shows: this is not the fp32 path.
          least_vs_fp32 = std::min(least_vs_fp32, testing::max_scaled_diff(got.out, fp32.out));
          if (isa == Isa::Scalar) {
            emulated = got;
          } else {
            // vdpbf16ps against its plain emulation: the same roundings and
            // sums in the same order, so only rare one-ulp flips of a rounded
            // probability remain (measured: 1.2e-7).
            const double e = testing::max_scaled_diff(got.out, emulated.out);
            EXPECT_LE(e, 1e-5) << what << " against the plain emulation";
            worst_fast = std::max(worst_fast, e);
          }
        }
      }
  EXPECT_GT(least_vs_fp32, 1e-5) << "bf16 products should differ from fp32 ones";
  std::printf("bf16 products: worst out %.3g, lse %.3g, fast vs emulation %.3g; least difference from fp32 %.3g\n",
              worst_out, worst_lse, worst_fast, least_vs_fp32);
}

// The backward with bf16 products against the gradients computed exactly
// (double) on what its products round to bf16 - the scaled queries and keys
// of the scores, dO and V of dP, dO of dV, K of dQ and Q of dK - with the
// probabilities and dS unrounded: the kernel rounds those two before their
// products, each by at most 2^-9 relative, and sums in fp32.
Result rounded_backward_reference(const Problem& p, const Result& forward) {
  const AttentionCase& c = p.c;
  const FusedAttention& a = p.a;
  const int64_t T = c.T, Tk = a.kv_len, D = c.D;
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  const float fscale = 1.0f / std::sqrt(static_cast<float>(D));
  Result r;
  r.dq.assign(p.q.size(), 0.0f);
  r.dk.assign(p.k.size(), 0.0f);
  r.dv.assign(p.k.size(), 0.0f);
  auto rq = [&](int64_t b, int64_t i, int64_t h, int64_t d) { return p.q[b * a.q_batch + i * a.q_row + h * D + d]; };
  auto rg = [&](int64_t b, int64_t i, int64_t h, int64_t d) { return p.dout[b * a.q_batch + i * a.q_row + h * D + d]; };
  auto rk = [&](int64_t b, int64_t j, int64_t h, int64_t d) { return p.k[b * a.kv_batch + j * a.kv_row + h * D + d]; };
  auto rv = [&](int64_t b, int64_t j, int64_t h, int64_t d) { return p.v[b * a.kv_batch + j * a.kv_row + h * D + d]; };
  std::vector<double> prob(static_cast<std::size_t>(Tk)), dk(static_cast<std::size_t>(Tk * D)),
      dv(static_cast<std::size_t>(Tk * D));
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t h = 0; h < c.heads; ++h) {
      std::fill(dk.begin(), dk.end(), 0.0);
      std::fill(dv.begin(), dv.end(), 0.0);
      for (int64_t i = 0; i < T; ++i) {
        bool any = false;
        for (int64_t j = 0; j < Tk; ++j) {
          const bool seen = (p.valid.empty() || p.valid[b * Tk + j] != 0) && (!c.causal || j <= c.past + i);
          double dot = 0;
          for (int64_t d = 0; d < D; ++d)
            dot += static_cast<double>(bf16_round(rq(b, i, h, d) * fscale)) * bf16_round(rk(b, j, h, d));
          prob[j] = seen ? dot : -INFINITY;
          any = any || seen;
        }
        if (!any) std::fill(prob.begin(), prob.end(), 0.0);  // no visible key: the uniform average
        double mx = -INFINITY, sum = 0;
        for (double x : prob) mx = std::max(mx, x);
        for (double& x : prob) sum += (x = std::exp(x - mx));
        for (double& x : prob) x /= sum;
        // D_i from the fp32 dout and the forward's output, as the kernel forms it.
        double di = 0;
        for (int64_t d = 0; d < D; ++d)
          di += static_cast<double>(rg(b, i, h, d)) * forward.out[b * a.q_batch + i * a.q_row + h * D + d];
        for (int64_t j = 0; j < Tk; ++j) {
          double dp = 0;
          for (int64_t d = 0; d < D; ++d)
            dp += static_cast<double>(bf16_round(rg(b, i, h, d))) * bf16_round(rv(b, j, h, d));
          const double ds = prob[j] * (dp - di);
          for (int64_t d = 0; d < D; ++d) {
            dv[j * D + d] += prob[j] * bf16_round(rg(b, i, h, d));
            dk[j * D + d] += ds * bf16_round(rq(b, i, h, d));
            float& g = r.dq[b * a.q_batch + i * a.q_row + h * D + d];
            g += static_cast<float>(scale * ds * bf16_round(rk(b, j, h, d)));
          }
        }
      }
      for (int64_t j = 0; j < Tk; ++j)
        for (int64_t d = 0; d < D; ++d) {
          r.dk[b * a.kv_batch + j * a.kv_row + h * D + d] = static_cast<float>(scale * dk[j * D + d]);
          r.dv[b * a.kv_batch + j * a.kv_row + h * D + d] = static_cast<float>(dv[j * D + d]);
        }
    }
  return r;
}

TEST(AttentionFusedBf16, BackwardMatchesExactGradientsOnRoundedOperands) {
  const Mode modes[] = {{false, 0, Mask::None}, {false, 0, Mask::NoKeyRow}, {true, 0, Mask::Padded},
                        {true, 37, Mask::NoKeyRow}};
  const std::vector<Isa> isas = bf16_isas();
  double worst = 0, worst_fast = 0, least_vs_fp32 = INFINITY;
  uint32_t seed = 900;
  for (int64_t D : {32, 64})
    for (int64_t T : {16, 65, 200})
      for (const Mode& m : modes) {
        const AttentionCase c = sweep_case(D, T, m);
        Problem p(c, ++seed);
        const Result fp32 = fused(p, ExecContext{1, Isa::Scalar});
        p.a.bf16_products = true;
        Result emulated;
        for (Isa isa : isas) {
          const Result got = fused(p, ExecContext{1, isa});
          const Result want = rounded_backward_reference(p, got);
          const std::string what = describe(c) + " isa=" + std::string(isa_name(isa));
          for (auto [name, g, w, f] : {std::tuple{"dq", &got.dq, &want.dq, &fp32.dq},
                                       std::tuple{"dk", &got.dk, &want.dk, &fp32.dk},
                                       std::tuple{"dv", &got.dv, &want.dv, &fp32.dv}}) {
            const double e = testing::max_scaled_diff(*g, *w);
            EXPECT_LE(e, kBf16Tol) << what << ": " << name;
            worst = std::max(worst, e);
            least_vs_fp32 = std::min(least_vs_fp32, testing::max_scaled_diff(*g, *f));
          }
          if (isa == Isa::Scalar) {
            emulated = got;
          } else {
            // vdpbf16ps against its plain emulation: the same operands and
            // order; only a rounded P or dS that lands one fp32 ulp apart
            // (the exponential's vector and plain forms) may flip a bf16 bit.
            for (auto [g, e] : {std::pair{&got.dq, &emulated.dq}, std::pair{&got.dk, &emulated.dk},
                                std::pair{&got.dv, &emulated.dv}}) {
              const double d = testing::max_scaled_diff(*g, *e);
              EXPECT_LE(d, 2e-4) << what << " against the plain emulation";
              worst_fast = std::max(worst_fast, d);
            }
          }
        }
      }
  EXPECT_GT(least_vs_fp32, 1e-5) << "bf16 products should differ from fp32 ones";
  std::printf("bf16 backward: worst %.3g, fast vs emulation %.3g; least difference from fp32 %.3g\n", worst,
              worst_fast, least_vs_fp32);
}

TEST(AttentionFusedBf16, RunsOnlyWhereItPays) {
  AttentionCase c;
  c.D = 64;
  c.T = 16;
  Problem p(c);
  const ExecContext scalar{1, Isa::Scalar};
  EXPECT_FALSE(uses_bf16_products(p.a, scalar)) << "not asked for";
  p.a.bf16_products = true;
  EXPECT_TRUE(uses_bf16_products(p.a, scalar));
  EXPECT_EQ(uses_bf16_products(p.a, ExecContext{1, Isa::Avx512}), cpu_has_avx512_bf16());
  EXPECT_FALSE(uses_bf16_products(p.a, ExecContext{1, Isa::Avx2})) << "no bf16 dot product in AVX2";
  p.a.q_len = kBf16MinQueries - 1;
  EXPECT_FALSE(uses_bf16_products(p.a, scalar)) << "too few queries";
  // A bf16 KV cache: wherever the bf16 tiles run natively, whatever the
  // query count, and wherever no bf16 tiles exist (the caller rounds K and V).
  p.a.q_len = 1;
  const ExecContext avx512{1, Isa::Avx512}, avx2{1, Isa::Avx2};
  EXPECT_TRUE(bf16_kv_cache_pays(p.a, avx512));
  EXPECT_NE(bf16_kv_rounded_by_caller(p.a, avx512), cpu_has_avx512_bf16());
  EXPECT_FALSE(bf16_kv_cache_pays(p.a, scalar)) << "the reference path reads fp32 keys";
  EXPECT_FALSE(bf16_kv_rounded_by_caller(p.a, scalar));
  EXPECT_TRUE(bf16_kv_cache_pays(p.a, avx2));
  EXPECT_TRUE(bf16_kv_rounded_by_caller(p.a, avx2)) << "no bf16 dot product in AVX2";
  p.a.bf16_products = false;
  EXPECT_FALSE(bf16_kv_cache_pays(p.a, avx512)) << "not asked for";
  EXPECT_FALSE(bf16_kv_cache_pays(p.a, avx2)) << "not asked for";
  EXPECT_FALSE(bf16_kv_rounded_by_caller(p.a, avx2)) << "not asked for";
  p.a.bf16_products = true;
  p.a.head_dim = 48;
  // No bf16 tiles for that head size: a CPU with them keeps fp32 keys.
  EXPECT_EQ(bf16_kv_cache_pays(p.a, avx512), !cpu_has_avx512_bf16()) << "head size not a multiple of 32";
  p.a.head_dim = 64;
  // A prompt on a bf16 cache takes the fp32 tiles on widened keys where no
  // bf16 tile would take it; up to kDecodeMaxQueries queries decode.
  p.a.q_len = kDecodeMaxQueries + 1;
  EXPECT_TRUE(bf16_kv_wants_floats(p.a, avx2));
  EXPECT_EQ(bf16_kv_wants_floats(p.a, avx512), !cpu_has_avx512_bf16());
  p.a.q_len = kDecodeMaxQueries;
  EXPECT_FALSE(bf16_kv_wants_floats(p.a, avx2));
  p.a.q_len = kBf16MinQueries - 1;
  // head_dim 48 or 80: the fp32 products, bit for bit.
  for (int64_t D : {48, 80}) {
    AttentionCase odd = c;
    odd.D = D;
    Problem q(odd, 3);
    const Result fp32 = fused(q, scalar, false);
    q.a.bf16_products = true;
    EXPECT_FALSE(uses_bf16_products(q.a, scalar));
    for (Isa isa : supported_isas()) {
      const Result a32 = fused(q, ExecContext{1, isa}, false);
      q.a.bf16_products = false;
      const Result b32 = fused(q, ExecContext{1, isa}, false);
      q.a.bf16_products = true;
      EXPECT_EQ(a32.out, b32.out) << "D=" << D << " isa " << isa_name(isa);
    }
    EXPECT_EQ(fused(q, scalar, false).out, fp32.out);
  }
}

TEST(AttentionFusedBf16, ResultsDoNotDependOnThreadCount) {
  Problem p(thread_case(true), 12);
  p.a.bf16_products = true;
  expect_thread_count_independent(p, bf16_isas());
}

// The output stored as bf16 (for a bf16 product that reads it) is the fp32
// output rounded, bit for bit, with fp32 and bf16 products alike; out itself
// is left alone.
TEST(AttentionFused, Bf16OutputIsTheRoundedFp32Output) {
  const AttentionCase c{.batch = 2, .heads = 2, .T = 70, .D = 64, .causal = true, .mask = Mask::Padded};
  for (bool bf16_products : {false, true}) {
    Problem p(c, 21);
    p.a.bf16_products = bf16_products;
    for (Isa isa : supported_isas())
      for (int threads : {1, 2}) {
        const ExecContext ctx{threads, isa};
        const Result want = fused(p, ctx, false);
        std::vector<uint16_t> got(p.q.size(), 0xffffu);
        std::vector<float> untouched(p.q.size(), 7.0f);
        std::vector<float> scratch(static_cast<std::size_t>(attention_forward_scratch(p.a, ctx)));
        attention_forward_fused(p.a, p.q.data(), p.k.data(), p.v.data(), untouched.data(), nullptr, scratch.data(), ctx,
                                got.data());
        std::vector<uint16_t> rounded(want.out.size());
        convert_to_bf16_ref(want.out.data(), static_cast<int64_t>(want.out.size()), rounded.data());
        EXPECT_EQ(got, rounded) << isa_name(isa) << " threads " << threads << " bf16 products " << bf16_products;
        EXPECT_TRUE(std::all_of(untouched.begin(), untouched.end(), [](float x) { return x == 7.0f; }));
      }
  }
  std::vector<float> scratch(1 << 16);
  Problem p(c, 22);
  EXPECT_ANY_THROW(attention_forward_fused(p.a, p.q.data(), p.k.data(), p.v.data(), nullptr, nullptr, scratch.data(),
                                           ExecContext{1, Isa::Scalar}));  // no output at all
}

// K and V given as bf16 bits (a bf16 KV cache) give what the same values
// as floats give, bit for bit, on the decoding path (up to
// kDecodeMaxQueries queries, and every query without bf16 products) and on
// the bf16 products (from kBf16MinQueries queries). From kDecodeMaxQueries
// + 1 queries on the bf16 products take bf16 K and V where floats would
// still run fp32 tiles: those match the exact attention on rounded inputs.
TEST(AttentionFused, Bf16KeysAndValuesGiveWhatTheirFloatsGive) {
  const Mode modes[] = {{false, 0, Mask::NoKeyRow}, {true, 0, Mask::Padded}, {true, 37, Mask::None},
                        {true, 37, Mask::NoKeyRow}};
  uint32_t seed = 900;
  int compared = 0;
  for (int64_t D : {32, 64, 80})
    for (int64_t T : {1, 3, 4, 5, 9, 16, 40})
      for (const Mode& m : modes)
        for (bool bf16_products : {false, true}) {
          Problem p(sweep_case(D, T, m), ++seed);
          p.a.bf16_products = bf16_products;
          std::vector<uint16_t> k16(p.k.size()), v16(p.v.size());
          convert_to_bf16_ref(p.k.data(), static_cast<int64_t>(p.k.size()), k16.data());
          convert_to_bf16_ref(p.v.data(), static_cast<int64_t>(p.v.size()), v16.data());
          for (std::size_t i = 0; i < p.k.size(); ++i) {
            p.k[i] = bf16_to_f32(bf16{k16[i]});
            p.v[i] = bf16_to_f32(bf16{v16[i]});
          }
          for (Isa isa : supported_isas())
            for (int threads : {1, 2}) {
              const ExecContext ctx{threads, isa};
              const Result floats = fused(p, ctx, false);
              Result halves;
              halves.out.assign(p.q.size(), 0.0f);
              halves.lse.assign(floats.lse.size(), 0.0f);
              std::vector<float> scratch(static_cast<std::size_t>(attention_forward_scratch_bf16_kv(p.a, ctx)));
              attention_forward_fused_bf16_kv(p.a, p.q.data(), k16.data(), v16.data(), halves.out.data(),
                                              halves.lse.data(), scratch.data(), ctx);
              const std::string what = describe(p.c) + " isa=" + std::string(isa_name(isa)) +
                                       (bf16_products ? " bf16 products" : "");
              // Where the halves run bf16 products, as the header states it.
              const bool bf16_here = isa == Isa::Scalar || (isa == Isa::Avx512 && cpu_has_avx512_bf16());
              const bool halves_bf16 = bf16_products && D % 32 == 0 && T > kDecodeMaxQueries && bf16_here;
              if (T <= kDecodeMaxQueries || uses_bf16_products(p.a, ctx)) {
                EXPECT_EQ(halves.out, floats.out) << what;
                EXPECT_EQ(halves.lse, floats.lse) << what;
                ++compared;
              } else if (halves_bf16) {  // the floats ran fp32 tiles
                const Result want = rounded_reference(p);
                EXPECT_LE(testing::max_scaled_diff(halves.out, want.out), kBf16Tol) << what;
                EXPECT_LE(testing::max_scaled_diff(halves.lse, want.lse), kBf16Tol) << what;
              } else {  // the decoding path against the floats' fp32 tiles
                const Result want = reference(p);
                EXPECT_LE(testing::max_scaled_diff(halves.out, want.out), kTol) << what;
                EXPECT_LE(testing::max_scaled_diff(halves.lse, want.lse), kTol) << what;
              }
            }
        }
  EXPECT_GT(compared, 100);
}

TEST(AttentionFused, RejectsInconsistentShapes) {
  AttentionCase c;
  Problem p(c);
  std::vector<float> out(p.q.size()), scratch(1 << 16);
  p.a.kv_len = p.a.past + p.a.q_len - 1;  // fewer keys than positions
  EXPECT_ANY_THROW(attention_forward_fused(p.a, p.q.data(), p.k.data(), p.v.data(), out.data(), nullptr,
                                           scratch.data(), ExecContext{1, Isa::Scalar}));
  p.a.kv_len = p.a.past + p.a.q_len;
  p.a.q_row = p.hidden() - 1;
  EXPECT_ANY_THROW(attention_forward_fused(p.a, p.q.data(), p.k.data(), p.v.data(), out.data(), nullptr,
                                           scratch.data(), ExecContext{1, Isa::Scalar}));
}

}  // namespace
}  // namespace roformer::kernels
