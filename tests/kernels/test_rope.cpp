// RoPE against independent references: the explicit rotation matrix of the
// paper (eq. 15) built in double, HF's own vectors, the properties RoPE must
// have, finite differences, and the scalar kernel for every fast path.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "roformer/error.h"
#include "roformer/rope.h"
#include "roformer/safetensors.h"
#include "support/test_support.h"

namespace roformer {
namespace {

using testing::data_path;
using testing::max_abs_diff;
using testing::random_floats;

Tensor positions_of(std::vector<int64_t> p) {
  Tensor t = Tensor::zeros({static_cast<int64_t>(p.size())}, DType::I64);
  std::copy(p.begin(), p.end(), t.data<int64_t>());
  return t;
}

Tensor iota_positions(int64_t n, int64_t offset = 0) {
  std::vector<int64_t> p(static_cast<std::size_t>(n));
  std::iota(p.begin(), p.end(), offset);
  return positions_of(p);
}

// Rotates a [1, seq, 1, d] vector set and returns the result.
std::vector<float> rotate(const RopeSpec& spec, const std::vector<float>& x, const std::vector<int64_t>& pos,
                          RopeDirection dir = RopeDirection::Forward, Isa isa = Isa::Scalar) {
  const int64_t seq = static_cast<int64_t>(pos.size());
  Tensor in = Tensor::from_vector({1, seq, 1, spec.head_dim}, x);
  Tensor out = Tensor::zeros(in.shape());
  RopeTable table(spec);
  rope_apply(table, in, out, positions_of(pos), QkvLayout::BSHD, dir, ExecContext{1, isa});
  return out.to_vector();
}

// R^d_{Theta,m} of eq. 15, for either pairing, built in double from scratch.
std::vector<double> rotation_matrix(const RopeSpec& spec, int64_t m) {
  const int64_t d = spec.head_dim, r = spec.rotary();
  std::vector<double> R(static_cast<std::size_t>(d * d), 0.0);
  for (int64_t j = 0; j < d; ++j) R[j * d + j] = 1.0;  // unrotated dims
  for (int64_t i = 0; i < r / 2; ++i) {
    const double theta = std::exp(-static_cast<double>(2 * i) / static_cast<double>(r) * std::log(spec.base));
    const double c = std::cos(static_cast<double>(m) * theta), s = std::sin(static_cast<double>(m) * theta);
    const int64_t a = spec.layout == RopeLayout::Interleaved ? 2 * i : i;
    const int64_t b = spec.layout == RopeLayout::Interleaved ? 2 * i + 1 : i + r / 2;
    R[a * d + a] = c;
    R[a * d + b] = -s;
    R[b * d + a] = s;
    R[b * d + b] = c;
  }
  return R;
}

TEST(Rope, EqualsExplicitRotationMatrix) {
  for (RopeLayout layout : {RopeLayout::Interleaved, RopeLayout::HalfSplit}) {
    for (int64_t rotary : {0, 8}) {
      RopeSpec spec{16, rotary, 10000.0, layout};
      const std::vector<int64_t> pos = {0, 1, 2, 7, 100, 1000, 65535, 1000000};
      const auto x = random_floats(pos.size() * 16, 1);
      for (bool backward : {false, true}) {
        const auto y = rotate(spec, x, pos, backward ? RopeDirection::Backward : RopeDirection::Forward);
        for (std::size_t t = 0; t < pos.size(); ++t) {
          const auto R = rotation_matrix(spec, pos[t]);
          for (int64_t a = 0; a < 16; ++a) {
            double want = 0;  // forward: R x; backward: R^T x
            for (int64_t b = 0; b < 16; ++b)
              want += (backward ? R[b * 16 + a] : R[a * 16 + b]) * x[t * 16 + static_cast<std::size_t>(b)];
            EXPECT_NEAR(y[t * 16 + static_cast<std::size_t>(a)], want, 1e-6)
                << "layout " << int(layout) << " rotary " << rotary << " pos " << pos[t] << " dim " << a;
          }
        }
      }
    }
  }
}

TEST(Rope, MatchesHuggingFaceVectors) {
  SafeTensors ref = SafeTensors::open(data_path("fixtures/roformer-tiny-mlm/expected.safetensors"));
  const Tensor x = ref.get("rope.x");  // [1, heads=2, seq=16, head_dim=16], HF's layout
  ASSERT_EQ(x.shape(), (Shape{1, 2, 16, 16}));
  RopeSpec spec{16, 0, 10000.0, RopeLayout::Interleaved};
  RopeTable table(spec);
  for (int64_t offset : {0, 7}) {
    const std::string key = "rope.offset" + std::to_string(offset);
    Tensor out = Tensor::zeros(x.shape());
    rope_apply(table, x, out, iota_positions(16, offset), QkvLayout::BHSD, RopeDirection::Forward, ExecContext{});
    const auto want = ref.get(key + ".x_rotated").to_vector();
    EXPECT_LE(max_abs_diff(out.to_vector(), want), 2e-6) << key;

    // HF's table rows are [sin_0..sin_{d/2-1}, cos_0..cos_{d/2-1}].
    const auto sinusoidal = ref.get(key + ".sinusoidal_pos").to_vector();
    for (int64_t p = 0; p < 16; ++p) {
      const float* row = table.row(p + offset);
      ASSERT_NE(row, nullptr);
      for (int64_t i = 0; i < 8; ++i) {
        EXPECT_NEAR(row[8 + i], sinusoidal[p * 16 + i], 1e-7) << "sin pos " << p + offset << " pair " << i;
        EXPECT_NEAR(row[i], sinusoidal[p * 16 + 8 + i], 1e-7) << "cos pos " << p + offset << " pair " << i;
      }
    }
  }
  // The stored table of the checkpoint, all 128 positions.
  const auto full = ref.get("sinusoidal_table").to_vector();
  std::vector<float> c(8), s(8);
  for (int64_t p = 0; p < 128; ++p) {
    rope_angles(spec, p, c.data(), s.data());
    for (int64_t i = 0; i < 8; ++i) {
      EXPECT_NEAR(s[i], full[p * 16 + i], 1e-7);
      EXPECT_NEAR(c[i], full[p * 16 + 8 + i], 1e-7);
    }
  }
}

TEST(Rope, PreservesNorm) {
  RopeSpec spec{64, 0, 10000.0, RopeLayout::Interleaved};
  const std::vector<int64_t> pos = {0, 3, 511, 123456, 999999};
  const auto x = random_floats(pos.size() * 64, 2);
  const auto y = rotate(spec, x, pos);
  for (std::size_t t = 0; t < pos.size(); ++t) {
    double nx = 0, ny = 0;
    for (std::size_t j = 0; j < 64; ++j) {
      nx += double(x[t * 64 + j]) * x[t * 64 + j];
      ny += double(y[t * 64 + j]) * y[t * 64 + j];
    }
    EXPECT_NEAR(std::sqrt(ny), std::sqrt(nx), 1e-5 * std::sqrt(nx));
  }
}

TEST(Rope, InnerProductDependsOnlyOnRelativePosition) {
  RopeSpec spec{64, 0, 10000.0, RopeLayout::Interleaved};
  const auto q = random_floats(64, 3), k = random_floats(64, 4);
  std::mt19937_64 rng(5);
  for (int trial = 0; trial < 50; ++trial) {
    const int64_t m = static_cast<int64_t>(rng() % 1000), n = static_cast<int64_t>(rng() % 1000);
    const int64_t shift = static_cast<int64_t>(rng() % 100000);
    auto dot_at = [&](int64_t pm, int64_t pn) {
      std::vector<float> both(q);
      both.insert(both.end(), k.begin(), k.end());
      const auto r = rotate(spec, both, {pm, pn});
      double d = 0;
      for (std::size_t j = 0; j < 64; ++j) d += double(r[j]) * r[64 + j];
      return d;
    };
    EXPECT_NEAR(dot_at(m, n), dot_at(m + shift, n + shift), 2e-5) << "m " << m << " n " << n << " shift " << shift;
  }
  // And it does change with the relative distance (the test above could not pass vacuously).
  std::vector<float> both(q);
  both.insert(both.end(), k.begin(), k.end());
  const auto a = rotate(spec, both, {0, 0}), b = rotate(spec, both, {0, 5});
  double da = 0, db = 0;
  for (std::size_t j = 0; j < 64; ++j) {
    da += double(a[j]) * a[64 + j];
    db += double(b[j]) * b[64 + j];
  }
  EXPECT_GT(std::fabs(da - db), 1e-3);
}

TEST(Rope, LayoutsAgreeUpToDimensionPermutation) {
  const int64_t d = 32;
  const std::vector<int64_t> pos = {0, 1, 17, 4096, 77777};
  const auto x = random_floats(pos.size() * d, 6);
  // Interleaved dim 2i <-> half-split dim i; 2i+1 <-> i + d/2.
  auto to_half = [&](const std::vector<float>& v) {
    std::vector<float> out(v.size());
    for (std::size_t t = 0; t < pos.size(); ++t)
      for (int64_t i = 0; i < d / 2; ++i) {
        out[t * d + i] = v[t * d + 2 * i];
        out[t * d + i + d / 2] = v[t * d + 2 * i + 1];
      }
    return out;
  };
  const auto inter = rotate({d, 0, 10000.0, RopeLayout::Interleaved}, x, pos);
  const auto half = rotate({d, 0, 10000.0, RopeLayout::HalfSplit}, to_half(x), pos);
  EXPECT_EQ(to_half(inter), half);  // the same arithmetic, so bit-identical
}

TEST(Rope, BackwardMatchesFiniteDifferences) {
  // L(x) = <g, rope(x)>; dL/dx must equal rope_backward(g).
  for (RopeLayout layout : {RopeLayout::Interleaved, RopeLayout::HalfSplit}) {
    RopeSpec spec{12, 8, 10000.0, layout};
    const std::vector<int64_t> pos = {0, 5, 300};
    const auto x = random_floats(pos.size() * 12, 7), g = random_floats(pos.size() * 12, 8);
    const auto grad = rotate(spec, g, pos, RopeDirection::Backward);
    auto loss = [&](const std::vector<float>& v) {
      const auto y = rotate(spec, v, pos);
      double l = 0;
      for (std::size_t j = 0; j < y.size(); ++j) l += double(g[j]) * y[j];
      return l;
    };
    const float h = 1e-2f;
    for (std::size_t j = 0; j < x.size(); ++j) {
      auto xp = x, xm = x;
      xp[j] += h;
      xm[j] -= h;
      const double fd = (loss(xp) - loss(xm)) / (double(xp[j]) - double(xm[j]));
      EXPECT_NEAR(grad[j], fd, 1e-4) << "entry " << j;
    }
  }
}

TEST(Rope, BackwardInvertsForward) {
  for (RopeLayout layout : {RopeLayout::Interleaved, RopeLayout::HalfSplit}) {
    RopeSpec spec{64, 0, 10000.0, layout};
    const std::vector<int64_t> pos = {0, 9, 1000, 2000000};
    const auto x = random_floats(pos.size() * 64, 9);
    for (Isa isa : supported_isas()) {
      const auto y = rotate(spec, x, pos, RopeDirection::Forward, isa);
      const auto back = rotate(spec, y, pos, RopeDirection::Backward, isa);
      EXPECT_LE(max_abs_diff(back, x), 1e-6) << isa_name(isa);
      EXPECT_GT(max_abs_diff(y, x), 1e-2);  // it did rotate
    }
  }
}

TEST(Rope, AnglesStayAccurateAtLargePositions) {
  RopeSpec spec{128, 0, 10000.0, RopeLayout::Interleaved};
  std::vector<float> c(64), s(64);
  for (int64_t m : {int64_t{1000000}, int64_t{12345678}, int64_t{1} << 31}) {
    rope_angles(spec, m, c.data(), s.data());
    for (int64_t i = 0; i < 64; ++i) {
      const long double theta = expl(-2.0L * i / 128.0L * logl(10000.0L));
      const long double angle = static_cast<long double>(m) * theta;
      // Float rounding of cos/sin plus the double angle error (~m * 1e-16).
      const double tol = 1e-7 + static_cast<double>(m) * 4e-16;
      EXPECT_NEAR(c[i], static_cast<double>(cosl(angle)), tol) << "m " << m << " i " << i;
      EXPECT_NEAR(s[i], static_cast<double>(sinl(angle)), tol) << "m " << m << " i " << i;
    }
  }
}

TEST(Rope, CacheGivesTheSameBitsAsOnTheFly) {
  RopeSpec spec{64, 0, 10000.0, RopeLayout::Interleaved};
  const auto x = random_floats(4 * 3 * 64, 10);
  Tensor in = Tensor::from_vector({1, 4, 3, 64}, x);
  Tensor pos = positions_of({0, 77, 4095, 70000});
  Tensor a = Tensor::zeros(in.shape()), b = Tensor::zeros(in.shape());
  RopeTable cached(spec), uncached(spec, /*cache_limit=*/0);
  rope_apply(cached, in, a, pos, QkvLayout::BSHD, RopeDirection::Forward, ExecContext{});
  rope_apply(uncached, in, b, pos, QkvLayout::BSHD, RopeDirection::Forward, ExecContext{});
  EXPECT_EQ(uncached.size(), 0);
  EXPECT_GE(cached.size(), 4096);
  EXPECT_EQ(a.to_vector(), b.to_vector());
}

TEST(Rope, PerRowPositionsEqualSeparateCalls) {
  // [batch, seq] positions: each row has its own offset (cached decoding, packing).
  RopeSpec spec{32, 0, 10000.0, RopeLayout::HalfSplit};
  const auto x = random_floats(2 * 5 * 4 * 32, 11);
  Tensor in = Tensor::from_vector({2, 5, 4, 32}, x);
  Tensor pos = Tensor::zeros({2, 5}, DType::I64);
  for (int64_t t = 0; t < 5; ++t) {
    pos.data<int64_t>()[t] = t;
    pos.data<int64_t>()[5 + t] = 100 + 3 * t;
  }
  Tensor out = Tensor::zeros(in.shape());
  RopeTable table(spec);
  rope_apply(table, in, out, pos, QkvLayout::BSHD, RopeDirection::Forward, ExecContext{2});
  for (int64_t b = 0; b < 2; ++b) {
    std::vector<float> row(x.begin() + b * 5 * 4 * 32, x.begin() + (b + 1) * 5 * 4 * 32);
    Tensor rin = Tensor::from_vector({1, 5, 4, 32}, row);
    Tensor rout = Tensor::zeros(rin.shape());
    Tensor rpos = Tensor::zeros({5}, DType::I64);
    std::copy(pos.data<int64_t>() + b * 5, pos.data<int64_t>() + b * 5 + 5, rpos.data<int64_t>());
    rope_apply(table, rin, rout, rpos, QkvLayout::BSHD, RopeDirection::Forward, ExecContext{});
    const auto all = out.to_vector();
    EXPECT_EQ(std::vector<float>(all.begin() + b * 5 * 4 * 32, all.begin() + (b + 1) * 5 * 4 * 32), rout.to_vector());
  }
}

// The raw in-place entry the layers use equals the Tensor API, for shared and
// per-row positions, both directions, on every instruction set.
TEST(Rope, InPlaceRawEntryEqualsTensorApi) {
  for (const RopeLayout layout : {RopeLayout::Interleaved, RopeLayout::HalfSplit})
    for (const Isa isa : {Isa::Scalar, best_isa()})
      for (const bool per_row : {false, true})
        for (const RopeDirection dir : {RopeDirection::Forward, RopeDirection::Backward}) {
          const RopeSpec spec{64, 0, 10000.0, layout};
          const int64_t B = 3, T = 7, H = 5;
          const auto x = random_floats(B * T * H * 64, 21);
          Tensor pos = per_row ? Tensor::zeros({B, T}, DType::I64) : Tensor::zeros({T}, DType::I64);
          for (int64_t i = 0; i < pos.numel(); ++i) pos.data<int64_t>()[i] = 1000 * (i / T) + 2 * (i % T) + 5;
          Tensor in = Tensor::from_vector({B, T, H, 64}, x);
          Tensor want = Tensor::zeros(in.shape());
          RopeTable table(spec);
          const ExecContext ctx{2, isa};
          rope_apply(table, in, want, pos, QkvLayout::BSHD, dir, ctx);
          std::vector<float> got = x;
          rope_apply_inplace(table, got.data(), B, T, H, pos.data<int64_t>(), per_row, dir, ctx);
          EXPECT_EQ(got, want.to_vector()) << isa_name(isa) << (per_row ? " per-row" : " shared");
        }
}

// Every instruction set against the scalar reference, over awkward sizes.
TEST(Rope, FastPathsMatchScalarReference) {
  const std::vector<int64_t> head_dims = {2, 4, 6, 8, 10, 14, 16, 18, 30, 32, 34, 48, 62, 64, 66, 96, 126, 128, 130, 254, 256};
  int checked = 0;
  for (Isa isa : supported_isas()) {
    if (isa == Isa::Scalar) continue;
    for (int64_t d : head_dims)
      for (RopeLayout layout : {RopeLayout::Interleaved, RopeLayout::HalfSplit})
        for (int64_t rotary : {int64_t{0}, d >= 4 ? d / 2 - (d / 2) % 2 : int64_t{0}})
          for (QkvLayout qkv : {QkvLayout::BSHD, QkvLayout::BHSD})
            for (DType dtype : {DType::F32, DType::BF16})
              for (bool in_place : {false, true}) {
                SCOPED_TRACE(std::string(isa_name(isa)) + " d=" + std::to_string(d) + " layout=" +
                             std::to_string(int(layout)) + " rotary=" + std::to_string(rotary) +
                             " qkv=" + std::to_string(int(qkv)) + " dtype=" + std::string(dtype_name(dtype)) +
                             " in_place=" + std::to_string(in_place));
                RopeSpec spec{d, rotary, 10000.0, layout};
                const int64_t batch = 2, seq = d == 64 ? 1 : 3, heads = 3;
                const Shape shape = qkv == QkvLayout::BSHD ? Shape{batch, seq, heads, d} : Shape{batch, heads, seq, d};
                Tensor x = Tensor::from_vector(shape, random_floats(static_cast<std::size_t>(shape_numel(shape)),
                                                                    static_cast<uint32_t>(d))).to(dtype);
                std::vector<int64_t> p = {5, 1 << 20, 123457};
                p.resize(static_cast<std::size_t>(seq));
                const Tensor pos = positions_of(p);
                for (RopeDirection dir : {RopeDirection::Forward, RopeDirection::Backward}) {
                  RopeTable table(spec);
                  Tensor want = Tensor::zeros(shape, dtype);
                  rope_apply(table, x, want, pos, qkv, dir, ExecContext{1, Isa::Scalar});
                  Tensor got = in_place ? x.clone() : Tensor::zeros(shape, dtype);
                  rope_apply(table, in_place ? got : x, got, pos, qkv, dir, ExecContext{2, isa});
                  // f32: one FMA changes the rounding by a few ulp; bf16: at most one bf16 ulp (2^-8 of 1).
                  const double tol = dtype == DType::F32 ? 1e-6 : 8e-3;
                  EXPECT_LE(max_abs_diff(got.to_vector(), want.to_vector()), tol);
                  ++checked;
                }
              }
  }
  if (isa_supported(Isa::Avx2)) {
    EXPECT_GT(checked, 0);
  }
}

// Outputs of 16 MB and more are written with non-temporal stores on the SIMD
// paths; they must hold the same values as the reference.
TEST(Rope, LargeOutputsWrittenPastTheCacheMatchScalar) {
  const Shape shape{1, 5500, 12, 64};  // 16.9 MB of f32
  Tensor x = Tensor::from_vector(shape, random_floats(static_cast<std::size_t>(shape_numel(shape)), 77));
  std::vector<int64_t> p(5500);
  for (std::size_t i = 0; i < p.size(); ++i) p[i] = static_cast<int64_t>(i) * 3;
  const Tensor pos = positions_of(p);
  RopeTable table(RopeSpec{64, 0, 10000.0, RopeLayout::Interleaved});
  Tensor want = Tensor::zeros(shape);
  rope_apply(table, x, want, pos, QkvLayout::BSHD, RopeDirection::Forward, ExecContext{1, Isa::Scalar});
  for (Isa isa : supported_isas())
    for (int threads : {1, 2}) {
      Tensor got = Tensor::zeros(shape);
      rope_apply(table, x, got, pos, QkvLayout::BSHD, RopeDirection::Forward, ExecContext{threads, isa});
      EXPECT_LE(max_abs_diff(got.to_vector(), want.to_vector()), 1e-6) << isa_name(isa) << " " << threads;
    }
}

TEST(Rope, Bf16MatchesF32WithinBf16Rounding) {
  RopeSpec spec{64, 0, 10000.0, RopeLayout::Interleaved};
  const auto x = random_floats(8 * 2 * 64, 12);
  Tensor in = Tensor::from_vector({1, 8, 2, 64}, x).to(DType::BF16);
  Tensor out16 = Tensor::zeros(in.shape(), DType::BF16);
  Tensor in32 = in.to(DType::F32), out32 = Tensor::zeros(in.shape());
  RopeTable table(spec);
  const Tensor pos = iota_positions(8, 40);
  rope_apply(table, in, out16, pos, QkvLayout::BSHD, RopeDirection::Forward, ExecContext{});
  rope_apply(table, in32, out32, pos, QkvLayout::BSHD, RopeDirection::Forward, ExecContext{});
  // Same f32 arithmetic, so the bf16 result is exactly the f32 result rounded to bf16.
  const auto a = out16.to_vector(), b = out32.to_vector();
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], bf16_to_f32(f32_to_bf16(b[i]))) << i;
  EXPECT_GT(max_abs_diff(a, b), 0.0);  // and the rounding did happen
}

TEST(Rope, ArbitraryStridesAreHonoured) {
  // A view into a fused QKV buffer [batch, seq, 3, heads, d]: rotate the K slice in place.
  const int64_t B = 2, S = 4, H = 2, D = 8;
  const auto all = random_floats(static_cast<std::size_t>(B * S * 3 * H * D), 13);
  Tensor qkv = Tensor::from_vector({B, S, 3, H, D}, all);
  Tensor k = Tensor::view(qkv.data<float>() + H * D, {B, S, H, D}, DType::F32, nullptr,
                          {S * 3 * H * D, 3 * H * D, D, 1});
  RopeSpec spec{D, 0, 10000.0, RopeLayout::Interleaved};
  RopeTable table(spec);
  rope_apply(table, k, k, iota_positions(S), QkvLayout::BSHD, RopeDirection::Forward, ExecContext{});
  const auto after = qkv.to_vector();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s < S; ++s) {
      const std::size_t base = static_cast<std::size_t>((b * S + s) * 3 * H * D);
      for (int64_t j = 0; j < H * D; ++j) {  // Q and V untouched
        EXPECT_EQ(after[base + j], all[base + j]);
        EXPECT_EQ(after[base + 2 * H * D + j], all[base + 2 * H * D + j]);
      }
      std::vector<float> kin(all.begin() + base + H * D, all.begin() + base + 2 * H * D);
      Tensor one = Tensor::from_vector({1, 1, H, D}, kin), oo = Tensor::zeros({1, 1, H, D});
      rope_apply(table, one, oo, positions_of({s}), QkvLayout::BSHD, RopeDirection::Forward, ExecContext{});
      const auto want = oo.to_vector();
      for (int64_t j = 0; j < H * D; ++j) EXPECT_EQ(after[base + H * D + j], want[j]);
      if (s > 0) {
        EXPECT_GT(max_abs_diff(want, kin), 0.0);
      }
    }
}

TEST(Rope, RejectsBadArguments) {
  EXPECT_THROW((RopeTable(RopeSpec{15, 0, 10000.0, RopeLayout::Interleaved})), Error);
  EXPECT_THROW((RopeTable(RopeSpec{16, 18, 10000.0, RopeLayout::Interleaved})), Error);
  EXPECT_THROW((RopeTable(RopeSpec{16, 7, 10000.0, RopeLayout::Interleaved})), Error);
  EXPECT_THROW((RopeTable(RopeSpec{16, 0, 0.5, RopeLayout::Interleaved})), Error);
  RopeTable table(RopeSpec{16, 0, 10000.0, RopeLayout::Interleaved});
  Tensor x = Tensor::zeros({1, 4, 2, 16});
  EXPECT_THROW(rope_apply(table, x, Tensor::zeros({1, 4, 2, 8}), iota_positions(4), QkvLayout::BSHD,
                          RopeDirection::Forward, ExecContext{}),
               Error);
  EXPECT_THROW(rope_apply(table, Tensor::zeros({1, 4, 2, 8}), Tensor::zeros({1, 4, 2, 8}), iota_positions(4),
                          QkvLayout::BSHD, RopeDirection::Forward, ExecContext{}),
               Error);  // head size differs from the table
  EXPECT_THROW(rope_apply(table, x, x, iota_positions(5), QkvLayout::BSHD, RopeDirection::Forward, ExecContext{}),
               Error);  // positions do not match seq
  EXPECT_THROW(rope_apply(table, x, x, Tensor::zeros({4}), QkvLayout::BSHD, RopeDirection::Forward, ExecContext{}),
               Error);  // positions not I64
  EXPECT_THROW(rope_apply(table, Tensor::zeros({4, 2, 16}), Tensor::zeros({4, 2, 16}), iota_positions(4),
                          QkvLayout::BSHD, RopeDirection::Forward, ExecContext{}),
               Error);  // not 4-D
  EXPECT_THROW(rope_apply(table, x, x, iota_positions(4), QkvLayout::BSHD, RopeDirection::Forward, ExecContext{0}),
               Error);
  Tensor big = Tensor::zeros({1, 5, 2, 16});
  Tensor shifted = Tensor::view(big.data<float>() + 16, {1, 4, 2, 16}, DType::F32);
  Tensor base = Tensor::view(big.data<float>(), {1, 4, 2, 16}, DType::F32);
  EXPECT_THROW(rope_apply(table, base, shifted, iota_positions(4), QkvLayout::BSHD, RopeDirection::Forward,
                          ExecContext{}),
               Error);  // partial overlap
  EXPECT_THROW(parse_isa("sse9"), Error);
}

}  // namespace
}  // namespace roformer
