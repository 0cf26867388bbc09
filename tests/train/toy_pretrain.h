#pragma once
// A pre-training run small enough for a test (seconds): 1 layer x 32 on the
// committed sample with the fixtures' vocabulary.
#include <string>

#include "roformer/pretrain.h"
#include "support/test_support.h"

namespace roformer::testing {

inline std::string repo_file(const std::string& rel) { return data_path("../../" + rel); }

inline PretrainOptions toy_pretrain_options(const std::string& out, const std::string& objective = "mlm") {
  PretrainOptions o;
  o.objective = objective;
  o.train_file = repo_file("data/sample/en_train.txt");
  o.valid_file = repo_file("data/sample/en_valid.txt");
  o.vocab_file = data_path("fixtures/vocab.txt");
  o.hidden_size = 32;
  o.num_layers = 1;
  o.num_heads = 2;
  o.intermediate_size = 64;
  o.seq_len = 32;
  o.batch_size = 4;
  o.steps = 8;
  o.warmup_steps = 2;
  o.eval_every = 4;
  o.eval_batches = 2;
  o.log_every = 2;
  o.lr = 3e-3;
  o.out_dir = out;
  return o;
}

}  // namespace roformer::testing
