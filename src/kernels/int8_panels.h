#pragma once
// The int32 sums of an int8 product, sums[r][o] = sum_k x[r][k] * w[o][k]
// (x unsigned codes, w signed ones), on weights packed once into column
// panels: for CPUs without int8 dot products (no AVX512-VNNI or AVX-VNNI),
// where oneDNN 2.6 has no int8 product. A pass holds 6 rows x 16 outputs
// of sums in registers, as the fp32 panels do (kernels/f32_panels.h), and
// multiplies pairs of 16-bit values into 32-bit lanes (AVX2 vpmaddwd): 16
// products an instruction against fp32's 8 fused multiply-adds, 1.6x
// fp32's rate in a hot loop on a Zen 3 core (an earlier loop on plain
// weights, one output at a time, multiplied 128-token inputs no faster than
// fp32). One or two rows (a decoding step) take two panels a pass and
// stream the codes at a quarter of fp32's bytes. Sign- and zero-extending
// the codes to 16 bits keeps every sum exact (vpmaddubsw would take the
// bytes directly but saturates at 2 x 255 x 127), so every loop gives the
// same bits as every other and as a native product.
//
// Layout: the inputs padded to an even count and cut into blocks of
// kInt8PanelDepth (the last may be shorter); within a block of depth d,
// panels of 16 output columns, each d / 2 pairs of inputs holding the 16
// columns' two codes side by side:
//   (o, k) at (k / D) * D * padded_out + (o / 16) * d * 16 + ((k % D) / 2) * 32 + (o % 16) * 2 + k % 2
// with D = kInt8PanelDepth and padded_out = out rounded up to 16; padding
// holds zeros.
#include <cstdint>

#include "kernels/huge_pages.h"
#include "roformer/cpu.h"

namespace roformer::kernels {

inline constexpr int64_t kInt8PanelWidth = 16;   // output columns per panel
inline constexpr int64_t kInt8PanelDepth = 768;  // inputs per block (even): a panel of 12 KB
inline constexpr int64_t kInt8PanelRows = 6;     // activation rows per pass of the AVX2 loop

int64_t int8_panels_padded_out(int64_t out);
int64_t int8_panels_padded_in(int64_t in);
// q (out, in) row-major signed codes in the layout (in huge pages where large).
HugePageVector<int8_t> pack_int8_panels(const int8_t* q, int64_t out, int64_t in);
// The packed codes back as (out, in) row-major.
void unpack_int8_panels(const int8_t* w, int64_t out, int64_t in, int8_t* q);

// sums (rows, out) for the panels [p0, p1) (columns [16 p0, min(16 p1, out)))
// and every row of x (rows, in); in at most kMaxInt8Depth (kernels/quantize.h).
using Int8PanelsSums = void (*)(const uint8_t* x, int64_t rows, int64_t in, const int8_t* w, int64_t out,
                                int32_t* sums, int64_t p0, int64_t p1);
void int8_panels_sums_ref(const uint8_t* x, int64_t rows, int64_t in, const int8_t* w, int64_t out, int32_t* sums,
                          int64_t p0, int64_t p1);
void int8_panels_sums_avx2(const uint8_t* x, int64_t rows, int64_t in, const int8_t* w, int64_t out, int32_t* sums,
                           int64_t p0, int64_t p1);
// The plain loop for Scalar, the AVX2 one for any other isa; throws Error
// when this CPU lacks isa.
Int8PanelsSums int8_panels_kernel(Isa isa);

// Every column's sums, the panels cut among ctx.threads (exact sums: the
// bits do not depend on the cut).
void int8_panels_sums(const uint8_t* x, int64_t rows, int64_t in, const int8_t* w, int64_t out, int32_t* sums,
                      const ExecContext& ctx);

}  // namespace roformer::kernels
