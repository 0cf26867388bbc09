#include "models/tensor_files.h"

#include <filesystem>

#include "roformer/error.h"
#include "roformer/safetensors.h"

namespace roformer::models {

std::map<std::string, Tensor> load_tensor_files(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path st = fs::path(dir) / "model.safetensors";
  std::map<std::string, Tensor> out;
  if (fs::exists(st)) {
    SafeTensors file = SafeTensors::open(st.string());
    for (const auto& name : file.names()) out.emplace(name, file.get(name));
    return out;
  }
  throw Error("model: no model.safetensors in " + dir);
}

}  // namespace roformer::models
