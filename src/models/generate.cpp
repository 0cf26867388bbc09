#include "roformer/generate.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "roformer/error.h"

namespace roformer {

TokenSampler::TokenSampler(const GenerateOptions& options) : options_(options), state_(options.seed) {
  ROFORMER_CHECK(options.temperature > 0, "generate: temperature must be positive");
  ROFORMER_CHECK(options.top_p > 0 && options.top_p <= 1, "generate: top_p must be in (0, 1]");
  ROFORMER_CHECK(options.top_k >= 0, "generate: top_k must be >= 0");
}

double TokenSampler::uniform() {
  // splitmix64: tiny, seedable, identical on every platform (unlike std distributions).
  state_ += 0x9E3779B97F4A7C15ull;
  uint64_t z = state_;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

int64_t TokenSampler::pick(const float* logits, int64_t vocab) {
  ROFORMER_CHECK(vocab > 0, "generate: empty vocabulary");
  if (!options_.sample) return std::max_element(logits, logits + vocab) - logits;
  // Candidates by descending logit (ties: lower id first, so results are reproducible).
  std::vector<int64_t> order(static_cast<std::size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  const int64_t k = options_.top_k > 0 ? std::min(options_.top_k, vocab) : vocab;
  auto by_logit = [&](int64_t a, int64_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  std::partial_sort(order.begin(), order.begin() + k, order.end(), by_logit);
  order.resize(static_cast<std::size_t>(k));
  std::vector<double> p(order.size());
  const double top = logits[order[0]];
  double sum = 0;
  for (std::size_t i = 0; i < order.size(); ++i) {
    p[i] = std::exp((logits[order[i]] - top) / options_.temperature);
    sum += p[i];
  }
  // Nucleus: the smallest prefix whose probability reaches top_p (at least one token).
  std::size_t keep = p.size();
  if (options_.top_p < 1.0) {
    double run = 0;
    for (std::size_t i = 0; i < p.size(); ++i) {
      run += p[i] / sum;
      if (run >= options_.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  double kept = 0;
  for (std::size_t i = 0; i < keep; ++i) kept += p[i];
  double u = uniform() * kept;
  for (std::size_t i = 0; i < keep; ++i) {
    u -= p[i];
    if (u < 0) return order[i];
  }
  return order[keep - 1];
}

std::vector<int64_t> generate(const RoFormerModel& model, const std::vector<int64_t>& prompt,
                              const GenerateOptions& options, const ExecContext& ctx) {
  KvCache cache;
  return generate(model, prompt, options, ctx, cache);
}

std::vector<int64_t> generate(const RoFormerModel& model, const std::vector<int64_t>& prompt,
                              const GenerateOptions& options, const ExecContext& ctx, KvCache& cache) {
  ROFORMER_CHECK(model.task() == Task::CausalLM,
        "generate: needs a causal LM (RoFormerForCausalLM with is_decoder: true), got " +
            std::string(task_name(model.task())));
  // An encoder checkpoint (a masked LM) loads with the same head, but its
  // attention looks both ways, so it was never trained to continue text.
  ROFORMER_CHECK(model.config().is_decoder,
        "generate: this model's config has is_decoder: false (a bidirectional encoder, e.g. a masked LM); "
        "generation needs a causal LM trained with is_decoder: true");
  ROFORMER_CHECK(!prompt.empty(), "generate: the prompt is empty");
  ROFORMER_CHECK(options.max_new_tokens >= 0, "generate: max_new_tokens must be >= 0");
  TokenSampler sampler(options);
  cache.clear();
  cache.reserve(static_cast<int64_t>(prompt.size()) + options.max_new_tokens);
  const int64_t V = model.config().vocab_size;
  std::vector<int64_t> next_ids = prompt;
  std::vector<int64_t> out;
  ForwardOptions last_only;
  last_only.logits_to_keep = 1;  // a prompt's other positions need no logits
  for (int64_t step = 0; step < options.max_new_tokens; ++step) {
    Tensor ids = Tensor::zeros({1, static_cast<int64_t>(next_ids.size())}, DType::I64);
    std::copy(next_ids.begin(), next_ids.end(), ids.data<int64_t>());
    ModelOutput o = model.forward(Batch{ids, {}, {}}, last_only, ctx, &cache);
    const float* last = o.heads.at("logits").data<float>();
    const int64_t token = sampler.pick(last, V);
    out.push_back(token);
    if (options.eos_token_id && token == *options.eos_token_id) break;
    next_ids.assign(1, token);
  }
  return out;
}

}  // namespace roformer
