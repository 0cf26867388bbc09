// The plain bf16-row loops (the reference the AVX2 ones are tested against),
// the packing, and the dispatch.
#include "kernels/bf16_rows.h"

#include <cmath>
#include <string>

#include "roformer/dtype.h"
#include "roformer/error.h"

namespace roformer::kernels {

namespace {

constexpr int64_t kLanes = 8;

int64_t offset(int64_t padded_in, int64_t o, int64_t k) {
  return (o / kBf16RowsGroup) * kBf16RowsGroup * padded_in + (k / kLanes) * kBf16RowsGroup * kLanes +
         (o % kBf16RowsGroup) * kLanes + k % kLanes;
}

}  // namespace

int64_t bf16_rows_padded_in(int64_t in) { return (in + kLanes - 1) / kLanes * kLanes; }

HugePageVector<uint16_t> pack_bf16_rows(const float* weight, int64_t out, int64_t in) {
  const int64_t padded_in = bf16_rows_padded_in(in);
  const int64_t groups = (out + kBf16RowsGroup - 1) / kBf16RowsGroup;
  HugePageVector<uint16_t> packed(static_cast<std::size_t>(groups * kBf16RowsGroup * padded_in), 0);
  for (int64_t o = 0; o < out; ++o)
    for (int64_t k = 0; k < in; ++k)
      packed[static_cast<std::size_t>(offset(padded_in, o, k))] = f32_to_bf16(weight[o * in + k]).bits;
  return packed;
}

void bf16_rows_product_ref(const float* x, int64_t rows, int64_t in, const uint16_t* w, int64_t out,
                           const float* bias, float* y, int64_t o0, int64_t o1) {
  const int64_t padded_in = bf16_rows_padded_in(in);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = o0; o < o1; ++o) {
      float lane[kLanes] = {};
      for (int64_t k = 0; k < in; ++k)
        lane[k % kLanes] = std::fma(x[r * in + k], bf16_to_f32(bf16{w[offset(padded_in, o, k)]}), lane[k % kLanes]);
      const float sum = ((lane[0] + lane[4]) + (lane[2] + lane[6])) + ((lane[1] + lane[5]) + (lane[3] + lane[7]));
      y[r * out + o] = bias != nullptr ? sum + bias[o] : sum;
    }
}

void widen_bf16_rows_ref(const uint16_t* w, int64_t in, int64_t o0, int64_t o1, float* y) {
  const int64_t padded_in = bf16_rows_padded_in(in);
  for (int64_t o = o0; o < o1; ++o)
    for (int64_t k = 0; k < in; ++k) y[(o - o0) * in + k] = bf16_to_f32(bf16{w[offset(padded_in, o, k)]});
}

Bf16RowsKernels bf16_rows_kernels(Isa isa) {
  ROFORMER_CHECK(isa_supported(isa),
                 "bf16 rows: instruction set " + std::string(isa_name(isa)) + " is not supported by this CPU");
  if (isa == Isa::Scalar) return {bf16_rows_product_ref, widen_bf16_rows_ref};
  return {bf16_rows_product_avx2, widen_bf16_rows_avx2};
}

}  // namespace roformer::kernels
