#include "tools/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace roformer::cli {

namespace {
bool bar_wanted(bool allow_bar) { return allow_bar && isatty(STDERR_FILENO); }
}  // namespace

std::string format_minutes(double s) {
  char buf[32];
  const long long t = static_cast<long long>(std::max(0.0, s));
  std::snprintf(buf, sizeof buf, "%lld:%02lld", t / 60, t % 60);
  return buf;
}

PretrainCallbacks training_callbacks(bool allow_bar, int64_t log_every) {
  const bool bar = bar_wanted(allow_bar);
  PretrainCallbacks cb;
  cb.on_log = [bar](const std::string& line) {
    if (bar) std::fprintf(stderr, "\r\033[K");
    std::fprintf(stderr, "%s\n", line.c_str());
  };
  cb.on_progress = [bar, every = std::max<int64_t>(1, log_every)](const PretrainProgress& pr) {
    if (bar) {
      const int width = 28;
      const int filled = static_cast<int>(width * pr.step / std::max<int64_t>(1, pr.total_steps));
      std::fprintf(stderr, "\r\033[K[%s%s] %lld/%lld loss %.4f lr %.2e %.0f tok/s ETA %s",
                   std::string(static_cast<std::size_t>(filled), '#').c_str(),
                   std::string(static_cast<std::size_t>(width - filled), ' ').c_str(), static_cast<long long>(pr.step),
                   static_cast<long long>(pr.total_steps), pr.loss, pr.lr, pr.tokens_per_second,
                   format_minutes(pr.eta_seconds).c_str());
      std::fflush(stderr);
    } else if (pr.step % every == 0 || pr.step == pr.total_steps) {
      std::fprintf(stderr, "step %lld/%lld loss %.4f lr %.2e grad-norm %.3f %.0f tok/s elapsed %s ETA %s\n",
                   static_cast<long long>(pr.step), static_cast<long long>(pr.total_steps), pr.loss, pr.lr, pr.grad_norm,
                   pr.tokens_per_second, format_minutes(pr.elapsed_seconds).c_str(),
                   format_minutes(pr.eta_seconds).c_str());
    }
  };
  return cb;
}

void finish_progress(bool allow_bar) {
  if (bar_wanted(allow_bar)) std::fprintf(stderr, "\n");
}

}  // namespace roformer::cli
