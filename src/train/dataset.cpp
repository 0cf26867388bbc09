// The .rfds tokenized-dataset file: writer, memory-mapped reader, and the
// content-hash split. The layout is documented in roformer/dataset.h.
#include "roformer/dataset.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "roformer/data_rng.h"
#include "roformer/error.h"
#include "train/atomic_file.h"
#include "train/sha256.h"

namespace roformer {
namespace {

constexpr char kMagic[4] = {'R', 'F', 'D', 'S'};
constexpr uint32_t kVersion = 1;
constexpr uint64_t kHeaderBytes = 96;
constexpr int64_t kMaxVocab = int64_t{1} << 32;

// Little-endian loads and stores, byte by byte: correct on any host, and
// compiled to plain moves on little-endian ones.
uint64_t load_le(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
void store_le(uint8_t* p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

uint64_t round_up8(uint64_t x) { return (x + 7) & ~uint64_t{7}; }

int token_bytes_for(int64_t vocab_size) { return vocab_size <= 65536 ? 2 : 4; }

}  // namespace

Sha256Digest sha256_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ROFORMER_CHECK(in.is_open(), path + ": cannot open");
  data::Sha256 h;
  std::vector<char> buf(1 << 16);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    h.update(buf.data(), static_cast<std::size_t>(in.gcount()));
  }
  ROFORMER_CHECK(in.eof(), path + ": read error");
  return h.finish();
}

std::string sha256_hex(const Sha256Digest& digest) { return data::hex(digest); }

// ---------------------------------------------------------------- writer

struct DatasetWriter::Impl {
  Impl(const std::string& path, int64_t v, const Sha256Digest& sha)
      : file(path), vocab_size(v), token_bytes(token_bytes_for(v)), vocab_sha(sha) {}
  data::AtomicFile file;
  int64_t vocab_size;
  int token_bytes;
  Sha256Digest vocab_sha;
  std::vector<uint64_t> offsets{0};
  std::vector<uint8_t> scratch;
  bool finished = false;
};

DatasetWriter::DatasetWriter(const std::string& path, int64_t vocab_size, const Sha256Digest& vocab_sha256) {
  ROFORMER_CHECK(vocab_size > 0 && vocab_size <= kMaxVocab,
        path + ": vocabulary size " + std::to_string(vocab_size) + " is outside [1, 2^32]");
  impl_ = std::make_unique<Impl>(path, vocab_size, vocab_sha256);
  const std::vector<uint8_t> header(kHeaderBytes, 0);  // filled in by finish()
  impl_->file.write(header.data(), header.size());
}

DatasetWriter::~DatasetWriter() = default;

void DatasetWriter::add_document(std::span<const int64_t> ids) {
  ROFORMER_CHECK(!impl_->finished, "DatasetWriter: add_document after finish");
  auto& s = impl_->scratch;
  const int tb = impl_->token_bytes;
  s.resize(ids.size() * static_cast<std::size_t>(tb));
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const int64_t id = ids[i];
    ROFORMER_CHECK(id >= 0 && id < impl_->vocab_size, "DatasetWriter: token id " + std::to_string(id) +
                                                          " is outside the vocabulary [0, " +
                                                          std::to_string(impl_->vocab_size) + ")");
    store_le(s.data() + i * static_cast<std::size_t>(tb), static_cast<uint64_t>(id), tb);
  }
  impl_->file.write(s.data(), s.size());
  impl_->offsets.push_back(impl_->offsets.back() + ids.size());
}

int64_t DatasetWriter::documents() const { return static_cast<int64_t>(impl_->offsets.size()) - 1; }
int64_t DatasetWriter::tokens() const { return static_cast<int64_t>(impl_->offsets.back()); }

void DatasetWriter::finish() {
  ROFORMER_CHECK(!impl_->finished, "DatasetWriter: finish called twice");
  auto& f = impl_->file;
  const uint64_t table = round_up8(f.size());
  const uint8_t zeros[8] = {};
  f.write(zeros, table - f.size());
  std::vector<uint8_t> buf(impl_->offsets.size() * 8);
  for (std::size_t i = 0; i < impl_->offsets.size(); ++i) store_le(buf.data() + 8 * i, impl_->offsets[i], 8);
  f.write(buf.data(), buf.size());

  uint8_t h[kHeaderBytes] = {};
  std::memcpy(h, kMagic, 4);
  store_le(h + 4, kVersion, 4);
  store_le(h + 8, static_cast<uint64_t>(impl_->vocab_size), 8);
  store_le(h + 16, static_cast<uint64_t>(impl_->token_bytes), 4);
  store_le(h + 24, static_cast<uint64_t>(documents()), 8);
  store_le(h + 32, static_cast<uint64_t>(tokens()), 8);
  store_le(h + 40, kHeaderBytes, 8);
  store_le(h + 48, table, 8);
  std::memcpy(h + 56, impl_->vocab_sha.data(), 32);
  f.write_at(0, h, sizeof h);
  f.commit();
  impl_->finished = true;
}

// ---------------------------------------------------------------- reader

struct TokenDataset::Impl {
  std::string path;
  DatasetInfo info;
  const uint8_t* base = nullptr;
  std::size_t size = 0;
  const uint8_t* tokens = nullptr;
  const uint8_t* offsets = nullptr;

  ~Impl() {
    if (base != nullptr) ::munmap(const_cast<uint8_t*>(base), size);
  }
  uint64_t offset(int64_t d) const { return load_le(offsets + 8 * d, 8); }
  int64_t token(uint64_t i) const {
    return static_cast<int64_t>(load_le(tokens + i * static_cast<uint64_t>(info.token_bytes), info.token_bytes));
  }
  void fail(const std::string& what) const { throw Error(path + ": not a valid .rfds dataset: " + what); }
  void validate(bool check_ids);
};

void TokenDataset::Impl::validate(bool check_ids) {
  if (size < kHeaderBytes) fail("truncated header (" + std::to_string(size) + " bytes)");
  if (std::memcmp(base, kMagic, 4) != 0) fail("bad magic (expected \"RFDS\")");
  info.version = static_cast<uint32_t>(load_le(base + 4, 4));
  if (info.version != kVersion) fail("unsupported version " + std::to_string(info.version));
  const uint64_t vocab = load_le(base + 8, 8);
  if (vocab == 0 || vocab > static_cast<uint64_t>(kMaxVocab)) fail("vocabulary size " + std::to_string(vocab));
  info.vocab_size = static_cast<int64_t>(vocab);
  const uint64_t tb = load_le(base + 16, 4);
  if (tb != 2 && tb != 4) fail("token width " + std::to_string(tb) + " (expected 2 or 4)");
  if (tb == 2 && vocab > 65536) fail("16-bit tokens for a vocabulary of " + std::to_string(vocab));
  info.token_bytes = static_cast<int>(tb);
  if (load_le(base + 20, 4) != 0 || load_le(base + 88, 8) != 0) fail("reserved fields are not zero");
  const uint64_t docs = load_le(base + 24, 8), ntok = load_le(base + 32, 8);
  // Bound the counts by the file size before any arithmetic can overflow.
  if (ntok > size / tb) fail("token count " + std::to_string(ntok) + " exceeds the file");
  if (docs > size / 8) fail("document count " + std::to_string(docs) + " exceeds the file");
  info.documents = static_cast<int64_t>(docs);
  info.tokens = static_cast<int64_t>(ntok);
  if (load_le(base + 40, 8) != kHeaderBytes) fail("token array offset");
  const uint64_t table = load_le(base + 48, 8);
  if (table != round_up8(kHeaderBytes + ntok * tb)) fail("offsets table position");
  if (table + (docs + 1) * 8 != size) {
    fail("file size " + std::to_string(size) + " does not match its header (expected " +
         std::to_string(table + (docs + 1) * 8) + "; truncated or padded?)");
  }
  std::memcpy(info.vocab_sha256.data(), base + 56, 32);
  tokens = base + kHeaderBytes;
  offsets = base + table;
  if (offset(0) != 0) fail("first document offset is not 0");
  for (uint64_t d = 0; d < docs; ++d) {
    if (offset(static_cast<int64_t>(d) + 1) < offset(static_cast<int64_t>(d))) {
      fail("document " + std::to_string(d) + " ends before it starts");
    }
  }
  if (offset(static_cast<int64_t>(docs)) != ntok) fail("last document offset is not the token count");
  if (check_ids) {
    for (uint64_t i = 0; i < ntok; ++i) {
      if (token(i) >= info.vocab_size) {
        fail("token " + std::to_string(i) + " has id " + std::to_string(token(i)) + " >= vocabulary size " +
             std::to_string(info.vocab_size));
      }
    }
  }
}

TokenDataset::TokenDataset() : impl_(std::make_unique<Impl>()) {}
TokenDataset::~TokenDataset() = default;
TokenDataset::TokenDataset(TokenDataset&&) noexcept = default;
TokenDataset& TokenDataset::operator=(TokenDataset&&) noexcept = default;

TokenDataset TokenDataset::open(const std::string& path, bool check_ids) {
  TokenDataset ds;
  Impl& m = *ds.impl_;
  m.path = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open (" + std::strerror(errno) + ")");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": not a regular file");
  }
  m.size = static_cast<std::size_t>(st.st_size);
  if (m.size > 0) {
    void* p = ::mmap(nullptr, m.size, PROT_READ, MAP_PRIVATE, fd, 0);
    const int err = errno;
    ::close(fd);
    if (p == MAP_FAILED) throw Error(path + ": mmap failed (" + std::strerror(err) + ")");
    m.base = static_cast<const uint8_t*>(p);
  } else {
    ::close(fd);
  }
  m.validate(check_ids);
  return ds;
}

const DatasetInfo& TokenDataset::info() const { return impl_->info; }
const std::string& TokenDataset::path() const { return impl_->path; }

int64_t TokenDataset::document_length(int64_t doc) const {
  ROFORMER_CHECK(doc >= 0 && doc < documents(), impl_->path + ": document " + std::to_string(doc) + " out of range");
  return static_cast<int64_t>(impl_->offset(doc + 1) - impl_->offset(doc));
}

void TokenDataset::copy_tokens(int64_t doc, int64_t start, int64_t count, int64_t* out) const {
  const int64_t len = document_length(doc);
  ROFORMER_CHECK(start >= 0 && count >= 0 && start <= len && count <= len - start,
                 impl_->path + ": token range out of document " + std::to_string(doc));
  const uint64_t first = impl_->offset(doc) + static_cast<uint64_t>(start);
  for (int64_t i = 0; i < count; ++i) out[i] = impl_->token(first + static_cast<uint64_t>(i));
}

std::vector<int64_t> TokenDataset::document(int64_t doc) const {
  std::vector<int64_t> out(static_cast<std::size_t>(document_length(doc)));
  copy_tokens(doc, 0, static_cast<int64_t>(out.size()), out.data());
  return out;
}

uint64_t TokenDataset::document_hash(int64_t doc) const {
  const int64_t len = document_length(doc);
  const uint64_t first = impl_->offset(doc);
  uint64_t h = splitmix64_mix(static_cast<uint64_t>(len));
  for (int64_t i = 0; i < len; ++i) h = splitmix64_mix(h ^ static_cast<uint64_t>(impl_->token(first + i)));
  return h;
}

DatasetSplit split_documents(const TokenDataset& data, double valid_fraction, uint64_t seed) {
  ROFORMER_CHECK(valid_fraction >= 0.0 && valid_fraction <= 1.0, "split_documents: valid_fraction must be in [0, 1]");
  DatasetSplit split;
  // Compare in integers: a 2^-32 grid, so the threshold rounds the same everywhere.
  const auto threshold = static_cast<uint64_t>(valid_fraction * 4294967296.0);
  for (int64_t d = 0; d < data.documents(); ++d) {
    const uint64_t bucket = splitmix64_mix(data.document_hash(d) ^ splitmix64_mix(seed)) >> 32;
    (bucket < threshold ? split.valid : split.train).push_back(d);
  }
  return split;
}

}  // namespace roformer
