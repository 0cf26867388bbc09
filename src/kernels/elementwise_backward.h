#pragma once
// Backward passes of the row-wise and elementwise kernels. Activation
// gradients overwrite; parameter gradients accumulate (+=), so several
// micro-batches can add into the same buffers. Overloads taking an
// ExecContext use ctx.isa's kernels and split the work over ctx.threads with
// results that do not depend on the thread count; those without one run the
// plain reference loops (Isa::Scalar) on the calling thread.
#include <cstdint>

#include "kernels/elementwise.h"

namespace roformer::kernels {

// dx = dy * act'(x), given the pre-activation input x. dx may alias dy.
// GELU uses ctx.isa's kernels (Isa::Scalar: the libm reference).
void activation_backward(Activation act, const float* x, const float* dy, float* dx, int64_t n, const ExecContext& ctx);
// The libm reference on one thread.
void activation_backward(Activation act, const float* x, const float* dy, float* dx, int64_t n);

// LayerNorm forward that also keeps what backward needs: mean and 1/sigma per row.
void layer_norm_forward_train(const float* x, float* y, const float* gamma, const float* beta, int64_t rows,
                              int64_t cols, float eps, float* mean, float* rstd, const ExecContext& ctx);
void layer_norm_forward_train(const float* x, float* y, const float* gamma, const float* beta, int64_t rows,
                              int64_t cols, float eps, float* mean, float* rstd);

// dx (overwritten) and dgamma, dbeta (accumulated) from dy, for the x the
// forward saw and its saved mean / rstd. dgamma / dbeta get per-chunk
// partial sums over a fixed number of rows, added in chunk order.
void layer_norm_backward(const float* x, const float* dy, const float* gamma, const float* mean, const float* rstd,
                         int64_t rows, int64_t cols, float* dx, float* dgamma, float* dbeta, const ExecContext& ctx);
void layer_norm_backward(const float* x, const float* dy, const float* gamma, const float* mean, const float* rstd,
                         int64_t rows, int64_t cols, float* dx, float* dgamma, float* dbeta);

// Softmax backward for one row-major (rows, cols) block of probabilities p:
// ds = p * (dp - sum(dp * p)). ds may alias dp.
void softmax_backward_rows(const float* p, const float* dp, float* ds, int64_t rows, int64_t cols);

// dbias[c] += sum over rows of dy[r, c], added in row order (threads split
// the columns). dbias must not overlap dy.
void bias_backward(const float* dy, int64_t rows, int64_t cols, float* dbias, const ExecContext& ctx);
void bias_backward(const float* dy, int64_t rows, int64_t cols, float* dbias);

}  // namespace roformer::kernels
