#pragma once
// Tokenized documents in one compact binary file (.rfds), memory-mapped for reading.
//
// Layout (all integers little-endian):
//   offset  size  field
//        0     4  magic "RFDS"
//        4     4  format version (1)
//        8     8  vocabulary size V (every token id is below it)
//       16     4  bytes per token: 2 (uint16, when V <= 65536) or 4 (uint32)
//       20     4  reserved (0)
//       24     8  number of documents D
//       32     8  number of tokens N
//       40     8  byte offset of the token array (96)
//       48     8  byte offset of the offsets table (token array end, rounded up to 8)
//       56    32  sha256 of the vocabulary file the ids index
//       88     8  reserved (0)
//       96        tokens: N ids
//   table         D + 1 uint64 token offsets: document d is tokens [off[d], off[d+1])
// The file ends right there: its size is checked exactly, as is every field, the
// offsets (start at 0, never decrease, end at N) and, when opening, every id.
// Writing goes to a temporary file that is fsynced and renamed into place, so a
// reader never sees a torn file; an open file must not be changed underneath
// (replace it by rename, as the writer does, never truncate it in place).
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace roformer {

class Tokenizer;

using Sha256Digest = std::array<uint8_t, 32>;

// sha256 of a file's bytes (the vocabulary a dataset was encoded with).
Sha256Digest sha256_file(const std::string& path);
std::string sha256_hex(const Sha256Digest& digest);

struct DatasetInfo {
  uint32_t version = 0;
  int64_t vocab_size = 0;
  int token_bytes = 0;
  int64_t documents = 0;
  int64_t tokens = 0;
  Sha256Digest vocab_sha256{};
};

class DatasetWriter {
 public:
  DatasetWriter(const std::string& path, int64_t vocab_size, const Sha256Digest& vocab_sha256);
  ~DatasetWriter();  // without finish(), nothing appears at `path`
  DatasetWriter(const DatasetWriter&) = delete;
  DatasetWriter& operator=(const DatasetWriter&) = delete;

  // Throws Error for an id outside [0, vocab_size).
  void add_document(std::span<const int64_t> ids);
  void finish();
  int64_t documents() const;
  int64_t tokens() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class TokenDataset {
 public:
  // Maps the file and checks it (header, sizes, offsets, and every id unless
  // `check_ids` is false). Throws Error naming the file and the fault.
  static TokenDataset open(const std::string& path, bool check_ids = true);
  ~TokenDataset();
  TokenDataset(TokenDataset&&) noexcept;
  TokenDataset& operator=(TokenDataset&&) noexcept;

  const DatasetInfo& info() const;
  const std::string& path() const;
  int64_t documents() const { return info().documents; }
  int64_t tokens() const { return info().tokens; }
  int64_t vocab_size() const { return info().vocab_size; }

  int64_t document_length(int64_t doc) const;
  // Copies tokens [start, start + count) of a document into `out`.
  void copy_tokens(int64_t doc, int64_t start, int64_t count, int64_t* out) const;
  std::vector<int64_t> document(int64_t doc) const;
  // A hash of the document's tokens: the same for the same text in any file.
  uint64_t document_hash(int64_t doc) const;

 private:
  TokenDataset();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Train/validation split by document content: a document goes to validation
// when its hash (mixed with `seed`) falls in the first `valid_fraction` of the
// range. Stable: it depends on neither the order of documents nor the platform.
struct DatasetSplit {
  std::vector<int64_t> train, valid;  // document indices, ascending
};
DatasetSplit split_documents(const TokenDataset& data, double valid_fraction, uint64_t seed = 0);

// Tokenizes a corpus file (one paragraph a line, blank line between documents;
// see text_corpus.h) into an .rfds file. A document's tokens are its paragraphs'
// WordPiece ids, concatenated, without [CLS]/[SEP]. Errors name file and line.
// Paragraphs are tokenized `threads` at a time; the file is the same at any
// thread count, and so is the error reported (the first line at fault).
struct EncodeStats {
  int64_t documents = 0;
  int64_t tokens = 0;
  int64_t unknown = 0;  // [UNK] ids written
};
EncodeStats encode_corpus(const Tokenizer& tokenizer, const Sha256Digest& vocab_sha256,
                          const std::string& corpus_path, const std::string& out_path, int threads = 1);

}  // namespace roformer
