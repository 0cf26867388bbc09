#include "kernels/int8_sums.h"

#include <string>

#include "roformer/error.h"

namespace roformer::kernels {

void int8_sums_ref(const uint8_t* x, int64_t rows, int64_t in, const int8_t* w, int64_t out, int64_t o0, int64_t o1,
                   int32_t* sums) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = o0; o < o1; ++o) {
      int32_t acc = 0;
      for (int64_t k = 0; k < in; ++k) acc += static_cast<int32_t>(x[r * in + k]) * static_cast<int32_t>(w[o * in + k]);
      sums[r * out + o] = acc;
    }
}

Int8SumsKernel int8_sums_kernel(Isa isa) {
  ROFORMER_CHECK(isa_supported(isa),
                 "int8 sums: instruction set " + std::string(isa_name(isa)) + " is not supported by this CPU");
  return isa == Isa::Scalar ? int8_sums_ref : int8_sums_avx2;
}

}  // namespace roformer::kernels
