#pragma once
// The int32 sums of an int8 product on plain row-major weights, for CPUs
// without int8 dot products (no AVX512-VNNI or AVX-VNNI), where oneDNN 2.6
// has no int8 product: sums[r][o] = sum_k x[r][k] * w[o][k], x unsigned
// codes (rows, in), w signed ones (out, in). The sums are exact (in at most
// kMaxInt8Depth), so every loop gives the same bits as every other and as a
// native product.
//
// The AVX2 loop widens the codes to 16 bits (sign for the weights, zero for
// the activations) and multiplies pairs into 32-bit lanes (vpmaddwd), which
// never saturates; vpmaddubsw would be one instruction less but saturates at
// 255 x 127 x 2. One row of weights is read once for up to four rows of
// activations, so a decoding step streams the weights at a quarter of the
// bytes of fp32.
#include <cstdint>

#include "roformer/cpu.h"

namespace roformer::kernels {

// Output rows per task of the threaded product: tens of KB of weights each.
inline constexpr int64_t kInt8SumsColumns = 64;

// sums (rows, out) for the output rows [o0, o1) of w, every row of x.
using Int8SumsKernel = void (*)(const uint8_t* x, int64_t rows, int64_t in, const int8_t* w, int64_t out, int64_t o0,
                                int64_t o1, int32_t* sums);
void int8_sums_ref(const uint8_t* x, int64_t rows, int64_t in, const int8_t* w, int64_t out, int64_t o0, int64_t o1,
                   int32_t* sums);
void int8_sums_avx2(const uint8_t* x, int64_t rows, int64_t in, const int8_t* w, int64_t out, int64_t o0, int64_t o1,
                    int32_t* sums);
// The AVX2 loop for Avx2 and Avx512, the plain one for Scalar; throws Error
// when this CPU lacks isa.
Int8SumsKernel int8_sums_kernel(Isa isa);

}  // namespace roformer::kernels
