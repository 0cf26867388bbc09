#include "roformer/sequence_packing.h"

#include <algorithm>

#include "roformer/error.h"
#include "roformer/tokenizer.h"

namespace roformer {

PackingOptions with_special_ids(PackingOptions options, const Tokenizer& tokenizer) {
  options.cls_id = tokenizer.cls_id();
  options.sep_id = tokenizer.sep_id();
  options.pad_id = tokenizer.pad_id();
  return options;
}

PackedBlocks::PackedBlocks(const TokenDataset& data, std::vector<int64_t> documents, PackingOptions options)
    : data_(&data), options_(options) {
  ROFORMER_CHECK(options_.seq_len >= 3, "packing: seq_len must be at least 3 ([CLS] token [SEP])");
  ROFORMER_CHECK(options_.seq_len <= (int64_t{1} << 30), "packing: seq_len is unreasonably large");
  ROFORMER_CHECK(options_.min_tokens >= 1, "packing: min_tokens must be at least 1");
  const int64_t content = options_.seq_len - 2;
  int64_t pos = 0;
  for (int64_t d : documents) {
    ROFORMER_CHECK(d >= 0 && d < data.documents(), "packing: document " + std::to_string(d) + " is not in " + data.path());
    const int64_t len = data.document_length(d);
    if (len == 0) continue;
    docs_.push_back(d);
    stream_start_.push_back(pos);
    if (!options_.cross_documents) {
      for (int64_t off = 0; off < len; off += content) {
        const int64_t n = std::min(content, len - off);
        if (n < options_.min_tokens && off > 0) continue;  // a short tail; a short document is kept whole
        block_start_.push_back(pos + off);
        block_len_.push_back(static_cast<int32_t>(n));
      }
    }
    pos += len + 1;  // the [SEP] after it
  }
  if (options_.cross_documents && !docs_.empty()) {
    const int64_t stream = pos - 1;  // no [SEP] after the last document
    for (int64_t start = 0; start < stream; start += content) {
      const int64_t n = std::min(content, stream - start);
      if (n < options_.min_tokens && start > 0) break;
      block_start_.push_back(start);
      block_len_.push_back(static_cast<int32_t>(n));
    }
  }
  for (int32_t n : block_len_) content_tokens_ += n;
}

void PackedBlocks::block(int64_t index, int64_t* ids, int64_t* attention_mask) const {
  ROFORMER_CHECK(index >= 0 && index < size(), "packing: block " + std::to_string(index) + " out of range");
  const int64_t start = block_start_[static_cast<std::size_t>(index)];
  const int64_t n = block_len_[static_cast<std::size_t>(index)];
  // The document holding `start`: the last one starting at or before it.
  auto it = std::upper_bound(stream_start_.begin(), stream_start_.end(), start);
  auto doc = static_cast<std::size_t>(it - stream_start_.begin()) - 1;
  int64_t offset = start - stream_start_[doc];
  int64_t t = 0;
  ids[t++] = options_.cls_id;
  int64_t left = n;
  while (left > 0) {
    const int64_t len = data_->document_length(docs_[doc]);
    if (offset == len) {  // between documents
      ids[t++] = options_.sep_id;
      --left;
      ++doc;
      offset = 0;
      continue;
    }
    const int64_t take = std::min(left, len - offset);
    data_->copy_tokens(docs_[doc], offset, take, ids + t);
    t += take;
    offset += take;
    left -= take;
  }
  ids[t++] = options_.sep_id;
  std::fill(attention_mask, attention_mask + t, 1);
  std::fill(ids + t, ids + options_.seq_len, options_.pad_id);
  std::fill(attention_mask + t, attention_mask + options_.seq_len, 0);
}

}  // namespace roformer
