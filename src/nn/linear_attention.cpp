#include "nn/linear_attention.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "roformer/error.h"

namespace roformer::nn {

FeatureMap parse_feature_map(std::string_view name) {
  if (name == "elu") return FeatureMap::EluPlusOne;
  if (name == "relu") return FeatureMap::Relu;
  if (name == "favor") return FeatureMap::Favor;
  throw Error("linear attention: unknown feature map '" + std::string(name) + "' (expected elu, relu or favor)");
}

std::string_view feature_map_name(FeatureMap map) {
  switch (map) {
    case FeatureMap::EluPlusOne: return "elu";
    case FeatureMap::Relu: return "relu";
    case FeatureMap::Favor: return "favor";
  }
  throw Error("linear attention: invalid feature map value");
}

int64_t LinearAttentionConfig::feature_dim() const {
  if (feature_map == FeatureMap::Favor && favor_features > 0) return favor_features;
  return head_dim;
}

void LinearAttentionConfig::validate() const {
  ROFORMER_CHECK(heads > 0, "linear attention: heads must be positive, got " + std::to_string(heads));
  ROFORMER_CHECK(head_dim > 0, "linear attention: head_dim must be positive, got " + std::to_string(head_dim));
  ROFORMER_CHECK(favor_features >= 0 && favor_features % 2 == 0,
        "linear attention: favor_features must be 0 or a positive even number, got " + std::to_string(favor_features));
  ROFORMER_CHECK(rope_base > 0 && std::isfinite(rope_base), "linear attention: rope_base must be positive");
  ROFORMER_CHECK(eps >= 0.0f && std::isfinite(eps), "linear attention: eps must be finite and >= 0");
  ROFORMER_CHECK(!rope || feature_dim() % 2 == 0, "linear attention: RoPE needs an even feature dimension, got " +
                                             std::to_string(feature_dim()));
}

std::vector<double> favor_projection(int64_t features, int64_t head_dim, uint64_t seed) {
  ROFORMER_CHECK(features >= 0 && head_dim >= 0, "favor_projection: negative size");
  // splitmix64 stream -> 53-bit uniform doubles -> Box-Muller pairs.
  uint64_t state = seed;
  auto next = [&state]() {
    state += 0x9E3779B97F4A7C15ull;
    uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  auto uniform = [&next]() { return static_cast<double>(next() >> 11) * 0x1.0p-53; };  // [0, 1)
  const double two_pi = 6.283185307179586476925286766559;
  std::vector<double> w(static_cast<std::size_t>(features * head_dim));
  for (std::size_t i = 0; i < w.size(); i += 2) {
    const double u1 = 1.0 - uniform();  // (0, 1]: log is finite
    const double u2 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    w[i] = r * std::cos(two_pi * u2);
    if (i + 1 < w.size()) w[i + 1] = r * std::sin(two_pi * u2);
  }
  return w;
}

LinearAttention::LinearAttention(LinearAttentionConfig config) : config_(config) {
  config_.validate();
  feature_dim_ = config_.feature_dim();
  if (config_.feature_map == FeatureMap::Favor) {
    projection_ = favor_projection(feature_dim_, config_.head_dim, config_.favor_seed);
  }
}

double LinearAttention::favor_max_log_feature() const {
  double best = 0;
  const int64_t D = config_.head_dim;
  for (int64_t j = 0; j < static_cast<int64_t>(projection_.size()) / std::max<int64_t>(D, 1); ++j) {
    double n2 = 0;
    for (int64_t i = 0; i < D; ++i) n2 += projection_[j * D + i] * projection_[j * D + i];
    best = std::max(best, n2 / 2);
  }
  return best;
}

template <typename Real>
void LinearAttention::features_of(const Real* x, double* phi) const {
  const int64_t D = config_.head_dim, F = feature_dim_;
  switch (config_.feature_map) {
    case FeatureMap::EluPlusOne:
      for (int64_t i = 0; i < D; ++i) {
        const double a = static_cast<double>(x[i]);
        phi[i] = a > 0 ? a + 1.0 : std::exp(a);
      }
      return;
    case FeatureMap::Relu:
      for (int64_t i = 0; i < D; ++i) {
        const double a = static_cast<double>(x[i]);
        phi[i] = a > 0 ? a : 0.0;
      }
      return;
    case FeatureMap::Favor: {
      const double s = std::pow(static_cast<double>(D), -0.25);
      const double norm = 1.0 / std::sqrt(static_cast<double>(F));
      double half_sq = 0;
      for (int64_t i = 0; i < D; ++i) {
        const double a = s * static_cast<double>(x[i]);
        half_sq += a * a;
      }
      half_sq *= 0.5;
      for (int64_t j = 0; j < F; ++j) {
        const double* w = projection_.data() + j * D;
        double dot = 0;
        for (int64_t i = 0; i < D; ++i) dot += w[i] * static_cast<double>(x[i]);
        phi[j] = std::exp(s * dot - half_sq) * norm;
      }
      return;
    }
  }
}

// Feature map derivatives (dx = J^T dphi):
//   elu + 1: dphi/dx = 1 for x > 0, exp(x) otherwise (= phi there);
//   relu:    dphi/dx = [x > 0];
//   FAVOR:   with u_j = w_j^T x' - |x'|^2/2 and phi_j = exp(u_j)/sqrt(m):
//            du_j = dphi_j phi_j, dx' = W^T du - x' sum_j du_j, dx = D^(-1/4) dx'.
template <typename Real>
void LinearAttention::features_backward(const Real* x, const double* phi, const double* dphi, double* dx) const {
  const int64_t D = config_.head_dim, F = feature_dim_;
  switch (config_.feature_map) {
    case FeatureMap::EluPlusOne:
      for (int64_t i = 0; i < D; ++i) dx[i] = static_cast<double>(x[i]) > 0 ? dphi[i] : dphi[i] * phi[i];
      return;
    case FeatureMap::Relu:
      for (int64_t i = 0; i < D; ++i) dx[i] = static_cast<double>(x[i]) > 0 ? dphi[i] : 0.0;
      return;
    case FeatureMap::Favor: {
      const double s = std::pow(static_cast<double>(D), -0.25);
      double sum_du = 0;
      for (int64_t i = 0; i < D; ++i) dx[i] = 0;
      for (int64_t j = 0; j < F; ++j) {
        const double du = dphi[j] * phi[j];
        sum_du += du;
        const double* w = projection_.data() + j * D;
        for (int64_t i = 0; i < D; ++i) dx[i] += du * w[i];
      }
      for (int64_t i = 0; i < D; ++i) dx[i] = s * (dx[i] - s * static_cast<double>(x[i]) * sum_du);
      return;
    }
  }
}

void LinearAttention::features(const double* x, double* phi) const { features_of(x, phi); }

namespace {

// cos, sin of position * base^(-2i/F) for each of the T positions: row t holds
// F/2 cos values then F/2 sin values. Formed in double.
std::vector<double> rotation_table(const int64_t* positions, int64_t T, int64_t F, double base) {
  const int64_t P = F / 2;
  std::vector<double> theta(static_cast<std::size_t>(P));
  for (int64_t i = 0; i < P; ++i) theta[i] = std::pow(base, -static_cast<double>(2 * i) / static_cast<double>(F));
  std::vector<double> table(static_cast<std::size_t>(T * 2 * P));
  for (int64_t t = 0; t < T; ++t) {
    double* row = table.data() + t * 2 * P;
    for (int64_t i = 0; i < P; ++i) {
      const double angle = static_cast<double>(positions[t]) * theta[i];
      row[i] = std::cos(angle);
      row[P + i] = std::sin(angle);
    }
  }
  return table;
}

// y = R x (sign = +1) or R^T x (sign = -1) for interleaved pairs; row == nullptr: identity.
void rotate(const double* row, int64_t F, const double* x, double* y, double sign) {
  if (row == nullptr) {
    std::copy(x, x + F, y);
    return;
  }
  const int64_t P = F / 2;
  for (int64_t i = 0; i < P; ++i) {
    const double c = row[i], s = sign * row[P + i];
    const double a = x[2 * i], b = x[2 * i + 1];
    y[2 * i] = a * c - b * s;
    y[2 * i + 1] = a * s + b * c;
  }
}

}  // namespace

template <typename Real>
void LinearAttention::forward_impl(const Real* q, const Real* k, const Real* v, int64_t B, int64_t T,
                                   const int64_t* positions, const uint8_t* key_valid, Real* out,
                                   BasicLinearAttentionSaved<Real>* saved, const ExecContext& ctx) const {
  ROFORMER_CHECK(B >= 0 && T >= 0, "linear attention: negative batch or sequence size");
  ROFORMER_CHECK(!config_.rope || positions != nullptr || T == 0, "linear attention: RoPE needs positions");
  const int64_t NH = config_.heads, D = config_.head_dim, F = feature_dim_, H = NH * D;
  const bool causal = config_.causal;
  const double eps = static_cast<double>(config_.eps);
  const std::vector<double> table =
      config_.rope && T > 0 ? rotation_table(positions, T, F, config_.rope_base) : std::vector<double>{};
  if (saved != nullptr) {
    saved->den.resize(static_cast<std::size_t>(B * T * NH));
    saved->out.resize(static_cast<std::size_t>(B * T * H));
    saved->batch = B;
    saved->seq = T;
  }
  const int64_t tasks = B * NH;
#pragma omp parallel num_threads(ctx.threads) if (ctx.threads > 1 && tasks > 1)
  {
    std::vector<double> S(static_cast<std::size_t>(F * D)), z(static_cast<std::size_t>(F));
    std::vector<double> phi(static_cast<std::size_t>(F)), rot(phi.size()), num(static_cast<std::size_t>(D));
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t b = task / NH, h = task % NH;
      const uint8_t* valid = key_valid ? key_valid + b * T : nullptr;
      std::fill(S.begin(), S.end(), 0.0);
      std::fill(z.begin(), z.end(), 0.0);
      auto add_key = [&](int64_t n) {  // S += (R_n phi(k_n)) v_n^T, z += phi(k_n)
        const int64_t off = (b * T + n) * H + h * D;
        features_of(k + off, phi.data());
        rotate(table.empty() ? nullptr : table.data() + n * 2 * (F / 2), F, phi.data(), rot.data(), 1.0);
        for (int64_t i = 0; i < F; ++i) {
          z[i] += phi[i];
          double* Si = S.data() + i * D;
          const double ki = rot[i];
          for (int64_t j = 0; j < D; ++j) Si[j] += ki * static_cast<double>(v[off + j]);
        }
      };
      auto emit_query = [&](int64_t m) {  // out_m = (R_m phi(q_m))^T S / (phi(q_m)^T z + eps)
        const int64_t off = (b * T + m) * H + h * D;
        features_of(q + off, phi.data());
        rotate(table.empty() ? nullptr : table.data() + m * 2 * (F / 2), F, phi.data(), rot.data(), 1.0);
        double den = eps;
        std::fill(num.begin(), num.end(), 0.0);
        for (int64_t i = 0; i < F; ++i) {
          den += phi[i] * z[i];
          const double* Si = S.data() + i * D;
          const double qi = rot[i];
          for (int64_t j = 0; j < D; ++j) num[j] += qi * Si[j];
        }
        for (int64_t j = 0; j < D; ++j) out[off + j] = static_cast<Real>(num[j] / den);
        if (saved != nullptr) {
          saved->den[static_cast<std::size_t>((b * T + m) * NH + h)] = den;
          std::copy(out + off, out + off + D, saved->out.data() + off);
        }
      };
      if (causal) {
        for (int64_t m = 0; m < T; ++m) {
          if (valid == nullptr || valid[m] != 0) add_key(m);
          emit_query(m);
        }
      } else {
        for (int64_t n = 0; n < T; ++n)
          if (valid == nullptr || valid[n] != 0) add_key(n);
        for (int64_t m = 0; m < T; ++m) emit_query(m);
      }
    }
  }
}

// Backward. With num_m = q~_m^T S_m, den_m = phi(q_m)^T z_m + eps, out_m = num_m / den_m
// (q~ = R phi(q), k~ = R phi(k); S_m, z_m the sums over the keys query m sees):
//   dnum_m = dout_m / den_m,   dden_m = -(dout_m . out_m) / den_m
//   dq~_m = S_m dnum_m,        dphi(q_m) = R_m^T dq~_m + dden_m z_m
//   dS = sum_m q~_m dnum_m^T,  dz = sum_m dden_m phi(q_m)   over the queries that see
//        key n: all of them (non-causal) or m >= n (causal: reverse running sums)
//   dk~_n = dS v_n,  dv_n = dS^T k~_n,  dphi(k_n) = R_n^T dk~_n + dz
// then dq, dk through the feature map's derivative (features_backward).
template <typename Real>
void LinearAttention::backward_impl(const Real* q, const Real* k, const Real* v,
                                    const BasicLinearAttentionSaved<Real>& saved, const Real* dout, int64_t B,
                                    int64_t T, const int64_t* positions, const uint8_t* key_valid, Real* dq, Real* dk,
                                    Real* dv, const ExecContext& ctx) const {
  ROFORMER_CHECK(B >= 0 && T >= 0, "linear attention: negative batch or sequence size");
  ROFORMER_CHECK(!config_.rope || positions != nullptr || T == 0, "linear attention: RoPE needs positions");
  const int64_t NH = config_.heads, D = config_.head_dim, F = feature_dim_, H = NH * D;
  ROFORMER_CHECK(saved.batch == B && saved.seq == T && saved.den.size() == static_cast<std::size_t>(B * T * NH) &&
            saved.out.size() == static_cast<std::size_t>(B * T * H),
        "linear attention backward: saved state is from a forward of another shape");
  const bool causal = config_.causal;
  const std::vector<double> table =
      config_.rope && T > 0 ? rotation_table(positions, T, F, config_.rope_base) : std::vector<double>{};
  const int64_t tasks = B * NH;
#pragma omp parallel num_threads(ctx.threads) if (ctx.threads > 1 && tasks > 1)
  {
    const std::size_t FD = static_cast<std::size_t>(F * D);
    std::vector<double> S(FD), z(static_cast<std::size_t>(F)), dS(FD), dz(z.size());
    std::vector<double> phq(static_cast<std::size_t>(T * F)), phk(phq.size());  // unrotated features
    std::vector<double> rot(z.size()), drot(z.size()), dphi(z.size()), dnum(static_cast<std::size_t>(D));
    std::vector<double> dx(static_cast<std::size_t>(D));
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t b = task / NH, h = task % NH;
      const uint8_t* valid = key_valid ? key_valid + b * T : nullptr;
      auto offset = [&](int64_t t) { return (b * T + t) * H + h * D; };
      auto rot_row = [&](int64_t t) { return table.empty() ? nullptr : table.data() + t * 2 * (F / 2); };
      for (int64_t t = 0; t < T; ++t) {
        features_of(q + offset(t), phq.data() + t * F);
        features_of(k + offset(t), phk.data() + t * F);
      }
      // dnum_m and dden_m of query m into dnum, returned dden.
      auto upstream = [&](int64_t m) {
        const int64_t off = offset(m);
        const double den = saved.den[static_cast<std::size_t>((b * T + m) * NH + h)];
        double dot = 0;
        for (int64_t j = 0; j < D; ++j) {
          const double g = static_cast<double>(dout[off + j]);
          dot += g * static_cast<double>(saved.out[static_cast<std::size_t>(off + j)]);
          dnum[j] = g / den;
        }
        return -dot / den;
      };
      auto add_key = [&](int64_t n) {
        rotate(rot_row(n), F, phk.data() + n * F, rot.data(), 1.0);
        const int64_t off = offset(n);
        for (int64_t i = 0; i < F; ++i) {
          z[i] += phk[n * F + i];
          double* Si = S.data() + i * D;
          for (int64_t j = 0; j < D; ++j) Si[j] += rot[i] * static_cast<double>(v[off + j]);
        }
      };
      auto query_grad = [&](int64_t m) {  // dq_m from the current S, z
        const double dden = upstream(m);
        for (int64_t i = 0; i < F; ++i) {
          const double* Si = S.data() + i * D;
          double acc = 0;
          for (int64_t j = 0; j < D; ++j) acc += Si[j] * dnum[j];
          drot[i] = acc;
        }
        rotate(rot_row(m), F, drot.data(), dphi.data(), -1.0);
        for (int64_t i = 0; i < F; ++i) dphi[i] += dden * z[i];
        const int64_t off = offset(m);
        features_backward(q + off, phq.data() + m * F, dphi.data(), dx.data());
        for (int64_t j = 0; j < D; ++j) dq[off + j] = static_cast<Real>(dx[j]);
      };
      auto add_query = [&](int64_t m) {  // dS += q~_m dnum_m^T, dz += dden_m phi(q_m)
        const double dden = upstream(m);
        rotate(rot_row(m), F, phq.data() + m * F, rot.data(), 1.0);
        for (int64_t i = 0; i < F; ++i) {
          dz[i] += dden * phq[m * F + i];
          double* dSi = dS.data() + i * D;
          for (int64_t j = 0; j < D; ++j) dSi[j] += rot[i] * dnum[j];
        }
      };
      auto key_grad = [&](int64_t n) {  // dk_n, dv_n from the current dS, dz
        const int64_t off = offset(n);
        if (valid != nullptr && valid[n] == 0) {
          std::fill(dk + off, dk + off + D, Real(0));
          std::fill(dv + off, dv + off + D, Real(0));
          return;
        }
        rotate(rot_row(n), F, phk.data() + n * F, rot.data(), 1.0);
        for (int64_t j = 0; j < D; ++j) dx[j] = 0;
        for (int64_t i = 0; i < F; ++i) {
          const double* dSi = dS.data() + i * D;
          double acc = 0;
          for (int64_t j = 0; j < D; ++j) {
            acc += dSi[j] * static_cast<double>(v[off + j]);
            dx[j] += dSi[j] * rot[i];
          }
          drot[i] = acc;
        }
        for (int64_t j = 0; j < D; ++j) dv[off + j] = static_cast<Real>(dx[j]);
        rotate(rot_row(n), F, drot.data(), dphi.data(), -1.0);
        for (int64_t i = 0; i < F; ++i) dphi[i] += dz[i];
        features_backward(k + off, phk.data() + n * F, dphi.data(), dx.data());
        for (int64_t j = 0; j < D; ++j) dk[off + j] = static_cast<Real>(dx[j]);
      };

      std::fill(S.begin(), S.end(), 0.0);
      std::fill(z.begin(), z.end(), 0.0);
      std::fill(dS.begin(), dS.end(), 0.0);
      std::fill(dz.begin(), dz.end(), 0.0);
      if (causal) {
        for (int64_t m = 0; m < T; ++m) {  // prefix sums for the queries
          if (valid == nullptr || valid[m] != 0) add_key(m);
          query_grad(m);
        }
        for (int64_t n = T - 1; n >= 0; --n) {  // suffix sums for the keys
          add_query(n);
          key_grad(n);
        }
      } else {
        for (int64_t n = 0; n < T; ++n)
          if (valid == nullptr || valid[n] != 0) add_key(n);
        for (int64_t m = 0; m < T; ++m) {
          query_grad(m);
          add_query(m);
        }
        for (int64_t n = 0; n < T; ++n) key_grad(n);
      }
    }
  }
}

void LinearAttention::forward(const float* q, const float* k, const float* v, int64_t B, int64_t T,
                              const int64_t* positions, const uint8_t* key_valid, float* out,
                              LinearAttentionSaved* saved, const ExecContext& ctx) const {
  forward_impl(q, k, v, B, T, positions, key_valid, out, saved, ctx);
}

void LinearAttention::backward(const float* q, const float* k, const float* v, const LinearAttentionSaved& saved,
                               const float* dout, int64_t B, int64_t T, const int64_t* positions,
                               const uint8_t* key_valid, float* dq, float* dk, float* dv,
                               const ExecContext& ctx) const {
  backward_impl(q, k, v, saved, dout, B, T, positions, key_valid, dq, dk, dv, ctx);
}

void LinearAttention::forward(const double* q, const double* k, const double* v, int64_t B, int64_t T,
                              const int64_t* positions, const uint8_t* key_valid, double* out,
                              LinearAttentionSavedF64* saved, const ExecContext& ctx) const {
  forward_impl(q, k, v, B, T, positions, key_valid, out, saved, ctx);
}

void LinearAttention::backward(const double* q, const double* k, const double* v,
                               const LinearAttentionSavedF64& saved, const double* dout, int64_t B, int64_t T,
                               const int64_t* positions, const uint8_t* key_valid, double* dq, double* dk,
                               double* dv, const ExecContext& ctx) const {
  backward_impl(q, k, v, saved, dout, B, T, positions, key_valid, dq, dk, dv, ctx);
}

void linear_attention_reference(const LinearAttentionConfig& config, const double* q, const double* k,
                                const double* v, int64_t B, int64_t T, const int64_t* positions,
                                const uint8_t* key_valid, double* out) {
  config.validate();
  const int64_t NH = config.heads, D = config.head_dim, F = config.feature_dim(), H = NH * D;
  const std::vector<double> W =
      config.feature_map == FeatureMap::Favor ? favor_projection(F, D, config.favor_seed) : std::vector<double>{};
  // phi of one head vector, written out from the definitions.
  auto phi = [&](const double* x) {
    std::vector<double> f(static_cast<std::size_t>(F));
    if (config.feature_map == FeatureMap::EluPlusOne) {
      for (int64_t i = 0; i < D; ++i) f[i] = x[i] > 0 ? x[i] + 1 : std::exp(x[i]);
    } else if (config.feature_map == FeatureMap::Relu) {
      for (int64_t i = 0; i < D; ++i) f[i] = std::max(x[i], 0.0);
    } else {
      const double scale = 1.0 / std::sqrt(std::sqrt(static_cast<double>(D)));
      std::vector<double> xs(static_cast<std::size_t>(D));
      double sq = 0;
      for (int64_t i = 0; i < D; ++i) {
        xs[i] = x[i] * scale;
        sq += xs[i] * xs[i];
      }
      for (int64_t j = 0; j < F; ++j) {
        double dot = 0;
        for (int64_t i = 0; i < D; ++i) dot += W[j * D + i] * xs[i];
        f[j] = std::exp(dot - sq / 2) / std::sqrt(static_cast<double>(F));
      }
    }
    return f;
  };
  // R_p f: pair i rotated by p * base^(-2i/F).
  auto rotated = [&](std::vector<double> f, int64_t p) {
    if (!config.rope) return f;
    for (int64_t i = 0; i < F / 2; ++i) {
      const double angle = static_cast<double>(p) * std::pow(config.rope_base, -2.0 * static_cast<double>(i) / F);
      const double a = f[2 * i], c = f[2 * i + 1];
      f[2 * i] = a * std::cos(angle) - c * std::sin(angle);
      f[2 * i + 1] = a * std::sin(angle) + c * std::cos(angle);
    }
    return f;
  };
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < NH; ++h) {
      for (int64_t m = 0; m < T; ++m) {
        const double* qm = q + (b * T + m) * H + h * D;
        const std::vector<double> fq = phi(qm);
        const std::vector<double> rq = rotated(fq, positions ? positions[m] : 0);
        std::vector<double> acc(static_cast<std::size_t>(D), 0.0);
        double weight_sum = 0;
        for (int64_t n = 0; n < T; ++n) {
          if (key_valid != nullptr && key_valid[b * T + n] == 0) continue;
          if (config.causal && n > m) continue;
          const double* kn = k + (b * T + n) * H + h * D;
          const double* vn = v + (b * T + n) * H + h * D;
          const std::vector<double> fk = phi(kn);
          const std::vector<double> rk = rotated(fk, positions ? positions[n] : 0);
          double score = 0, weight = 0;
          for (int64_t i = 0; i < F; ++i) {
            score += rq[i] * rk[i];
            weight += fq[i] * fk[i];
          }
          weight_sum += weight;
          for (int64_t j = 0; j < D; ++j) acc[j] += score * vn[j];
        }
        double* o = out + (b * T + m) * H + h * D;
        for (int64_t j = 0; j < D; ++j) o[j] = acc[j] / (weight_sum + static_cast<double>(config.eps));
      }
    }
  }
}

}  // namespace roformer::nn
