#pragma once
// What a product does to x · W^T + b before it stores it.
#include <optional>

#include "kernels/elementwise.h"

namespace roformer::kernels {

struct Epilogue {
  std::optional<Activation> activation;  // applied first
  const float* residual = nullptr;       // (rows, out), added last; must not overlap y
};

}  // namespace roformer::kernels
