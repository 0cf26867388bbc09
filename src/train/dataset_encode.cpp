// Corpus text -> .rfds: each document's paragraphs tokenized and concatenated.
// Documents are gathered into batches of paragraphs, tokenized on several
// threads, and written in their order.
#include <string>
#include <vector>

#include "core/parallel_items.h"
#include "roformer/dataset.h"
#include "roformer/error.h"
#include "roformer/text_corpus.h"
#include "roformer/tokenizer.h"

namespace roformer {

namespace {

// Paragraphs and bytes that fill a batch: enough to keep threads busy, few
// enough to bound the memory at any corpus size.
constexpr std::size_t kBatchParagraphs = 4096;
constexpr std::size_t kBatchBytes = std::size_t{8} << 20;

struct ParagraphBatch {
  std::vector<std::string> paragraphs;
  std::vector<int64_t> lines;             // each paragraph's line in the file
  std::vector<std::size_t> document_end;  // one past each document's last paragraph
  std::size_t bytes = 0;
};

}  // namespace

EncodeStats encode_corpus(const Tokenizer& tokenizer, const Sha256Digest& vocab_sha256,
                          const std::string& corpus_path, const std::string& out_path, int threads) {
  check(threads >= 1, "encode corpus: threads must be at least 1");
  TextCorpusReader reader(corpus_path);
  DatasetWriter writer(out_path, tokenizer.id_space(), vocab_sha256);
  EncodeStats stats;
  const int64_t unk = tokenizer.unk_id();
  ParagraphBatch batch;
  std::vector<std::vector<int64_t>> paragraph_ids;
  std::vector<int64_t> ids;

  const auto flush = [&] {
    const auto n = static_cast<int64_t>(batch.paragraphs.size());
    paragraph_ids.assign(batch.paragraphs.size(), {});
    for_each_item(
        n, threads,
        [&](int64_t i) {
          const auto k = static_cast<std::size_t>(i);
          paragraph_ids[k] = tokenizer.tokenize_to_ids(batch.paragraphs[k]);
        },
        [&](int64_t i) { return corpus_path + ":" + std::to_string(batch.lines[static_cast<std::size_t>(i)]); });
    std::size_t p = 0;
    for (std::size_t end : batch.document_end) {
      ids.clear();
      for (; p < end; ++p) ids.insert(ids.end(), paragraph_ids[p].begin(), paragraph_ids[p].end());
      for (int64_t id : ids) stats.unknown += id == unk;
      writer.add_document(ids);
    }
    batch = ParagraphBatch{};
  };

  std::vector<std::string> paragraphs;
  while (reader.next(paragraphs)) {
    for (std::size_t i = 0; i < paragraphs.size(); ++i) {
      batch.bytes += paragraphs[i].size();
      batch.lines.push_back(reader.document_line() + static_cast<int64_t>(i));
      batch.paragraphs.push_back(std::move(paragraphs[i]));
    }
    batch.document_end.push_back(batch.paragraphs.size());
    if (batch.paragraphs.size() >= kBatchParagraphs || batch.bytes >= kBatchBytes) flush();
  }
  flush();
  writer.finish();
  stats.documents = writer.documents();
  stats.tokens = writer.tokens();
  return stats;
}

}  // namespace roformer
