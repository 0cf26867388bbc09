#pragma once
// The HF fixture checkpoints as model tests use them: which head each one has,
// and the batch their expected outputs were computed on.
#include <string>

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

}  // namespace roformer::testing
