#pragma once
// A RoFormer model with one of HuggingFace's task heads, loaded from (and
// saved to) an HF checkpoint directory. Forward passes are fp32, batched,
// padded on the right or anywhere (only the attention mask matters).
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "roformer/config.h"
#include "roformer/cpu.h"
#include "roformer/tensor.h"

namespace roformer {

enum class Task {
  Base,                    // RoFormerModel: hidden states only
  MaskedLM,                // RoFormerForMaskedLM: logits (B, T, V)
  CausalLM,                // RoFormerForCausalLM: logits (B, T, V), KV cache
  SequenceClassification,  // logits (B, labels)
  TokenClassification,     // logits (B, T, labels)
  QuestionAnswering,       // start_logits, end_logits (B, T)
  MultipleChoice,          // inputs (B, C, T) -> logits (B, C)
};

std::string_view task_name(Task task);          // the HF class name
Task task_from_name(std::string_view name);     // HF class name or short name (mlm, causal, cls, tok, qa, mc, base)

struct Batch {
  Tensor input_ids;       // I64 (B, T); multiple choice (B, C, T)
  Tensor attention_mask;  // I64, same shape; undefined = all ones
  Tensor token_type_ids;  // I64, same shape; undefined = all zeros
};

struct ForwardOptions {
  bool hidden_states = false;  // keep the input of every layer and the last output
  bool attentions = false;     // keep every layer's softmax probabilities (B, heads, T, Tk)
  // Language-model heads only: logits for the last k positions of each row,
  // (B, k, V), as HF's `logits_to_keep`; 0 keeps all. Generation needs only
  // the last one, and the vocabulary product is the largest of a prompt's.
  int64_t logits_to_keep = 0;
  // Right-padded rows (mask 1…1 0…0): the layers run on the real tokens
  // alone, the rows back to back, so no weight product spends time on
  // padding and each row attends within itself. Real positions get what the
  // padded forward gives them (the same values on the fused attention path);
  // padded positions of last_hidden_state hold zeros, and the heads see those
  // zeros (HF computes values there that nothing should read). Without a
  // cache, hidden_states and attentions; otherwise, or for other masks, the
  // padded forward runs and its padded positions are zeroed the same way.
  // Ignored by a multiple-choice head that summarises by the last position
  // or the mean (HF's default): it reads the padding.
  bool skip_padding = false;
};

struct ModelOutput {
  Tensor last_hidden_state;           // (B, T, hidden)
  std::vector<Tensor> hidden_states;  // L + 1 tensors when asked for
  std::vector<Tensor> attentions;     // L tensors when asked for
  std::map<std::string, Tensor> heads;  // "logits", or "start_logits" + "end_logits"
  std::vector<std::string> warnings;    // e.g. positions past max_position_embeddings
};

// Keys and values of earlier tokens for causal decoding (one per sequence batch).
class KvCache {
 public:
  KvCache();
  ~KvCache();
  KvCache(KvCache&&) noexcept;
  KvCache& operator=(KvCache&&) noexcept;
  int64_t length() const;  // tokens cached so far
  // Empties the cache for a new sequence, keeping its buffers and its
  // reservation: the next sequence writes into memory already paged in
  // (fresh memory costs a page fault per 4 KiB on first touch).
  void clear();
  // Room for this many tokens in all (cached and new), taken at the next
  // forward: decoding up to it never regrows the cache. A regrowth doubles
  // it, copying what it holds into freshly touched memory (on a base model
  // with a 512-token prompt, 130 ms once against 22 ms per step).
  void reserve(int64_t tokens);
  // How the keys and values are held: BF16 where the model's products run in
  // bf16 or int8 and its attention in bf16 (AVX512-BF16, head size a multiple
  // of 32), which rounds them to bf16 anyway; a decoding step then reads half
  // the bytes. F32 otherwise, and before the first forward.
  DType dtype() const;
  // Cached keys or values of `layer` as (B, heads, length, head_dim) (HF's past_key_values layout),
  // as floats whatever dtype() is.
  Tensor keys(int64_t layer, int64_t heads) const;
  Tensor values(int64_t layer, int64_t heads) const;

  struct State;
  State& state() { return *state_; }

 private:
  std::unique_ptr<State> state_;
};

struct LoadOptions {
  // Use this head instead of the one config.architectures names. Weights of
  // other heads are then ignored, and a head the checkpoint lacks is an error.
  std::optional<Task> task;
  // Read the weights from this file (model.safetensors, pytorch_model.bin, or
  // a sharded index) instead of picking one in the directory.
  std::string weights_file;
  // A JSON object whose keys replace config.json's before the model is built,
  // e.g. {"rope_scaling": {"type": "ntk", "factor": 4}} for inference at
  // lengths past training.
  std::string config_overrides;
  // Inference in bf16 (see RoFormerModel::set_bf16_matmuls).
  bool bf16_matmuls = false;
  // The code behind those bf16 products: "auto" (the engine's choice, now
  // oneDNN), "onednn", or "panels": our own AVX512-BF16 kernel (an error on
  // CPUs without AVX512-BF16).
  std::string bf16_kernel = "auto";
  // Inference with int8 products (see RoFormerModel::set_int8_matmuls); not
  // together with bf16_matmuls.
  bool int8_matmuls = false;
  // fp32 inference with weights packed once for oneDNN (see
  // RoFormerModel::set_packed_matmuls), where oneDNN is this CPU's default
  // GEMM library. Ignored with bf16_matmuls or int8_matmuls.
  bool packed_matmuls = true;
};

class RoFormerModel {
 public:
  // `path`: an HF directory (config.json + model.safetensors[.index.json] or
  // pytorch_model.bin[.index.json]). Throws Error naming any missing,
  // unexpected or mis-shaped tensor.
  static RoFormerModel from_pretrained(const std::string& path, const LoadOptions& options = {});
  // From tensors named as in HF's state dict (F32, F16 or BF16).
  static RoFormerModel from_tensors(const RoFormerConfig& config, Task task,
                                    const std::map<std::string, Tensor>& tensors, bool ignore_other_heads = false);

  // Freshly initialised weights (HF's scheme), reproducible from the seed.
  static RoFormerModel random_init(const RoFormerConfig& config, Task task, uint64_t seed);

  RoFormerModel(RoFormerModel&&) noexcept;
  RoFormerModel& operator=(RoFormerModel&&) noexcept;
  ~RoFormerModel();

  const RoFormerConfig& config() const;
  Task task() const;

  // cache: only for CausalLM; new tokens continue after cache->length().
  // The attention mask may cover the new tokens only or past + new.
  ModelOutput forward(const Batch& batch, const ForwardOptions& options, const ExecContext& ctx,
                      KvCache* cache = nullptr) const;

  // Reduced precision for inference: every product with a weight matrix
  // (attention projections, FFN, heads, LM decoder) rounds weights and
  // activations to bf16 and accumulates in fp32, on AVX512-BF16 or AMX where
  // the CPU has them. LayerNorm, softmax, RoPE, GELU and the residual stream
  // stay fp32; the fp32 weights are kept (saving and training use them).
  // kernel: as LoadOptions::bf16_kernel.
  void set_bf16_matmuls(bool on, std::string_view kernel = "auto");
  bool bf16_matmuls() const;
  // Dynamic int8 quantization for inference: the same products with weights
  // quantized to int8 per output row (once) and activations to uint8 per token
  // (on every call), multiplied into exact int32 sums on AVX512-VNNI or
  // AVX-VNNI (AVX2 16-bit pair products elsewhere) and rescaled to fp32 before the
  // bias, activation and residual. As with bf16, the attention products run
  // in bf16 where the CPU has AVX512-BF16; everything else stays fp32.
  void set_int8_matmuls(bool on);
  bool int8_matmuls() const;
  // fp32 inference with the weights packed once into oneDNN's blocked layout,
  // and the bias, activation and residual add fused into the products. Used
  // when ExecContext::gemm is oneDNN (and isa is not Scalar); other contexts
  // read the plain weights, so the numbers agree to fp32 rounding either way.
  // Pages of a memory-mapped checkpoint are handed back once packed, so memory
  // stays about one copy of the weights; a checkpoint read into memory
  // (pytorch_model.bin) holds both. Off drops the packs (and bf16's).
  void set_packed_matmuls(bool on);
  bool packed_matmuls() const;

  // HF state-dict names and tensors (tied weights once, under their HF name).
  std::vector<std::pair<std::string, Tensor>> named_tensors() const;
  // Writes config.json and model.safetensors into `dir` (created if needed).
  void save_pretrained(const std::string& dir) const;

  struct Impl;

 private:
  friend class TrainableRoFormer;
  explicit RoFormerModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace roformer
