#pragma once
// HF's RoFormer task heads on top of the last hidden state.
#include "models/weights.h"
#include "roformer/model.h"

namespace roformer::models {

// hidden: (B, T, H). For multiple choice B = batch * choices and the logits
// come back as (batch, choices). Results go to out.heads.
void heads_forward(const RoFormerConfig& config, Task task, const RoFormerWeights& w, const Tensor& hidden,
                   int64_t choices, ModelOutput& out, const ExecContext& ctx);

}  // namespace roformer::models
