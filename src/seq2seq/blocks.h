#pragma once
// The pieces every path of the seq2seq model shares: token embeddings (with
// the sinusoidal variant's position term) and the residual block in its two
// arrangements, for inference, training forward and backward.
//   pre-LN:  y = x + drop(f(LN(x)))
//   post-LN: y = LN(x + drop(f(x)))
// Shape letters: N rows (batch x time), C width.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/elementwise.h"
#include "kernels/elementwise_backward.h"
#include "nn/linear.h"
#include "roformer/seq2seq.h"

namespace roformer::seq2seq {

inline void resize(std::vector<float>& v, int64_t n) { v.resize(static_cast<std::size_t>(n)); }

inline kernels::Activation activation_of(const std::string& name) {
  return name == "gelu" ? kernels::Activation::Gelu
         : name == "gelu_new" ? kernels::Activation::GeluNew
                              : kernels::Activation::Relu;
}

inline float embed_scale(const Seq2SeqConfig& c) {
  return c.scale_embedding ? static_cast<float>(std::sqrt(static_cast<double>(c.d_model))) : 1.0f;
}

// The Transformer's sinusoid for one position as fairseq lays it out: sines
// of the C/2 frequencies 10000^(-i/(C/2-1)), then their cosines; in double.
inline void sinusoid(int64_t C, int64_t position, float* row) {
  const int64_t half = C / 2;
  const double step = std::log(10000.0) / static_cast<double>(std::max<int64_t>(1, half - 1));
  for (int64_t i = 0; i < half; ++i) {
    const double angle = static_cast<double>(position) * std::exp(-static_cast<double>(i) * step);
    row[i] = static_cast<float>(std::sin(angle));
    row[half + i] = static_cast<float>(std::cos(angle));
  }
}

// out (B, T, C) = scale * table[ids] (+ sinusoid(first_position + t)). Positions
// count from 0 (fairseq starts at padding_idx + 1: the same sinusoids, shifted).
inline void embed(const Seq2SeqConfig& c, const Tensor& table, const int64_t* ids, int64_t B, int64_t T,
                  int64_t first_position, float* out) {
  const int64_t C = c.d_model;
  const float scale = embed_scale(c);
  const float* E = table.data<float>();
  for (int64_t r = 0; r < B * T; ++r)
    for (int64_t k = 0; k < C; ++k) out[r * C + k] = scale * E[ids[r] * C + k];
  if (c.position_encoding != "sinusoidal") return;
  std::vector<float> row(static_cast<std::size_t>(C));
  for (int64_t t = 0; t < T; ++t) {
    sinusoid(C, first_position + t, row.data());
    for (int64_t b = 0; b < B; ++b)
      for (int64_t k = 0; k < C; ++k) out[(b * T + t) * C + k] += row[static_cast<std::size_t>(k)];
  }
}

// Inference: x (N, C) <- block(x). f(in, out) computes the sublayer.
template <class F>
void block_infer(bool pre, const nn::LayerNorm& ln, float* x, int64_t N, int64_t C, std::vector<float>& normed,
                 std::vector<float>& fout, const ExecContext& ctx, F&& f) {
  resize(fout, N * C);
  if (pre) {
    resize(normed, N * C);
    ln.forward(x, normed.data(), N, ctx);
    f(normed.data(), fout.data());
    for (int64_t i = 0; i < N * C; ++i) x[i] += fout[i];
  } else {
    f(x, fout.data());
    for (int64_t i = 0; i < N * C; ++i) fout[i] += x[i];
    ln.forward(fout.data(), x, N, ctx);
  }
}

// What a residual block keeps for backward.
struct BlockActs {
  std::vector<float> normed;      // pre-LN: LN(x), the sublayer's input
  std::vector<float> sum;         // post-LN: x + drop(f(x)), LN's input
  std::vector<float> mean, rstd;  // LN statistics
  std::vector<float> fout;        // the sublayer's output (dropped)
  std::vector<uint8_t> keep;      // dropout mask (when dropping)
};

struct Dropout {
  float p = 0.0f;  // 0: off
  uint64_t seed = 0;
};

// Training forward: y (N, C) = block(x); y must not alias x.
template <class F>
void block_forward(bool pre, const nn::LayerNorm& ln, const float* x, float* y, int64_t N, int64_t C, BlockActs& a,
                   const Dropout& drop, const ExecContext& ctx, F&& f) {
  resize(a.fout, N * C);
  resize(a.mean, N);
  resize(a.rstd, N);
  const float* in = x;
  if (pre) {
    resize(a.normed, N * C);
    ln.forward_train(x, a.normed.data(), N, a.mean.data(), a.rstd.data(), ctx);
    in = a.normed.data();
  }
  f(in, a.fout.data());
  if (drop.p > 0) {
    a.keep.resize(static_cast<std::size_t>(N * C));
    kernels::dropout_forward(a.fout.data(), a.keep.data(), N * C, drop.p, drop.seed);
  }
  if (pre) {
    for (int64_t i = 0; i < N * C; ++i) y[i] = x[i] + a.fout[i];
  } else {
    resize(a.sum, N * C);
    for (int64_t i = 0; i < N * C; ++i) a.sum[i] = x[i] + a.fout[i];
    ln.forward_train(a.sum.data(), y, N, a.mean.data(), a.rstd.data(), ctx);
  }
}

// Backward: d holds dy on entry and dx on return. fb(in, dfout, din) adds
// the sublayer's input gradient to din (and accumulates its weights').
// s1, s2: scratch of N*C floats.
template <class FB>
void block_backward(bool pre, const nn::LayerNorm& ln, const nn::LayerNorm& gln, const float* x, float* d, int64_t N,
                    int64_t C, BlockActs& a, float drop_p, std::vector<float>& s1, std::vector<float>& s2,
                    const ExecContext& ctx, FB&& fb) {
  const std::size_t n = static_cast<std::size_t>(N * C);
  resize(s1, N * C);
  resize(s2, N * C);
  if (pre) {
    // dfout = undrop(dy); dnormed = f'(dfout); dx = dy + LN'(dnormed)
    std::memcpy(s1.data(), d, n * sizeof(float));
    if (drop_p > 0) kernels::dropout_backward(s1.data(), a.keep.data(), s1.data(), N * C, drop_p);
    std::fill(s2.begin(), s2.end(), 0.0f);
    fb(a.normed.data(), s1.data(), s2.data());
    ln.backward(x, s2.data(), a.mean.data(), a.rstd.data(), N, s1.data(), gln, ctx);
    for (std::size_t i = 0; i < n; ++i) d[i] += s1[i];
  } else {
    // dsum = LN'(dy); dx = dsum + f'(undrop(dsum))
    ln.backward(a.sum.data(), d, a.mean.data(), a.rstd.data(), N, s1.data(), gln, ctx);
    std::memcpy(d, s1.data(), n * sizeof(float));
    if (drop_p > 0) kernels::dropout_backward(s1.data(), a.keep.data(), s1.data(), N * C, drop_p);
    fb(x, s1.data(), d);
  }
}

}  // namespace roformer::seq2seq
