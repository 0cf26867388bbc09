#pragma once
// Options and helpers shared by the model subcommands.
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "roformer/cpu.h"
#include "roformer/model.h"

namespace roformer::cli {

struct ExecOptions {
  int threads = 1;
  std::string isa = "auto";
  std::string gemm = "auto";
  std::string dtype = "f32";  // f32, or bf16 / int8 for the matrix products (inference)
  std::string bf16_kernel = "auto";  // with bf16: auto, onednn or panels
  ExecContext context() const;
  // Validates --dtype and sets load's product precision from it; true for
  // the inference-only precisions (bf16, int8).
  bool set_precision(LoadOptions& load) const;
};

// Adds --threads, --isa, --gemm, --dtype and --bf16-kernel to a subcommand.
void add_exec_options(CLI::App* cmd, ExecOptions& options);

// Texts from the command line, or one per line from stdin when none were given.
std::vector<std::string> read_inputs(const std::vector<std::string>& args);

// Prints warnings to stderr, once each.
void print_warnings(const std::vector<std::string>& warnings);

}  // namespace roformer::cli
