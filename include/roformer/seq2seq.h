#pragma once
// The sequence-to-sequence RoFormer (paper section 4.1): a Transformer
// encoder-decoder whose self-attention rotates queries and keys with RoPE
// (encoder: bidirectional; decoder: causal), while cross-attention is left
// unrotated (source and target positions are different axes). A
// "sinusoidal" variant adds the Transformer's sinusoids to the embeddings
// and rotates nothing: the baseline the paper compares against.
//
// Layout follows fairseq's transformer (names too):
//   x = sqrt(C) * embed[id] (+ sinusoid) -> dropout -> layers -> (pre-LN: final LayerNorm)
//   post-LN sublayer: x = LN(x + dropout(f(x)))      (Transformer-base, the paper's setting)
//   pre-LN sublayer:  x = x + dropout(f(LN(x)))
//   encoder layer: self-attention, FFN;  decoder layer: causal self-attention, cross-attention, FFN
//   logits = h W_out^T (W_out tied to the target embedding unless untied; no bias)
//
// config.json (model_type "roformer_seq2seq"); every key is optional and
// takes the default of Seq2SeqConfig below:
//   src_vocab_size, tgt_vocab_size   embedding rows (equal when embeddings are shared)
//   d_model, encoder_layers, decoder_layers, num_heads (head size even), ffn_dim
//   activation                       "relu" | "gelu" | "gelu_new"
//   normalize_before                 false: post-LN, true: pre-LN
//   position_encoding                "rope" | "sinusoidal"
//   rope_theta                       RoPE base (10000)
//   share_all_embeddings             one table for source, target and output
//   share_decoder_input_output_embed the output projection is the target embedding
//   scale_embedding                  multiply embeddings by sqrt(d_model)
//   dropout                          residual/embedding dropout in training
//   layer_norm_eps, init_std (0: d_model^-0.5)
//   pad_token_id, bos_token_id (the decoder's first input), eos_token_id
//   architectures                    ["RoFormerSeq2Seq"] (informative)
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "roformer/cpu.h"
#include "roformer/optim.h"
#include "roformer/tensor.h"

namespace roformer {

struct Seq2SeqConfig {
  int64_t src_vocab_size = 8000;
  int64_t tgt_vocab_size = 8000;
  int64_t d_model = 512;
  int64_t encoder_layers = 6;
  int64_t decoder_layers = 6;
  int64_t num_heads = 8;
  int64_t ffn_dim = 2048;
  std::string activation = "relu";
  bool normalize_before = false;
  std::string position_encoding = "rope";
  double rope_theta = 10000.0;
  bool share_all_embeddings = true;
  bool share_decoder_input_output_embed = true;
  bool scale_embedding = true;
  double dropout = 0.1;
  double layer_norm_eps = 1e-5;
  double init_std = 0.0;
  int64_t pad_token_id = 0;
  int64_t bos_token_id = 2;
  int64_t eos_token_id = 3;

  int64_t head_dim() const { return d_model / num_heads; }
  bool uses_rope() const { return position_encoding == "rope"; }
  // Throws Error naming the key at fault.
  void validate() const;
  static Seq2SeqConfig from_json_text(const std::string& text, const std::string& label = "config.json");
  static Seq2SeqConfig from_file(const std::string& path);
  std::string to_json_text() const;
};

// One batch, right-padded with pad_token_id (which also marks what attention
// and the loss ignore):
//   src     (B, S)  source tokens, each row ending with eos
//   tgt_in  (B, T)  decoder input: bos, y_1 .. y_n
//   tgt_out (B, T)  labels:        y_1 .. y_n, eos
struct Seq2SeqBatch {
  Tensor src, tgt_in, tgt_out;  // I64
};

// Pads and frames token lists (without specials) as above. Empty source
// lists are an Error (a source is at least its eos, but nothing to translate).
Seq2SeqBatch make_seq2seq_batch(const std::vector<std::vector<int64_t>>& sources,
                                const std::vector<std::vector<int64_t>>& targets, const Seq2SeqConfig& config);

// fairseq's label-smoothed cross-entropy (label_smoothed_nll_loss), per row:
//   lp = log_softmax(logits);  nll = -lp[t];  smooth = -sum_c lp[c];  eps_i = eps / (V - 1)
//   loss = (1 - eps - eps_i) * nll + eps_i * smooth
// Rows whose target is ignore_index (the padding) count for nothing.
struct LabelSmoothedLoss {
  double loss_sum = 0;  // summed over counted rows
  double nll_sum = 0;   // plain cross-entropy, summed
  int64_t tokens = 0;   // counted rows
  int64_t correct = 0;  // counted rows whose argmax is the target
  double loss() const { return tokens > 0 ? loss_sum / static_cast<double>(tokens) : 0.0; }
  double nll() const { return tokens > 0 ? nll_sum / static_cast<double>(tokens) : 0.0; }
};
// dlogits (may be null) = scale * d(loss_sum / tokens) / d(logits) =
// scale * (softmax - eps_i - (1 - eps - eps_i) * onehot) / tokens; 0 on ignored rows.
LabelSmoothedLoss label_smoothed_cross_entropy(const float* logits, const int64_t* targets, int64_t rows,
                                               int64_t classes, double epsilon, int64_t ignore_index,
                                               float* dlogits, float scale);

class Seq2SeqModel {
 public:
  // fairseq's initialisation: Xavier-uniform projections, zero biases,
  // LayerNorm 1/0, embeddings N(0, init_std) with a zero padding row.
  static Seq2SeqModel random_init(const Seq2SeqConfig& config, uint64_t seed);
  // An HF-style directory: config.json (model_type roformer_seq2seq) + model.safetensors.
  static Seq2SeqModel from_pretrained(const std::string& dir);
  // From tensors named as named_tensors() gives them; missing, unexpected or
  // mis-shaped tensors throw Error naming them.
  static Seq2SeqModel from_tensors(const Seq2SeqConfig& config, const std::vector<std::pair<std::string, Tensor>>& tensors);

  Seq2SeqModel(Seq2SeqModel&&) noexcept;
  Seq2SeqModel& operator=(Seq2SeqModel&&) noexcept;
  ~Seq2SeqModel();
  Seq2SeqModel clone() const;  // a deep copy

  const Seq2SeqConfig& config() const;
  // Every stored tensor once (tied ones under their first name), fairseq names.
  std::vector<std::pair<std::string, Tensor>> named_tensors() const;
  // Writes config.json and model.safetensors into dir (created if needed).
  void save_pretrained(const std::string& dir) const;

  // Teacher-forced logits (B, T, tgt_vocab) of a batch (tgt_out is not needed).
  Tensor forward(const Seq2SeqBatch& batch, const ExecContext& ctx) const;

  struct Impl;
  Impl& impl() const { return *impl_; }

 private:
  explicit Seq2SeqModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Training: the explicit forward (keeping activations, buffers reused from
// step to step), the label-smoothed loss and the backward pass into gradient
// buffers shaped like the weights.
class Seq2SeqTrainer {
 public:
  explicit Seq2SeqTrainer(const Seq2SeqModel& model);  // copies the weights
  ~Seq2SeqTrainer();
  Seq2SeqTrainer(Seq2SeqTrainer&&) noexcept;
  Seq2SeqTrainer& operator=(Seq2SeqTrainer&&) noexcept;

  // Forward, loss, backward; gradients accumulate, scaled by grad_scale
  // (the gradient is of the per-token mean loss).
  LabelSmoothedLoss forward_backward(const Seq2SeqBatch& batch, double label_smoothing, const ExecContext& ctx,
                                     float grad_scale = 1.0f);
  // Forward and loss only; never drops.
  LabelSmoothedLoss evaluate(const Seq2SeqBatch& batch, double label_smoothing, const ExecContext& ctx);
  void zero_grad();
  // Dropout (config.dropout) on or off; masks are drawn from (seed, step, site).
  void set_dropout(bool enabled, uint64_t seed);
  uint64_t dropout_step() const;
  void set_dropout_step(uint64_t step);

  // Every stored tensor once with its gradient buffer (views; fairseq names).
  std::vector<Parameter> parameters();
  // The live weights (decoding during training reads them without a copy).
  const Seq2SeqModel& model() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace roformer
