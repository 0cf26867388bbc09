// AdamW with PyTorch 1.13's semantics (torch/optim/adamw.py, _single_tensor_adamw),
// and the BERT-style weight-decay groups.
//
// torch runs one CPU kernel per tensor op; each op rounds to fp32 and takes its
// scalar as a Python double cast to fp32. The fused loop below performs the same
// ops in the same order on each element, so it rounds identically:
//   param.mul_(1 - lr*wd)                          p * f(1 - lr*wd)
//   exp_avg.mul_(b1).add_(g, alpha=1-b1)           fma(g, f(1-b1), m * f(b1))
//   exp_avg_sq.mul_(b2).addcmul_(g, g, value=1-b2) fma(f(1-b2) * g, g, v * f(b2))
//   (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps)       sqrt(v) / f(bc2_sqrt) + f(eps)
//   param.addcdiv_(exp_avg, denom, value=-step)    p + (f(-step) * m) / denom
// The two fused multiply-adds are what torch's vectorised kernels compute on
// AVX2/AVX-512 CPUs: add_ with alpha is written as vec::fmadd, and addcmul's
// `self + s * t1 * t2` is contracted to an FMA by GCC (PyTorch builds in GNU
// mode, where -ffp-contract=fast is the default). Here both are explicit
// (std::fma / _mm256_fmadd_ps) and no other product may be fused (see
// rounded()), so the scalar and AVX2 paths agree with each other and with
// torch's op sequence bit for bit.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <unordered_set>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ROFORMER_OPTIM_X86 1
#endif

#include "roformer/error.h"
#include "roformer/optim.h"

namespace roformer {

namespace detail {
// The fp32 factors of one AdamW step for one group; see the table above.
struct AdamWScalars {
  float decay;            // 1 - lr*wd
  float beta1;            // b1
  float one_minus_beta1;  // 1 - b1
  float beta2;            // b2
  float one_minus_beta2;  // 1 - b2
  float bc2_sqrt;         // sqrt(1 - b2^t)
  float eps;
  float neg_step_size;  // -lr / (1 - b1^t)
};
}  // namespace detail

namespace {

using detail::AdamWScalars;

// Below this many elements a parameter is updated by one thread; above, in
// chunks of kChunk. Every element is independent, so the thread count never
// changes a result.
constexpr int64_t kParallelMin = int64_t{1} << 16;
constexpr int64_t kChunk = int64_t{1} << 14;
// Moments of each parameter start on a 64-byte boundary.
constexpr int64_t kAlignFloats = 16;

// torch rounds the decayed parameter (param.mul_ writes it back) before the
// update is added; GCC would otherwise fuse p*decay into that add as an FMA
// (C++ allows contraction, and it does so even across intrinsics). An empty asm
// that claims to modify the register keeps the product rounded on its own.
inline float rounded(float x) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  asm("" : "+x"(x));
#elif defined(__GNUC__) && defined(__aarch64__)
  asm("" : "+w"(x));
#endif
  return x;
}

// p, g, m, v: (n)
void adamw_scalar(float* p, const float* g, float* m, float* v, int64_t n, const AdamWScalars& c) {
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i];
    const float pd = rounded(p[i] * c.decay);
    const float mi = std::fma(gi, c.one_minus_beta1, m[i] * c.beta1);
    const float vi = std::fma(c.one_minus_beta2 * gi, gi, v[i] * c.beta2);
    const float denom = std::sqrt(vi) / c.bc2_sqrt + c.eps;
    p[i] = pd + c.neg_step_size * mi / denom;
    m[i] = mi;
    v[i] = vi;
  }
}

#ifdef ROFORMER_OPTIM_X86
// The same ops, eight lanes at a time. Only called after a run-time check for
// AVX2 + FMA. sqrt and div are correctly rounded in both paths.
[[gnu::target("avx2,fma")]] void adamw_avx2(float* p, const float* g, float* m, float* v, int64_t n,
                                            const AdamWScalars& c) {
  const __m256 decay = _mm256_set1_ps(c.decay);
  const __m256 b1 = _mm256_set1_ps(c.beta1);
  const __m256 omb1 = _mm256_set1_ps(c.one_minus_beta1);
  const __m256 b2 = _mm256_set1_ps(c.beta2);
  const __m256 omb2 = _mm256_set1_ps(c.one_minus_beta2);
  const __m256 bc2 = _mm256_set1_ps(c.bc2_sqrt);
  const __m256 eps = _mm256_set1_ps(c.eps);
  const __m256 nstep = _mm256_set1_ps(c.neg_step_size);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 gi = _mm256_loadu_ps(g + i);
    __m256 pd = _mm256_mul_ps(_mm256_loadu_ps(p + i), decay);
    asm("" : "+x"(pd));  // as rounded(): no fusing into the add below
    const __m256 mi = _mm256_fmadd_ps(gi, omb1, _mm256_mul_ps(_mm256_loadu_ps(m + i), b1));
    const __m256 vi = _mm256_fmadd_ps(_mm256_mul_ps(omb2, gi), gi, _mm256_mul_ps(_mm256_loadu_ps(v + i), b2));
    const __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), bc2), eps);
    _mm256_storeu_ps(p + i, _mm256_add_ps(pd, _mm256_div_ps(_mm256_mul_ps(nstep, mi), denom)));
    _mm256_storeu_ps(m + i, mi);
    _mm256_storeu_ps(v + i, vi);
  }
  adamw_scalar(p + i, g + i, m + i, v + i, n - i, c);
}
#endif

bool finite_nonneg(double x) { return std::isfinite(x) && x >= 0; }

std::string num(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

void check_options(const AdamWOptions& o) {
  ROFORMER_CHECK(finite_nonneg(o.lr), "AdamW: invalid learning rate " + num(o.lr) + " (must be finite and >= 0)");
  ROFORMER_CHECK(finite_nonneg(o.eps), "AdamW: invalid eps " + num(o.eps) + " (must be finite and >= 0)");
  ROFORMER_CHECK(o.beta1 >= 0 && o.beta1 < 1, "AdamW: invalid beta1 " + num(o.beta1) + " (must be in [0, 1))");
  ROFORMER_CHECK(o.beta2 >= 0 && o.beta2 < 1, "AdamW: invalid beta2 " + num(o.beta2) + " (must be in [0, 1))");
  ROFORMER_CHECK(finite_nonneg(o.weight_decay),
        "AdamW: invalid weight_decay " + num(o.weight_decay) + " (must be finite and >= 0)");
  ROFORMER_CHECK(o.exec.threads >= 1, "AdamW: thread count must be >= 1, got " + std::to_string(o.exec.threads));
  ROFORMER_CHECK(isa_supported(o.exec.isa),
        "AdamW: instruction set '" + std::string(isa_name(o.exec.isa)) + "' is not supported by this CPU");
}

void check_params(const std::vector<Parameter>& params) {
  std::unordered_set<std::string> names;
  for (const Parameter& p : params) {
    ROFORMER_CHECK(!p.name.empty(), "AdamW: a parameter has an empty name");
    ROFORMER_CHECK(names.insert(p.name).second, "AdamW: parameter '" + p.name + "' appears twice");
    ROFORMER_CHECK(p.size >= 0, "AdamW: parameter '" + p.name + "' has negative size " + std::to_string(p.size));
    ROFORMER_CHECK(p.size == 0 || p.value != nullptr, "AdamW: parameter '" + p.name + "' has no value buffer");
    ROFORMER_CHECK(!p.trainable || p.size == 0 || p.grad != nullptr,
          "AdamW: trainable parameter '" + p.name + "' has no gradient buffer");
    ROFORMER_CHECK(p.shape.empty() || shape_numel(p.shape) == p.size,
          "AdamW: parameter '" + p.name + "' has shape " + shape_str(p.shape) + " but size " +
              std::to_string(p.size));
  }
}

void check_groups(const std::vector<Parameter>& params, const std::vector<ParamGroup>& groups) {
  std::vector<int> seen(params.size(), 0);
  for (std::size_t gi = 0; gi < groups.size(); ++gi) {
    const ParamGroup& g = groups[gi];
    const std::string which = "AdamW: parameter group " + std::to_string(gi);
    ROFORMER_CHECK(finite_nonneg(g.weight_decay), which + " has invalid weight_decay " + num(g.weight_decay));
    ROFORMER_CHECK(finite_nonneg(g.lr_scale), which + " has invalid lr_scale " + num(g.lr_scale));
    for (std::size_t idx : g.params) {
      ROFORMER_CHECK(idx < params.size(), which + " refers to parameter index " + std::to_string(idx) + " of " +
                                     std::to_string(params.size()));
      ROFORMER_CHECK(++seen[idx] == 1, "AdamW: parameter '" + params[idx].name + "' is in more than one group");
    }
  }
  for (std::size_t i = 0; i < params.size(); ++i)
    ROFORMER_CHECK(seen[i] == 1 || !params[i].trainable,
          "AdamW: trainable parameter '" + params[i].name + "' is in no parameter group");
}

Shape state_shape(const Parameter& p) { return p.shape.empty() ? Shape{p.size} : p.shape; }

constexpr std::string_view kPrefix = "adamw.";

}  // namespace

bool bert_style_no_decay(std::string_view name) {
  return name.find("bias") != std::string_view::npos || name.find("LayerNorm.weight") != std::string_view::npos;
}

std::vector<ParamGroup> bert_style_groups(const std::vector<Parameter>& params, double weight_decay) {
  ROFORMER_CHECK(finite_nonneg(weight_decay), "bert_style_groups: invalid weight_decay " + num(weight_decay));
  std::vector<ParamGroup> groups(2);
  groups[0].weight_decay = weight_decay;
  groups[1].weight_decay = 0.0;
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (!params[i].trainable) continue;  // HF builds its groups from requires_grad parameters only
    groups[bert_style_no_decay(params[i].name) ? 1 : 0].params.push_back(i);
  }
  return groups;
}

AdamW::AdamW(std::vector<Parameter> params, const AdamWOptions& options)
    : AdamW(std::move(params), std::vector<ParamGroup>{}, options) {}

AdamW::AdamW(std::vector<Parameter> params, std::vector<ParamGroup> groups, const AdamWOptions& options)
    : params_(std::move(params)), groups_(std::move(groups)), options_(options) {
  check_options(options_);
  check_params(params_);
  if (groups_.empty()) {
    ParamGroup all;
    all.weight_decay = options_.weight_decay;
    for (std::size_t i = 0; i < params_.size(); ++i) all.params.push_back(i);
    groups_.push_back(std::move(all));
  }
  check_groups(params_, groups_);

  offsets_.assign(params_.size(), -1);
  int64_t total = 0;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (!params_[i].trainable) continue;
    offsets_[i] = total;
    const int64_t padded = (params_[i].size + kAlignFloats - 1) / kAlignFloats * kAlignFloats;
    ROFORMER_CHECK(padded <= std::numeric_limits<int64_t>::max() / 8 - total, "AdamW: parameters too large");
    total += padded;
  }
  const std::size_t bytes = static_cast<std::size_t>(2 * total) * sizeof(float);
  storage_ = aligned_alloc_shared(bytes);
  std::memset(storage_.get(), 0, bytes);
  m_ = static_cast<float*>(storage_.get());
  v_ = m_ + total;

#ifdef ROFORMER_OPTIM_X86
  kernel_ = options_.exec.isa == Isa::Scalar ? &adamw_scalar : &adamw_avx2;
#else
  kernel_ = &adamw_scalar;
#endif
}

void AdamW::step(double lr) {
  ROFORMER_CHECK(finite_nonneg(lr), "AdamW::step: invalid learning rate " + num(lr) + " (must be finite and >= 0)");
  ++step_;
  // torch keeps the step count as a float tensor and evaluates these in Python
  // floats (double): beta ** step, then lr / bc1 and math.sqrt(bc2).
  const double t = static_cast<double>(step_);
  const double bc1 = 1.0 - std::pow(options_.beta1, t);
  const double bc2 = 1.0 - std::pow(options_.beta2, t);
  const int threads = options_.exec.threads;
  for (const ParamGroup& group : groups_) {
    const double group_lr = lr * group.lr_scale;
    AdamWScalars c{};
    c.decay = static_cast<float>(1.0 - group_lr * group.weight_decay);
    c.beta1 = static_cast<float>(options_.beta1);
    c.one_minus_beta1 = static_cast<float>(1.0 - options_.beta1);
    c.beta2 = static_cast<float>(options_.beta2);
    c.one_minus_beta2 = static_cast<float>(1.0 - options_.beta2);
    c.bc2_sqrt = static_cast<float>(std::sqrt(bc2));
    c.eps = static_cast<float>(options_.eps);
    c.neg_step_size = static_cast<float>(-(group_lr / bc1));
    for (std::size_t idx : group.params) {
      if (offsets_[idx] < 0) continue;
      const Parameter& prm = params_[idx];
      float* p = prm.value;
      const float* g = prm.grad;
      float* m = m_ + offsets_[idx];
      float* v = v_ + offsets_[idx];
      const int64_t n = prm.size;
      if (threads <= 1 || n < kParallelMin) {
        kernel_(p, g, m, v, n, c);
        continue;
      }
      const int64_t chunks = (n + kChunk - 1) / kChunk;
      const Kernel kernel = kernel_;
#pragma omp parallel for num_threads(threads) schedule(static)
      for (int64_t ci = 0; ci < chunks; ++ci) {
        const int64_t lo = ci * kChunk;
        kernel(p + lo, g + lo, m + lo, v + lo, std::min(kChunk, n - lo), c);
      }
    }
  }
}

void AdamW::zero_grad() {
  for (const Parameter& p : params_)
    if (p.trainable && p.size > 0) std::memset(p.grad, 0, static_cast<std::size_t>(p.size) * sizeof(float));
}

std::vector<std::pair<std::string, Tensor>> AdamW::state() const {
  std::vector<std::pair<std::string, Tensor>> out;
  out.reserve(2 * params_.size() + 1);
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (offsets_[i] < 0) continue;
    out.emplace_back(std::string(kPrefix) + "m." + params_[i].name,
                     Tensor::view(m_ + offsets_[i], state_shape(params_[i]), DType::F32, storage_));
  }
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (offsets_[i] < 0) continue;
    out.emplace_back(std::string(kPrefix) + "v." + params_[i].name,
                     Tensor::view(v_ + offsets_[i], state_shape(params_[i]), DType::F32, storage_));
  }
  Tensor step = Tensor::zeros({1}, DType::I64);
  step.data<int64_t>()[0] = step_;
  out.emplace_back(std::string(kPrefix) + "step", std::move(step));
  return out;
}

void AdamW::load_state(const std::vector<std::pair<std::string, Tensor>>& tensors) {
  std::map<std::string, const Tensor*> entries;
  for (const auto& [name, tensor] : tensors) {
    if (name.compare(0, kPrefix.size(), kPrefix) != 0) continue;
    ROFORMER_CHECK(entries.emplace(name, &tensor).second, "AdamW state: entry '" + name + "' appears twice");
  }

  const auto step_it = entries.find("adamw.step");
  ROFORMER_CHECK(step_it != entries.end(), "AdamW state: missing 'adamw.step'");
  const Tensor& step_t = *step_it->second;
  ROFORMER_CHECK(step_t.dtype() == DType::I64 && step_t.numel() == 1,
        "AdamW state: 'adamw.step' must be one I64 value, got " + std::string(dtype_name(step_t.dtype())) + " " +
            shape_str(step_t.shape()));
  const int64_t step = step_t.data<int64_t>()[0];
  ROFORMER_CHECK(step >= 0, "AdamW state: 'adamw.step' is negative (" + std::to_string(step) + ")");
  entries.erase(step_it);

  // Validate everything before changing anything.
  struct Source {
    std::size_t param;
    Tensor m, v;
  };
  std::vector<Source> sources;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (offsets_[i] < 0) continue;
    const Parameter& p = params_[i];
    Source src{i, {}, {}};
    for (const char* which : {"m", "v"}) {
      const std::string key = std::string(kPrefix) + which + "." + p.name;
      const auto it = entries.find(key);
      ROFORMER_CHECK(it != entries.end(), "AdamW state: missing '" + key + "' for parameter '" + p.name + "'");
      const Tensor& t = *it->second;
      ROFORMER_CHECK(t.dtype() == DType::F32, "AdamW state: '" + key + "' has dtype " + std::string(dtype_name(t.dtype())) +
                                         ", expected F32");
      ROFORMER_CHECK(t.numel() == p.size, "AdamW state: '" + key + "' has shape " + shape_str(t.shape()) + " but parameter '" +
                                     p.name + "' has " + std::to_string(p.size) + " elements");
      Tensor c = t.is_contiguous() ? t : t.clone();
      const float* d = c.data<float>();
      const bool second = which[0] == 'v';
      for (int64_t k = 0; k < p.size; ++k)
        ROFORMER_CHECK(std::isfinite(d[k]) && (!second || d[k] >= 0),
                       "AdamW state: '" + key + "' holds an invalid value at element " + std::to_string(k));
      (second ? src.v : src.m) = std::move(c);
      entries.erase(it);
    }
    sources.push_back(std::move(src));
  }
  if (!entries.empty())
    throw Error("AdamW state: unexpected entry '" + entries.begin()->first +
                "' (no trainable parameter of this optimizer matches it)");

  for (const Source& s : sources) {
    const std::size_t bytes = static_cast<std::size_t>(params_[s.param].size) * sizeof(float);
    if (bytes == 0) continue;
    std::memcpy(m_ + offsets_[s.param], s.m.data<float>(), bytes);
    std::memcpy(v_ + offsets_[s.param], s.v.data<float>(), bytes);
  }
  step_ = step;
}

}  // namespace roformer
