#pragma once
// How training jobs report on the command line: a progress bar (step, loss,
// tokens/s, ETA) when stderr is a terminal, plain log lines otherwise.
#include <cstdint>
#include <string>

#include "roformer/pretrain.h"

namespace roformer::cli {

PretrainCallbacks training_callbacks(bool allow_bar, int64_t log_every);
// Ends the bar's line (when one was drawn).
void finish_progress(bool allow_bar);
std::string format_minutes(double seconds);  // m:ss

}  // namespace roformer::cli
