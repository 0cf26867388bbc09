#pragma once
// Matrix products with both operands rounded to bf16 and the sums kept in
// fp32: the products of mixed-precision training (ExecContext::bf16_products).
// Weights, gradients, the optimizer and every step between products stay in
// fp32; only what enters a product is rounded, as PyTorch's bf16 autocast does.
#include <cstdint>
#include <unordered_map>
#include <vector>

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

// Rounded copies of dense fp32 matrices, made once and found by address:
// a training step reads each weight in two products (the forward one and the
// input gradient), an activation in two or more (its forward products and
// the weight gradient), and rounding is a pass over the matrix. gemm_bf16
// reads a copy (ExecContext::rounded) when the operand's address, shape and
// row stride are the ones registered; the caller keeps the source unchanged
// while the context is in use and rounds again after changing it.
class RoundedOperands {
 public:
  // A set searched after this one (a step's weights behind one call's
  // temporary operands, see rounding_once); it must outlive every find().
  void set_outer(const RoundedOperands* outer) { outer_ = outer; }
  // Retires every copy of this set (not of the outer one), so that no address
  // registered before can match a matrix allocated there since; an address
  // rounded again reuses its buffer.
  void clear();
  // Rounds x (rows x cols, dense) now, into a buffer kept for x's address.
  void round(const float* x, int64_t rows, int64_t cols, const ExecContext& ctx);
  // The copy of x when rounded since the last clear() with this shape, and
  // ld == cols, here or in the outer set; else null.
  const uint16_t* find(const float* x, int64_t rows, int64_t cols, int64_t ld) const;

 private:
  struct Copy {
    int64_t rows = 0, cols = 0;
    bool live = false;
    std::vector<uint16_t> bits;
  };
  const RoundedOperands* outer_ = nullptr;
  std::unordered_map<const float*, Copy> copies_;
};

// For one call whose products read x (rows x cols, dense) more than once:
// where ctx runs native bf16 products, x is rounded now into `scratch`
// (cleared first, its outer set ctx.rounded) and the returned context finds
// it there; elsewhere ctx as it is. x must not change while the returned
// context is in use, and the context must not outlive the call.
ExecContext rounding_once(const float* x, int64_t rows, int64_t cols, RoundedOperands& scratch,
                          const ExecContext& ctx);

}  // namespace roformer::kernels
