#include "kernels/elementwise_backward.h"

#include <omp.h>

#include <algorithm>

#include "kernels/gelu_kernels.h"
#include "kernels/parallel_chunks.h"

namespace roformer::kernels {

namespace {

void relu_backward(const float* x, const float* dy, float* dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
}

}  // namespace

void activation_backward(Activation act, const float* x, const float* dy, float* dx, int64_t n) {
  if (act == Activation::Relu)
    relu_backward(x, dy, dx, n);
  else
    gelu_backward_ref(act == Activation::Gelu ? GeluForm::Erf : GeluForm::Tanh, x, dy, dx, n);
}

void activation_backward(Activation act, const float* x, const float* dy, float* dx, int64_t n, const ExecContext& ctx) {
  if (act == Activation::Relu) {
    for_each_chunk(n, kActivationChunk, ctx,
                   [&](int64_t begin, int64_t end) { relu_backward(x + begin, dy + begin, dx + begin, end - begin); });
    return;
  }
  const GeluForm form = act == Activation::Gelu ? GeluForm::Erf : GeluForm::Tanh;
  const auto kernel = gelu_kernels(ctx.isa).backward;
  for_each_chunk(n, kActivationChunk, ctx,
                 [&](int64_t begin, int64_t end) { kernel(form, x + begin, dy + begin, dx + begin, end - begin); });
}

void softmax_backward_rows(const float* p, const float* dp, float* ds, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* pr = p + r * cols;
    const float* dpr = dp + r * cols;
    float* dsr = ds + r * cols;
    double dot = 0;
    for (int64_t c = 0; c < cols; ++c) dot += static_cast<double>(pr[c]) * dpr[c];
    const float d = static_cast<float>(dot);
    for (int64_t c = 0; c < cols; ++c) dsr[c] = pr[c] * (dpr[c] - d);
  }
}

void bias_backward(const float* dy, int64_t rows, int64_t cols, float* dbias, const ExecContext& ctx) {
  // Each thread owns a range of columns (whole 64-byte lines of dbias) and
  // adds the rows in order, so every sum is the serial one.
  constexpr int64_t kBlock = 16;
  const int64_t blocks = (cols + kBlock - 1) / kBlock;
  const bool parallel = ctx.threads > 1 && blocks > 1 && rows * cols >= (int64_t{1} << 15);
#pragma omp parallel num_threads(ctx.threads) if (parallel)
  {
    const int64_t nt = omp_get_num_threads(), id = omp_get_thread_num();
    const int64_t c0 = std::min(cols, blocks * id / nt * kBlock);
    const int64_t c1 = std::min(cols, blocks * (id + 1) / nt * kBlock);
    int64_t r = 0;
    // Four rows per pass over dbias; left to right, the same roundings as one row at a time.
    for (; r + 4 <= rows; r += 4) {
      const float* d0 = dy + r * cols;
      const float *d1 = d0 + cols, *d2 = d1 + cols, *d3 = d2 + cols;
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) dbias[c] = dbias[c] + d0[c] + d1[c] + d2[c] + d3[c];
    }
    for (; r < rows; ++r) {
      const float* d0 = dy + r * cols;
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) dbias[c] += d0[c];
    }
  }
}

void bias_backward(const float* dy, int64_t rows, int64_t cols, float* dbias) {
  bias_backward(dy, rows, cols, dbias, ExecContext{1, Isa::Scalar});
}

}  // namespace roformer::kernels
