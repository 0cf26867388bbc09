#pragma once
// Text generation with a causal RoFormer (RoFormerForCausalLM): the prompt is
// run once into a KV cache, then one token per step. Greedy, or sampling
// with temperature, top-k and top-p (nucleus) from a seeded generator, so a
// seed always gives the same text.
#include <cstdint>
#include <optional>
#include <vector>

#include "roformer/model.h"

namespace roformer {

struct GenerateOptions {
  int64_t max_new_tokens = 20;
  bool sample = false;        // false: greedy (argmax)
  double temperature = 1.0;   // > 0
  int64_t top_k = 0;          // 0: no top-k cut
  double top_p = 1.0;         // (0, 1]; 1: no nucleus cut
  uint64_t seed = 0;
  std::optional<int64_t> eos_token_id;  // stop a sequence after it emits this id
};

// prompt: token ids of one sequence (no padding). Returns the new tokens only.
std::vector<int64_t> generate(const RoFormerModel& model, const std::vector<int64_t>& prompt,
                              const GenerateOptions& options, const ExecContext& ctx);
// The same on the caller's cache: cleared first, reserved for the prompt and
// max_new_tokens, and left holding the sequence. A loop over prompts that
// keeps one cache writes each into memory already paged in.
std::vector<int64_t> generate(const RoFormerModel& model, const std::vector<int64_t>& prompt,
                              const GenerateOptions& options, const ExecContext& ctx, KvCache& cache);

// Picks the next token from one row of logits (exposed for tests).
class TokenSampler {
 public:
  explicit TokenSampler(const GenerateOptions& options);
  int64_t pick(const float* logits, int64_t vocab);

 private:
  GenerateOptions options_;
  uint64_t state_;
  double uniform();  // [0, 1)
};

}  // namespace roformer
