#pragma once
// A file that appears under its name only when complete: written to a temporary
// file beside it, flushed to disk (fsync), then renamed over the target. A
// crash or an exception leaves the old file (or none), never a torn one.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace roformer::data {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();  // removes the temporary file unless commit() succeeded
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  // Appends (buffered).
  void write(const void* data, std::size_t size);
  void write(std::string_view text) { write(text.data(), text.size()); }
  // Overwrites bytes already written (e.g. a header reserved at the start).
  void write_at(uint64_t offset, const void* data, std::size_t size);
  uint64_t size() const { return size_; }
  void commit();

 private:
  void flush_buffer();
  std::string path_, temp_path_;
  int fd_ = -1;
  std::string buffer_;
  uint64_t size_ = 0;
  bool committed_ = false;
};

void write_file_atomically(const std::string& path, std::string_view contents);

}  // namespace roformer::data
