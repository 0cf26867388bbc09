#pragma once
// Packs tokenized documents into fixed-length MLM blocks: [CLS] tokens [SEP],
// padded on the right. Blocks are described by positions, not copied; block(i)
// materialises one on demand.
//
// With cross_documents, the chosen documents form one stream d0 [SEP] d1 [SEP]
// d2 ... and block k holds stream tokens [k*C, (k+1)*C), C = seq_len - 2, so
// every block is full except the last one. Without it, each document is cut
// into its own blocks, and a document's last block is padded.
#include <cstdint>
#include <vector>

#include "roformer/dataset.h"

namespace roformer {

class Tokenizer;

struct PackingOptions {
  int64_t seq_len = 128;         // tokens per block, [CLS] and the closing [SEP] included (>= 3)
  bool cross_documents = true;   // run documents on across blocks, a [SEP] between them
  int64_t min_tokens = 1;        // content tokens a (last, short) block needs to be kept
  int64_t cls_id = 2, sep_id = 3, pad_id = 0;  // the layout wordpiece_trainer.h produces
};

// The tokenizer's [CLS] / [SEP] / [PAD] ids copied into `options`.
PackingOptions with_special_ids(PackingOptions options, const Tokenizer& tokenizer);

class PackedBlocks {
 public:
  // `documents` (indices into `data`, in the order to stream them; empty
  // documents are skipped). `data` must outlive the blocks.
  PackedBlocks(const TokenDataset& data, std::vector<int64_t> documents, PackingOptions options);

  int64_t size() const { return static_cast<int64_t>(block_start_.size()); }
  int64_t seq_len() const { return options_.seq_len; }
  const PackingOptions& options() const { return options_; }
  // Content tokens (not counting [CLS], [SEP] of the frame, padding) over all blocks.
  int64_t content_tokens() const { return content_tokens_; }

  // Writes block `index`: seq_len ids and the attention mask (1 = token, 0 = padding).
  void block(int64_t index, int64_t* ids, int64_t* attention_mask) const;

 private:
  const TokenDataset* data_;
  PackingOptions options_;
  std::vector<int64_t> docs_;          // non-empty documents, stream order
  std::vector<int64_t> stream_start_;  // where each document starts in the stream (+1 per [SEP])
  std::vector<int64_t> block_start_;   // stream position of each block's first content token
  std::vector<int32_t> block_len_;     // its content length
  int64_t content_tokens_ = 0;
};

}  // namespace roformer
