#include "tools/commands.h"

namespace roformer::cli {

void register_commands(CLI::App& app) {
  register_demo(app);
  register_decay(app);
}

}  // namespace roformer::cli
