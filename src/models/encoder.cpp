#include "models/encoder.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <vector>

#include "kernels/elementwise.h"
#include "kernels/packed_matmul.h"
#include "roformer/error.h"

namespace roformer::models {

namespace {

kernels::Activation activation_of(const std::string& name) {
  if (name == "gelu") return kernels::Activation::Gelu;
  if (name == "gelu_new") return kernels::Activation::GeluNew;
  if (name == "relu") return kernels::Activation::Relu;
  throw Error("unsupported activation " + name);
}

// RoPE's cos/sin rows, kept per thread from one forward to the next while the
// spec stays the same: built anew in every forward, a decoding step computed
// the angles of every earlier position again (0.5 to 1 ms per token at 512
// positions, against 7 to 22 ms for a base model's whole step).
RopeTable& rope_table(const RopeSpec& spec) {
  thread_local std::optional<RopeTable> table;
  if (!table || !(table->spec() == spec)) table.emplace(spec);
  return *table;
}

}  // namespace

std::vector<int64_t> packed_row_starts(const uint8_t* valid, int64_t B, int64_t T) {
  std::vector<int64_t> starts{0};
  bool any_padding = false;
  for (int64_t b = 0; b < B; ++b) {
    const uint8_t* row = valid + b * T;
    const int64_t len = std::find(row, row + T, uint8_t{0}) - row;
    if (std::find(row + len, row + T, uint8_t{1}) != row + T) return {};  // a real key after padding
    any_padding = any_padding || len < T;
    starts.push_back(starts.back() + len);
  }
  if (!any_padding) return {};
  return starts;
}

Tensor encoder_forward(const RoFormerConfig& c, const RoFormerWeights& w, const EncoderInput& in,
                       std::vector<nn::LayerKvCache>* caches, const ForwardOptions& options, ModelOutput& out,
                       const ExecContext& ctx) {
  const int64_t B = in.batch, T = in.length;
  const int64_t E = c.embedding_dim(), H = c.hidden_size, I = c.intermediate_size, NH = c.num_attention_heads;
  const kernels::Activation act = activation_of(c.hidden_act);

  // Packed: the real tokens back to back, as one sequence of `rows` rows to
  // every product, with each token's own position and the attention kept
  // within each row's run (mask.sequence_starts).
  const bool packed = !in.sequence_starts.empty();
  const int64_t rows = packed ? in.sequence_starts.back() : B * T;
  std::vector<int64_t> source;  // packed row -> its (b, t) index in the input
  Tensor positions = in.positions;
  nn::AttentionMask mask = in.mask;
  if (packed) {
    ROFORMER_CHECK(static_cast<int64_t>(in.sequence_starts.size()) == B + 1 && caches == nullptr &&
                       !options.hidden_states && !options.attentions,
                   "encoder: packed rows need one start per row, no cache, no hidden states or attentions");
    source.resize(static_cast<std::size_t>(rows));
    positions = Tensor::zeros({rows}, DType::I64);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t r = in.sequence_starts[b]; r < in.sequence_starts[b + 1]; ++r) {
        const int64_t t = r - in.sequence_starts[b];
        source[r] = b * T + t;
        positions.data<int64_t>()[r] = in.positions.data<int64_t>()[t];
      }
    mask = nn::AttentionMask{nullptr, rows, in.mask.causal, in.sequence_starts.data(), B};
  }
  const int64_t run_batch = packed ? 1 : B, run_len = packed ? rows : T;

  // Embeddings: LN(word[id] + token_type[type]) then the optional projection.
  Tensor emb = Tensor::zeros({run_batch, run_len, E});
  float* e = emb.data<float>();
  const float* word = w.word_embeddings.data<float>();
  const float* type = w.token_type_embeddings.data<float>();
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t at = packed ? source[r] : r;
    const int64_t id = in.input_ids[at];
    const int64_t tt = in.token_type_ids ? in.token_type_ids[at] : 0;
    const float* wr = word + id * E;
    const float* tr = type + tt * E;
    for (int64_t k = 0; k < E; ++k) e[r * E + k] = wr[k] + tr[k];
  }
  add_position_embeddings(c, w, positions.data<int64_t>(), run_batch, run_len, e);
  w.embeddings_norm.forward(e, e, rows, ctx);
  Tensor hidden = emb;
  if (w.embeddings_project) {
    hidden = Tensor::zeros({run_batch, run_len, H});
    w.embeddings_project->forward(e, rows, hidden.data<float>(), ctx);
  }

  RopeTable& rope = rope_table(c.rope_spec());
  const int64_t Tk = mask.key_len > 0 ? mask.key_len : run_len;
  ROFORMER_CHECK(!options.attentions || c.attention_type == "softmax", "attentions: linear attention has no attention probabilities");
  // The activations that do not outlive the forward live in a per-thread
  // buffer that the next forward reuses: once warm, a forward of the same or
  // smaller size allocates (and page-faults) only its outputs. Every value is
  // written before it is read.
  thread_local std::vector<float> scratch;
  const auto need = static_cast<std::size_t>(rows * (2 * H + std::max(I, 3 * H)));
  if (scratch.size() < need) scratch.resize(need);
  float* context = scratch.data();
  float* a = context + rows * H;
  float* f = a + rows * H;
  // The FFN activations are free while attention runs: q, k and v live there
  // (at least 3·B·T·H floats), so the forward's peak memory has no q/k/v of its own.
  float* qkv_space = f;
  // A LayerNorm whose output feeds native bf16 products (the FFN's first, the
  // next layer's Q/K/V) also writes it rounded to bf16 while each row is in
  // cache, sparing those products a conversion pass over the activations.
  thread_local kernels::PackedInput normed;
  auto bf16_target = [&](const nn::Linear& next, const float* y) -> uint16_t* {
    const kernels::PackedMatmul* p = next.packed_for(ctx);
    return p != nullptr ? p->bf16_destination(y, rows, normed) : nullptr;
  };
  // The attention's output feeds the output projection alone: where that
  // product reads native bf16 values the fused kernel stores them directly.
  thread_local kernels::PackedInput context16;
  const kernels::PackedInput* x_prepared = nullptr;  // the hidden stream, prepared for this layer's Q/K/V
  for (std::size_t l = 0; l < w.layers.size(); ++l) {
    const EncoderLayerWeights& L = w.layers[l];
    if (options.hidden_states) out.hidden_states.push_back(hidden.clone());
    float* x = hidden.data<float>();
    Tensor probs;
    if (options.attentions) probs = Tensor::zeros({B, NH, T, Tk});
    const kernels::PackedMatmul* dense = L.attention_output.packed_for(ctx);
    uint16_t* c16 = dense != nullptr ? dense->bf16_destination(context, rows, context16) : nullptr;
    const bool in_bf16 =
        L.attention.forward(x, run_batch, run_len, positions, rope, mask, caches ? &(*caches)[l] : nullptr, context,
                            options.attentions ? probs.data<float>() : nullptr, ctx, qkv_space, x_prepared, c16);
    if (options.attentions) out.attentions.push_back(probs);

    // a = LN(dense(ctx) + x); the activation and the residual add run in the
    // products' epilogues (fused on the packed path).
    if (in_bf16) dense->forward(context16, L.attention_output.bias_or_null(), a, ctx, {std::nullopt, x});
    else L.attention_output.forward(context, rows, a, ctx, {std::nullopt, x});
    uint16_t* a16 = bf16_target(L.intermediate, a);
    L.attention_norm.forward(a, a, rows, ctx, a16);
    // y = LN(out(act(inter(a))) + a), written back into the hidden stream.
    nn::feed_forward(L.intermediate, L.output, act, a, rows, f, x, a, ctx, a16 != nullptr ? &normed : nullptr);
    uint16_t* x16 = l + 1 < w.layers.size() ? bf16_target(w.layers[l + 1].attention.query, x) : nullptr;
    L.output_norm.forward(x, x, rows, ctx, x16);
    x_prepared = x16 != nullptr ? &normed : nullptr;
  }
  if (options.hidden_states) out.hidden_states.push_back(hidden.clone());
  if (!packed) return hidden;
  Tensor padded = Tensor::zeros({B, T, H});
  for (int64_t r = 0; r < rows; ++r)
    std::copy_n(hidden.data<float>() + r * H, H, padded.data<float>() + source[r] * H);
  return padded;
}

}  // namespace roformer::models
