#pragma once
// Named entities from a token classifier's per-token labels, grouped as HF's
// token-classification pipeline groups them with aggregation_strategy
// "simple": a token joins the group before it when it carries the same
// entity type and is not tagged "B-"; labels without a B-/I- prefix count as
// "I-<label>"; a group's score is the mean of its tokens' scores and its span
// runs from its first token's start to its last token's end.
#include <cstdint>
#include <string>
#include <vector>

#include "roformer/tokenizer.h"

namespace roformer {

struct TokenLabel {
  std::string label;   // id2label of the best class
  double score = 0;    // its probability
  CharSpan span;       // the token's characters in its text
  bool special = false;  // [CLS], [SEP], padding: never part of an entity
  int segment = 0;       // 0: the text, 1: its pair; a group stays in one
};

struct Entity {
  std::string group;  // the entity type: the label without "B-" / "I-"
  double score = 0;
  CharSpan span;
  int64_t first_token = 0, last_token = 0;  // indices into the labels given
  int segment = 0;
};

// Groups in token order; groups whose type is in `ignore` (HF's
// ignore_labels, "O" by default) are left out. Special tokens end a group.
std::vector<Entity> group_entities(const std::vector<TokenLabel>& tokens,
                                   const std::vector<std::string>& ignore = {"O"});

}  // namespace roformer
