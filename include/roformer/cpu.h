#pragma once
// Instruction sets the kernels are compiled for, run-time detection, and the
// execution context (threads + instruction set) every compute call receives
// explicitly: nothing global changes a kernel's behaviour behind the caller.
#include <string_view>
#include <vector>

namespace roformer {

enum class Isa { Scalar, Avx2, Avx512 };

std::string_view isa_name(Isa isa);
// "scalar", "avx2", "avx512", or "auto" (the best this CPU supports). Throws Error otherwise.
Isa parse_isa(std::string_view name);
bool isa_supported(Isa isa);
Isa best_isa();
std::vector<Isa> supported_isas();
// AVX-512 with the bf16 dot product (vdpbf16ps), for the bf16 products of
// the fused attention.
bool cpu_has_avx512_bf16();

// The library behind kernels::gemm. OpenBLAS (Debian's 0.3.21) runs AVX2
// kernels on CPUs it does not know, including recent AVX-512 ones; oneDNN
// picks its kernels from the CPU's features, so it is the default where
// AVX-512 is present (measured: docs/bench_infer.md).
enum class GemmBackend { OpenBlas, OneDnn };

std::string_view gemm_backend_name(GemmBackend backend);
// "openblas", "onednn", or "auto" (the default for this CPU). Throws Error otherwise.
GemmBackend parse_gemm_backend(std::string_view name);
GemmBackend default_gemm_backend();

struct ExecContext {
  int threads = 1;
  Isa isa = best_isa();
  GemmBackend gemm = default_gemm_backend();
};

}  // namespace roformer
