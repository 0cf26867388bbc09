#include "roformer/mlm_batches.h"

#include <span>

#include "roformer/error.h"

namespace roformer {

Batch MlmBatch::model_batch() {
  Batch b;
  b.input_ids = Tensor::view(input_ids.data(), {batch, seq_len}, DType::I64);
  b.attention_mask = Tensor::view(attention_mask.data(), {batch, seq_len}, DType::I64);
  return b;
}

Tensor MlmBatch::labels_tensor() { return Tensor::view(labels.data(), {batch, seq_len}, DType::I64); }

MlmBatcher::MlmBatcher(const PackedBlocks& blocks, MlmMasker masker, uint64_t seed, bool shuffle, bool causal)
    : blocks_(&blocks),
      masker_(std::move(masker)),
      seed_(seed),
      causal_(causal),
      order_(blocks.size() > 0 ? blocks.size() : throw Error("MLM batches: no blocks (empty data set?)"),
             seed, shuffle) {}

void MlmBatcher::next(int64_t batch_size, MlmBatch& out) {
  ROFORMER_CHECK(batch_size > 0, "MLM batches: batch size must be positive");
  const int64_t t = blocks_->seq_len();
  out.batch = batch_size;
  out.seq_len = t;
  const auto n = static_cast<std::size_t>(batch_size * t);
  out.input_ids.resize(n);
  out.attention_mask.resize(n);
  out.labels.resize(n);
  out.blocks.resize(static_cast<std::size_t>(batch_size));
  out.predictions = 0;
  for (int64_t b = 0; b < batch_size; ++b) {
    // The masking seed names the draw (epoch, position), whatever came before it.
    const auto epoch = static_cast<uint64_t>(order_.epoch() + (order_.position() == order_.items() ? 1 : 0));
    const auto position = static_cast<uint64_t>(order_.position() == order_.items() ? 0 : order_.position());
    const int64_t block = order_.next();
    out.blocks[static_cast<std::size_t>(b)] = block;
    int64_t* ids = out.input_ids.data() + b * t;
    int64_t* mask = out.attention_mask.data() + b * t;
    blocks_->block(block, ids, mask);
    if (causal_) {
      int64_t* labels = out.labels.data() + b * t;
      for (int64_t i = 0; i < t; ++i) labels[i] = mask[i] ? ids[i] : -100;
      for (int64_t i = 1; i < t; ++i) out.predictions += mask[i];  // position i - 1 predicts token i
      continue;
    }
    DataRng rng(derive_seed(seed_ ^ 0x4D41534Bull, epoch, position));  // "MASK": apart from the order stream
    const auto row = static_cast<std::size_t>(t);
    out.predictions += masker_.apply(std::span<int64_t>(ids, row), std::span<int64_t>(out.labels.data() + b * t, row),
                                     rng, std::span<const int64_t>(mask, row), scratch_);
  }
}

}  // namespace roformer
