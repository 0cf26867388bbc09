// Scalar reference GELU: the definitions through libm erf / tanh / exp.
// The clamps change no finite result; they only give the limits (0 or x
// forward, 0 or 1 backward) where inf * 0 would otherwise produce NaN.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/gelu_kernels.h"

namespace roformer::kernels {
namespace {

constexpr float kLowest = std::numeric_limits<float>::lowest();

inline float gelu_erf(float x) { return 0.5f * std::max(x, kLowest) * (1.0f + std::erf(x * 0.70710678118654752f)); }

inline float gelu_tanh(float x) {
  constexpr float k = 0.79788456080286536f;  // sqrt(2/pi)
  return 0.5f * std::max(x, kLowest) * (1.0f + std::tanh(k * (x + 0.044715f * x * x * x)));
}

// d/dx [x * Phi(x)] = Phi(x) + x * phi(x)
inline float gelu_erf_grad(float x) {
  const float v = std::clamp(x, kLowest, std::numeric_limits<float>::max());
  const float cdf = 0.5f * (1.0f + std::erf(v * 0.70710678118654752f));
  const float pdf = 0.39894228040143268f * std::exp(-0.5f * v * v);
  return cdf + v * pdf;
}

inline float gelu_tanh_grad(float x) {
  // Beyond |x| = 1e6 tanh is +-1 and the second term exactly 0; the clamp
  // keeps 3 x^2 finite there.
  const float v = std::clamp(x, -1e6f, 1e6f);
  constexpr float k = 0.79788456080286536f;
  const float inner = k * (v + 0.044715f * v * v * v);
  const float t = std::tanh(inner);
  const float dinner = k * (1.0f + 3.0f * 0.044715f * v * v);
  return 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * dinner;
}

}  // namespace

void gelu_forward_ref(GeluForm form, float* x, int64_t n) {
  if (form == GeluForm::Erf)
    for (int64_t i = 0; i < n; ++i) x[i] = gelu_erf(x[i]);
  else
    for (int64_t i = 0; i < n; ++i) x[i] = gelu_tanh(x[i]);
}

void gelu_backward_ref(GeluForm form, const float* x, const float* dy, float* dx, int64_t n) {
  if (form == GeluForm::Erf)
    for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * gelu_erf_grad(x[i]);
  else
    for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * gelu_tanh_grad(x[i]);
}

}  // namespace roformer::kernels
