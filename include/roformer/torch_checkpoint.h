#pragma once
// PyTorch checkpoints (pytorch_model.bin) in the zip format torch.save has
// written since torch 1.6: <prefix>/data.pkl holds a pickled state dict whose
// tensors point into <prefix>/data/<key> storage entries. The pickle is read
// by a restricted VM that executes nothing (see src/io/torch_pickle.h), the
// archive is memory-mapped, and every offset, size and stride is checked.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "roformer/tensor.h"

namespace roformer {

class TorchCheckpoint {
 public:
  // Memory-maps `path`. Throws Error naming the file and the fault; the
  // legacy (pre-1.6, non-zip) format is rejected with a hint to re-save it.
  static TorchCheckpoint open(const std::string& path);
  // Parses an in-memory copy (tests and fuzzing).
  static TorchCheckpoint from_bytes(std::vector<uint8_t> bytes, const std::string& label = "<memory>");

  const std::string& path() const;
  std::vector<std::string> names() const;  // in the order the pickle lists them
  bool contains(const std::string& name) const;
  Shape shape(const std::string& name) const;
  // The stored element type: F32 F16 BF16 F64 I64 I32 I16 I8 U8 BOOL.
  std::string dtype(const std::string& name) const;

  // Floating tensors come back as F32 (F16, BF16, F64 converted), integer and
  // bool ones as I64. Contiguous, aligned F32/I64 tensors are views of the
  // mapped file (kept alive by the returned tensor); the rest are owned,
  // contiguous copies. Tensors sharing a storage (tied weights) both work.
  Tensor get(const std::string& name) const;

 private:
  struct Impl;
  explicit TorchCheckpoint(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace roformer
