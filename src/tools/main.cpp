// The `roformer` command-line program: one subcommand per task.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "roformer/error.h"
#include "tools/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"roformer.cpp: RoFormer (Rotary Position Embedding transformer) in C++"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "roformer.cpp 0.1.0");
  roformer::cli::register_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "roformer: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
