// LayerNorm kernels (declared in elementwise.h and elementwise_backward.h):
// the rows go to ctx.isa's row kernels (layer_norm_rows.h) and are split over
// threads. A row never depends on the thread that computes it, and dgamma /
// dbeta are summed per fixed chunk of rows with the chunks added in order, so
// results are the same bits for any thread count.
#include <algorithm>
#include <string>
#include <vector>

#include "kernels/bf16_convert.h"
#include "kernels/elementwise.h"
#include "kernels/elementwise_backward.h"
#include "kernels/layer_norm_rows.h"
#include "roformer/error.h"

namespace roformer::kernels {

namespace {

// Rows per partial sum of dgamma / dbeta, and columns per block when the partials are added.
constexpr int64_t kRowChunk = 32;
constexpr int64_t kColBlock = 64;
// Rows whose statistics are computed together.
constexpr int64_t kStatRows = 4;

bool worth_threads(const ExecContext& ctx, int64_t rows, int64_t cols) {
  return ctx.threads > 1 && rows > 1 && rows * cols >= (int64_t{1} << 15);
}

// Isa::Scalar forces the plain loops; AVX-512 CPUs run the AVX2 rows.
LayerNormRowKernels row_kernels(Isa isa) {
  ROFORMER_CHECK(isa_supported(isa),
                 "layer_norm: instruction set " + std::string(isa_name(isa)) + " is not supported by this CPU");
  return isa == Isa::Scalar ? layer_norm_rows_ref() : layer_norm_rows_avx2();
}

// Per-chunk partial sums of dgamma / dbeta: kept per calling thread and only
// grown, so steady-state training steps allocate nothing here.
float* partial_sums(std::size_t n) {
  thread_local std::vector<float> buffer;
  if (buffer.size() < n) buffer.resize(n);
  return buffer.data();
}

// Rows go in groups of kStatRows so their statistics run side by side
// (LayerNormRowKernels::stats4); every row's numbers are those of the row alone.
template <class PerRow>
void for_row_groups(const LayerNormRowKernels& kern, const float* x, int64_t rows, int64_t cols, float eps,
                    const ExecContext& ctx, PerRow per_row) {
  const int64_t groups = (rows + kStatRows - 1) / kStatRows;
#pragma omp parallel for num_threads(ctx.threads) if (worth_threads(ctx, rows, cols)) schedule(static)
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t r0 = g * kStatRows, n = std::min(kStatRows, rows - r0);
    LayerNormRowStats s[kStatRows];
    if (n == kStatRows) {
      kern.stats4(x + r0 * cols, cols, cols, eps, s);
    } else {
      for (int64_t i = 0; i < n; ++i) s[i] = kern.stats(x + (r0 + i) * cols, cols, eps);
    }
    for (int64_t i = 0; i < n; ++i) per_row(r0 + i, s[i]);
  }
}

}  // namespace

void layer_norm_forward(const float* x, float* y, const float* gamma, const float* beta, int64_t rows, int64_t cols,
                        float eps, const ExecContext& ctx) {
  layer_norm_forward(x, y, gamma, beta, rows, cols, eps, ctx, nullptr);
}

void layer_norm_forward(const float* x, float* y, const float* gamma, const float* beta, int64_t rows, int64_t cols,
                        float eps, const ExecContext& ctx, uint16_t* y_bf16) {
  const LayerNormRowKernels kern = row_kernels(ctx.isa);
  const Bf16ConvertKernel to_bf16 = y_bf16 != nullptr ? bf16_convert_kernel(ctx.isa) : nullptr;
  for_row_groups(kern, x, rows, cols, eps, ctx, [&](int64_t r, LayerNormRowStats s) {
    kern.normalize(x + r * cols, y + r * cols, gamma, beta, cols, s);
    if (to_bf16 != nullptr) to_bf16(y + r * cols, cols, y_bf16 + r * cols);
  });
}

void layer_norm_forward_train(const float* x, float* y, const float* gamma, const float* beta, int64_t rows,
                              int64_t cols, float eps, float* mean, float* rstd, const ExecContext& ctx) {
  const LayerNormRowKernels kern = row_kernels(ctx.isa);
  for_row_groups(kern, x, rows, cols, eps, ctx, [&](int64_t r, LayerNormRowStats s) {
    mean[r] = s.mean;
    rstd[r] = s.rstd;
    kern.normalize(x + r * cols, y + r * cols, gamma, beta, cols, s);
  });
}

void layer_norm_forward_train(const float* x, float* y, const float* gamma, const float* beta, int64_t rows,
                              int64_t cols, float eps, float* mean, float* rstd) {
  layer_norm_forward_train(x, y, gamma, beta, rows, cols, eps, mean, rstd, ExecContext{1, Isa::Scalar});
}

void layer_norm_backward(const float* x, const float* dy, const float* gamma, const float* mean, const float* rstd,
                         int64_t rows, int64_t cols, float* dx, float* dgamma, float* dbeta, const ExecContext& ctx) {
  if (rows <= 0 || cols <= 0) return;
  const LayerNormRowKernels kern = row_kernels(ctx.isa);
  const int64_t chunks = (rows + kRowChunk - 1) / kRowChunk;
  const int64_t blocks = (cols + kColBlock - 1) / kColBlock;
  float* partial = partial_sums(static_cast<std::size_t>(2 * chunks * cols));  // [chunk][gamma, beta][cols]
#pragma omp parallel num_threads(ctx.threads) if (worth_threads(ctx, rows, cols))
  {
#pragma omp for schedule(static)
    for (int64_t k = 0; k < chunks; ++k) {
      float* pg = partial + 2 * k * cols;
      float* pb = pg + cols;
      std::fill(pg, pg + 2 * cols, 0.0f);
      for (int64_t r = k * kRowChunk; r < std::min(rows, (k + 1) * kRowChunk); ++r)
        kern.backward(x + r * cols, dy + r * cols, gamma, {mean[r], rstd[r]}, cols, dx + r * cols, pg, pb);
    }
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t c0 = b * kColBlock, len = std::min(kColBlock, cols - c0);
      float sg[kColBlock] = {}, sb[kColBlock] = {};
      for (int64_t k = 0; k < chunks; ++k) {
        const float* pg = partial + 2 * k * cols + c0;
        const float* pb = pg + cols;
#pragma omp simd
        for (int64_t j = 0; j < len; ++j) {
          sg[j] += pg[j];
          sb[j] += pb[j];
        }
      }
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) {
        dgamma[c0 + j] += sg[j];
        dbeta[c0 + j] += sb[j];
      }
    }
  }
}

void layer_norm_backward(const float* x, const float* dy, const float* gamma, const float* mean, const float* rstd,
                         int64_t rows, int64_t cols, float* dx, float* dgamma, float* dbeta) {
  layer_norm_backward(x, dy, gamma, mean, rstd, rows, cols, dx, dgamma, dbeta, ExecContext{1, Isa::Scalar});
}

}  // namespace roformer::kernels
