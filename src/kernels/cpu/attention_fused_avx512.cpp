// AVX-512 tiles of the fused attention (attention_tiles.h) in fp32, on the
// traits of avx512_traits.h. Compiled with -mavx512f -mfma;
// called only when the CPU reports AVX-512.
#include "kernels/cpu/avx512_traits.h"
#include "kernels/cpu/attention_decode.h"
#include "kernels/cpu/attention_tiles.h"

namespace roformer::kernels {

void attention_decode_head_avx512(const FusedAttention& a, const AttentionIo& io, int64_t b, int64_t h,
                                  float* scratch) {
  attn::decode_head<Avx512>(a, io, b, h, scratch);
}

void attention_forward_tile_avx512(const FusedAttention& a, const AttentionIo& io, const AttentionScratch& s,
                                   int64_t b, int64_t h, int64_t q0, float* scratch) {
  attn::forward_tile<Avx512>(a, io, s, b, h, q0, scratch);
}

void attention_backward_head_avx512(const FusedAttention& a, const AttentionIo& io, const AttentionScratch& s,
                                    int64_t b, int64_t h, float* scratch) {
  attn::backward_head<Avx512>(a, io, s, b, h, scratch);
}

}  // namespace roformer::kernels
