// Picks the GELU kernels for an instruction set.
#include <string>

#include "kernels/gelu_kernels.h"
#include "roformer/error.h"

namespace roformer::kernels {

GeluKernels gelu_kernels(Isa isa) {
  ROFORMER_CHECK(isa_supported(isa), "gelu: instruction set " + std::string(isa_name(isa)) + " is not supported by this CPU");
  switch (isa) {
    case Isa::Avx512: return {gelu_forward_avx512, gelu_backward_avx512};
    case Isa::Avx2: return {gelu_forward_avx2, gelu_backward_avx2};
    case Isa::Scalar: break;
  }
  return {gelu_forward_ref, gelu_backward_ref};
}

}  // namespace roformer::kernels
