#pragma once
// The safetensors format: 8-byte little-endian header length N, N bytes of
// JSON ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__":
// {...}}), then the raw little-endian tensor bytes. Files are memory-mapped
// and every header field is validated against the file before use.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "roformer/tensor.h"

namespace roformer {

struct SafeTensorInfo {
  std::string dtype;  // as written in the file: F32, F16, BF16, F64, I64, I32, ...
  Shape shape;
  uint64_t begin = 0;  // byte offsets into the data section
  uint64_t end = 0;
};

class SafeTensors {
 public:
  // Memory-maps `path`. Throws Error naming the file and the fault.
  static SafeTensors open(const std::string& path);
  // Parses an in-memory copy (tests and fuzzing).
  static SafeTensors from_bytes(std::vector<uint8_t> bytes, const std::string& label = "<memory>");

  const std::string& path() const { return label_; }
  std::vector<std::string> names() const;  // in data-offset order
  bool contains(const std::string& name) const { return infos_.count(name) != 0; }
  const SafeTensorInfo& info(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // F32, BF16 and I64 come back as views of the mapped bytes when aligned;
  // F16 and F64 are converted to F32, I32 to I64 (owned copies).
  Tensor get(const std::string& name) const;

 private:
  void parse();

  std::string label_;
  std::shared_ptr<void> keep_alive_;
  const uint8_t* bytes_ = nullptr;
  uint64_t size_ = 0;
  uint64_t data_start_ = 0;
  std::map<std::string, SafeTensorInfo> infos_;
  std::map<std::string, std::string> metadata_;
};

// Hands the physical pages behind [data, data + bytes) back to the kernel when
// they belong to a read-only file mapping (a SafeTensors view): the bytes stay
// readable and are read from the file again if touched. Memory of any other
// kind is left alone. Returns the bytes released (whole pages only).
std::size_t release_mapped_pages(const void* data, std::size_t bytes);

// Writes tensors (F32, BF16 or I64; any strides) in the given order.
// The file is written to a temporary name and renamed, so readers never see a partial file.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace roformer
