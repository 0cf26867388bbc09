#pragma once
// GELU kernels on contiguous spans, one set per instruction set.
// elementwise.cpp / elementwise_backward.cpp split the work over threads and
// take the set for ExecContext::isa (Isa::Scalar forces the reference).
#include <cstdint>

#include "roformer/cpu.h"

namespace roformer::kernels {

enum class GeluForm {
  Erf,   // HF "gelu": x * Phi(x)
  Tanh,  // HF "gelu_new": 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
};

// forward: x <- gelu(x) for n values.
// backward: dx = dy * gelu'(x) for n values; dx may alias dy.
// An element's result depends only on its own inputs (not on n or its
// position), so any split of the work gives the same bits.

// Scalar reference: the definitions through libm (src/kernels/ref/).
void gelu_forward_ref(GeluForm form, float* x, int64_t n);
void gelu_backward_ref(GeluForm form, const float* x, const float* dy, float* dx, int64_t n);

// Vectorised exp-based approximations (src/kernels/cpu/, gelu_simd.h).
void gelu_forward_avx2(GeluForm form, float* x, int64_t n);
void gelu_backward_avx2(GeluForm form, const float* x, const float* dy, float* dx, int64_t n);
void gelu_forward_avx512(GeluForm form, float* x, int64_t n);
void gelu_backward_avx512(GeluForm form, const float* x, const float* dy, float* dx, int64_t n);

struct GeluKernels {
  void (*forward)(GeluForm, float*, int64_t);
  void (*backward)(GeluForm, const float*, const float*, float*, int64_t);
};
// The set for isa; throws Error when this CPU lacks it.
GeluKernels gelu_kernels(Isa isa);

}  // namespace roformer::kernels
