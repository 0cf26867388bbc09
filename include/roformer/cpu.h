#pragma once
// Instruction sets the kernels are compiled for, run-time detection, and the
// execution context (threads + instruction set) every compute call receives
// explicitly: nothing global changes a kernel's behaviour behind the caller.
#include <string>
#include <string_view>
#include <vector>

namespace roformer {

namespace kernels {
class RoundedOperands;
}

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
// AVX-512 with the int8 dot product (vpdpbusd), for the int8 products of a
// decoding step.
bool cpu_has_avx512_vnni();

// The library behind kernels::gemm. OpenBLAS (Debian's 0.3.21) runs AVX2
// kernels on CPUs it does not know, including recent AVX-512 ones; oneDNN
// picks its kernels from the CPU's features, so it is the default where
// AVX-512 is present (measured: docs/bench_infer.md).
enum class GemmBackend { OpenBlas, OneDnn };

std::string_view gemm_backend_name(GemmBackend backend);
// "openblas", "onednn", or "auto" (the default for this CPU). Throws Error otherwise.
GemmBackend parse_gemm_backend(std::string_view name);
GemmBackend default_gemm_backend();

// A training run's product precision: "fp32", or "bf16" (both operands of
// every matrix product rounded to bf16, sums in fp32). Returns whether bf16
// was chosen, for ExecContext::bf16_products. Throws Error otherwise.
bool parse_product_precision(std::string_view name);
// "fp32", "bf16 (native)", or "bf16 (emulated: ...)" where the CPU or isa
// has no native bf16 products, for logs; with bf16 products and
// bf16_attention false, ", attention products in fp32" follows.
std::string product_precision_label(bool bf16_products, Isa isa, bool bf16_attention = true);

struct ExecContext {
  int threads = 1;
  Isa isa = best_isa();
  GemmBackend gemm = default_gemm_backend();
  // kernels::gemm rounds both operands to bf16 and sums in fp32 (mixed-
  // precision training, kernels/gemm_bf16.h) wherever the rounding pays for
  // itself; everything else stays fp32.
  bool bf16_products = false;
  // bf16 copies of operands that stay fixed while this context is in use (a
  // training step's weights), which those products read instead of rounding
  // the operand again; null: round every operand on every product.
  const kernels::RoundedOperands* rounded = nullptr;
  // With bf16_products: the fused attention's own products (QK^T, PV and
  // their gradients) in bf16 too, as autocast runs the attention's matmuls;
  // false keeps them fp32 (more exact softmax inputs, slower at long lengths).
  bool bf16_attention = true;
};

}  // namespace roformer
