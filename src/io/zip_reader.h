#pragma once
// A minimal read-only ZIP reader, enough for torch.save archives: finds the
// End Of Central Directory (ZIP64 included, which torch writes for files over
// 4 GiB), reads the central directory, checks every local header against it,
// and hands out STORED entries as views into the mapped file. DEFLATE entries
// are inflated with zlib. Input is hostile: every offset and size is checked
// against the file before use, and nothing outside the mapping is ever read.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace roformer::io {

// A whole file mapped read-only. Empty files have data == nullptr, size == 0.
struct MappedBytes {
  const uint8_t* data = nullptr;
  uint64_t size = 0;
  std::shared_ptr<const void> keep_alive;  // unmaps when the last holder goes
};

MappedBytes map_file(const std::string& path);
// Wraps an in-memory copy the same way (tests, fuzzing).
MappedBytes own_bytes(std::vector<uint8_t> bytes);

struct ZipEntry {
  std::string name;
  uint16_t method = 0;  // 0 = STORED, 8 = DEFLATE
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;
  uint64_t size = 0;           // uncompressed
  uint64_t header_offset = 0;  // the local file header
  uint64_t data_offset = 0;    // first byte of the (compressed) data
};

class ZipReader {
 public:
  // Parses the archive held by `bytes`; `label` names it in error messages.
  explicit ZipReader(MappedBytes bytes, std::string label);
  static ZipReader open(const std::string& path) { return ZipReader(map_file(path), path); }

  const std::string& label() const { return label_; }
  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(std::string_view name) const;
  const ZipEntry& at(std::string_view name) const;  // throws Error naming the entry

  // The bytes of a STORED entry, in place; valid while keep_alive() lives.
  std::span<const uint8_t> view(const ZipEntry& entry) const;
  // A copy of the entry's content (inflated if needed), CRC-checked.
  // Throws when the content is larger than `max_bytes`.
  std::vector<uint8_t> read(const ZipEntry& entry, uint64_t max_bytes) const;

  const std::shared_ptr<const void>& keep_alive() const { return bytes_.keep_alive; }

 private:
  struct Directory {
    uint64_t count = 0;
    uint64_t offset = 0;
    uint64_t size = 0;
    uint64_t end = 0;  // where the records after the central directory begin
  };
  Directory find_directory() const;
  void read_directory(const Directory& dir);
  void check_local_headers(const Directory& dir);
  [[noreturn]] void fail(const std::string& why) const;

  MappedBytes bytes_;
  std::string label_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, std::size_t> by_name_;
};

}  // namespace roformer::io
