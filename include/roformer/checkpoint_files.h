#pragma once
// One name -> tensor view over the ways HuggingFace lays out weights:
//   model.safetensors, model.safetensors.index.json (sharded),
//   pytorch_model.bin,  pytorch_model.bin.index.json (sharded).
// A directory prefers safetensors over .bin and a single file over an index;
// a file path (.safetensors, .json index, or a torch .bin/.pt) is used as given.
// Index files are validated: every shard must exist inside the index's own
// directory and hold the tensors the weight_map assigns to it.
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "roformer/tensor.h"

namespace roformer {

class TensorSource {
 public:
  // `path` is an HF model directory or one checkpoint/index file. Throws Error.
  static TensorSource open(const std::string& path);

  const std::string& path() const { return path_; }
  // The checkpoint files behind this source (one, or every shard).
  std::vector<std::string> files() const;

  std::vector<std::string> names() const;  // file by file, in each file's own order
  bool contains(const std::string& name) const { return where_.count(name) != 0; }
  Shape shape(const std::string& name) const;
  // The stored element type, in safetensors spelling (F32, BF16, F16, I64, ...).
  std::string dtype(const std::string& name) const;
  // Safetensors tensors come back as SafeTensors::get gives them (F32, BF16 or
  // I64); torch .bin tensors as TorchCheckpoint::get gives them (F32 or I64).
  Tensor get(const std::string& name) const;

 private:
  struct File;  // one opened checkpoint file (safetensors or torch)
  std::string path_;
  std::vector<std::shared_ptr<const File>> files_;
  std::vector<std::string> order_;
  std::unordered_map<std::string, std::size_t> where_;  // name -> index into files_
};

}  // namespace roformer
