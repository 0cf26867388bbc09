// libFuzzer: the restricted pickle VM alone (a zip's CRC would hide most
// pickle mutations from fuzz_torch_bin). Must parse or throw Error.
#include <cstddef>
#include <cstdint>
#include <span>

#include "io/torch_pickle.h"
#include "roformer/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  try {
    (void)roformer::io::parse_torch_pickle(std::span<const uint8_t>(data, size), "fuzz");
  } catch (const roformer::Error&) {
  }
  return 0;
}
