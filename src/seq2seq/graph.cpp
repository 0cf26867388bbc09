#include "seq2seq/graph.h"

#include <cstring>

#include "kernels/gemm.h"
#include "roformer/data_rng.h"
#include "roformer/error.h"

namespace roformer::seq2seq {

namespace {

// Dropout sites, for independent mask seeds.
enum Site : uint64_t { kSrcEmbed = 1, kTgtEmbed = 2, kEncAttn = 3, kEncFfn = 4, kDecSelf = 5, kDecCross = 6, kDecFfn = 7 };

void set_positions(Tensor& pos, int64_t n) {
  if (!pos.defined() || pos.numel() != n) pos = Tensor::zeros({n}, DType::I64);
  for (int64_t i = 0; i < n; ++i) pos.data<int64_t>()[i] = i;
}

// Copies an I64 (B, T) tensor's values, checking shape and range.
void read_ids(const Tensor& t, const char* what, int64_t B, int64_t V, std::vector<int64_t>& out) {
  ROFORMER_CHECK(t.defined() && t.dtype() == DType::I64 && t.dim() == 2,
                 std::string("seq2seq batch: ") + what + " must be an int64 (batch, length) tensor");
  ROFORMER_CHECK(B < 0 || t.size(0) == B, std::string("seq2seq batch: ") + what + " has " + std::to_string(t.size(0)) +
                                              " rows, expected " + std::to_string(B));
  ROFORMER_CHECK(t.size(1) > 0, std::string("seq2seq batch: ") + what + " is empty");
  const Tensor c = t.is_contiguous() ? t : t.clone();
  const int64_t* p = c.data<int64_t>();
  out.assign(p, p + c.numel());
  for (int64_t id : out)
    ROFORMER_CHECK(id >= 0 && id < V, std::string("seq2seq batch: ") + what + " holds token id " + std::to_string(id) +
                                          " outside the vocabulary of " + std::to_string(V));
}

// FFN sublayer: out = fc2(act(fc1(in))).
template <class Layer>
void ffn_forward(const Layer& L, kernels::Activation act, const float* in, float* out, int64_t N, int64_t F, FfnActs& a,
                 const ExecContext& ctx) {
  resize(a.pre, N * F);
  resize(a.act, N * F);
  L.fc1.forward(in, N, a.pre.data(), ctx);
  std::memcpy(a.act.data(), a.pre.data(), static_cast<std::size_t>(N * F) * sizeof(float));
  kernels::activation_forward(act, a.act.data(), N * F, ctx);
  L.fc2.forward(a.act.data(), N, out, ctx);
}

template <class Layer>
void ffn_backward(const Layer& L, const Layer& G, kernels::Activation act, const float* in, const float* dout, float* din,
                  int64_t N, int64_t F, FfnActs& a, std::vector<float>& dI, const ExecContext& ctx) {
  resize(dI, N * F);
  L.fc2.backward(a.act.data(), dout, N, dI.data(), false, G.fc2, ctx);
  kernels::activation_backward(act, a.pre.data(), dI.data(), dI.data(), N * F, ctx);
  L.fc1.backward(in, dI.data(), N, din, true, G.fc1, ctx);
}

}  // namespace

Dropout Graph::dropout(uint64_t site, uint64_t layer) const {
  if (drop_p <= 0) return {};
  return Dropout{drop_p, derive_seed(drop_seed, drop_step, site * 1000003ull + layer)};
}

void Graph::prepare(const Seq2SeqConfig& c, const Seq2SeqBatch& batch, bool need_labels) {
  read_ids(batch.src, "src", -1, c.src_vocab_size, src);
  B = batch.src.size(0);
  S = batch.src.size(1);
  read_ids(batch.tgt_in, "tgt_in", B, c.tgt_vocab_size, tgt_in);
  T = batch.tgt_in.size(1);
  if (need_labels) {
    read_ids(batch.tgt_out, "tgt_out", B, c.tgt_vocab_size, tgt_out);
    ROFORMER_CHECK(batch.tgt_out.size(1) == T, "seq2seq batch: tgt_out and tgt_in differ in length");
  }
  src_valid.resize(src.size());
  tgt_valid.resize(tgt_in.size());
  for (std::size_t i = 0; i < src.size(); ++i) src_valid[i] = src[i] != c.pad_token_id;
  for (std::size_t i = 0; i < tgt_in.size(); ++i) tgt_valid[i] = tgt_in[i] != c.pad_token_id;
  for (int64_t b = 0; b < B; ++b)
    ROFORMER_CHECK(src_valid[static_cast<std::size_t>(b * S)] != 0,
                   "seq2seq batch: source row " + std::to_string(b) + " is empty (starts with padding)");
  set_positions(src_pos, S);
  set_positions(tgt_pos, T);
}

void Graph::forward(const Seq2SeqConfig& c, const Weights& w, const ExecContext& ctx) {
  const int64_t C = c.d_model, F = c.ffn_dim, V = c.tgt_vocab_size;
  const int64_t Ns = B * S, Nt = B * T;
  const bool pre = c.normalize_before;
  const auto act = activation_of(c.activation);
  if (!rope) rope.emplace(RopeSpec{c.head_dim(), 0, c.rope_theta, RopeLayout::Interleaved});

  // ---- encoder
  enc_h.resize(w.encoder.size() + 1);
  for (auto& h : enc_h) resize(h, Ns * C);
  embed(c, w.src_embed, src.data(), B, S, 0, enc_h[0].data());
  if (const Dropout dr = dropout(kSrcEmbed, 0); dr.p > 0) {
    src_keep.resize(static_cast<std::size_t>(Ns * C));
    kernels::dropout_forward(enc_h[0].data(), src_keep.data(), Ns * C, dr.p, dr.seed);
  }
  enc.resize(w.encoder.size());
  const nn::AttentionMask src_mask{src_valid.data(), S, false};
  for (std::size_t l = 0; l < w.encoder.size(); ++l) {
    const EncoderLayer& L = w.encoder[l];
    EncoderActs& A = enc[l];
    resize(A.mid, Ns * C);
    resize(A.context, Ns * C);
    block_forward(pre, L.self_norm, enc_h[l].data(), A.mid.data(), Ns, C, A.attn_block, dropout(kEncAttn, l), ctx,
                  [&](const float* in, float* out) {
                    L.self_attn.forward_train(in, B, S, src_pos, *rope, src_mask, A.attn, A.context.data(), ctx);
                    L.self_out.forward(A.context.data(), Ns, out, ctx);
                  });
    block_forward(pre, L.ffn_norm, A.mid.data(), enc_h[l + 1].data(), Ns, C, A.ffn_block, dropout(kEncFfn, l), ctx,
                  [&](const float* in, float* out) { ffn_forward(L, act, in, out, Ns, F, A.ffn, ctx); });
  }
  if (pre) {
    resize(enc_out, Ns * C);
    resize(enc_mean, Ns);
    resize(enc_rstd, Ns);
    w.encoder_norm.forward_train(enc_h.back().data(), enc_out.data(), Ns, enc_mean.data(), enc_rstd.data(), ctx);
  }
  const float* mem = memory(c);

  // ---- decoder
  dec_h.resize(w.decoder.size() + 1);
  for (auto& h : dec_h) resize(h, Nt * C);
  embed(c, w.tgt_embed, tgt_in.data(), B, T, 0, dec_h[0].data());
  if (const Dropout dr = dropout(kTgtEmbed, 0); dr.p > 0) {
    tgt_keep.resize(static_cast<std::size_t>(Nt * C));
    kernels::dropout_forward(dec_h[0].data(), tgt_keep.data(), Nt * C, dr.p, dr.seed);
  }
  dec.resize(w.decoder.size());
  const nn::AttentionMask tgt_mask{tgt_valid.data(), T, true};
  for (std::size_t l = 0; l < w.decoder.size(); ++l) {
    const DecoderLayer& L = w.decoder[l];
    DecoderActs& A = dec[l];
    resize(A.mid1, Nt * C);
    resize(A.mid2, Nt * C);
    resize(A.self_context, Nt * C);
    resize(A.cross_context, Nt * C);
    block_forward(pre, L.self_norm, dec_h[l].data(), A.mid1.data(), Nt, C, A.self_block, dropout(kDecSelf, l), ctx,
                  [&](const float* in, float* out) {
                    L.self_attn.forward_train(in, B, T, tgt_pos, *rope, tgt_mask, A.self, A.self_context.data(), ctx);
                    L.self_out.forward(A.self_context.data(), Nt, out, ctx);
                  });
    block_forward(pre, L.cross_norm, A.mid1.data(), A.mid2.data(), Nt, C, A.cross_block, dropout(kDecCross, l), ctx,
                  [&](const float* in, float* out) {
                    L.cross_attn.forward_train(in, B, T, mem, S, src_valid.data(), A.cross, A.cross_context.data(), ctx);
                    L.cross_out.forward(A.cross_context.data(), Nt, out, ctx);
                  });
    block_forward(pre, L.ffn_norm, A.mid2.data(), dec_h[l + 1].data(), Nt, C, A.ffn_block, dropout(kDecFfn, l), ctx,
                  [&](const float* in, float* out) { ffn_forward(L, act, in, out, Nt, F, A.ffn, ctx); });
  }
  const float* h = dec_h.back().data();
  if (pre) {
    resize(dec_out, Nt * C);
    resize(dec_mean, Nt);
    resize(dec_rstd, Nt);
    w.decoder_norm.forward_train(h, dec_out.data(), Nt, dec_mean.data(), dec_rstd.data(), ctx);
    h = dec_out.data();
  }
  // logits (Nt, V) = h W_out^T
  resize(logits, Nt * V);
  kernels::gemm(false, true, Nt, V, C, 1.0f, h, C, w.out_proj.data<float>(), C, 0.0f, logits.data(), V, ctx);
}

void Graph::backward(const Seq2SeqConfig& c, const Weights& w, const Weights& g, const ExecContext& ctx) {
  const int64_t C = c.d_model, F = c.ffn_dim, V = c.tgt_vocab_size;
  const int64_t Ns = B * S, Nt = B * T;
  const bool pre = c.normalize_before;
  const auto act = activation_of(c.activation);
  const float* mem = memory(c);

  // ---- output projection and the decoder's final LayerNorm
  const float* h = pre ? dec_out.data() : dec_h.back().data();
  resize(d, Nt * C);
  kernels::gemm(false, false, Nt, C, V, 1.0f, dlogits.data(), V, w.out_proj.data<float>(), C, 0.0f, d.data(), C, ctx);
  kernels::gemm(true, false, V, C, Nt, 1.0f, dlogits.data(), V, h, C, 1.0f, g.out_proj.data<float>(), C, ctx);
  if (pre) {
    resize(s1, Nt * C);
    w.decoder_norm.backward(dec_h.back().data(), d.data(), dec_mean.data(), dec_rstd.data(), Nt, s1.data(),
                            g.decoder_norm, ctx);
    d.swap(s1);
  }

  // ---- decoder layers; the memory's gradient gathers in dmem
  resize(dmem, Ns * C);
  std::fill(dmem.begin(), dmem.end(), 0.0f);
  resize(dctx, std::max(Ns, Nt) * C);
  for (std::size_t l = w.decoder.size(); l-- > 0;) {
    const DecoderLayer& L = w.decoder[l];
    const DecoderLayer& G = g.decoder[l];
    DecoderActs& A = dec[l];
    block_backward(pre, L.ffn_norm, G.ffn_norm, A.mid2.data(), d.data(), Nt, C, A.ffn_block, dropout(kDecFfn, l).p, s1,
                   s2, ctx, [&](const float* in, const float* dout, float* din) {
                     ffn_backward(L, G, act, in, dout, din, Nt, F, A.ffn, dI, ctx);
                   });
    block_backward(pre, L.cross_norm, G.cross_norm, A.mid1.data(), d.data(), Nt, C, A.cross_block,
                   dropout(kDecCross, l).p, s1, s2, ctx, [&](const float* in, const float* dout, float* din) {
                     L.cross_out.backward(A.cross_context.data(), dout, Nt, dctx.data(), false, G.cross_out, ctx);
                     L.cross_attn.backward(in, mem, A.cross, dctx.data(), B, T, S, din, dmem.data(), G.cross_attn, ctx);
                   });
    block_backward(pre, L.self_norm, G.self_norm, dec_h[l].data(), d.data(), Nt, C, A.self_block,
                   dropout(kDecSelf, l).p, s1, s2, ctx, [&](const float* in, const float* dout, float* din) {
                     L.self_out.backward(A.self_context.data(), dout, Nt, dctx.data(), false, G.self_out, ctx);
                     L.self_attn.backward(in, A.self, dctx.data(), B, T, tgt_pos, *rope, din, G.self_attn, ctx);
                   });
  }
  // Target embeddings: undo dropout, scatter scale * d into the table.
  const float scale = embed_scale(c);
  if (drop_p > 0) kernels::dropout_backward(d.data(), tgt_keep.data(), d.data(), Nt * C, drop_p);
  float* gt = g.tgt_embed.data<float>();
  for (int64_t r = 0; r < Nt; ++r)
    for (int64_t k = 0; k < C; ++k) gt[tgt_in[r] * C + k] += scale * d[r * C + k];

  // ---- encoder
  d.swap(dmem);  // d: the gradient of the memory (Ns, C)
  resize(d, Ns * C);
  if (pre) {
    resize(s1, Ns * C);
    w.encoder_norm.backward(enc_h.back().data(), d.data(), enc_mean.data(), enc_rstd.data(), Ns, s1.data(),
                            g.encoder_norm, ctx);
    std::memcpy(d.data(), s1.data(), static_cast<std::size_t>(Ns * C) * sizeof(float));
  }
  for (std::size_t l = w.encoder.size(); l-- > 0;) {
    const EncoderLayer& L = w.encoder[l];
    const EncoderLayer& G = g.encoder[l];
    EncoderActs& A = enc[l];
    block_backward(pre, L.ffn_norm, G.ffn_norm, A.mid.data(), d.data(), Ns, C, A.ffn_block, dropout(kEncFfn, l).p, s1,
                   s2, ctx, [&](const float* in, const float* dout, float* din) {
                     ffn_backward(L, G, act, in, dout, din, Ns, F, A.ffn, dI, ctx);
                   });
    block_backward(pre, L.self_norm, G.self_norm, enc_h[l].data(), d.data(), Ns, C, A.attn_block,
                   dropout(kEncAttn, l).p, s1, s2, ctx, [&](const float* in, const float* dout, float* din) {
                     L.self_out.backward(A.context.data(), dout, Ns, dctx.data(), false, G.self_out, ctx);
                     L.self_attn.backward(in, A.attn, dctx.data(), B, S, src_pos, *rope, din, G.self_attn, ctx);
                   });
  }
  if (drop_p > 0) kernels::dropout_backward(d.data(), src_keep.data(), d.data(), Ns * C, drop_p);
  float* gs = g.src_embed.data<float>();
  for (int64_t r = 0; r < Ns; ++r)
    for (int64_t k = 0; k < C; ++k) gs[src[r] * C + k] += scale * d[r * C + k];
}

}  // namespace roformer::seq2seq
