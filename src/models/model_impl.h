#pragma once
// RoFormerModel's insides, shared with the training code in this layer.
#include "models/weights.h"
#include "roformer/model.h"

namespace roformer {

struct RoFormerModel::Impl {
  RoFormerConfig config;
  Task task = Task::Base;
  models::RoFormerWeights weights;
};

}  // namespace roformer
