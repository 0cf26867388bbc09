#pragma once
// The data.pkl of a torch.save archive, read by a restricted pickle VM that
// executes nothing: it knows the handful of opcodes torch.save emits for a
// state dict (protocol 2, plus the protocol 3-5 opcodes that may appear) and a
// whitelist of globals (OrderedDict, the torch tensor/parameter rebuilders and
// the torch.*Storage types). Any other global is an Error naming it. Tensors
// come back as references (storage, offset, shape, strides); the storage bytes
// live in the archive's data/<key> entries.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "roformer/tensor.h"

namespace roformer::io {

// One storage a tensor refers to: zip entry <prefix>/data/<key>.
struct TorchStorage {
  std::string key;
  std::string dtype;     // safetensors-style: F32 F16 BF16 F64 I64 I32 I16 I8 U8 BOOL
  uint64_t numel = 0;    // elements
  std::string location;  // "cpu", "cuda:0", ... (informational)
};

struct TorchTensorRef {
  std::size_t storage = 0;  // index into TorchStateDict::storages
  int64_t offset = 0;       // elements
  Shape shape;
  Shape strides;  // elements; every index stays inside the storage (checked)
};

struct TorchStateDict {
  std::vector<TorchStorage> storages;
  std::vector<std::pair<std::string, TorchTensorRef>> tensors;  // pickle order, unique names
};

// Bytes per element of a dtype named as above; 0 when unknown.
std::size_t torch_dtype_size(std::string_view dtype);

// Far above what any state dict needs, and low enough that a hostile pickle
// cannot make the reader use more than a few hundred MiB.
struct PickleLimits {
  std::size_t max_stack = 1u << 20;    // values on the stack, and open MARKs
  std::size_t max_memo = 1u << 22;     // memo entries
  std::size_t max_objects = 1u << 21;  // strings, tuples, lists, dicts, ...
  std::size_t max_items = 1u << 22;    // values held by all containers together
  uint64_t max_string = 16u << 20;     // bytes in one string
};

// Runs `pickle` (the bytes of data.pkl); `label` names it in error messages.
// The pickle must produce a dict (or OrderedDict) of name -> tensor.
TorchStateDict parse_torch_pickle(std::span<const uint8_t> pickle, const std::string& label,
                                  const PickleLimits& limits = {});

}  // namespace roformer::io
