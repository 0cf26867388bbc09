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

struct ExecContext {
  int threads = 1;
  Isa isa = best_isa();
};

}  // namespace roformer
