// Scalar reference RoPE: the paper's pairwise rotation, written plainly.
#include "kernels/rope_kernels.h"

namespace roformer::kernels {
namespace {

inline float load(const float* p) { return *p; }
inline float load(const bf16* p) { return bf16_to_f32(*p); }
inline void store(float* p, float v) { *p = v; }
inline void store(bf16* p, float v) { *p = f32_to_bf16(v); }

template <typename T>
void rope_token(const T* x, T* y, const float* cos, const float* sin, const RopeTokenArgs& a) {
  const int64_t half = a.pairs;
  for (int64_t h = 0; h < a.heads; ++h) {
    const T* xh = x + h * a.x_head_stride;
    T* yh = y + h * a.y_head_stride;
    for (int64_t i = 0; i < a.pairs; ++i) {
      const int64_t ia = a.layout == RopeLayout::Interleaved ? 2 * i : i;
      const int64_t ib = a.layout == RopeLayout::Interleaved ? 2 * i + 1 : i + half;
      const float c = cos[i];
      const float s = a.inverse ? -sin[i] : sin[i];
      const float xa = load(xh + ia);
      const float xb = load(xh + ib);
      store(yh + ia, xa * c - xb * s);
      store(yh + ib, xa * s + xb * c);
    }
    if (xh != yh)
      for (int64_t j = 2 * a.pairs; j < a.head_dim; ++j) yh[j] = xh[j];
  }
}

}  // namespace

void rope_token_ref(const float* x, float* y, const float* cos, const float* sin, const RopeTokenArgs& a) {
  rope_token(x, y, cos, sin, a);
}
void rope_token_ref(const bf16* x, bf16* y, const float* cos, const float* sin, const RopeTokenArgs& a) {
  rope_token(x, y, cos, sin, a);
}

}  // namespace roformer::kernels
