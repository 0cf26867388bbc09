// AVX-512 RoPE: 16 lanes, masked tails, bf16 converted in registers.
// Compiled with -mavx512f -mavx512bw -mavx512vl -mfma; called only when
// the CPU reports those features.
#include <type_traits>

#include "kernels/cpu/avx512_traits.h"
#include "kernels/rope_kernels.h"

namespace roformer::kernels {
namespace {

// Full chunks use plain loads and stores: masked ones are slower on some cores.
inline __m512 load16(const float* p, __mmask16 m) {
  return m == 0xffff ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(m, p);
}
inline __m512 load16(const bf16* p, __mmask16 m) {
  const __m256i h = _mm256_maskz_loadu_epi16(m, p);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
inline void store16(float* p, __m512 v, __mmask16 m) {
  if (m == 0xffff)
    _mm512_storeu_ps(p, v);
  else
    _mm512_mask_storeu_ps(p, m, v);
}
inline void store16(bf16* p, __m512 v, __mmask16 m) { store_bf16(reinterpret_cast<uint16_t*>(p), v, m); }

// Non-temporal variant for f32 (see RopeTokenArgs::stream); bf16 never streams.
inline void store16_stream(float* p, __m512 v) { _mm512_stream_ps(p, v); }
inline void store16_stream(bf16* p, __m512 v) { store16(p, v, 0xffff); }

template <typename T>
void copy_tail(const T* x, T* y, int64_t from, int64_t to) {
  for (int64_t j = from; j < to; j += 16) {
    const __mmask16 m = tail_mask(to - j);
    store16(y + j, load16(x + j, m), m);
  }
}

template <typename T>
void rope_interleaved(const T* x, T* y, const float* cos, const float* sin, const RopeTokenArgs& a) {
  const int64_t r = 2 * a.pairs;
  const __m512i dup = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
  // Forward: out = x*C + swap(x)*S with S = (-s, +s) per pair; backward flips the signs.
  // (_mm512_set_epi32 lists lanes from 15 down to 0.)
  const __m512i minus_even = _mm512_set_epi32(0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN, 0,
                                              INT32_MIN, 0, INT32_MIN, 0, INT32_MIN);
  const __m512i sign = a.inverse ? _mm512_bslli_epi128(minus_even, 4) : minus_even;
  // Expand cos/sin to per-lane multipliers once per token: C = (c0,c0,c1,c1,..),
  // S = (-s0,s0,-s1,s1,..). Heads then stream through memory in order, which
  // the prefetchers follow (chunk-outer order across heads was 2x slower).
  constexpr int64_t kMaxExpanded = 512;
  alignas(64) float C[kMaxExpanded], S[kMaxExpanded];
  const bool expanded = r <= kMaxExpanded;
  auto expand = [&](int64_t j, __m512& c, __m512& s) {
    const __mmask16 m = tail_mask(r - j);
    const __mmask8 mp = static_cast<__mmask8>(m == 0xffff ? 0xff : (1u << ((r - j) / 2)) - 1u);
    c = _mm512_permutexvar_ps(dup, _mm512_zextps256_ps512(_mm256_maskz_loadu_ps(mp, cos + j / 2)));
    s = _mm512_permutexvar_ps(dup, _mm512_zextps256_ps512(_mm256_maskz_loadu_ps(mp, sin + j / 2)));
    s = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(s), sign));
  };
  if (expanded)
    for (int64_t j = 0; j < r; j += 16) {
      __m512 c, s;
      expand(j, c, s);
      _mm512_store_ps(C + j, c);
      _mm512_store_ps(S + j, s);
    }
  const int64_t full = r / 16 * 16;
  // The store kind is a template choice: tested per vector, the flag would be
  // reloaded every time (the stores may alias it as far as the compiler knows).
  auto heads = [&](auto streaming) {
    for (int64_t h = 0; h < a.heads; ++h) {
      const T* xh = x + h * a.x_head_stride;
      T* yh = y + h * a.y_head_stride;
      for (int64_t j = 0; j < r; j += 16) {
        __m512 c, s;
        if (expanded) {
          c = _mm512_load_ps(C + j);
          s = _mm512_load_ps(S + j);
        } else {
          expand(j, c, s);
        }
        const __mmask16 m = j < full ? __mmask16(0xffff) : tail_mask(r - j);
        const __m512 v = load16(xh + j, m);
        const __m512 sw = _mm512_permute_ps(v, 0xB1);  // (x1, x0, x3, x2, ...)
        const __m512 out = _mm512_fmadd_ps(v, c, _mm512_mul_ps(sw, s));
        if constexpr (decltype(streaming)::value)
          store16_stream(yh + j, out);  // only set when every row is whole 64-byte lines
        else
          store16(yh + j, out, m);
      }
    }
  };
  if (a.stream)
    heads(std::true_type{});
  else
    heads(std::false_type{});
}

template <typename T>
void rope_half_split(const T* x, T* y, const float* cos, const float* sin, const RopeTokenArgs& a) {
  const int64_t half = a.pairs;
  for (int64_t h = 0; h < a.heads; ++h) {
    const T* xh = x + h * a.x_head_stride;
    T* yh = y + h * a.y_head_stride;
    for (int64_t i = 0; i < half; i += 16) {
      const __mmask16 m = tail_mask(half - i);
      const __m512 c = _mm512_maskz_loadu_ps(m, cos + i);
      __m512 s = _mm512_maskz_loadu_ps(m, sin + i);
      if (a.inverse) s = _mm512_sub_ps(_mm512_setzero_ps(), s);
      const __m512 lo = load16(xh + i, m);
      const __m512 hi = load16(xh + i + half, m);
      store16(yh + i, _mm512_fmsub_ps(lo, c, _mm512_mul_ps(hi, s)), m);
      store16(yh + i + half, _mm512_fmadd_ps(hi, c, _mm512_mul_ps(lo, s)), m);
    }
  }
}

template <typename T>
void rope_token(const T* x, T* y, const float* cos, const float* sin, const RopeTokenArgs& a) {
  if (a.layout == RopeLayout::Interleaved)
    rope_interleaved(x, y, cos, sin, a);
  else
    rope_half_split(x, y, cos, sin, a);
  if (x != y && 2 * a.pairs < a.head_dim)
    for (int64_t h = 0; h < a.heads; ++h)
      copy_tail(x + h * a.x_head_stride, y + h * a.y_head_stride, 2 * a.pairs, a.head_dim);
}

}  // namespace

void rope_token_avx512(const float* x, float* y, const float* cos, const float* sin, const RopeTokenArgs& a) {
  rope_token(x, y, cos, sin, a);
}
void rope_token_avx512(const bf16* x, bf16* y, const float* cos, const float* sin, const RopeTokenArgs& a) {
  rope_token(x, y, cos, sin, a);
}

}  // namespace roformer::kernels
