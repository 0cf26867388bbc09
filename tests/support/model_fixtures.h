#pragma once
// The HF fixture checkpoints as model tests use them: which head each one has,
// and the batch their expected outputs were computed on.
#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "roformer/model.h"
#include "roformer/safetensors.h"

namespace roformer::testing {

// A fixture directory under tests/data/fixtures and the head it was saved with.
struct TaskFixture {
  std::string dir;
  Task task;
};

// The input ids, attention mask and token types stored next to HF's outputs.
inline Batch fixture_batch(const SafeTensors& expected) {
  return Batch{expected.get("input_ids"), expected.get("attention_mask"), expected.get("token_type_ids")};
}

// A tiny masked-LM configuration for randomly initialised models: vocab 97,
// 2 layers of 32 hidden with 4 heads and an FFN of 64.
inline RoFormerConfig tiny_mlm_config() {
  RoFormerConfig c;
  c.vocab_size = 97;
  c.hidden_size = 32;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.intermediate_size = 64;
  c.architectures = {"RoFormerForMaskedLM"};
  return c;
}

// Rows of the given real lengths with random ids in [1, vocab), right-padded
// to the longest with id 0 and mask 0; token type 1 from the fourth token on
// (multiple choice: `choices` consecutive rows form one example).
inline Batch right_padded_batch(const std::vector<int64_t>& lengths, int64_t vocab, uint32_t seed,
                                int64_t choices = 1) {
  const auto rows = static_cast<int64_t>(lengths.size());
  int64_t T = 0;
  for (int64_t l : lengths) T = std::max(T, l);
  Tensor ids = Tensor::zeros({rows, T}, DType::I64), mask = Tensor::zeros({rows, T}, DType::I64);
  Tensor types = Tensor::zeros({rows, T}, DType::I64);
  std::mt19937 rng(seed);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t t = 0; t < lengths[static_cast<std::size_t>(r)]; ++t) {
      ids.data<int64_t>()[r * T + t] = 1 + static_cast<int64_t>(rng() % static_cast<uint32_t>(vocab - 1));
      mask.data<int64_t>()[r * T + t] = 1;
      types.data<int64_t>()[r * T + t] = t >= 3 ? 1 : 0;
    }
  if (choices == 1) return {ids, mask, types};
  const std::vector<int64_t> shape = {rows / choices, choices, T};
  return {ids.reshape(shape), mask.reshape(shape), types.reshape(shape)};
}

}  // namespace roformer::testing
