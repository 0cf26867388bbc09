#include "tools/common.h"

#include <cstdio>
#include <iostream>
#include <set>

#include "roformer/error.h"

namespace roformer::cli {

ExecContext ExecOptions::context() const {
  check(threads >= 1 && threads <= 1024, "--threads must be between 1 and 1024");
  const Isa chosen = parse_isa(isa);
  check(isa_supported(chosen), "--isa " + isa + " is not supported by this CPU");
  return ExecContext{threads, chosen, parse_gemm_backend(gemm)};
}

bool ExecOptions::set_precision(LoadOptions& load) const {
  check(dtype == "f32" || dtype == "bf16" || dtype == "int8", "--dtype must be f32, bf16 or int8, not '" + dtype + "'");
  // An unknown kernel name is the loader's error (it lists the names).
  check(bf16_kernel == "auto" || dtype == "bf16", "--bf16-kernel goes with --dtype bf16");
  load.bf16_matmuls = dtype == "bf16";
  load.int8_matmuls = dtype == "int8";
  load.bf16_kernel = bf16_kernel;
  return dtype != "f32";
}

void add_exec_options(CLI::App* cmd, ExecOptions& options) {
  cmd->add_option("--threads,-t", options.threads, "worker threads")->capture_default_str();
  cmd->add_option("--isa", options.isa, "instruction set: auto, avx512, avx2, scalar (reference kernels)")
      ->capture_default_str();
  cmd->add_option("--gemm", options.gemm, "matrix-product library: auto, openblas, onednn")->capture_default_str();
  cmd->add_option("--dtype", options.dtype,
                  "precision of the weight matrix products: f32; bf16 (bf16 weights and activations, fp32 "
                  "accumulation); or int8 (int8 weights per output row, uint8 activations per token, int32 "
                  "sums); the last two for inference only")
      ->capture_default_str();
  cmd->add_option("--bf16-kernel", options.bf16_kernel,
                  "with --dtype bf16, the code behind the products: auto (oneDNN), onednn, or panels (our own "
                  "AVX512-BF16 kernel)")
      ->capture_default_str();
}

std::vector<std::string> read_inputs(const std::vector<std::string>& args) {
  if (!args.empty()) return args;
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(std::cin, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  check(!lines.empty(), "no input: give texts as arguments or one per line on stdin");
  return lines;
}

void print_warnings(const std::vector<std::string>& warnings) {
  std::set<std::string> seen;
  for (const auto& w : warnings)
    if (seen.insert(w).second) std::fprintf(stderr, "roformer: warning: %s\n", w.c_str());
}

}  // namespace roformer::cli
