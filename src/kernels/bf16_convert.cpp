// The plain fp32 -> bf16 loop (the reference) and the threaded conversion.
#include "kernels/bf16_convert.h"

#include <string>

#include "kernels/parallel_chunks.h"
#include "roformer/dtype.h"
#include "roformer/error.h"

namespace roformer::kernels {

namespace {
// Values per task: large enough that a task outweighs its dispatch, small
// enough that a 128-token activation still splits over two threads.
constexpr int64_t kConvertChunk = 16384;
}  // namespace

void convert_to_bf16_ref(const float* x, int64_t n, uint16_t* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = f32_to_bf16(x[i]).bits;
}

Bf16ConvertKernel bf16_convert_kernel(Isa isa) {
  ROFORMER_CHECK(isa_supported(isa),
                 "bf16 conversion: instruction set " + std::string(isa_name(isa)) + " is not supported by this CPU");
  return isa == Isa::Avx512 ? convert_to_bf16_avx512 : convert_to_bf16_ref;
}

void convert_to_bf16(const float* x, int64_t n, uint16_t* y, const ExecContext& ctx) {
  const Bf16ConvertKernel kernel = bf16_convert_kernel(ctx.isa);
  for_each_chunk(n, kConvertChunk, ctx, [&](int64_t b, int64_t e) { kernel(x + b, e - b, y + b); });
}

void round_to_bf16_values(const float* x, int64_t n, float* y, const ExecContext& ctx) {
  for_each_chunk(n, kConvertChunk, ctx, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] = bf16_to_f32(f32_to_bf16(x[i]));
  });
}

}  // namespace roformer::kernels
