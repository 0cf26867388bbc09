// libFuzzer: SafeTensors::from_bytes on arbitrary bytes must load or throw Error.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "roformer/error.h"
#include "roformer/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  try {
    const roformer::SafeTensors st = roformer::SafeTensors::from_bytes(std::vector<uint8_t>(data, data + size), "fuzz");
    for (const std::string& name : st.names()) {
      try {
        const roformer::Tensor t = st.get(name);
        if (t.numel() > 0) (void)t.clone();  // touch every element
      } catch (const roformer::Error&) {
      }
    }
  } catch (const roformer::Error&) {
  }
  return 0;
}
