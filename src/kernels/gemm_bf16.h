#pragma once
// Matrix products with both operands rounded to bf16 and the sums kept in
// fp32: the products of mixed-precision training (ExecContext::bf16_products).
// Weights, gradients, the optimizer and every step between products stay in
// fp32; only what enters a product is rounded, as PyTorch's bf16 autocast does.
#include <cstdint>

#include "roformer/cpu.h"

namespace roformer::kernels {

// C = alpha * op(A) op(B) + beta * C (gemm's contract; beta = 0 never reads C)
// on bf16(A) and bf16(B), rounded to nearest even. Where the CPU has
// AVX512-BF16 and ctx.isa is AVX-512, oneDNN's bf16 matmul runs it;
// elsewhere the rounded operands go through the fp32 product of ctx's library
// (the plain loops for Isa::Scalar), the same values summed in another order.
void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const ExecContext& ctx);

// Whether rounding pays for itself, which kernels::gemm asks before taking
// gemm_bf16 for ExecContext::bf16_products. Rounding an operand is a pass over
// it from memory (about 0.6 ns a value when it is large); the faster product
// wins that back only when the other side reuses each value often enough.
// So a large operand (2^20 values or more) met by fewer than 128 rows or
// columns stays fp32: the MLM decoder's tied 50k x 768 embedding against a
// batch's few masked tokens costs more to round than its bf16 product saves.
bool gemm_bf16_pays_off(int64_t M, int64_t N, int64_t K);

// Whether gemm_bf16 runs native bf16 products for ctx on this CPU.
bool gemm_bf16_native(const ExecContext& ctx);

}  // namespace roformer::kernels
