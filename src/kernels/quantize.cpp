// The plain quantization loops (the reference, and the AVX2 / scalar path)
// and the choice of kernel set.
#include "kernels/quantize.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <string>

#include "roformer/error.h"

namespace roformer::kernels {

RowQuant row_quant(float lo, float hi) {
  lo = std::min(lo, 0.0f);
  hi = std::max(hi, 0.0f);
  const float scale = (hi - lo) / 255.0f;
  // Below this, 1 / scale overflows; such rows are zero to fp32 precision.
  if (!(scale >= FLT_MIN * 4.0f)) return {};
  const float zero = std::nearbyint(-lo / scale);
  return {scale, static_cast<int32_t>(std::clamp(zero, 0.0f, 255.0f))};
}

void quantize_weights_s8(const float* w, int64_t out, int64_t in, int8_t* q, float* scale) {
  const bool vector = isa_supported(Isa::Avx2);
  const auto peak_of = vector ? weight_row_peak_avx2 : weight_row_peak_ref;
  const auto codes_of = vector ? quantize_weight_row_avx2 : quantize_weight_row_ref;
  for (int64_t o = 0; o < out; ++o) {
    const float* row = w + o * in;
    float peak = 0.0f;
    const bool finite = peak_of(row, in, &peak);
    ROFORMER_CHECK(finite, "int8 weights: row " + std::to_string(o) + " holds a NaN or an infinity");
    const float s = peak / 127.0f >= FLT_MIN * 4.0f ? peak / 127.0f : 1.0f;
    scale[o] = s;
    codes_of(row, in, s, q + o * in);
  }
}

bool weight_row_peak_ref(const float* row, int64_t in, float* peak) {
  float top = 0.0f;
  bool finite = true;
  for (int64_t i = 0; i < in; ++i) {
    finite &= std::isfinite(row[i]);
    top = std::max(top, std::fabs(row[i]));
  }
  *peak = top;
  return finite;
}

void quantize_weight_row_ref(const float* row, int64_t in, float s, int8_t* q) {
  for (int64_t i = 0; i < in; ++i) q[i] = static_cast<int8_t>(std::clamp(std::nearbyint(row[i] / s), -127.0f, 127.0f));
}

bool quantize_rows_ref(const float* x, int64_t rows, int64_t cols, uint8_t* q, RowQuant* params) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * cols;
    float lo = 0.0f, hi = 0.0f;
    bool nan = false;
    for (int64_t c = 0; c < cols; ++c) {
      nan |= row[c] != row[c];
      lo = std::min(lo, row[c]);
      hi = std::max(hi, row[c]);
    }
    if (nan || !std::isfinite(lo) || !std::isfinite(hi)) return false;
    const RowQuant p = row_quant(lo, hi);
    params[r] = p;
    const float inv = 1.0f / p.scale;
    for (int64_t c = 0; c < cols; ++c) {
      const int32_t v = static_cast<int32_t>(std::nearbyint(row[c] * inv)) + p.zero;
      q[r * cols + c] = static_cast<uint8_t>(std::clamp(v, 0, 255));
    }
  }
  return true;
}

void dequantize_rows_ref(const int32_t* acc, int64_t rows, int64_t cols, const RowQuant* params, const float* w_scale,
                         const int32_t* w_sum, const float* bias, float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const float s = params[r].scale;
    const int32_t z = params[r].zero;
    for (int64_t n = 0; n < cols; ++n) {
      const float centred = static_cast<float>(acc[r * cols + n] - z * w_sum[n]);
      // One rounding for the bias add, as the vector kernels' fused multiply-add.
      y[r * cols + n] = bias != nullptr ? std::fma(s * w_scale[n], centred, bias[n]) : (s * w_scale[n]) * centred;
    }
  }
}

QuantKernels quant_kernels(Isa isa) {
  ROFORMER_CHECK(isa_supported(isa),
                 "quantize: instruction set " + std::string(isa_name(isa)) + " is not supported by this CPU");
  if (isa == Isa::Avx512) return {quantize_rows_avx512, dequantize_rows_avx512};
  if (isa == Isa::Avx2) return {quantize_rows_avx2, dequantize_rows_avx2};
  return {quantize_rows_ref, dequantize_rows_ref};
}

}  // namespace roformer::kernels
