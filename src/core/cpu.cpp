#include "roformer/cpu.h"

#include <string>

#include "roformer/error.h"

namespace roformer {

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
  }
  return "?";
}

bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return true;
#if defined(__x86_64__) || defined(__i386__)
    // libgcc's checks include the OS's XSAVE support for the wider registers.
    case Isa::Avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::Avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma");
#else
    default: return false;
#endif
  }
  return false;
}

bool cpu_has_avx512_bf16() {
#if defined(__x86_64__) || defined(__i386__)
  return isa_supported(Isa::Avx512) && __builtin_cpu_supports("avx512bf16");
#else
  return false;
#endif
}

bool cpu_has_avx512_vnni() {
#if defined(__x86_64__) || defined(__i386__)
  return isa_supported(Isa::Avx512) && __builtin_cpu_supports("avx512vnni");
#else
  return false;
#endif
}

Isa best_isa() {
  static const Isa best = isa_supported(Isa::Avx512) ? Isa::Avx512
                          : isa_supported(Isa::Avx2) ? Isa::Avx2
                                                     : Isa::Scalar;
  return best;
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512})
    if (isa_supported(isa)) out.push_back(isa);
  return out;
}

Isa parse_isa(std::string_view name) {
  if (name == "auto") return best_isa();
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
    if (name == isa_name(isa)) {
      ROFORMER_CHECK(isa_supported(isa), "instruction set '" + std::string(name) + "' is not supported by this CPU");
      return isa;
    }
  }
  throw Error("unknown instruction set '" + std::string(name) + "' (expected auto, scalar, avx2 or avx512)");
}

std::string_view gemm_backend_name(GemmBackend backend) {
  return backend == GemmBackend::OneDnn ? "onednn" : "openblas";
}

GemmBackend default_gemm_backend() {
  static const GemmBackend chosen = isa_supported(Isa::Avx512) ? GemmBackend::OneDnn : GemmBackend::OpenBlas;
  return chosen;
}

GemmBackend parse_gemm_backend(std::string_view name) {
  if (name == "auto") return default_gemm_backend();
  for (GemmBackend b : {GemmBackend::OpenBlas, GemmBackend::OneDnn})
    if (name == gemm_backend_name(b)) return b;
  throw Error("unknown GEMM library '" + std::string(name) + "' (expected auto, openblas or onednn)");
}

bool parse_product_precision(std::string_view name) {
  if (name == "fp32") return false;
  if (name == "bf16") return true;
  throw Error("unknown product precision '" + std::string(name) + "' (expected fp32 or bf16)");
}

std::string product_precision_label(bool bf16_products, Isa isa, bool bf16_attention) {
  if (!bf16_products) return "fp32";
  std::string label = isa == Isa::Avx512 && cpu_has_avx512_bf16() ? "bf16 (native)"
                                                                   : "bf16 (emulated: rounded operands, fp32 products)";
  return bf16_attention ? label : label + ", attention products in fp32";
}

}  // namespace roformer
