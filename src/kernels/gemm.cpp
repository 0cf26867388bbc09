#include "kernels/gemm.h"

#include <cblas.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include <cstring>
#include <string>

#include "kernels/gemm_bf16.h"
#include "roformer/error.h"

namespace roformer::kernels {

// Both libraries are OpenMP builds: they size their teams from
// omp_get_max_threads() (OpenBLAS's OpenMP build ignores
// openblas_set_num_threads). Set it only when the request changes, never
// from inside our own parallel regions.
void use_library_threads(int threads) {
  if (omp_in_parallel()) return;
  if (omp_get_max_threads() != threads) omp_set_num_threads(threads);
}

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const ExecContext& ctx) {
  ROFORMER_CHECK(M >= 0 && N >= 0 && K >= 0, "gemm: negative size");
  if (M == 0 || N == 0) return;
  if (ctx.bf16_products && K > 0 && gemm_bf16_pays_off(M, N, K)) {
    gemm_bf16(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ctx);
    return;
  }
  if (K == 0) {  // C = beta * C; not every library scales C when there is nothing to add
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
    return;
  }
  if (ctx.isa == Isa::Scalar) {  // the forced-reference override reaches GEMM too
    gemm_ref(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  if (ctx.gemm == GemmBackend::OneDnn) {
    use_library_threads(ctx.threads);
    const dnnl_status_t status = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    ROFORMER_CHECK(status == dnnl_success, "gemm: oneDNN sgemm failed with status " + std::to_string(static_cast<int>(status)));
    return;
  }
  use_library_threads(ctx.threads);
  if (M == 1) {
    // One row (a decoding step's): OpenBLAS's sgemm packs both operands even
    // then, and its matrix-vector product streams B once, 2.3x as fast at
    // 1 x 768 x 3072 out of cache on a Zen core (AVX2).
    const int rows = static_cast<int>(trans_b ? N : K), cols = static_cast<int>(trans_b ? K : N);
    cblas_sgemv(CblasRowMajor, trans_b ? CblasNoTrans : CblasTrans, rows, cols, alpha, B, static_cast<int>(ldb), A,
                static_cast<int>(trans_a ? lda : 1), beta, C, 1);
    return;
  }
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<int>(M), static_cast<int>(N), static_cast<int>(K), alpha, A, static_cast<int>(lda), B,
              static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
}

void gemm_bias(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
               const float* B, int64_t ldb, const float* bias, float* C, int64_t ldc, const ExecContext& ctx) {
  if (bias == nullptr) {
    gemm(trans_a, trans_b, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc, ctx);
    return;
  }
  ROFORMER_CHECK(M >= 0 && N >= 0, "gemm: negative size");
  const bool parallel = ctx.threads > 1 && M * N >= (int64_t{1} << 16);
#pragma omp parallel for schedule(static) num_threads(ctx.threads) if (parallel)
  for (int64_t i = 0; i < M; ++i) std::memcpy(C + i * ldc, bias, static_cast<std::size_t>(N) * sizeof(float));
  gemm(trans_a, trans_b, M, N, K, 1.0f, A, lda, B, ldb, 1.0f, C, ldc, ctx);
}

void gemm_ref(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
              const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k) {
        const float a = trans_a ? A[k * lda + i] : A[i * lda + k];
        const float b = trans_b ? B[j * ldb + k] : B[k * ldb + j];
        acc += static_cast<double>(a) * b;
      }
      float& c = C[i * ldc + j];
      c = static_cast<float>(alpha * acc + (beta == 0.0f ? 0.0 : static_cast<double>(beta) * c));
    }
  }
}

}  // namespace roformer::kernels
