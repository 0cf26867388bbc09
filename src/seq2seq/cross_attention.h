#pragma once
// Encoder-decoder (cross) attention: queries from the decoder, keys and
// values from the encoder output ("memory"), padding of the source masked,
// no rotation (source and target positions are unrelated axes).
// Shape letters: B batch, T target length, S source length, C width,
// NH heads, D head size.
#include <cstdint>
#include <vector>

#include "nn/linear.h"

namespace roformer::seq2seq {

struct CrossAttentionSaved {
  std::vector<float> q, k, v;  // (B, T, C), (B, S, C), (B, S, C)
  std::vector<float> probs;    // (B, NH, T, S)
  // Backward's scratch, kept so that repeated steps do not allocate.
  std::vector<float> dq, dk, dv, dp;
};

struct CrossAttention {
  nn::Linear query, key, value;
  int64_t heads = 0;

  int64_t width() const { return query.out_features(); }

  // k, v (B, S, C) = memory projections (computed once per source when decoding).
  void project_memory(const float* memory, int64_t B, int64_t S, float* k, float* v, const ExecContext& ctx) const;
  // out (B, T, C): the context for queries x (B, T, C) over projected k, v;
  // mem_valid (B, S): 1 for real source tokens (null: all real). q is
  // scratch (resized to B*T*C).
  void attend(const float* x, int64_t B, int64_t T, const float* k, const float* v, int64_t S, const uint8_t* mem_valid,
              float* out, std::vector<float>& q, const ExecContext& ctx) const;

  // Training forward keeping what backward needs.
  void forward_train(const float* x, int64_t B, int64_t T, const float* memory, int64_t S, const uint8_t* mem_valid,
                     CrossAttentionSaved& saved, float* out, const ExecContext& ctx) const;
  // dout (B, T, C): the context's gradient. dx and dmemory are added to;
  // grad's weights accumulate.
  void backward(const float* x, const float* memory, CrossAttentionSaved& saved, const float* dout, int64_t B,
                int64_t T, int64_t S, float* dx, float* dmemory, const CrossAttention& grad,
                const ExecContext& ctx) const;
};

}  // namespace roformer::seq2seq
