#pragma once
// LayerNorm's per-row kernels, one set per instruction set; layer_norm.cpp
// walks the rows, splits them over threads and reduces dgamma / dbeta.
// Row statistics are sums in double (large common offsets must not cancel)
// over 8 interleaved partial sums, combined as
// ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)): an order fixed by the
// row length alone.
#include <cstdint>

#include "roformer/cpu.h"

namespace roformer::kernels {

struct LayerNormRowStats {
  float mean, rstd;  // rstd = 1 / sqrt(biased variance + eps)
};

struct LayerNormRowKernels {
  LayerNormRowStats (*stats)(const float* x, int64_t cols, float eps);
  // stats() of 4 rows, row r at x + r * stride, into out[0..3]: the same
  // bits as one row at a time, computed side by side.
  void (*stats4)(const float* x, int64_t stride, int64_t cols, float eps, LayerNormRowStats* out);
  // y = (x - mean) * rstd * gamma + beta; y may alias x.
  void (*normalize)(const float* x, float* y, const float* gamma, const float* beta, int64_t cols, LayerNormRowStats s);
  // dx for one row (dx may alias dy); adds dy * xhat to pg and dy to pb.
  void (*backward)(const float* x, const float* dy, const float* gamma, LayerNormRowStats s, int64_t cols, float* dx,
                   float* pg, float* pb);
};

// Plain loops (src/kernels/ref/); the reference for the others.
LayerNormRowKernels layer_norm_rows_ref();
// AVX2 + FMA (src/kernels/cpu/); also used on AVX-512 CPUs.
LayerNormRowKernels layer_norm_rows_avx2();

}  // namespace roformer::kernels
