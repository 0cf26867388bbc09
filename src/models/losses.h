#pragma once
// The losses HF's RoFormer heads compute when labels are given, each
// returning the mean loss and writing d(loss)/d(logits) scaled by `scale`.
#include <cstdint>

namespace roformer::models {

struct LossResult {
  double loss = 0;
  int64_t count = 0;    // items averaged over
  int64_t correct = 0;  // cross-entropy: items whose argmax is the target
};

// Cross-entropy over `rows` rows of `classes` logits; targets < 0 or
// >= classes are ignored (HF: ignore_index -100, QA clamps to T). Mean over
// the rest. dlogits (may be null) gets scale * (softmax - onehot) / count, 0 on ignored rows.
// Rows are shared among `threads`; the result does not depend on how many.
LossResult cross_entropy(const float* logits, const int64_t* targets, int64_t rows, int64_t classes,
                         int64_t target_stride, float* dlogits, float scale, int threads = 1);

// Mean squared error (regression head, num_labels == 1).
LossResult mse(const float* pred, const float* target, int64_t n, float* dpred, float scale);

// Mean binary cross-entropy with logits (multi-label classification).
LossResult bce_with_logits(const float* logits, const float* target, int64_t n, float* dlogits, float scale);

}  // namespace roformer::models
