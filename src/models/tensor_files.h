#pragma once
// Reads every tensor of an HF checkpoint directory into a name -> tensor map.
#include <map>
#include <string>

#include "roformer/tensor.h"

namespace roformer::models {

// `path`: a checkpoint directory, or one weights file / index file.
std::map<std::string, Tensor> load_tensor_files(const std::string& path);

}  // namespace roformer::models
