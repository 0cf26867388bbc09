#pragma once
// Dynamic int8 quantization for the int8 inference products (PackedMatmul
// with MatmulPrecision::Int8).
//
// Weights: symmetric per output row, q = round(w / s) in [-127, 127] with
// s = max|w| / 127, done once at load time. Activations: asymmetric per row
// (per token), recomputed on every call: the row's range is widened to hold
// 0 (so 0 is exact), s = (hi - lo) / 255, z = round(-lo / s), and
// q = clamp(round(x / s) + z, 0, 255). Per-row activation scales keep one
// token's outliers from coarsening every other token.
//
// The integer sums sum_k (qx - z) qw are exact in int32 (in <= kMaxInt8Depth),
// so the only rounding is the quantization itself and the float rescale.
#include <cstdint>

#include "roformer/cpu.h"

namespace roformer::kernels {

// Longest product depth whose int32 sums cannot overflow: 2 * depth * 255 * 127 < 2^31.
inline constexpr int64_t kMaxInt8Depth = 16384;

struct RowQuant {
  float scale = 1.0f;
  int32_t zero = 0;
};

// A row's scale and zero point from its smallest and largest value.
// Ranges too small for a finite 1 / scale quantize the whole row to zero.
RowQuant row_quant(float lo, float hi);

// Weights (out, in) row-major -> q (out, in) and scale (out). All-zero rows get scale 1.
// On the AVX2 loops below where the CPU has them (the same bits).
void quantize_weights_s8(const float* w, int64_t out, int64_t in, int8_t* q, float* scale);
// One row's codes q[i] = clamp(nearbyint(row[i] / s), -127, 127): the plain
// loop and the AVX2 one (a model's load spent most of its time in the plain
// one's division and library call for each value).
void quantize_weight_row_ref(const float* row, int64_t in, float s, int8_t* q);
void quantize_weight_row_avx2(const float* row, int64_t in, float s, int8_t* q);
// A row's largest |value|, and false when it holds a NaN or an infinity: the
// plain loop and the AVX2 one (the plain loop's chain of one comparison per
// value took longer than quantizing the row). The peak is exact either way.
bool weight_row_peak_ref(const float* row, int64_t in, float* peak);
bool weight_row_peak_avx2(const float* row, int64_t in, float* peak);

// One set per instruction set; an element's bits do not depend on which set
// ran it (the same float operations in the same order), so tests compare them
// exactly.
struct QuantKernels {
  // x (rows, cols) -> q (rows, cols) and params (rows). False when x holds a
  // NaN or an infinity (q and params are then unspecified).
  bool (*quantize_rows)(const float* x, int64_t rows, int64_t cols, uint8_t* q, RowQuant* params);
  // y[r][n] = fma(params[r].scale * w_scale[n], float(acc[r][n] - params[r].zero * w_sum[n]), bias[n])
  // (bias may be null: no add), where w_sum[n] is the sum of weight row n's q.
  void (*dequantize_rows)(const int32_t* acc, int64_t rows, int64_t cols, const RowQuant* params,
                          const float* w_scale, const int32_t* w_sum, const float* bias, float* y);
};

bool quantize_rows_ref(const float* x, int64_t rows, int64_t cols, uint8_t* q, RowQuant* params);
void dequantize_rows_ref(const int32_t* acc, int64_t rows, int64_t cols, const RowQuant* params, const float* w_scale,
                         const int32_t* w_sum, const float* bias, float* y);
bool quantize_rows_avx512(const float* x, int64_t rows, int64_t cols, uint8_t* q, RowQuant* params);
void dequantize_rows_avx512(const int32_t* acc, int64_t rows, int64_t cols, const RowQuant* params,
                            const float* w_scale, const int32_t* w_sum, const float* bias, float* y);
bool quantize_rows_avx2(const float* x, int64_t rows, int64_t cols, uint8_t* q, RowQuant* params);
void dequantize_rows_avx2(const int32_t* acc, int64_t rows, int64_t cols, const RowQuant* params,
                          const float* w_scale, const int32_t* w_sum, const float* bias, float* y);

// The set for isa (Scalar takes the plain loops); throws Error when this CPU
// lacks isa.
QuantKernels quant_kernels(Isa isa);

}  // namespace roformer::kernels
