#include "models/tensor_files.h"

#include "roformer/checkpoint_files.h"

namespace roformer::models {

std::map<std::string, Tensor> load_tensor_files(const std::string& path) {
  // safetensors (single or sharded) first, then pytorch_model.bin (single or sharded).
  const TensorSource source = TensorSource::open(path);
  std::map<std::string, Tensor> out;
  for (const auto& name : source.names()) out.emplace(name, source.get(name));
  return out;
}

}  // namespace roformer::models
