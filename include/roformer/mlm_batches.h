#pragma once
// MLM training batches: packed blocks, in a seeded order that survives
// checkpoints, masked with BERT's 80/10/10 rule. The masking of a block is
// seeded by (seed, epoch, position in the epoch), not by a running stream, so
// a restored iterator reproduces the exact batches of an uninterrupted run.
#include <cstdint>
#include <vector>

#include "roformer/batch_iterator.h"
#include "roformer/mlm_masking.h"
#include "roformer/model.h"
#include "roformer/sequence_packing.h"

namespace roformer {

struct MlmBatch {
  int64_t batch = 0, seq_len = 0;
  std::vector<int64_t> input_ids;       // (batch, seq_len), corrupted
  std::vector<int64_t> attention_mask;  // (batch, seq_len)
  std::vector<int64_t> labels;          // (batch, seq_len), -100 where not predicted
  std::vector<int64_t> blocks;          // which block each row is
  int64_t predictions = 0;              // labels that are not -100

  // Views of the vectors above (no copy): valid while this batch lives unchanged.
  Batch model_batch();
  Tensor labels_tensor();
};

class MlmBatcher {
 public:
  // `blocks` must outlive the batcher. With `causal`, blocks are not masked:
  // the labels are the ids themselves (-100 on padding), for a causal LM whose
  // loss shifts them by one.
  MlmBatcher(const PackedBlocks& blocks, MlmMasker masker, uint64_t seed, bool shuffle = true, bool causal = false);

  // The next `batch_size` blocks, masked; `out`'s buffers are reused.
  void next(int64_t batch_size, MlmBatch& out);

  const EpochIterator& order() const { return order_; }
  IteratorState state() const { return order_.state(); }
  void restore(const IteratorState& state) { order_.restore(state); }

 private:
  const PackedBlocks* blocks_;
  MlmMasker masker_;
  MlmScratch scratch_;
  uint64_t seed_;
  bool causal_;
  EpochIterator order_;
};

}  // namespace roformer
