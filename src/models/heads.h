#pragma once
// HF's RoFormer task heads on top of the last hidden state.
#include "models/weights.h"
#include "roformer/model.h"

namespace roformer::models {

// hidden: (B, T, H). For multiple choice B = batch * choices and the logits
// come back as (batch, choices). logits_to_keep > 0: the language-model heads
// score only the last that many positions of each row. Results go to out.heads.
void heads_forward(const RoFormerConfig& config, Task task, const RoFormerWeights& w, const Tensor& hidden,
                   int64_t choices, int64_t logits_to_keep, ModelOutput& out, const ExecContext& ctx);

// Whether the task's head reads padded positions: a multiple-choice head that
// summarises by the last position or the mean does (as HF's SequenceSummary).
bool head_reads_padding(const RoFormerConfig& config, Task task);

}  // namespace roformer::models
