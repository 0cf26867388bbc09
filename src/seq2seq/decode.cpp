// Incremental decoding with caches, and batched greedy / beam search.
// Shape letters: B sources, K beams, N = B*K decoder rows, S source length,
// C width, F FFN width, V target vocabulary.
#include "roformer/seq2seq_decode.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <optional>

#include "kernels/gemm.h"
#include "nn/self_attention.h"
#include "roformer/error.h"
#include "seq2seq/blocks.h"
#include "seq2seq/model_impl.h"

namespace roformer {

using seq2seq::resize;

struct IncrementalDecoder::Impl {
  const Seq2SeqModel::Impl* m = nullptr;
  ExecContext ctx;
  int64_t B = 0, K = 1, N = 0, S = 0, steps = 0;
  std::vector<uint8_t> valid;                    // (N, S): 1 for real source tokens
  std::vector<std::vector<float>> cross_k, cross_v;  // per layer (N, S, C)
  std::vector<nn::LayerKvCache> caches;          // per layer, decoder self-attention
  std::optional<RopeTable> rope;
  Tensor position;                               // I64 [1]
  std::vector<float> x, normed, fout, context, q, f_pre, logits;

  void ffn(const seq2seq::DecoderLayer& L, const float* in, float* out, int64_t rows);
};

namespace {

// Inference FFN for any layer type: out = fc2(act(fc1(in))).
template <class Layer>
void ffn_infer(const Layer& L, kernels::Activation act, const float* in, float* out, int64_t rows, int64_t F,
               std::vector<float>& buf, const ExecContext& ctx) {
  resize(buf, rows * F);
  L.fc1.forward(in, rows, buf.data(), ctx);
  kernels::activation_forward(act, buf.data(), rows * F, ctx);
  L.fc2.forward(buf.data(), rows, out, ctx);
}

}  // namespace

IncrementalDecoder::IncrementalDecoder(const Seq2SeqModel& model, const Tensor& src, int64_t beams,
                                       const ExecContext& ctx)
    : impl_(std::make_unique<Impl>()) {
  Impl& d = *impl_;
  d.m = &model.impl();
  d.ctx = ctx;
  const Seq2SeqConfig& c = d.m->config;
  const seq2seq::Weights& w = d.m->w;
  ROFORMER_CHECK(beams >= 1, "decoder: beams must be at least 1");
  ROFORMER_CHECK(src.defined() && src.dtype() == DType::I64 && src.dim() == 2 && src.size(0) > 0 && src.size(1) > 0,
                 "decoder: src must be a non-empty int64 (batch, length) tensor");
  const Tensor s = src.is_contiguous() ? src : src.clone();
  d.B = s.size(0);
  d.S = s.size(1);
  d.K = beams;
  d.N = d.B * d.K;
  const int64_t B = d.B, S = d.S, C = c.d_model, F = c.ffn_dim, Ns = B * S;
  const int64_t* ids = s.data<int64_t>();
  std::vector<uint8_t> src_valid(static_cast<std::size_t>(Ns));
  for (int64_t i = 0; i < Ns; ++i) {
    ROFORMER_CHECK(ids[i] >= 0 && ids[i] < c.src_vocab_size,
                   "decoder: source token id " + std::to_string(ids[i]) + " outside the vocabulary");
    src_valid[static_cast<std::size_t>(i)] = ids[i] != c.pad_token_id;
  }
  for (int64_t b = 0; b < B; ++b)
    ROFORMER_CHECK(src_valid[static_cast<std::size_t>(b * S)] != 0, "decoder: source row " + std::to_string(b) + " is empty");
  d.rope.emplace(RopeSpec{c.head_dim(), 0, c.rope_theta, RopeLayout::Interleaved});
  const auto act = seq2seq::activation_of(c.activation);

  // Encoder (inference path).
  std::vector<float> h(static_cast<std::size_t>(Ns * C));
  seq2seq::embed(c, w.src_embed, ids, B, S, 0, h.data());
  Tensor pos = Tensor::zeros({S}, DType::I64);
  for (int64_t i = 0; i < S; ++i) pos.data<int64_t>()[i] = i;
  const nn::AttentionMask mask{src_valid.data(), S, false};
  for (const auto& L : w.encoder) {
    seq2seq::block_infer(c.normalize_before, L.self_norm, h.data(), Ns, C, d.normed, d.fout, ctx,
                         [&](const float* in, float* out) {
                           resize(d.context, Ns * C);
                           L.self_attn.forward(in, B, S, pos, *d.rope, mask, nullptr, d.context.data(), nullptr, ctx);
                           L.self_out.forward(d.context.data(), Ns, out, ctx);
                         });
    seq2seq::block_infer(c.normalize_before, L.ffn_norm, h.data(), Ns, C, d.normed, d.fout, ctx,
                         [&](const float* in, float* out) { ffn_infer(L, act, in, out, Ns, F, d.f_pre, ctx); });
  }
  if (c.normalize_before) w.encoder_norm.forward(h.data(), h.data(), Ns, ctx);

  // Cross-attention keys/values: projected once per source, copied to its K rows.
  const int64_t L = static_cast<int64_t>(w.decoder.size());
  d.cross_k.resize(static_cast<std::size_t>(L));
  d.cross_v.resize(static_cast<std::size_t>(L));
  std::vector<float> k(static_cast<std::size_t>(Ns * C)), v(k.size());
  const std::size_t block = static_cast<std::size_t>(S * C);
  for (int64_t l = 0; l < L; ++l) {
    w.decoder[static_cast<std::size_t>(l)].cross_attn.project_memory(h.data(), B, S, k.data(), v.data(), ctx);
    auto& ck = d.cross_k[static_cast<std::size_t>(l)];
    auto& cv = d.cross_v[static_cast<std::size_t>(l)];
    ck.resize(static_cast<std::size_t>(d.N) * block);
    cv.resize(ck.size());
    for (int64_t r = 0; r < d.N; ++r) {
      std::memcpy(ck.data() + r * block, k.data() + (r / d.K) * block, block * sizeof(float));
      std::memcpy(cv.data() + r * block, v.data() + (r / d.K) * block, block * sizeof(float));
    }
  }
  d.valid.resize(static_cast<std::size_t>(d.N * S));
  for (int64_t r = 0; r < d.N; ++r)
    std::memcpy(d.valid.data() + r * S, src_valid.data() + (r / d.K) * S, static_cast<std::size_t>(S));
  d.caches.resize(static_cast<std::size_t>(L));
  d.position = Tensor::zeros({1}, DType::I64);
}

IncrementalDecoder::~IncrementalDecoder() = default;
IncrementalDecoder::IncrementalDecoder(IncrementalDecoder&&) noexcept = default;
IncrementalDecoder& IncrementalDecoder::operator=(IncrementalDecoder&&) noexcept = default;

int64_t IncrementalDecoder::rows() const { return impl_->N; }
int64_t IncrementalDecoder::steps() const { return impl_->steps; }

const float* IncrementalDecoder::step(const std::vector<int64_t>& tokens) {
  Impl& d = *impl_;
  const Seq2SeqConfig& c = d.m->config;
  const seq2seq::Weights& w = d.m->w;
  const int64_t N = d.N, C = c.d_model, F = c.ffn_dim, V = c.tgt_vocab_size;
  ROFORMER_CHECK(static_cast<int64_t>(tokens.size()) == N,
                 "decoder: step needs one token per row (" + std::to_string(N) + "), got " + std::to_string(tokens.size()));
  for (int64_t t : tokens)
    ROFORMER_CHECK(t >= 0 && t < V, "decoder: token id " + std::to_string(t) + " outside the target vocabulary");
  const auto act = seq2seq::activation_of(c.activation);
  const ExecContext& ctx = d.ctx;
  resize(d.x, N * C);
  seq2seq::embed(c, w.tgt_embed, tokens.data(), N, 1, d.steps, d.x.data());
  d.position.data<int64_t>()[0] = d.steps;
  const nn::AttentionMask causal{nullptr, 0, true};
  for (std::size_t l = 0; l < w.decoder.size(); ++l) {
    const auto& L = w.decoder[l];
    seq2seq::block_infer(c.normalize_before, L.self_norm, d.x.data(), N, C, d.normed, d.fout, ctx,
                         [&](const float* in, float* out) {
                           resize(d.context, N * C);
                           L.self_attn.forward(in, N, 1, d.position, *d.rope, causal, &d.caches[l], d.context.data(),
                                               nullptr, ctx);
                           L.self_out.forward(d.context.data(), N, out, ctx);
                         });
    seq2seq::block_infer(c.normalize_before, L.cross_norm, d.x.data(), N, C, d.normed, d.fout, ctx,
                         [&](const float* in, float* out) {
                           resize(d.context, N * C);
                           L.cross_attn.attend(in, N, 1, d.cross_k[l].data(), d.cross_v[l].data(), d.S, d.valid.data(),
                                               d.context.data(), d.q, ctx);
                           L.cross_out.forward(d.context.data(), N, out, ctx);
                         });
    seq2seq::block_infer(c.normalize_before, L.ffn_norm, d.x.data(), N, C, d.normed, d.fout, ctx,
                         [&](const float* in, float* out) { ffn_infer(L, act, in, out, N, F, d.f_pre, ctx); });
  }
  if (c.normalize_before) w.decoder_norm.forward(d.x.data(), d.x.data(), N, ctx);
  resize(d.logits, N * V);
  kernels::gemm(false, true, N, V, C, 1.0f, d.x.data(), C, w.out_proj.data<float>(), C, 0.0f, d.logits.data(), V, ctx);
  ++d.steps;
  return d.logits.data();
}

void IncrementalDecoder::reorder(const std::vector<int64_t>& from) {
  Impl& d = *impl_;
  ROFORMER_CHECK(static_cast<int64_t>(from.size()) == d.N, "decoder: reorder needs one source row per row");
  for (int64_t r = 0; r < d.N; ++r) {
    const int64_t f = from[static_cast<std::size_t>(r)];
    ROFORMER_CHECK(f >= 0 && f < d.N && f / d.K == r / d.K, "decoder: row " + std::to_string(r) +
                                                                " can only continue a row of the same source");
  }
  for (auto& cache : d.caches) cache.gather_rows(from);
}

// ------------------------------------------------------------------ beam search

std::vector<Hypothesis> beam_search(const Seq2SeqModel& model, const std::vector<std::vector<int64_t>>& sources,
                                    const DecodeOptions& o, const ExecContext& ctx) {
  const Seq2SeqConfig& c = model.config();
  ROFORMER_CHECK(o.beam >= 1 && o.beam <= 1024, "decode: beam must be in [1, 1024]");
  ROFORMER_CHECK(std::isfinite(o.lenpen), "decode: lenpen must be a finite number");
  ROFORMER_CHECK(std::isfinite(o.max_len_a) && o.max_len_a >= 0 && o.max_len_b >= 0,
                 "decode: max_len_a and max_len_b must be >= 0");
  ROFORMER_CHECK(o.min_len >= 0, "decode: min_len must be >= 0");
  if (sources.empty()) return {};
  const auto B = static_cast<int64_t>(sources.size());
  const int64_t K = o.beam, N = B * K, V = c.tgt_vocab_size;
  std::vector<std::vector<int64_t>> no_targets(sources.size());
  const Seq2SeqBatch batch = make_seq2seq_batch(sources, no_targets, c);
  IncrementalDecoder dec(model, batch.src, K, ctx);

  std::vector<int64_t> max_len(static_cast<std::size_t>(B));
  int64_t longest = 0;
  for (int64_t b = 0; b < B; ++b) {
    const double src_len = static_cast<double>(sources[static_cast<std::size_t>(b)].size() + 1);
    max_len[b] = std::max<int64_t>(1, static_cast<int64_t>(o.max_len_a * src_len + static_cast<double>(o.max_len_b)));
    longest = std::max(longest, max_len[b]);
  }
  constexpr double kNegInf = -std::numeric_limits<double>::infinity();
  std::vector<double> score(static_cast<std::size_t>(N), kNegInf), next_score(score.size());
  for (int64_t b = 0; b < B; ++b) score[b * K] = 0;  // one live beam per source at the start
  std::vector<std::vector<int64_t>> hist(static_cast<std::size_t>(N)), next_hist(hist.size());
  std::vector<int64_t> tokens(static_cast<std::size_t>(N), c.bos_token_id), from(tokens.size());
  std::vector<std::vector<Hypothesis>> finished(static_cast<std::size_t>(B));
  std::vector<bool> done(static_cast<std::size_t>(B), false);
  std::vector<double> lp(static_cast<std::size_t>(K * V));
  std::vector<int64_t> order(lp.size());

  for (int64_t step = 0; step <= longest; ++step) {
    const float* logits = dec.step(tokens);
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t j = 0; j < K; ++j) from[b * K + j] = b * K + j;
      if (done[b]) continue;
      // Candidate scores: beam score + log_softmax, with fairseq's bans.
      for (int64_t j = 0; j < K; ++j) {
        const int64_t r = b * K + j;
        double* row = lp.data() + j * V;
        const float* x = logits + r * V;
        if (score[r] == kNegInf) {
          std::fill(row, row + V, kNegInf);
          continue;
        }
        const double mx = *std::max_element(x, x + V);
        double sum = 0;
        for (int64_t v = 0; v < V; ++v) sum += std::exp(static_cast<double>(x[v]) - mx);
        const double lse = mx + std::log(sum);
        for (int64_t v = 0; v < V; ++v) row[v] = score[r] + (static_cast<double>(x[v]) - lse);
        row[c.pad_token_id] = kNegInf;
        if (step < o.min_len) row[c.eos_token_id] = kNegInf;
        if (step >= max_len[b])  // only eos is left
          for (int64_t v = 0; v < V; ++v)
            if (v != c.eos_token_id) row[v] = kNegInf;
      }
      const int64_t want = std::min<int64_t>(2 * K, K * V);
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + want, order.end(), [&](int64_t a, int64_t z) {
        return lp[a] > lp[z] || (lp[a] == lp[z] && a < z);
      });
      auto& fin = finished[static_cast<std::size_t>(b)];
      int64_t taken = 0;
      for (int64_t i = 0; i < want; ++i) {
        const int64_t cand = order[i];
        const double s = lp[cand];
        if (s == kNegInf) break;
        const int64_t j = cand / V, v = cand % V, r = b * K + j;
        if (v == c.eos_token_id) {
          // Only eos among the top K ends a hypothesis (fairseq).
          if (i < K && static_cast<int64_t>(fin.size()) < K) {
            const double len = static_cast<double>(step + 1);
            fin.push_back(Hypothesis{hist[r], s / std::pow(len, o.lenpen), s});
          }
          continue;
        }
        if (taken < K) {
          const int64_t dst = b * K + taken;
          from[dst] = r;
          next_score[dst] = s;
          next_hist[dst] = hist[r];
          next_hist[dst].push_back(v);
          tokens[dst] = v;
          ++taken;
        }
      }
      if (static_cast<int64_t>(fin.size()) >= K || step >= max_len[b] || taken == 0) {
        done[b] = true;
        taken = 0;
      }
      for (int64_t j = taken; j < K; ++j) {  // rows without a live candidate
        const int64_t dst = b * K + j;
        next_score[dst] = kNegInf;
        next_hist[dst].clear();
        tokens[dst] = c.eos_token_id;
        from[dst] = dst;
      }
      for (int64_t j = 0; j < K; ++j) {
        score[b * K + j] = next_score[b * K + j];
        hist[b * K + j].swap(next_hist[b * K + j]);
      }
    }
    for (int64_t r = 0; r < N; ++r)
      if (done[r / K]) tokens[r] = c.eos_token_id;  // finished rows idle on a valid token
    if (std::all_of(done.begin(), done.end(), [](bool x) { return x; })) break;
    dec.reorder(from);
  }

  std::vector<Hypothesis> best(static_cast<std::size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const auto& fin = finished[static_cast<std::size_t>(b)];
    ROFORMER_CHECK(!fin.empty(), "decode: no hypothesis ended for source " + std::to_string(b));
    best[b] = *std::max_element(fin.begin(), fin.end(), [](const Hypothesis& a, const Hypothesis& z) { return a.score < z.score; });
  }
  return best;
}

}  // namespace roformer
