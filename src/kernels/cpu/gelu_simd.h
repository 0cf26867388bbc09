#pragma once
// GELU (erf and tanh forms) and their derivatives for one SIMD register,
// written once over a traits type S so the AVX2 and AVX-512 files share the
// algorithm. Everything is a template on S and each S sits in an anonymous
// namespace of a file compiled for its instruction set, so no instantiation
// compiled with wider instructions can be picked by the linker for another.
//
// S provides the float register V and lane mask M, and:
//   set1, add, sub, mul, div, fmadd(a, b, c) = a*b + c, fnmadd(a, b, c) = c - a*b,
//   min(a, b) / max(a, b) returning b when either is NaN (as minps / maxps),
//   abs, lt / gt (ordered: false for NaN), select(m, a, b) = m ? a : b,
//   zero_if(m, a) = m ? 0 : a, round_nearest, and scale2(p, k) = p * 2^k for
//   integral k in [-126, 0].
//
// Both forms reduce to one exponential of a non-positive argument:
//   erf form:  Phi(-a) = t e^{-a^2/2} S(t), t = 1 / (1 + c a), a = |x|, S a
//              polynomial (the Mills ratio in the variable t);
//   tanh form: 0.5 (1 + tanh u) = sigmoid(2u), taken as r or e r with
//              e = e^{-2|u|}, r = 1 / (1 + e) by the sign of u.
// Polynomials are minimax fits (Lawson's iteration, 40 digits) made for this
// file: exp's relative error 3.1e-9 on [-ln2/2, ln2/2]; S's 4.9e-8 over
// a in [0, 12.5]. Beyond |x| = 12.5 every term is exactly 0 or 1 in fp32.

// Each helper is forced inline: outlined, the larger ones pass their
// registers through memory and reload every constant per call.
#define ROFORMER_SIMD_INLINE [[gnu::always_inline]] inline

namespace roformer::kernels::simd {

inline constexpr float kSqrt2OverPi = 0.79788456080286536f;
inline constexpr float kInvSqrt2Pi = 0.39894228040143268f;
inline constexpr float kGeluNewCubic = 0.044715f;
inline constexpr float kLowest = -3.40282347e38f;
// |x| beyond which GELU' is exactly 0 or 1 and gelu(x) exactly 0 or x in fp32.
inline constexpr float kSaturate = 12.5f;
// t = 1 / (1 + kMillsC a), exactly representable.
inline constexpr float kMillsC = 0.28125f;
inline constexpr float kMills[9] = {0.112174303956f,  0.112695081369f, 0.0998260969089f,
                                    0.0983260951932f, 0.03775335481f,  0.0445932729425f,
                                    0.0460203156423f, -0.0721466404046f, 0.0207581438577f};
// e^r = 1 + r + r^2 (kExp[0] + kExp[1] r + ... + kExp[4] r^4)
inline constexpr float kExp[5] = {0.499999934516f, 0.166665206886f, 0.0416683873886f, 0.00836870994311f,
                                  0.00138146119538f};

// e^v for v <= 0 (and -inf, NaN). 2^k e^r with k = round(v / ln2) and r
// reduced with ln2 split in two (k * kLn2Hi is exact). Below -87 it returns
// exactly 0 rather than a denormal: the callers' terms there are far below
// fp32 resolution, and denormal arithmetic is slow on many cores.
template <class S>
ROFORMER_SIMD_INLINE typename S::V exp_nonpositive(typename S::V v) {
  using V = typename S::V;
  constexpr float kLog2e = 1.44269504088896341f, kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
  const V floor = S::set1(-87.0f);
  const V vc = S::max(floor, v);
  const V k = S::round_nearest(S::mul(vc, S::set1(kLog2e)));
  V r = S::fnmadd(k, S::set1(kLn2Hi), vc);
  r = S::fnmadd(k, S::set1(kLn2Lo), r);
  V p = S::set1(kExp[4]);
  for (int i = 3; i >= 0; --i) p = S::fmadd(p, r, S::set1(kExp[i]));
  p = S::fmadd(p, r, S::set1(1.0f));
  p = S::fmadd(p, r, S::set1(1.0f));
  return S::zero_if(S::lt(v, floor), S::scale2(p, k));
}

template <class S>
struct NormalParts {
  typename S::V cdf;    // Phi(x)
  typename S::V gauss;  // e^{-x^2/2}; 0 beyond kSaturate, where Phi is 0 or 1
};

template <class S>
ROFORMER_SIMD_INLINE NormalParts<S> normal_parts(typename S::V x) {
  using V = typename S::V;
  const V a = S::abs(x);
  const V ac = S::min(S::set1(kSaturate), a);
  const V gauss = S::zero_if(S::gt(a, S::set1(kSaturate)), exp_nonpositive<S>(S::mul(S::mul(ac, ac), S::set1(-0.5f))));
  const V t = S::div(S::set1(1.0f), S::fmadd(ac, S::set1(kMillsC), S::set1(1.0f)));
  V s = S::set1(kMills[8]);
  for (int i = 7; i >= 0; --i) s = S::fmadd(s, t, S::set1(kMills[i]));
  const V tail = S::mul(S::mul(t, gauss), s);  // Phi(-|x|)
  return {S::select(S::lt(x, S::set1(0.0f)), tail, S::sub(S::set1(1.0f), tail)), gauss};
}

// x * Phi(x); x = -inf gives -0 (the limit) instead of -inf * 0.
template <class S>
ROFORMER_SIMD_INLINE typename S::V gelu_erf(typename S::V x) {
  return S::mul(S::max(S::set1(kLowest), x), normal_parts<S>(x).cdf);
}

// Phi(x) + x phi(x)
template <class S>
ROFORMER_SIMD_INLINE typename S::V gelu_erf_grad(typename S::V x) {
  const NormalParts<S> p = normal_parts<S>(x);
  const typename S::V xc = S::max(S::set1(-kSaturate), S::min(S::set1(kSaturate), x));
  return S::fmadd(S::mul(xc, S::set1(kInvSqrt2Pi)), p.gauss, p.cdf);
}

// For u = sqrt(2/pi) (x + 0.044715 x^3), with x clamped to kSaturate.
template <class S>
struct TanhParts {
  typename S::V sig;       // sigmoid(2u) = 0.5 (1 + tanh u)
  typename S::V sig_prod;  // sigmoid(2u) sigmoid(-2u) = e r^2
  typename S::V xc, x2;    // the clamped x and its square
};

template <class S>
ROFORMER_SIMD_INLINE TanhParts<S> tanh_parts(typename S::V x) {
  using V = typename S::V;
  const V xc = S::max(S::set1(-kSaturate), S::min(S::set1(kSaturate), x));
  const V x2 = S::mul(xc, xc);
  const V u = S::mul(S::mul(xc, S::set1(kSqrt2OverPi)), S::fmadd(x2, S::set1(kGeluNewCubic), S::set1(1.0f)));
  const V e = exp_nonpositive<S>(S::mul(S::abs(u), S::set1(-2.0f)));
  const V r = S::div(S::set1(1.0f), S::add(S::set1(1.0f), e));
  const V er = S::mul(e, r);
  return {S::select(S::lt(xc, S::set1(0.0f)), er, r), S::mul(er, r), xc, x2};
}

template <class S>
ROFORMER_SIMD_INLINE typename S::V gelu_tanh(typename S::V x) {
  return S::mul(S::max(S::set1(kLowest), x), tanh_parts<S>(x).sig);
}

// d/dx [x sigmoid(2u)] = sigmoid(2u) + 2 x u' sigmoid(2u) sigmoid(-2u), u' = sqrt(2/pi) (1 + 3 * 0.044715 x^2)
template <class S>
ROFORMER_SIMD_INLINE typename S::V gelu_tanh_grad(typename S::V x) {
  using V = typename S::V;
  const TanhParts<S> p = tanh_parts<S>(x);
  const V du2 = S::fmadd(p.x2, S::set1(2.0f * kSqrt2OverPi * 3.0f * kGeluNewCubic), S::set1(2.0f * kSqrt2OverPi));
  return S::fmadd(S::mul(p.xc, du2), p.sig_prod, p.sig);
}

}  // namespace roformer::kernels::simd

#undef ROFORMER_SIMD_INLINE
