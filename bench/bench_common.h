#pragma once
// Pieces the stand-alone benchmark programs share: which BLAS the process
// really mapped, the in-run sgemm yardstick, statistics and JSON strings.
#include <cstdint>
#include <string>
#include <vector>

#include "roformer/config.h"
#include "roformer/cpu.h"

namespace roformer::bench {

// File names of the shared libraries mapped into this process whose name
// mentions BLAS, space-separated.
std::string loaded_blas();

// OpenBLAS's name for the kernels it picked for this CPU (e.g. "Haswell").
std::string openblas_core();

// The best GFLOP/s of `reps` row-major n x n x n sgemm products (B stored
// transposed, as nn.Linear weights are) with `threads` threads through the
// given library: what this CPU reaches on a dense product of the model's
// size, under the same load as the run it sits in.
double sgemm_gflops(int n, int threads, GemmBackend backend = default_gemm_backend(), int reps = 30);

// The best GFLOP/s of a loop of nothing but independent fused multiply-adds
// (12 chains per thread, the widest vectors this CPU runs: AVX-512, else
// AVX2) on `threads` threads: the FP32 arithmetic peak no product can pass.
double fma_peak_gflops(int threads);
// The same for bf16 dot products (vdpbf16ps: 16 lanes, each adding two bf16
// products into fp32, counted as 4 flops): the ceiling of the bf16 products.
// 0 on CPUs without AVX512-BF16.
double bf16_dot_peak_gflops(int threads);

// The best read rate (GB/s) of a pass summing every float of a buffer of
// `bytes` (split over `threads` threads), after one pass that brings it in:
// what streaming a model's weights once costs when they stay in the same
// level of the memory hierarchy between passes, as they do between tokens.
double read_bandwidth_gbs(int64_t bytes, int threads);

// The model sizes the benchmarks share: "small" (vocab 8k, 4 x 256, 4 heads,
// FFN 1024) and "base" (vocab 50k, 12 x 768, 12 heads, FFN 3072). Throws on
// other names.
RoFormerConfig shape_config(const std::string& name);

std::string json_escape(const std::string& s);

// The non-empty lines of a text file (a trailing \r dropped), at most `limit`
// of them. Throws Error when the file cannot be opened or has no such line.
std::vector<std::string> read_text_lines(const std::string& path, int64_t limit = INT64_MAX);
double median(std::vector<double> v);

// Peak and current resident set of this process in bytes (VmHWM, VmRSS).
struct Rss {
  int64_t peak = 0, current = 0;
};
Rss resident_set();

}  // namespace roformer::bench
