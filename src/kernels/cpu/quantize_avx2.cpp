// AVX2 quantization loops: the same float operations as the plain loops in
// quantize.cpp, eight lanes at a time (round to nearest even through the
// default MXCSR mode, like std::nearbyint; the rescale's fused multiply-add
// in hardware, where the plain loop's std::fma is a library call on a
// generic x86-64 build), so both give the same bits. Compiled with -mavx2
// -mfma; called only when the CPU has both.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/quantize.h"

namespace roformer::kernels {
namespace {

// Lanes [0, n) for n < 8 (all eight for n >= 8).
__m256i lanes(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(std::min<int64_t>(n, 8))),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

float lane_min(__m256 v) {
  alignas(32) float f[8];
  _mm256_store_ps(f, v);
  return *std::min_element(f, f + 8);
}

float lane_max(__m256 v) {
  alignas(32) float f[8];
  _mm256_store_ps(f, v);
  return *std::max_element(f, f + 8);
}

// The low byte of each of eight int32 lanes (each in [0, 255], or in
// [-128, 127] for signed codes), in order, into out[0, n).
void store_bytes(uint8_t* out, __m256i v, int64_t n) {
  const __m256i pick = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,  //
                                        0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  // Bytes of lanes 0-3 in dword 0 of the low half, of lanes 4-7 in dword 4: brought together.
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1);
  const __m256i packed = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(v, pick), order);
  alignas(16) uint8_t bytes[16];
  _mm_store_si128(reinterpret_cast<__m128i*>(bytes), _mm256_castsi256_si128(packed));
  std::memcpy(out, bytes, static_cast<std::size_t>(std::min<int64_t>(n, 8)));
}

}  // namespace

void quantize_weight_row_avx2(const float* row, int64_t in, float s, int8_t* q) {
  const __m256 scale = _mm256_set1_ps(s), lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
  int64_t i = 0;
  for (; i + 8 <= in; i += 8) {
    // Division (correctly rounded, as the plain loop's) and round to nearest even.
    const __m256 v = _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(row + i), scale),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    store_bytes(reinterpret_cast<uint8_t*>(q + i), _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(v, lo), hi)), 8);
  }
  quantize_weight_row_ref(row + i, in - i, s, q + i);
}

bool weight_row_peak_avx2(const float* row, int64_t in, float* peak) {
  const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  // Four chains of maxima, so the loop does not wait on one comparison a vector.
  __m256 top[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  __m256 bad = _mm256_setzero_ps();  // lanes that met a NaN or an infinity: there v - v is NaN
  auto take = [&](__m256 v, __m256& t) {
    const __m256 d = _mm256_sub_ps(v, v);
    bad = _mm256_or_ps(bad, _mm256_cmp_ps(d, d, _CMP_UNORD_Q));
    t = _mm256_max_ps(t, _mm256_and_ps(v, magnitude));
  };
  int64_t i = 0;
  for (; i + 32 <= in; i += 32)
    for (int c = 0; c < 4; ++c) take(_mm256_loadu_ps(row + i + 8 * c), top[c]);
  for (; i < in; i += 8) take(_mm256_maskload_ps(row + i, lanes(in - i)), top[0]);  // masked-off lanes read 0
  *peak = lane_max(_mm256_max_ps(_mm256_max_ps(top[0], top[1]), _mm256_max_ps(top[2], top[3])));
  return _mm256_movemask_ps(bad) == 0;
}

bool quantize_rows_avx2(const float* x, int64_t rows, int64_t cols, uint8_t* q, RowQuant* params) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * cols;
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps(), nan = _mm256_setzero_ps();
    for (int64_t c = 0; c < cols; c += 8) {
      const __m256 v = _mm256_maskload_ps(row + c, lanes(cols - c));  // masked-off lanes read 0, inside [lo, hi]
      nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
      lo = _mm256_min_ps(lo, v);
      hi = _mm256_max_ps(hi, v);
    }
    const float l = lane_min(lo), h = lane_max(hi);
    if (_mm256_movemask_ps(nan) != 0 || !std::isfinite(l) || !std::isfinite(h)) return false;
    const RowQuant p = row_quant(l, h);
    params[r] = p;
    const __m256 inv = _mm256_set1_ps(1.0f / p.scale);
    const __m256i zero = _mm256_set1_epi32(p.zero);
    const __m256i top = _mm256_set1_epi32(255), bottom = _mm256_setzero_si256();
    uint8_t* out = q + r * cols;
    for (int64_t c = 0; c < cols; c += 8) {
      const __m256 v = _mm256_maskload_ps(row + c, lanes(cols - c));
      const __m256i code = _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(v, inv)), zero);
      store_bytes(out + c, _mm256_min_epi32(_mm256_max_epi32(code, bottom), top), cols - c);
    }
  }
  return true;
}

void dequantize_rows_avx2(const int32_t* acc, int64_t rows, int64_t cols, const RowQuant* params,
                          const float* w_scale, const int32_t* w_sum, const float* bias, float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const __m256 s = _mm256_set1_ps(params[r].scale);
    const __m256i z = _mm256_set1_epi32(params[r].zero);
    const int32_t* a = acc + r * cols;
    float* out = y + r * cols;
    for (int64_t n = 0; n < cols; n += 8) {
      const __m256i m = lanes(cols - n);
      const __m256i centred =
          _mm256_sub_epi32(_mm256_maskload_epi32(a + n, m), _mm256_mullo_epi32(z, _mm256_maskload_epi32(w_sum + n, m)));
      const __m256 scale = _mm256_mul_ps(s, _mm256_maskload_ps(w_scale + n, m));
      const __m256 v = bias != nullptr
                           ? _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(centred), _mm256_maskload_ps(bias + n, m))
                           : _mm256_mul_ps(scale, _mm256_cvtepi32_ps(centred));
      // Masked stores are microcoded on some cores (AMD's): only the tail takes one.
      if (cols - n >= 8) _mm256_storeu_ps(out + n, v);
      else _mm256_maskstore_ps(out + n, m, v);
    }
  }
}

}  // namespace roformer::kernels
