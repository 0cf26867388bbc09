#pragma once
// The one door to matrix multiplication. Row-major, like the rest of the
// engine; any CBLAS (OpenBLAS by default) sits behind it, so another BLAS can
// be swapped in and compared in one place.
#include <cstdint>

#include "roformer/cpu.h"

namespace roformer::kernels {

// C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, with op(X) = X or X^T.
// lda/ldb/ldc are row strides in elements of the matrices as stored.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const ExecContext& ctx);

// C[M,N] = op(A) * op(B) + bias[N] on every row. The bias is written into C
// first and the BLAS accumulates onto it (beta = 1): one pass over C instead
// of the BLAS's zeroing pass plus a bias pass. bias may be null (plain product).
void gemm_bias(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
               const float* B, int64_t ldb, const float* bias, float* C, int64_t ldc, const ExecContext& ctx);

// Sets the OpenMP team size the libraries behind gemm (OpenBLAS's and
// oneDNN's OpenMP builds) read from omp_get_max_threads(); a no-op inside a
// parallel region, where they run sequentially.
void use_library_threads(int threads);

// The plain triple loop (accumulating in double): the reference the BLAS path is tested against.
void gemm_ref(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
              const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace roformer::kernels
