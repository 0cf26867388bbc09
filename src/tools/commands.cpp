#include "tools/commands.h"

namespace roformer::cli {

void register_commands(CLI::App& app) {
  register_demo(app);
  register_decay(app);
  register_info(app);
  register_forward(app);
  register_export(app);
}

}  // namespace roformer::cli
