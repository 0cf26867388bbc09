// Corpus text -> .rfds: each document's paragraphs tokenized and concatenated.
#include "roformer/dataset.h"
#include "roformer/error.h"
#include "roformer/text_corpus.h"
#include "roformer/tokenizer.h"

namespace roformer {

EncodeStats encode_corpus(const Tokenizer& tokenizer, const Sha256Digest& vocab_sha256,
                          const std::string& corpus_path, const std::string& out_path) {
  TextCorpusReader reader(corpus_path);
  DatasetWriter writer(out_path, tokenizer.id_space(), vocab_sha256);
  EncodeStats stats;
  const int64_t unk = tokenizer.unk_id();
  std::vector<std::string> paragraphs;
  std::vector<int64_t> ids;
  while (reader.next(paragraphs)) {
    ids.clear();
    for (std::size_t i = 0; i < paragraphs.size(); ++i) {
      try {
        for (const auto& token : tokenizer.tokenize(paragraphs[i])) ids.push_back(tokenizer.token_to_id(token));
      } catch (const Error& e) {
        throw Error(corpus_path + ":" + std::to_string(reader.document_line() + static_cast<int64_t>(i)) + ": " +
                    e.what());
      }
    }
    for (int64_t id : ids) stats.unknown += id == unk;
    writer.add_document(ids);
  }
  writer.finish();
  stats.documents = writer.documents();
  stats.tokens = writer.tokens();
  return stats;
}

}  // namespace roformer
