#pragma once
// Fixed-size chunks of an index range spread over ExecContext::threads.
// The chunk boundaries never depend on the thread count, so kernels whose
// results depend only on the chunking give the same bits for any count.
#include <algorithm>
#include <cstdint>

#include "roformer/cpu.h"

namespace roformer::kernels {

// Activation functions (GELU and friends, forward and backward) are cut into
// chunks of this many values for the threads.
inline constexpr int64_t kActivationChunk = int64_t{1} << 14;

// f(begin, end) for [0, n) cut every `chunk` indices; one thread when there is a single chunk.
template <class F>
void for_each_chunk(int64_t n, int64_t chunk, const ExecContext& ctx, F f) {
  const int64_t chunks = (n + chunk - 1) / chunk;
  // One thread runs the loop itself: an OpenMP region with a false `if`
  // still sets up a team, which a decoding step's many small calls (the
  // epilogue of every few-column slice) felt as several per cent.
  if (ctx.threads <= 1 || chunks <= 1) {
    for (int64_t c = 0; c < chunks; ++c) f(c * chunk, std::min(n, (c + 1) * chunk));
    return;
  }
#pragma omp parallel for num_threads(ctx.threads) schedule(static)
  for (int64_t c = 0; c < chunks; ++c) f(c * chunk, std::min(n, (c + 1) * chunk));
}

// f(begin, end) for [0, n) cut into one contiguous run per thread, for
// kernels whose threads each stream their own part of a weight matrix (runs
// of panels). Unlike for_each_chunk the cut depends on the thread count, so
// the kernel's results must not depend on it.
template <class F>
void for_each_thread_run(int64_t n, const ExecContext& ctx, F f) {
  const int64_t threads = std::clamp<int64_t>(ctx.threads, 1, std::max<int64_t>(n, 1));
  for_each_chunk(n, (n + threads - 1) / threads, ctx, f);
}

}  // namespace roformer::kernels
