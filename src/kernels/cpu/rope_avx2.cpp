// AVX2 + FMA RoPE: 8 lanes; the ragged end of a row goes through the scalar
// reference. Compiled with -mavx2 -mfma; called only when the CPU has them.
// GCC 12 reports its own AVX-512 headers' deliberately undefined registers.
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <type_traits>

#include "kernels/cpu/avx2_bf16.h"
#include "kernels/rope_kernels.h"

namespace roformer::kernels {
namespace {

inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const bf16* p) { return widen_bf16x8(p); }
inline void store8(float* p, __m256 v) { _mm256_storeu_ps(p, v); }
inline void store8(bf16* p, __m256 v) {
  // Round to nearest even, as f32_to_bf16 does; NaNs stay quiet NaNs.
  const __m256i u = _mm256_castps_si256(v);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), lsb));
  const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  r = _mm256_blendv_epi8(r, _mm256_or_si256(u, _mm256_set1_epi32(0x00400000)), nan);
  r = _mm256_srli_epi32(r, 16);
  const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_castsi256_si128(packed));
}
// Non-temporal variant for f32 outputs far larger than the caches (see
// RopeTokenArgs::stream; the output is 32-byte aligned then); bf16 never streams.
inline void store8_stream(float* p, __m256 v) { _mm256_stream_ps(p, v); }
inline void store8_stream(bf16* p, __m256 v) { store8(p, v); }

inline float load1(const float* p) { return *p; }
inline float load1(const bf16* p) { return bf16_to_f32(*p); }
inline void store1(float* p, float v) { *p = v; }
inline void store1(bf16* p, float v) { *p = f32_to_bf16(v); }

// The ragged end: pairs [first, pairs) of every head, one at a time.
template <typename T>
void tail_pairs(const T* x, T* y, const float* cos, const float* sin, const RopeTokenArgs& a, int64_t first) {
  for (int64_t h = 0; h < a.heads; ++h) {
    const T* xh = x + h * a.x_head_stride;
    T* yh = y + h * a.y_head_stride;
    for (int64_t i = first; i < a.pairs; ++i) {
      const int64_t ia = a.layout == RopeLayout::Interleaved ? 2 * i : i;
      const int64_t ib = a.layout == RopeLayout::Interleaved ? 2 * i + 1 : i + a.pairs;
      const float c = cos[i], s = a.inverse ? -sin[i] : sin[i];
      const float xa = load1(xh + ia), xb = load1(xh + ib);
      store1(yh + ia, xa * c - xb * s);
      store1(yh + ib, xa * s + xb * c);
    }
  }
}

template <typename T>
void rope_token(const T* x, T* y, const float* cos, const float* sin, const RopeTokenArgs& a) {
  int64_t done_pairs = 0;
  if (a.layout == RopeLayout::Interleaved) {
    const __m256i dup = _mm256_set_epi32(3, 3, 2, 2, 1, 1, 0, 0);
    const __m256i minus_even = _mm256_set_epi32(0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN);
    const __m256i sign = a.inverse ? _mm256_slli_si256(minus_even, 4) : minus_even;
    const int64_t full = (2 * a.pairs) / 8 * 8;
    // Spread this token's cos/sin over both lanes of each pair (sin with its
    // lane's sign) once; every head then costs one shuffle per 8 lanes.
    constexpr int64_t kMaxSpread = 256;
    alignas(32) float cos2[kMaxSpread], sin2[kMaxSpread];
    for (int64_t j0 = 0; j0 < full; j0 += kMaxSpread) {
      const int64_t j1 = std::min(full, j0 + kMaxSpread);
      for (int64_t j = j0; j < j1; j += 8) {
        const __m256 c = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(cos + j / 2)), dup);
        const __m256 s = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(sin + j / 2)), dup);
        _mm256_store_ps(cos2 + (j - j0), c);
        _mm256_store_ps(sin2 + (j - j0), _mm256_castsi256_ps(_mm256_xor_si256(_mm256_castps_si256(s), sign)));
      }
      // The store kind is a template choice: tested per vector, the flag would be
      // reloaded every time (the stores may alias it as far as the compiler knows).
      auto heads = [&](auto streaming) {
        for (int64_t h = 0; h < a.heads; ++h) {  // head-outer: one forward stream
          const T* xh = x + h * a.x_head_stride;
          T* yh = y + h * a.y_head_stride;
          for (int64_t j = j0; j < j1; j += 8) {
            const __m256 v = load8(xh + j);
            const __m256 out = _mm256_fmadd_ps(v, _mm256_load_ps(cos2 + (j - j0)),
                                               _mm256_mul_ps(_mm256_permute_ps(v, 0xB1), _mm256_load_ps(sin2 + (j - j0))));
            if constexpr (decltype(streaming)::value)
              store8_stream(yh + j, out);
            else
              store8(yh + j, out);
          }
        }
      };
      if (a.stream)
        heads(std::true_type{});
      else
        heads(std::false_type{});
    }
    done_pairs = full / 2;
  } else {
    const int64_t half = a.pairs;
    const int64_t full = half / 8 * 8;
    for (int64_t h = 0; h < a.heads; ++h) {
      const T* xh = x + h * a.x_head_stride;
      T* yh = y + h * a.y_head_stride;
      for (int64_t i = 0; i < full; i += 8) {
        const __m256 c = _mm256_loadu_ps(cos + i);
        __m256 s = _mm256_loadu_ps(sin + i);
        if (a.inverse) s = _mm256_sub_ps(_mm256_setzero_ps(), s);
        const __m256 lo = load8(xh + i);
        const __m256 hi = load8(xh + i + half);
        store8(yh + i, _mm256_fmsub_ps(lo, c, _mm256_mul_ps(hi, s)));
        store8(yh + i + half, _mm256_fmadd_ps(hi, c, _mm256_mul_ps(lo, s)));
      }
    }
    done_pairs = full;
  }
  tail_pairs(x, y, cos, sin, a, done_pairs);
  if (x != y)
    for (int64_t h = 0; h < a.heads; ++h)
      for (int64_t j = 2 * a.pairs; j < a.head_dim; ++j) y[h * a.y_head_stride + j] = x[h * a.x_head_stride + j];
}

}  // namespace

void rope_token_avx2(const float* x, float* y, const float* cos, const float* sin, const RopeTokenArgs& a) {
  rope_token(x, y, cos, sin, a);
}
void rope_token_avx2(const bf16* x, bf16* y, const float* cos, const float* sin, const RopeTokenArgs& a) {
  rope_token(x, y, cos, sin, a);
}

}  // namespace roformer::kernels
