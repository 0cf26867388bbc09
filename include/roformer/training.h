#pragma once
// A RoFormer model being trained: owned, writable weights, gradient buffers
// with the same HF names, and an explicit forward + loss + backward in the
// spirit of llm.c (each layer keeps what its backward needs). Losses follow
// what HF computes when `labels` are passed to each head.
#include <memory>
#include <string>
#include <vector>

#include "roformer/model.h"

namespace roformer {

struct TrainLabels {
  // MLM / token classification: I64 (B, T), -100 = ignored.
  // Causal LM: I64 (B, T), shifted inside (position t predicts label t+1), -100 ignored.
  // Sequence classification: I64 (B) class ids; F32 (B) for regression
  //   (num_labels == 1); F32 (B, labels) for multi-label (problem_type).
  // Multiple choice: I64 (B) choice ids.
  Tensor labels;
  // Question answering: I64 (B) each; positions outside [0, T) are ignored (HF clamps to T).
  Tensor start_positions, end_positions;
};

struct TrainStep {
  double loss = 0;        // the mean loss of this batch
  int64_t examples = 0;   // labelled items the mean is over (tokens for MLM)
  int64_t correct = 0;    // classification losses: items whose argmax is the label (QA: start positions)
  int64_t encoder_rows = 0;  // token rows the encoder ran: B·T, or the real tokens when the padding was skipped
};

struct TrainableParameter {
  std::string name;  // HF's named_parameters() name
  Tensor value;      // F32, owned
  Tensor grad;       // F32, same shape; accumulates across backward calls
};

class TrainableRoFormer {
 public:
  // Copies the model's weights into owned memory (ties kept).
  explicit TrainableRoFormer(const RoFormerModel& model);
  ~TrainableRoFormer();
  TrainableRoFormer(TrainableRoFormer&&) noexcept;
  TrainableRoFormer& operator=(TrainableRoFormer&&) noexcept;

  const RoFormerConfig& config() const;
  Task task() const;

  // Forward, loss and backward; gradients are ADDED to the buffers, scaled
  // by grad_scale (e.g. 1/accumulation steps).
  TrainStep forward_backward(const Batch& batch, const TrainLabels& labels, const ExecContext& ctx,
                             float grad_scale = 1.0f);
  // Forward and loss only (evaluation).
  TrainStep evaluate(const Batch& batch, const TrainLabels& labels, const ExecContext& ctx);
  void zero_grad();

  // Dropout as HF places it (embeddings, attention probabilities, both
  // residual branches, classifier heads) with the config's probabilities.
  // Off by default (eval mode). Masks come from (seed, step, site), so a run
  // resumed at a step draws the same masks as an uninterrupted one.
  void set_dropout(bool enabled, uint64_t seed);
  // The step number the next forward_backward uses for its masks (advanced by
  // one per call while dropout is on).
  uint64_t dropout_step() const;
  void set_dropout_step(uint64_t step);

  // Skipping the padding (off by default): when every row of a batch is
  // right-padded (mask 1…1 0…0, a real token first) and the loss reads real
  // positions only, the encoder runs the real tokens alone, back to back,
  // each sequence attending within itself - forward and backward. The loss
  // and gradients are those of the padded step (up to summation order); the
  // step costs what its real tokens cost. Padded steps run where the loss
  // reads padding: question answering (its softmax spans every position, as
  // HF's), multiple choice summarised by a padded position, labelled padded
  // positions; and with linear attention. Dropout masks are drawn over the
  // rows run, so with dropout a packed step drops other units than a padded one.
  void set_skip_padding(bool enabled);
  bool skip_padding() const;

  // Every trainable parameter once, HF names (the sinusoidal table is not one).
  std::vector<TrainableParameter> parameters() const;
  // A model sharing nothing with this one (for inference or saving).
  RoFormerModel snapshot() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace roformer
