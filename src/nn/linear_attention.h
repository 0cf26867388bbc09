#pragma once
// RoPE with linear attention, as the RoFormer paper's eq. (19) (Su et al.
// 2021, section 3.3). With a non-negative feature map phi, for query m:
//
//   out_m = sum_n (R_m phi(q_m))^T (R_n phi(k_n)) v_n  /  (sum_n phi(q_m)^T phi(k_n) + eps)
//
// The rotation R (RoPE, interleaved pairs (2i, 2i+1), theta_i = base^(-2i/d'),
// angle = position * theta_i, where d' is the FEATURE dimension) acts on the
// features in the numerator only; the normaliser uses the unrotated features
// so that it stays positive. Both sums are computed in O(T) time and memory:
//
//   non-causal: S = sum_n (R_n phi(k_n)) v_n^T  (d' x head_dim),  z = sum_n phi(k_n)
//               out_m = (R_m phi(q_m))^T S / (phi(q_m)^T z + eps)
//   causal:     the same with running (prefix) sums over n <= m.
//
// Keys that are padding (key_valid[b, n] == 0) are left out of every sum;
// every query, padded or not, gets an output (0 when it sees no key).
//
// eps (default 1e-6) keeps the denominator positive: ReLU features can all
// be zero. Every feature, rotation and sum is computed in double internally;
// the float entry points only read and write float.
//
// Feature maps (x is one head's query or key vector, head_dim = D):
//   EluPlusOne ("elu"):  phi(x) = elu(x) + 1, d' = D       (Katharopoulos et al. 2020)
//   Relu       ("relu"): phi(x) = max(x, 0), d' = D
//   Favor      ("favor"): FAVOR+ positive random features (Choromanski et al. 2021),
//       phi_j(x) = exp(w_j^T x' - |x'|^2 / 2) / sqrt(m),  x' = x * D^(-1/4),  j < m = d',
//       so that E[phi(q)^T phi(k)] = exp(q^T k / sqrt(D)), softmax attention's kernel.
//       w_j ~ N(0, I_D) i.i.d. (not orthogonalised), one m x D matrix shared by
//       all heads, drawn from favor_seed by splitmix64 -> uniform doubles ->
//       Box-Muller (no std distribution, whose output differs between standard
//       libraries). No stabiliser is subtracted in the exponent (with eps it would
//       not cancel exactly); none is needed: w^T x' - |x'|^2/2 <= |w|^2/2 for
//       every x', so phi_j <= exp(|w_j|^2 / 2) / sqrt(m) whatever the input
//       (favor_max_log_feature() reports max_j |w_j|^2 / 2; features are formed
//       in double, which holds up to exp(709)). Large negative exponents
//       underflow to 0, which eps covers.
#include <cstdint>
#include <string_view>
#include <vector>

#include "roformer/cpu.h"

namespace roformer::nn {

enum class FeatureMap { EluPlusOne, Relu, Favor };

// "elu", "relu", "favor"; throws roformer::Error for any other name.
FeatureMap parse_feature_map(std::string_view name);
std::string_view feature_map_name(FeatureMap map);

struct LinearAttentionConfig {
  int64_t heads = 1;
  int64_t head_dim = 64;
  FeatureMap feature_map = FeatureMap::EluPlusOne;
  bool causal = false;
  bool rope = true;
  double rope_base = 10000;
  int64_t favor_features = 0;  // FAVOR's m; 0: head_dim; must be even (checked for every map)
  uint64_t favor_seed = 0;
  float eps = 1e-6f;  // added to the denominator

  // Throws roformer::Error for heads <= 0, head_dim <= 0, negative or odd
  // favor_features, base <= 0, negative or non-finite eps, or an odd feature
  // dimension when rope is on.
  void validate() const;
  // d': head_dim for elu / relu, favor_features (or head_dim) for FAVOR.
  int64_t feature_dim() const;
};

// What the training forward keeps for backward: O(B * T * heads * (1 + head_dim)).
// The features are recomputed by backward (in double) rather than stored.
template <typename Real>
struct BasicLinearAttentionSaved {
  std::vector<double> den;  // (B, T, heads): phi(q_m)^T z_m + eps
  std::vector<Real> out;    // (B, T, heads * head_dim): the forward's output
  int64_t batch = 0, seq = 0;
};
using LinearAttentionSaved = BasicLinearAttentionSaved<float>;
using LinearAttentionSavedF64 = BasicLinearAttentionSaved<double>;

// FAVOR's projection: m x head_dim row-major N(0, 1) draws from `seed`
// (the same numbers on every platform whose libm rounds log/cos/sin alike).
std::vector<double> favor_projection(int64_t features, int64_t head_dim, uint64_t seed);

class LinearAttention {
 public:
  explicit LinearAttention(LinearAttentionConfig config);

  const LinearAttentionConfig& config() const { return config_; }
  int64_t feature_dim() const { return feature_dim_; }
  // FAVOR's m x head_dim matrix W (empty for the other maps).
  const std::vector<double>& projection() const { return projection_; }
  // max_j |w_j|^2 / 2: the largest exponent a FAVOR feature can have (0 for other maps).
  double favor_max_log_feature() const;

  // phi(x) for one head vector x (head_dim values) into phi (feature_dim values).
  void features(const double* x, double* phi) const;

  // q, k, v, out: (B, T, heads * head_dim) row-major. positions: T absolute
  // positions shared by the batch rows (may be nullptr when rope is off).
  // key_valid: (B, T), 1 real key / 0 padding, or nullptr. saved: nullptr at
  // inference; otherwise filled for backward (its vectors are resized, so
  // reusing one across calls does not reallocate). Parallel over
  // (batch row x head) with ctx.threads; the result does not depend on it.
  void forward(const float* q, const float* k, const float* v, int64_t B, int64_t T, const int64_t* positions,
               const uint8_t* key_valid, float* out, LinearAttentionSaved* saved, const ExecContext& ctx) const;
  // Gradients of a loss through out, given dout. dq, dk, dv are OVERWRITTEN
  // (padded keys get 0 in dk and dv). Same q, k, v, positions and key_valid
  // as the forward that filled `saved`. Scratch: the features of one
  // (batch row, head), 2 * T * d' doubles per thread.
  void backward(const float* q, const float* k, const float* v, const LinearAttentionSaved& saved, const float* dout,
                int64_t B, int64_t T, const int64_t* positions, const uint8_t* key_valid, float* dq, float* dk,
                float* dv, const ExecContext& ctx) const;

  // The same in double (tests check gradients against finite differences tightly with these).
  void forward(const double* q, const double* k, const double* v, int64_t B, int64_t T, const int64_t* positions,
               const uint8_t* key_valid, double* out, LinearAttentionSavedF64* saved, const ExecContext& ctx) const;
  void backward(const double* q, const double* k, const double* v, const LinearAttentionSavedF64& saved,
                const double* dout, int64_t B, int64_t T, const int64_t* positions, const uint8_t* key_valid,
                double* dq, double* dk, double* dv, const ExecContext& ctx) const;

 private:
  template <typename Real>
  void forward_impl(const Real* q, const Real* k, const Real* v, int64_t B, int64_t T, const int64_t* positions,
                    const uint8_t* key_valid, Real* out, BasicLinearAttentionSaved<Real>* saved,
                    const ExecContext& ctx) const;
  template <typename Real>
  void backward_impl(const Real* q, const Real* k, const Real* v, const BasicLinearAttentionSaved<Real>& saved,
                     const Real* dout, int64_t B, int64_t T, const int64_t* positions, const uint8_t* key_valid,
                     Real* dq, Real* dk, Real* dv, const ExecContext& ctx) const;
  template <typename Real>
  void features_of(const Real* x, double* phi) const;
  // dx = (d phi / d x)^T dphi, for x and its features phi.
  template <typename Real>
  void features_backward(const Real* x, const double* phi, const double* dphi, double* dx) const;

  LinearAttentionConfig config_;
  int64_t feature_dim_ = 0;
  std::vector<double> projection_;  // FAVOR's W, feature_dim x head_dim
};

// Eq. (19) evaluated directly as the O(T^2) double sum, in double, for tests:
// for every query m, score(m, n) = (R_m phi(q_m))^T (R_n phi(k_n)) and
// weight(m, n) = phi(q_m)^T phi(k_n) over the visible keys n, then
// out_m = sum_n score v_n / (sum_n weight + eps). Same layouts as forward.
void linear_attention_reference(const LinearAttentionConfig& config, const double* q, const double* k,
                                const double* v, int64_t B, int64_t T, const int64_t* positions,
                                const uint8_t* key_valid, double* out);

}  // namespace roformer::nn
