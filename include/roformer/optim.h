#pragma once
// The optimizer side of training: non-owning views of parameters and their
// gradients, AdamW with PyTorch 1.13's exact semantics, clip_grad_norm_ and
// learning-rate schedules (HuggingFace warm-up/decay, fairseq inverse sqrt).
// The reference for every formula is the "Training goldens" section of
// tests/data/fixtures/README.md.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "roformer/cpu.h"
#include "roformer/tensor.h"

namespace roformer {

namespace detail {
struct AdamWScalars;  // the per-group fp32 factors of one step (optimizer.cpp)
}

// One fp32 parameter tensor and its gradient buffer, both `size` contiguous
// floats owned by someone else (the model). A parameter that gets no gradient
// (HF's sinusoidal table) is marked trainable = false: AdamW and clipping skip
// it completely, like torch skips a parameter whose .grad is None.
struct Parameter {
  std::string name;        // HF name, e.g. "roformer.encoder.layer.0.attention.self.query.weight"
  float* value = nullptr;  // (size)
  float* grad = nullptr;   // (size); may be null when !trainable
  int64_t size = 0;
  bool trainable = true;
  Shape shape = {};  // optional, only used to shape the saved optimizer state; empty means [size]
};

// A set of parameters (indices into the parameter list) sharing a weight
// decay; lr_scale multiplies the learning rate passed to AdamW::step.
struct ParamGroup {
  std::vector<std::size_t> params;
  double weight_decay = 0.0;
  double lr_scale = 1.0;
};

// The BERT/HF fine-tuning rule: no weight decay for a parameter whose name
// contains "bias" or "LayerNorm.weight".
bool bert_style_no_decay(std::string_view name);

// Two groups over the trainable parameters, in parameter order: [0] decays
// with `weight_decay`, [1] is the no-decay group (weight decay 0).
std::vector<ParamGroup> bert_style_groups(const std::vector<Parameter>& params, double weight_decay);

struct AdamWOptions {
  double lr = 1e-3;  // used by step() without an argument
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;  // the single group's decay when no groups are given
  // Threads for the element loops (results do not depend on it) and the
  // instruction set (Scalar and AVX2/AVX-512 give bit-identical results).
  ExecContext exec = {};
};

// torch.optim.AdamW of PyTorch 1.13 (single-tensor path, amsgrad and maximize
// off), reproduced operation by operation in fp32 so that a step matches
// torch bit for bit. Per trainable parameter, per step:
//   t += 1
//   p = p * (1 - lr*wd)                       decoupled decay, first
//   m = b1*m + (1-b1)*g
//   v = b2*v + (1-b2)*g*g
//   p = p - (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps),   bc_i = 1 - b_i^t
// The moment buffers are allocated once by the constructor; step() does not
// allocate.
class AdamW {
 public:
  // Every trainable parameter must belong to exactly one group.
  AdamW(std::vector<Parameter> params, std::vector<ParamGroup> groups, const AdamWOptions& options = {});
  // One group over all parameters with options.weight_decay.
  explicit AdamW(std::vector<Parameter> params, const AdamWOptions& options = {});
  // The moments are owned: copying would alias them.
  AdamW(const AdamW&) = delete;
  AdamW& operator=(const AdamW&) = delete;
  AdamW(AdamW&&) = default;
  AdamW& operator=(AdamW&&) = default;

  void step() { step(options_.lr); }
  // One update with learning rate `lr` (times each group's lr_scale).
  void step(double lr);
  // Completed steps (torch's state["step"], the same for every parameter here).
  int64_t step_count() const { return step_; }
  // Fills every trainable parameter's gradient with zeros.
  void zero_grad();

  const std::vector<Parameter>& params() const { return params_; }
  const std::vector<ParamGroup>& groups() const { return groups_; }
  const AdamWOptions& options() const { return options_; }
  // First and second moments of parameter i (`size` floats; null when not trainable).
  const float* exp_avg(std::size_t i) const { return offsets_[i] < 0 ? nullptr : m_ + offsets_[i]; }
  const float* exp_avg_sq(std::size_t i) const { return offsets_[i] < 0 ? nullptr : v_ + offsets_[i]; }

  // The optimizer state as named tensors for save_safetensors:
  // "adamw.m.<name>" and "adamw.v.<name>" (F32, the parameter's shape) for
  // every trainable parameter, and "adamw.step" (I64 [1]). The moment tensors
  // are views of the live buffers (they keep them alive): write them out
  // before the next step().
  std::vector<std::pair<std::string, Tensor>> state() const;
  // Restores a state written by state(). Entries whose name does not start
  // with "adamw." are ignored, so the list may also hold model weights. Every
  // trainable parameter needs both moments with its size, no other "adamw."
  // entry may appear, and nothing is changed unless all checks pass.
  void load_state(const std::vector<std::pair<std::string, Tensor>>& tensors);

 private:
  using Kernel = void (*)(float* p, const float* g, float* m, float* v, int64_t n, const detail::AdamWScalars& c);

  std::vector<Parameter> params_;
  std::vector<ParamGroup> groups_;
  AdamWOptions options_;
  int64_t step_ = 0;
  std::shared_ptr<void> storage_;  // m for all parameters, then v
  float* m_ = nullptr;
  float* v_ = nullptr;
  std::vector<int64_t> offsets_;  // per parameter, into m_/v_; -1 when not trainable
  Kernel kernel_ = nullptr;
};

struct ClipOptions {
  // Throw Error (before touching any gradient) when the total norm is NaN or
  // infinite, like torch's error_if_nonfinite=True.
  bool error_if_nonfinite = false;
  int threads = 1;  // the result depends only on this count, never on timing
};

// torch.nn.utils.clip_grad_norm_(params, max_norm) with the L2 norm, torch
// 1.13 semantics: the per-tensor norms and the total (the norm of the
// per-tensor norms) are fp32 values; coef = max_norm / (total + 1e-6) in fp32;
// every gradient is multiplied by min(coef, 1), even when that factor is 1.
// Parameters that are not trainable are left out. Returns the total norm
// before clipping. A non-finite total is returned as is and, like torch, still
// multiplies the gradients (making them NaN) unless error_if_nonfinite is set.
double clip_grad_norm(std::vector<Parameter>& params, double max_norm, const ClipOptions& options = {});

// The total L2 norm that clip_grad_norm would return, without clipping.
double grad_norm(const std::vector<Parameter>& params, const ClipOptions& options = {});

enum class LrDecay {
  Constant,    // HF get_constant_schedule_with_warmup
  Linear,      // HF get_linear_schedule_with_warmup
  Cosine,      // HF get_cosine_schedule_with_warmup
  InverseSqrt  // fairseq inverse_sqrt
};

// "constant", "linear", "cosine", "inverse_sqrt"; throws Error otherwise.
LrDecay parse_lr_decay(std::string_view name);
std::string_view lr_decay_name(LrDecay decay);

struct LrScheduleOptions {
  LrDecay decay = LrDecay::Linear;
  double base_lr = 1e-3;
  int64_t warmup_steps = 0;
  int64_t total_steps = 0;      // Linear and Cosine: where the decay reaches 0
  double num_cycles = 0.5;      // Cosine: 0.5 is a half cosine from 1 down to 0
  double warmup_init_lr = 0.0;  // InverseSqrt: the learning rate at step 0
};

// lr(step) is the learning rate for the update that follows `step` completed
// updates: HF's LambdaLR value after `step` calls of scheduler.step(), and
// fairseq's lr after step_update(step). So with warm-up, lr(0) is 0 (HF) or
// warmup_init_lr (fairseq).
//   warm-up (step < warmup):  base * step / max(1, warmup)            (HF)
//                             init + step * (base - init) / warmup    (fairseq)
//   Constant:                 base
//   Linear:                   base * max(0, (total - step) / max(1, total - warmup))
//   Cosine:                   base * max(0, 0.5 * (1 + cos(pi * num_cycles * 2 * progress))),
//                             progress = (step - warmup) / max(1, total - warmup)
//   InverseSqrt:              base * sqrt(warmup) / sqrt(step)
class LrSchedule {
 public:
  explicit LrSchedule(const LrScheduleOptions& options);
  double lr(int64_t step) const;
  const LrScheduleOptions& options() const { return options_; }

 private:
  LrScheduleOptions options_;
};

}  // namespace roformer
