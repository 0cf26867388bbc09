// libFuzzer: TorchCheckpoint::from_bytes (zip + pickle + tensors) on arbitrary
// bytes must load, with every tensor readable, or throw Error.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "roformer/error.h"
#include "roformer/torch_checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  try {
    const roformer::TorchCheckpoint ck =
        roformer::TorchCheckpoint::from_bytes(std::vector<uint8_t>(data, data + size), "fuzz");
    for (const std::string& name : ck.names()) {
      const roformer::Tensor t = ck.get(name);
      if (t.numel() > 0) (void)t.clone();  // touch every element
    }
  } catch (const roformer::Error&) {
  }
  return 0;
}
