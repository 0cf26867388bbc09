// TrainableRoFormer: the training forward (keeping activations), the losses
// of every head, and the backward pass through heads, layers and embeddings.
// Shape letters: B batch rows (batch x choices for multiple choice), T time,
// E embedding size, H hidden, I intermediate, V vocab, L labels.
#include "roformer/training.h"

#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <optional>

#include "core/grow_buffer.h"
#include "kernels/elementwise.h"
#include "kernels/elementwise_backward.h"
#include "kernels/gemm.h"
#include "kernels/gemm_bf16.h"
#include "models/heads.h"
#include "models/losses.h"
#include "models/model_impl.h"
#include "roformer/data_rng.h"
#include "roformer/error.h"

namespace roformer {

namespace {

using models::RoFormerWeights;

kernels::Activation activation_of(const std::string& name) {
  return name == "gelu" ? kernels::Activation::Gelu
         : name == "gelu_new" ? kernels::Activation::GeluNew
                              : kernels::Activation::Relu;
}

struct LayerActs {
  nn::AttentionSaved attention;
  std::vector<float> context;                 // (B, T, H)
  std::vector<float> a_pre, a, a_mean, a_rstd;  // attention block: residual sum, LN out, LN stats
  std::vector<float> f_pre, f_act;            // (B, T, I)
  std::vector<float> y_pre, y_mean, y_rstd;   // FFN block residual sum and LN stats
  std::vector<uint8_t> a_keep, y_keep;        // hidden dropout masks of the two residual branches
};

// Dropout sites, for deriving independent mask seeds.
enum Site : uint64_t { kEmbeddings = 1, kAttention = 2, kAttnOut = 3, kFfnOut = 4, kPooled = 5, kMid = 6, kTokens = 7 };

}  // namespace

struct TrainableRoFormer::Impl {
  RoFormerConfig config;
  Task task = Task::Base;
  RoFormerWeights w;  // owned, writable
  RoFormerWeights g;  // gradients, same structure

  // Activations of the last forward (buffers reused between steps).
  int64_t B = 0, T = 0, choices = 1;
  std::vector<int64_t> ids, types;
  std::vector<uint8_t> valid;
  // Skipping the padding: right-padded rows run packed as one row of their
  // real tokens (RB = 1, RT of them); the heads read the last hidden state
  // scattered back to (B, T, H). Otherwise the encoder runs (RB, RT) = (B, T).
  bool skip_padding = false;
  bool packed = false;                      // this step's layout
  int64_t RB = 0, RT = 0;
  std::vector<int64_t> sequence_starts;     // packed: B + 1 row offsets
  std::vector<int64_t> source;              // packed row -> b * T + t
  std::vector<int64_t> packed_ids, packed_types;
  const int64_t* enc_ids = nullptr;         // (RB, RT) ids and token types the encoder reads
  const int64_t* enc_types = nullptr;
  Tensor positions;                         // (RT): each encoder row's position within its sequence
  std::vector<float> h_full, dh_packed;     // packed: the heads' (B, T, H) view and its gradient gathered
  std::optional<RopeTable> rope_table;  // kept across steps: its rows are computed once
  std::vector<float> emb_pre, emb, emb_mean, emb_rstd;  // (B, T, E)
  std::vector<std::vector<float>> hs;           // L + 1 hidden states (B, T, H)
  std::vector<LayerActs> layers;
  // Heads.
  std::vector<float> lm_pre, lm_act, lm_out, lm_mean, lm_rstd;  // LM transform (B, T, E)
  std::vector<float> pooled, mid_pre, mid_act;        // sequence classification / MC summary
  std::vector<float> logits, dlogits;
  // Dropout (training mode only).
  bool dropout_on = false;
  uint64_t dropout_seed = 0, dropout_step = 0;
  float hidden_p = 0, attention_p = 0;
  std::vector<uint8_t> emb_keep, pooled_keep, mid_keep, tok_keep;
  std::vector<float> h_drop;  // token classification: the dropped sequence output
  bool dropping() const { return dropout_on && hidden_p > 0; }
  uint64_t site_seed(uint64_t site, uint64_t layer = 0) const {
    return derive_seed(dropout_seed, dropout_step, site * 1000003ull + layer);
  }
  // In-place dropout of n values, recording the mask (no-op when off).
  void drop(float* x, std::vector<uint8_t>& keep, int64_t n, uint64_t seed) {
    if (!dropping()) return;
    grow_to(keep, n);
    kernels::dropout_forward(x, keep.data(), n, hidden_p, seed);
  }
  void undrop(float* dx, const std::vector<uint8_t>& keep, int64_t n) const {
    if (dropping()) kernels::dropout_backward(dx, keep.data(), dx, n, hidden_p);
  }
  // Backward scratch.
  std::vector<float> dh, dtmp, dtmp2, dI, dcontext, demb, demb_pre;
  std::vector<int64_t> shifted_labels;  // causal LM: labels moved one position left
  // Masked LM: only labelled positions need logits (the others add nothing to
  // the loss or the gradients), so the head runs on those rows alone.
  bool lm_subset = false;
  std::vector<int64_t> lm_rows, lm_labels;
  std::vector<float> lm_h, lm_dh;
  void select_lm_rows(const TrainLabels& labels);
  // bf16 products read each encoder weight in two products of a pass (the
  // forward one and the input gradient) and each saved activation in two or
  // more (its forward products and a weight gradient): both are rounded once
  // per pass here instead, the activations as the forward completes them.
  kernels::RoundedOperands rounded_operands;
  ExecContext step_context(const ExecContext& ctx);
  // x (rows x cols) is final until the next pass: round it now for every
  // product that reads it, when ctx keeps copies.
  void keep_rounded(const std::vector<float>& x, int64_t rows, int64_t cols, const ExecContext& ctx) {
    if (ctx.rounded == &rounded_operands) rounded_operands.round(x.data(), rows, cols, ctx);
  }
  std::vector<Tensor> grad_tensors;     // every gradient buffer once (zero_grad walks these)

  void prepare(const Batch& batch);
  bool loss_reads_real_positions_only(const TrainLabels& labels) const;
  void plan_layout(const TrainLabels& labels);
  void forward(const ExecContext& ctx);
  TrainStep loss(const TrainLabels& labels, bool want_grad, float scale, const ExecContext& ctx);
  void backward(const ExecContext& ctx);
  // From the last layer's output gradient dy (rows = RB * RT, overwritten)
  // down through the layers and embeddings.
  void backward_encoder(std::vector<float>& dy, int64_t rows, const ExecContext& ctx);
};

void TrainableRoFormer::Impl::prepare(const Batch& batch) {
  const RoFormerConfig& c = config;
  const Tensor& in = batch.input_ids;
  ROFORMER_CHECK(in.defined() && in.dtype() == DType::I64, "train: input_ids must be an int64 tensor");
  if (task == Task::MultipleChoice) {
    ROFORMER_CHECK(in.dim() == 3, "train: multiple choice input_ids must be (batch, choices, length)");
    choices = in.size(1);
  } else {
    ROFORMER_CHECK(in.dim() == 2, "train: input_ids must be (batch, length), got " + shape_str(in.shape()));
    choices = 1;
  }
  T = in.shape().back();
  B = in.numel() / std::max<int64_t>(T, 1);
  ROFORMER_CHECK(B > 0 && T > 0, "train: empty batch");
  const int64_t n = B * T;
  // Contiguous inputs (the usual case) are read in place: copying a Tensor
  // handle allocates, and the step loop should not.
  Tensor holder;
  auto int64_data = [&holder](const Tensor& t) -> const int64_t* {
    if (t.is_contiguous()) return t.data<int64_t>();
    holder = t.to(DType::I64);
    return holder.data<int64_t>();
  };
  const int64_t* id_data = int64_data(in);
  ids.assign(id_data, id_data + n);
  for (int64_t id : ids) ROFORMER_CHECK(id >= 0 && id < c.vocab_size, "train: input id " + std::to_string(id) + " outside the vocabulary");
  types.assign(static_cast<std::size_t>(n), 0);
  if (batch.token_type_ids.defined() && batch.token_type_ids.numel() > 0) {
    ROFORMER_CHECK(batch.token_type_ids.shape() == in.shape() && batch.token_type_ids.dtype() == DType::I64,
          "train: token_type_ids must be int64 with the shape of input_ids");
    const int64_t* tt = int64_data(batch.token_type_ids);
    types.assign(tt, tt + n);
    for (int64_t v : types) ROFORMER_CHECK(v >= 0 && v < c.type_vocab_size, "train: token type out of range");
  }
  valid.assign(static_cast<std::size_t>(n), 1);
  if (batch.attention_mask.defined() && batch.attention_mask.numel() > 0) {
    ROFORMER_CHECK(batch.attention_mask.shape() == in.shape() && batch.attention_mask.dtype() == DType::I64,
          "train: attention_mask must be int64 with the shape of input_ids");
    const int64_t* m = int64_data(batch.attention_mask);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t v = m[i];
      ROFORMER_CHECK(v == 0 || v == 1, "train: attention_mask values must be 0 or 1");
      valid[static_cast<std::size_t>(i)] = static_cast<uint8_t>(v);
    }
  }
}

// Whether the loss and its gradients depend on real positions alone, so that
// the padded ones need not be computed: labels there are all ignored, and
// the head reads no padded position. Question answering's softmax runs over
// every position, padding included (as HF's does): never.
bool TrainableRoFormer::Impl::loss_reads_real_positions_only(const TrainLabels& labels) const {
  switch (task) {
    case Task::SequenceClassification: return true;
    case Task::MultipleChoice: return !models::head_reads_padding(config, task);
    case Task::MaskedLM:
    case Task::CausalLM:
    case Task::TokenClassification: {
      const Tensor& l = labels.labels;
      if (!l.defined() || l.dtype() != DType::I64 || l.dim() != 2 || l.size(0) != B || l.size(1) != T ||
          !l.is_contiguous())
        return false;  // loss() reports what is wrong
      const int64_t K = task == Task::TokenClassification ? config.num_labels() : config.vocab_size;
      const int64_t* lab = l.data<int64_t>();
      for (int64_t i = 0; i < B * T; ++i)
        if (valid[static_cast<std::size_t>(i)] == 0 && lab[i] >= 0 && lab[i] < K) return false;  // a labelled pad
      return true;
    }
    case Task::Base:
    case Task::QuestionAnswering: return false;
  }
  return false;
}

void TrainableRoFormer::Impl::plan_layout(const TrainLabels& labels) {
  packed = false;
  if (skip_padding && config.attention_type == "softmax" && loss_reads_real_positions_only(labels)) {
    // Rows of the form 1…1 0…0, each with a real token, and padding somewhere.
    sequence_starts.assign(1, 0);
    bool right_padded = true, any_padding = false;
    for (int64_t b = 0; b < B && right_padded; ++b) {
      const uint8_t* row = valid.data() + b * T;
      const int64_t len = std::find(row, row + T, uint8_t{0}) - row;
      right_padded = len > 0 && std::find(row + len, row + T, uint8_t{1}) == row + T;
      any_padding = any_padding || len < T;
      sequence_starts.push_back(sequence_starts.back() + len);
    }
    packed = right_padded && any_padding;
  }
  if (!packed) {
    RB = B;
    RT = T;
    enc_ids = ids.data();
    enc_types = types.data();
    if (!positions.defined() || positions.numel() != T) positions = Tensor::zeros({T}, DType::I64);
    for (int64_t p = 0; p < T; ++p) positions.data<int64_t>()[p] = p;
    return;
  }
  RB = 1;
  RT = sequence_starts.back();
  source.resize(static_cast<std::size_t>(RT));
  packed_ids.resize(source.size());
  packed_types.resize(source.size());
  if (!positions.defined() || positions.numel() != RT) positions = Tensor::zeros({RT}, DType::I64);
  int64_t* pos = positions.data<int64_t>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t r = sequence_starts[b]; r < sequence_starts[b + 1]; ++r) {
      const int64_t t = r - sequence_starts[b];
      source[r] = b * T + t;
      packed_ids[r] = ids[b * T + t];
      packed_types[r] = types[b * T + t];
      pos[r] = t;
    }
  enc_ids = packed_ids.data();
  enc_types = packed_types.data();
}

void TrainableRoFormer::Impl::forward(const ExecContext& ctx) {
  const RoFormerConfig& c = config;
  // rows: the encoder's (all B·T, or the real tokens when packed); the heads
  // work on the (B, T) layout.
  const int64_t rows = RB * RT, E = c.embedding_dim(), H = c.hidden_size, I = c.intermediate_size;
  const auto act = activation_of(c.hidden_act);

  // Embeddings: LN(word[id] + type[tt]) -> optional projection.
  grow_to(emb_pre, rows * E);
  grow_to(emb, rows * E);
  grow_to(emb_mean, rows);
  grow_to(emb_rstd, rows);
  const float* word = w.word_embeddings.data<float>();
  const float* type = w.token_type_embeddings.data<float>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < E; ++k) emb_pre[r * E + k] = word[enc_ids[r] * E + k] + type[enc_types[r] * E + k];
  models::add_position_embeddings(c, w, positions.data<int64_t>(), RB, RT, emb_pre.data());
  w.embeddings_norm.forward_train(emb_pre.data(), emb.data(), rows, emb_mean.data(), emb_rstd.data(), ctx);
  drop(emb.data(), emb_keep, rows * E, site_seed(kEmbeddings));
  hs.resize(w.layers.size() + 1);
  for (auto& h : hs) grow_to(h, rows * H);
  if (w.embeddings_project) w.embeddings_project->forward(emb.data(), rows, hs[0].data(), ctx);
  else std::memcpy(hs[0].data(), emb.data(), static_cast<std::size_t>(rows * E) * sizeof(float));

  if (!rope_table) rope_table.emplace(c.rope_spec());
  RopeTable& rope = *rope_table;
  const nn::AttentionMask mask = packed ? nn::AttentionMask{nullptr, RT, c.is_decoder, sequence_starts.data(), B}
                                       : nn::AttentionMask{valid.data(), T, c.is_decoder};
  layers.resize(w.layers.size());
  for (std::size_t l = 0; l < w.layers.size(); ++l) {
    const auto& L = w.layers[l];
    LayerActs& A = layers[l];
    const float* x = hs[l].data();
    keep_rounded(hs[l], rows, H, ctx);  // Q, K and V, forward and weight gradients
    grow_to(A.context, rows * H);
    const nn::AttentionDropout attn_drop{dropout_on ? attention_p : 0.0f, site_seed(kAttention, l)};
    L.attention.forward_train(x, RB, RT, positions, rope, mask, A.attention, A.context.data(), ctx, attn_drop);
    keep_rounded(A.context, rows, H, ctx);
    grow_to(A.a_pre, rows * H);
    grow_to(A.a, rows * H);
    grow_to(A.a_mean, rows);
    grow_to(A.a_rstd, rows);
    L.attention_output.forward(A.context.data(), rows, A.a_pre.data(), ctx);
    drop(A.a_pre.data(), A.a_keep, rows * H, site_seed(kAttnOut, l));
    for (int64_t i = 0; i < rows * H; ++i) A.a_pre[i] += x[i];
    L.attention_norm.forward_train(A.a_pre.data(), A.a.data(), rows, A.a_mean.data(), A.a_rstd.data(), ctx);
    keep_rounded(A.a, rows, H, ctx);
    grow_to(A.f_pre, rows * I);
    grow_to(A.f_act, rows * I);
    L.intermediate.forward(A.a.data(), rows, A.f_pre.data(), ctx);
    std::memcpy(A.f_act.data(), A.f_pre.data(), static_cast<std::size_t>(rows * I) * sizeof(float));
    kernels::activation_forward(act, A.f_act.data(), rows * I, ctx);
    keep_rounded(A.f_act, rows, I, ctx);
    grow_to(A.y_pre, rows * H);
    grow_to(A.y_mean, rows);
    grow_to(A.y_rstd, rows);
    L.output.forward(A.f_act.data(), rows, A.y_pre.data(), ctx);
    drop(A.y_pre.data(), A.y_keep, rows * H, site_seed(kFfnOut, l));
    for (int64_t i = 0; i < rows * H; ++i) A.y_pre[i] += A.a[i];
    L.output_norm.forward_train(A.y_pre.data(), hs[l + 1].data(), rows, A.y_mean.data(), A.y_rstd.data(), ctx);
  }

  // Heads, up to the logits, on the (B, T) layout (zeros at padded positions when packed).
  const float* h = hs.back().data();
  if (packed) {
    h_full.assign(static_cast<std::size_t>(B * T * H), 0.0f);
    for (int64_t r = 0; r < rows; ++r)
      std::memcpy(h_full.data() + source[r] * H, h + r * H, static_cast<std::size_t>(H) * sizeof(float));
    h = h_full.data();
  }
  switch (task) {
    case Task::Base: break;
    case Task::MaskedLM:
    case Task::CausalLM: {
      const int64_t V = c.vocab_size;
      if (lm_subset) {  // gather the labelled rows
        const int64_t n = static_cast<int64_t>(lm_rows.size());
        grow_to(lm_h, n * H);
        for (int64_t i = 0; i < n; ++i)
          std::memcpy(lm_h.data() + i * H, h + lm_rows[static_cast<std::size_t>(i)] * H,
                      static_cast<std::size_t>(H) * sizeof(float));
        h = lm_h.data();
      }
      const int64_t head_rows = lm_subset ? static_cast<int64_t>(lm_rows.size()) : B * T;  // the rows the head runs on
      grow_to(lm_pre, head_rows * E);
      grow_to(lm_act, head_rows * E);
      grow_to(lm_out, head_rows * E);
      grow_to(lm_mean, head_rows);
      grow_to(lm_rstd, head_rows);
      w.lm_transform.forward(h, head_rows, lm_pre.data(), ctx);
      std::memcpy(lm_act.data(), lm_pre.data(), static_cast<std::size_t>(head_rows * E) * sizeof(float));
      kernels::activation_forward(act, lm_act.data(), head_rows * E, ctx);
      w.lm_norm.forward_train(lm_act.data(), lm_out.data(), head_rows, lm_mean.data(), lm_rstd.data(), ctx);
      grow_to(logits, head_rows * V);
      // The decoder (V x E, the word embeddings when tied) is read again by
      // the input gradient: round it once where these products run in bf16.
      if (ctx.rounded == &rounded_operands && kernels::gemm_bf16_pays_off(head_rows, V, E))
        rounded_operands.round(w.lm_decoder.data<float>(), V, E, ctx);
      kernels::gemm_bias(false, true, head_rows, V, E, lm_out.data(), E, w.lm_decoder.data<float>(), E,
                         w.lm_bias.data<float>(), logits.data(), V, ctx);
      break;
    }
    case Task::SequenceClassification: {
      grow_to(pooled, B * H);
      grow_to(mid_pre, B * H);
      grow_to(mid_act, B * H);
      for (int64_t b = 0; b < B; ++b) std::memcpy(&pooled[b * H], h + b * T * H, static_cast<std::size_t>(H) * sizeof(float));
      drop(pooled.data(), pooled_keep, B * H, site_seed(kPooled));
      w.classifier_dense.forward(pooled.data(), B, mid_pre.data(), ctx);
      mid_act = mid_pre;
      kernels::activation_forward(act, mid_act.data(), B * H, ctx);
      drop(mid_act.data(), mid_keep, B * H, site_seed(kMid));
      grow_to(logits, B * c.num_labels());
      w.classifier.forward(mid_act.data(), B, logits.data(), ctx);
      break;
    }
    case Task::TokenClassification:
      grow_to(logits, B * T * c.num_labels());
      h_drop.assign(h, h + B * T * H);
      drop(h_drop.data(), tok_keep, B * T * H, site_seed(kTokens));
      w.classifier.forward(h_drop.data(), B * T, logits.data(), ctx);
      break;
    case Task::QuestionAnswering:
      grow_to(logits, B * T * 2);
      w.classifier.forward(h, B * T, logits.data(), ctx);
      break;
    case Task::MultipleChoice: {
      ROFORMER_CHECK(c.summary_type == "last" || c.summary_type == "first", "train: multiple choice supports summary_type last or first");
      grow_to(pooled, B * H);
      const int64_t at = c.summary_type == "last" ? T - 1 : 0;
      for (int64_t b = 0; b < B; ++b)
        std::memcpy(&pooled[b * H], h + (b * T + at) * H, static_cast<std::size_t>(H) * sizeof(float));
      grow_to(logits, B);
      w.classifier.forward(pooled.data(), B, logits.data(), ctx);
      break;
    }
  }
}

TrainStep TrainableRoFormer::Impl::loss(const TrainLabels& labels, bool want_grad, float scale,
                                        const ExecContext& ctx) {
  const RoFormerConfig& c = config;
  const int64_t rows = B * T;
  TrainStep step;
  grow_to(dlogits, static_cast<int64_t>(logits.size()));
  float* d = want_grad ? dlogits.data() : nullptr;
  // Labels as int64 values, read in place when contiguous (no allocation in
  // the step loop); `holder` keeps a contiguous copy otherwise.
  auto int_labels = [&](const Tensor& x, std::initializer_list<int64_t> shape, const char* what,
                        Tensor& holder) -> const int64_t* {
    const bool ok = x.defined() && x.dtype() == DType::I64 &&
                    std::equal(x.shape().begin(), x.shape().end(), shape.begin(), shape.end());
    ROFORMER_CHECK(ok, std::string("train: ") + what + " must be int64 of shape " + shape_str(Shape(shape)) +
                           (x.defined() ? ", got " + shape_str(x.shape()) : ""));
    if (x.is_contiguous()) return x.data<int64_t>();
    holder = x.to(DType::I64);
    return holder.data<int64_t>();
  };
  Tensor holder, holder2;
  models::LossResult r;
  switch (task) {
    case Task::Base: throw Error("train: the base model has no head and no loss");
    case Task::MaskedLM:
    case Task::TokenClassification: {
      const int64_t K = task == Task::MaskedLM ? c.vocab_size : c.num_labels();
      const int64_t* lab = int_labels(labels.labels, {B, T}, "labels", holder);
      if (lm_subset)
        r = models::cross_entropy(logits.data(), lm_labels.data(), static_cast<int64_t>(lm_labels.size()), K, 1, d,
                                  scale, ctx.threads);
      else
        r = models::cross_entropy(logits.data(), lab, rows, K, 1, d, scale, ctx.threads);
      break;
    }
    case Task::CausalLM: {
      // Position t predicts label t + 1; the last position predicts nothing.
      const int64_t* lab = int_labels(labels.labels, {B, T}, "labels", holder);
      std::vector<int64_t>& shifted = shifted_labels;
      shifted.assign(static_cast<std::size_t>(rows), -100);
      for (int64_t b = 0; b < B; ++b)
        for (int64_t i = 0; i + 1 < T; ++i) shifted[b * T + i] = lab[b * T + i + 1];
      r = models::cross_entropy(logits.data(), shifted.data(), rows, c.vocab_size, 1, d, scale, ctx.threads);
      break;
    }
    case Task::SequenceClassification: {
      const int64_t K = c.num_labels();
      ROFORMER_CHECK(labels.labels.defined(), "train: sequence classification needs labels");
      const std::string kind = c.problem_type.value_or(K == 1 ? "regression" : labels.labels.dtype() == DType::I64
                                                                                  ? "single_label_classification"
                                                                                  : "multi_label_classification");
      if (kind == "regression") {
        const Tensor lab = labels.labels.to(DType::F32);
        ROFORMER_CHECK(lab.numel() == B * K, "train: regression labels must have one value per output");
        r = models::mse(logits.data(), lab.data<float>(), B * K, d, scale);
      } else if (kind == "multi_label_classification") {
        const Tensor lab = labels.labels.to(DType::F32);
        ROFORMER_CHECK(lab.numel() == B * K, "train: multi-label targets must be (batch, labels)");
        r = models::bce_with_logits(logits.data(), lab.data<float>(), B * K, d, scale);
      } else {
        const int64_t* lab = int_labels(labels.labels, {B}, "labels", holder);
        r = models::cross_entropy(logits.data(), lab, B, K, 1, d, scale);
      }
      break;
    }
    case Task::MultipleChoice: {
      const int64_t batches = B / choices;
      const int64_t* lab = int_labels(labels.labels, {batches}, "labels", holder);
      r = models::cross_entropy(logits.data(), lab, batches, choices, 1, d, scale);
      break;
    }
    case Task::QuestionAnswering: {
      // HF clamps positions to [0, T] and ignores T; the loss is the mean of the two.
      const int64_t* sp_in = int_labels(labels.start_positions, {B}, "start_positions", holder);
      const int64_t* ep_in = int_labels(labels.end_positions, {B}, "end_positions", holder2);
      std::vector<float> start(static_cast<std::size_t>(rows)), end(start.size()), ds(start.size()), dend(start.size());
      for (int64_t i = 0; i < rows; ++i) {
        start[i] = logits[2 * i];
        end[i] = logits[2 * i + 1];
      }
      auto clamp = [&](const int64_t* p) {
        std::vector<int64_t> v(p, p + B);
        for (auto& x : v) x = std::clamp<int64_t>(x, 0, T);
        return v;
      };
      const auto sp = clamp(sp_in), ep = clamp(ep_in);
      const auto rs = models::cross_entropy(start.data(), sp.data(), B, T, 1, d ? ds.data() : nullptr, 0.5f * scale);
      const auto re = models::cross_entropy(end.data(), ep.data(), B, T, 1, d ? dend.data() : nullptr, 0.5f * scale);
      r.loss = 0.5 * (rs.loss + re.loss);
      r.count = rs.count;
      r.correct = rs.correct;
      if (d)
        for (int64_t i = 0; i < rows; ++i) {
          d[2 * i] = ds[i];
          d[2 * i + 1] = dend[i];
        }
      break;
    }
  }
  step.loss = r.loss;
  step.examples = r.count;
  step.correct = r.correct;
  return step;
}

void TrainableRoFormer::Impl::backward(const ExecContext& ctx) {
  const RoFormerConfig& c = config;
  // The heads' gradient on the (B, T) layout; the encoder's rows below.
  const int64_t rows = B * T, E = c.embedding_dim(), H = c.hidden_size;
  const auto act = activation_of(c.hidden_act);
  const float* h = packed ? h_full.data() : hs.back().data();
  grow_to(dh, rows * H);
  std::fill_n(dh.data(), rows * H, 0.0f);

  switch (task) {
    case Task::Base: break;
    case Task::MaskedLM:
    case Task::CausalLM: {
      const int64_t V = c.vocab_size;
      const int64_t head_rows = lm_subset ? static_cast<int64_t>(lm_rows.size()) : B * T;  // the rows the head runs on
      grow_to(dtmp, head_rows * E);
      grow_to(dtmp2, head_rows * E);
      // logits = t Dec^T + bias
      kernels::gemm(false, false, head_rows, E, V, 1.0f, dlogits.data(), V, w.lm_decoder.data<float>(), E, 0.0f, dtmp.data(),
                    E, ctx);
      kernels::gemm(true, false, V, E, head_rows, 1.0f, dlogits.data(), V, lm_out.data(), E, 1.0f, g.lm_decoder.data<float>(), E,
                    ctx);
      kernels::bias_backward(dlogits.data(), head_rows, V, g.lm_bias.data<float>(), ctx);
      w.lm_norm.backward(lm_act.data(), dtmp.data(), lm_mean.data(), lm_rstd.data(), head_rows, dtmp2.data(), g.lm_norm,
                         ctx);
      kernels::activation_backward(act, lm_pre.data(), dtmp2.data(), dtmp2.data(), head_rows * E, ctx);
      if (lm_subset) {  // scatter the labelled rows' gradient back; the others stay zero
        grow_to(lm_dh, head_rows * H);
        w.lm_transform.backward(lm_h.data(), dtmp2.data(), head_rows, lm_dh.data(), false, g.lm_transform, ctx);
        for (int64_t i = 0; i < head_rows; ++i)
          std::memcpy(dh.data() + lm_rows[static_cast<std::size_t>(i)] * H, lm_dh.data() + i * H,
                      static_cast<std::size_t>(H) * sizeof(float));
      } else {
        w.lm_transform.backward(h, dtmp2.data(), head_rows, dh.data(), false, g.lm_transform, ctx);
      }
      break;
    }
    case Task::SequenceClassification: {
      grow_to(dtmp, B * H);
      grow_to(dtmp2, B * H);
      w.classifier.backward(mid_act.data(), dlogits.data(), B, dtmp.data(), false, g.classifier, ctx);
      undrop(dtmp.data(), mid_keep, B * H);
      kernels::activation_backward(act, mid_pre.data(), dtmp.data(), dtmp.data(), B * H, ctx);
      w.classifier_dense.backward(pooled.data(), dtmp.data(), B, dtmp2.data(), false, g.classifier_dense, ctx);
      undrop(dtmp2.data(), pooled_keep, B * H);
      for (int64_t b = 0; b < B; ++b)
        std::memcpy(&dh[b * T * H], &dtmp2[b * H], static_cast<std::size_t>(H) * sizeof(float));
      break;
    }
    case Task::TokenClassification:
      w.classifier.backward(h_drop.data(), dlogits.data(), rows, dh.data(), false, g.classifier, ctx);
      undrop(dh.data(), tok_keep, rows * H);
      break;
    case Task::QuestionAnswering:
      w.classifier.backward(h, dlogits.data(), rows, dh.data(), false, g.classifier, ctx);
      break;
    case Task::MultipleChoice: {
      grow_to(dtmp, B * H);
      w.classifier.backward(pooled.data(), dlogits.data(), B, dtmp.data(), false, g.classifier, ctx);
      const int64_t at = c.summary_type == "last" ? T - 1 : 0;
      for (int64_t b = 0; b < B; ++b)
        std::memcpy(&dh[(b * T + at) * H], &dtmp[b * H], static_cast<std::size_t>(H) * sizeof(float));
      break;
    }
  }

  if (packed) {  // the real positions' gradient (the padded ones' is zero: nothing read them)
    grow_to(dh_packed, RT * H);
    for (int64_t r = 0; r < RT; ++r)
      std::memcpy(dh_packed.data() + r * H, dh.data() + source[r] * H, static_cast<std::size_t>(H) * sizeof(float));
  }
  const int64_t enc_rows = RB * RT;
  std::vector<float>& dy = packed ? dh_packed : dh;  // gradient of the current layer's output, becomes its input's
  backward_encoder(dy, enc_rows, ctx);
}

void TrainableRoFormer::Impl::backward_encoder(std::vector<float>& dy, int64_t rows, const ExecContext& ctx) {
  const RoFormerConfig& c = config;
  const int64_t E = c.embedding_dim(), H = c.hidden_size, I = c.intermediate_size;
  const auto act = activation_of(c.hidden_act);
  if (!rope_table) rope_table.emplace(c.rope_spec());
  RopeTable& rope = *rope_table;
  grow_to(dtmp, rows * H);
  grow_to(dtmp2, rows * H);
  grow_to(dI, rows * I);
  grow_to(dcontext, rows * H);
  for (std::size_t li = w.layers.size(); li-- > 0;) {
    const auto& L = w.layers[li];
    const auto& G = g.layers[li];
    LayerActs& A = layers[li];
    // y = LN2(out(act(inter(a))) + a)
    float* dy_pre = dtmp.data();
    L.output_norm.backward(A.y_pre.data(), dy.data(), A.y_mean.data(), A.y_rstd.data(), rows, dy_pre, G.output_norm, ctx);
    // y_pre = drop(out(f)) + a: the residual gets dy_pre, the branch its dropped version.
    std::memcpy(dcontext.data(), dy_pre, static_cast<std::size_t>(rows * H) * sizeof(float));
    undrop(dcontext.data(), A.y_keep, rows * H);
    L.output.backward(A.f_act.data(), dcontext.data(), rows, dI.data(), false, G.output, ctx);
    kernels::activation_backward(act, A.f_pre.data(), dI.data(), dI.data(), rows * I, ctx);
    // da = dy_pre (residual) + inter's input gradient
    L.intermediate.backward(A.a.data(), dI.data(), rows, dy_pre, true, G.intermediate, ctx);
    // a = LN1(dense(ctx) + x)
    float* da_pre = dtmp2.data();
    L.attention_norm.backward(A.a_pre.data(), dy_pre, A.a_mean.data(), A.a_rstd.data(), rows, da_pre, G.attention_norm,
                              ctx);
    // dx = da_pre (residual) + attention's input gradient; dctx from the output dense
    std::memcpy(dy.data(), da_pre, static_cast<std::size_t>(rows * H) * sizeof(float));  // residual
    undrop(da_pre, A.a_keep, rows * H);
    L.attention_output.backward(A.context.data(), da_pre, rows, dcontext.data(), false, G.attention_output, ctx);
    L.attention.backward(hs[li].data(), A.attention, dcontext.data(), RB, RT, positions, rope, dy.data(), G.attention, ctx);
  }

  // Embeddings: projection, LayerNorm, then scatter into the tables.
  grow_to(demb, rows * E);
  grow_to(demb_pre, rows * E);
  if (w.embeddings_project) {
    w.embeddings_project->backward(emb.data(), dy.data(), rows, demb.data(), false, *g.embeddings_project, ctx);
  } else {
    std::memcpy(demb.data(), dy.data(), static_cast<std::size_t>(rows * E) * sizeof(float));
  }
  undrop(demb.data(), emb_keep, rows * E);
  w.embeddings_norm.backward(emb_pre.data(), demb.data(), emb_mean.data(), emb_rstd.data(), rows, demb_pre.data(),
                             g.embeddings_norm, ctx);
  float* gw = g.word_embeddings.data<float>();
  float* gt = g.token_type_embeddings.data<float>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < E; ++k) {
      gw[enc_ids[r] * E + k] += demb_pre[r * E + k];
      gt[enc_types[r] * E + k] += demb_pre[r * E + k];
    }
  if (c.position_embedding_type == "absolute") {
    float* gp = g.position_embeddings.data<float>();
    const int64_t* pos = positions.data<int64_t>();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < E; ++k) gp[pos[r % RT] * E + k] += demb_pre[r * E + k];
  }
}

TrainableRoFormer::TrainableRoFormer(const RoFormerModel& model) : impl_(std::make_unique<Impl>()) {
  impl_->config = model.impl_->config;
  impl_->task = model.impl_->task;
  impl_->w = models::clone_weights(impl_->config, impl_->task, model.impl_->weights);
  impl_->g = models::zeros_like(impl_->config, impl_->task, impl_->w);
  models::visit_tensors(impl_->config, impl_->task, impl_->g,
                        [this](const std::string&, Tensor& t) { impl_->grad_tensors.push_back(t); });
}
TrainableRoFormer::~TrainableRoFormer() = default;
TrainableRoFormer::TrainableRoFormer(TrainableRoFormer&&) noexcept = default;
TrainableRoFormer& TrainableRoFormer::operator=(TrainableRoFormer&&) noexcept = default;

const RoFormerConfig& TrainableRoFormer::config() const { return impl_->config; }
Task TrainableRoFormer::task() const { return impl_->task; }

void TrainableRoFormer::Impl::select_lm_rows(const TrainLabels& labels) {
  lm_subset = false;
  const Tensor& l = labels.labels;
  // Anything unusual (wrong shape or type) keeps every row; loss() reports it.
  if (task != Task::MaskedLM || !l.defined() || l.dtype() != DType::I64 || l.dim() != 2 || l.size(0) != B ||
      l.size(1) != T || !l.is_contiguous())
    return;
  lm_rows.clear();
  lm_labels.clear();
  const int64_t* lab = l.data<int64_t>();
  for (int64_t r = 0; r < B * T; ++r)
    if (lab[r] >= 0 && lab[r] < config.vocab_size) {
      lm_rows.push_back(r);
      lm_labels.push_back(lab[r]);
    }
  lm_subset = true;
}

ExecContext TrainableRoFormer::Impl::step_context(const ExecContext& ctx) {
  if (!ctx.bf16_products || !kernels::gemm_bf16_native(ctx)) return ctx;
  // Every call, from the current tensors: the optimizer has moved the weights
  // since the last step, and nothing registered then may linger.
  rounded_operands.clear();
  models::visit_tensors(config, task, w, [&](const std::string& name, Tensor& t) {
    if (t.dim() == 2 && name.find("encoder.layer.") != std::string::npos && name.ends_with(".weight"))
      rounded_operands.round(t.data<float>(), t.size(0), t.size(1), ctx);
  });
  ExecContext run = ctx;
  run.rounded = &rounded_operands;
  return run;
}

TrainStep TrainableRoFormer::forward_backward(const Batch& batch, const TrainLabels& labels, const ExecContext& exec,
                                              float grad_scale) {
  const ExecContext ctx = impl_->step_context(exec);
  impl_->prepare(batch);
  impl_->plan_layout(labels);
  impl_->select_lm_rows(labels);
  impl_->forward(ctx);
  TrainStep result = impl_->loss(labels, true, grad_scale, ctx);
  result.encoder_rows = impl_->RB * impl_->RT;
  impl_->backward(ctx);
  if (impl_->dropout_on) ++impl_->dropout_step;
  return result;
}

TrainStep TrainableRoFormer::evaluate(const Batch& batch, const TrainLabels& labels, const ExecContext& exec) {
  const ExecContext ctx = impl_->step_context(exec);
  // Evaluation never drops.
  const bool was_on = impl_->dropout_on;
  impl_->dropout_on = false;
  impl_->prepare(batch);
  impl_->plan_layout(labels);
  impl_->select_lm_rows(labels);
  impl_->forward(ctx);
  impl_->dropout_on = was_on;
  TrainStep result = impl_->loss(labels, false, 1.0f, ctx);
  result.encoder_rows = impl_->RB * impl_->RT;
  return result;
}

void TrainableRoFormer::set_dropout(bool enabled, uint64_t seed) {
  impl_->dropout_on = enabled;
  impl_->dropout_seed = seed;
  impl_->hidden_p = static_cast<float>(impl_->config.hidden_dropout_prob);
  impl_->attention_p = static_cast<float>(impl_->config.attention_probs_dropout_prob);
  ROFORMER_CHECK(impl_->hidden_p >= 0 && impl_->hidden_p < 1 && impl_->attention_p >= 0 && impl_->attention_p < 1,
        "train: dropout probabilities must be in [0, 1)");
}
uint64_t TrainableRoFormer::dropout_step() const { return impl_->dropout_step; }
void TrainableRoFormer::set_skip_padding(bool enabled) { impl_->skip_padding = enabled; }
bool TrainableRoFormer::skip_padding() const { return impl_->skip_padding; }
void TrainableRoFormer::set_dropout_step(uint64_t step) { impl_->dropout_step = step; }

void TrainableRoFormer::zero_grad() {
  for (Tensor& t : impl_->grad_tensors) std::memset(t.raw(), 0, t.nbytes());
}

std::vector<TrainableParameter> TrainableRoFormer::parameters() const {
  std::vector<TrainableParameter> out;
  std::vector<Tensor> grads;
  models::visit_tensors(impl_->config, impl_->task, impl_->g, [&](const std::string&, Tensor& t) { grads.push_back(t); });
  std::size_t i = 0;
  models::visit_tensors(impl_->config, impl_->task, impl_->w, [&](const std::string& name, Tensor& t) {
    // The sinusoidal table is a fixed buffer, not a parameter (requires_grad false in HF).
    if (name.find("embed_positions") == std::string::npos) out.push_back({name, t, grads[i]});
    ++i;
  });
  return out;
}

RoFormerModel TrainableRoFormer::snapshot() const {
  auto impl = std::make_unique<RoFormerModel::Impl>();
  impl->config = impl_->config;
  impl->task = impl_->task;
  impl->weights = models::clone_weights(impl_->config, impl_->task, impl_->w);
  return RoFormerModel(std::move(impl));
}

}  // namespace roformer
