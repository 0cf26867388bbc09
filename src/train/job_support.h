#pragma once
// Pieces the training jobs (pre-training, fine-tuning) share: option files
// merged over defaults, the optimizer's view of a model's parameters, and
// the metrics log.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "roformer/optim.h"
#include "roformer/training.h"

namespace roformer::train {

// `defaults` with the keys of the JSON object `text` replaced; a key that is
// not among the defaults, invalid JSON or a non-object is an Error naming `what`.
nlohmann::json merge_options(const std::string& text, nlohmann::json defaults, const std::string& what);

// Every trainable parameter as AdamW and clipping see it (views of the model's buffers).
std::vector<Parameter> optimizer_parameters(const TrainableRoFormer& model);

// AdamW with BERT's groups (no decay on biases and LayerNorm weights).
AdamW bert_adamw(const std::vector<Parameter>& params, double lr, double weight_decay, const ExecContext& ctx);

// Appends one JSON object as a line (the metrics.jsonl format).
void append_json_line(const std::string& path, const nlohmann::json& j);

}  // namespace roformer::train
