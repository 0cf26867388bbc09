// Learning-rate schedules, written as the expressions of their sources so the
// double results match them bit for bit:
//   HF transformers optimization.py: get_constant_schedule_with_warmup,
//     get_linear_schedule_with_warmup, get_cosine_schedule_with_warmup
//     (LambdaLR: lr = base_lr * lr_lambda(step));
//   fairseq lr_scheduler/inverse_square_root_schedule.py (step_update).
#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

#include "roformer/error.h"
#include "roformer/optim.h"

namespace roformer {

LrDecay parse_lr_decay(std::string_view name) {
  for (LrDecay d : {LrDecay::Constant, LrDecay::Linear, LrDecay::Cosine, LrDecay::InverseSqrt})
    if (name == lr_decay_name(d)) return d;
  throw Error("unknown learning-rate schedule '" + std::string(name) +
              "' (expected constant, linear, cosine or inverse_sqrt)");
}

std::string_view lr_decay_name(LrDecay decay) {
  switch (decay) {
    case LrDecay::Constant: return "constant";
    case LrDecay::Linear: return "linear";
    case LrDecay::Cosine: return "cosine";
    case LrDecay::InverseSqrt: return "inverse_sqrt";
  }
  return "?";
}

LrSchedule::LrSchedule(const LrScheduleOptions& options) : options_(options) {
  const LrScheduleOptions& o = options_;
  const std::string what = "learning-rate schedule '" + std::string(lr_decay_name(o.decay)) + "': ";
  ROFORMER_CHECK(std::isfinite(o.base_lr) && o.base_lr >= 0, what + "base_lr must be finite and >= 0");
  ROFORMER_CHECK(o.warmup_steps >= 0, what + "warmup_steps must be >= 0, got " + std::to_string(o.warmup_steps));
  if (o.decay == LrDecay::Linear || o.decay == LrDecay::Cosine)
    ROFORMER_CHECK(o.total_steps >= o.warmup_steps && o.total_steps > 0,
          what + "total_steps (" + std::to_string(o.total_steps) + ") must be > 0 and >= warmup_steps (" +
              std::to_string(o.warmup_steps) + ")");
  if (o.decay == LrDecay::Cosine)
    ROFORMER_CHECK(std::isfinite(o.num_cycles) && o.num_cycles > 0, what + "num_cycles must be finite and > 0");
  if (o.decay == LrDecay::InverseSqrt) {
    // fairseq divides by warmup_updates and scales by its square root.
    ROFORMER_CHECK(o.warmup_steps >= 1, what + "needs warmup_steps >= 1");
    ROFORMER_CHECK(std::isfinite(o.warmup_init_lr) && o.warmup_init_lr >= 0, what + "warmup_init_lr must be finite and >= 0");
  }
}

double LrSchedule::lr(int64_t step) const {
  ROFORMER_CHECK(step >= 0, "learning-rate schedule: step must be >= 0, got " + std::to_string(step));
  const LrScheduleOptions& o = options_;
  const auto s = static_cast<double>(step);
  const auto warmup = static_cast<double>(o.warmup_steps);

  if (o.decay == LrDecay::InverseSqrt) {
    if (step < o.warmup_steps) {
      const double lr_step = (o.base_lr - o.warmup_init_lr) / warmup;
      return o.warmup_init_lr + s * lr_step;
    }
    const double decay_factor = o.base_lr * std::pow(warmup, 0.5);
    return decay_factor * std::pow(s, -0.5);
  }

  double factor = 1.0;
  if (step < o.warmup_steps) {
    factor = s / static_cast<double>(std::max<int64_t>(1, o.warmup_steps));
  } else if (o.decay == LrDecay::Linear) {
    factor = std::max(0.0, static_cast<double>(o.total_steps - step) /
                               static_cast<double>(std::max<int64_t>(1, o.total_steps - o.warmup_steps)));
  } else if (o.decay == LrDecay::Cosine) {
    // Past total_steps HF's cosine rises again; kept as HF computes it.
    const double progress = static_cast<double>(step - o.warmup_steps) /
                            static_cast<double>(std::max<int64_t>(1, o.total_steps - o.warmup_steps));
    factor = std::max(0.0, 0.5 * (1.0 + std::cos(std::numbers::pi * o.num_cycles * 2.0 * progress)));
  }
  return o.base_lr * factor;
}

}  // namespace roformer
