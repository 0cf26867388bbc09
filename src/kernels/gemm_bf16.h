#pragma once
// Reduced-precision products for inference: y = bf16(x) · bf16(W)^T + b with
// fp32 accumulation and fp32 output. The weights are rounded to bf16 once and
// kept in oneDNN's blocked layout, which runs on AVX512-BF16 dot products or
// AMX tiles when the CPU has them (oneDNN picks at run time).
#include <cstdint>
#include <memory>
#include <string>

#include "roformer/cpu.h"

namespace roformer::kernels {

class Bf16Matmul {
 public:
  // weight: (out, in) row-major fp32, rounded to nearest-even bf16 here.
  // emulate: take the emulated path even where native products exist (tests).
  Bf16Matmul(const float* weight, int64_t out, int64_t in, bool emulate = false);
  ~Bf16Matmul();
  Bf16Matmul(const Bf16Matmul&) = delete;
  Bf16Matmul& operator=(const Bf16Matmul&) = delete;

  int64_t out_features() const;
  int64_t in_features() const;
  // y (rows, out) = bf16(x (rows, in)) W^T + bias (bias may be null). Safe to
  // call from several threads; a product shape is set up once and reused.
  void forward(const float* x, int64_t rows, const float* bias, float* y, const ExecContext& ctx) const;
  // The weights as bf16 values widened back to fp32, (out, in).
  void unpack(float* weight) const;

  // Whether this CPU has native bf16 products (AVX512-BF16 or AMX). Without
  // them the product is emulated (bf16-rounded operands through the fp32
  // GEMM): the same numbers up to accumulation order, at fp32 speed.
  static bool native();
  bool emulated() const;
  // oneDNN's name of the kernel it chose (e.g. "brg:avx512_core_bf16").
  std::string kernel_name() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Reference: the same product on bf16-rounded inputs, accumulated in double.
void gemm_bf16_ref(const float* x, int64_t rows, const float* weight, int64_t out, int64_t in, const float* bias,
                   float* y);

}  // namespace roformer::kernels
