#pragma once
// Named entities from a token classifier's per-token labels, grouped as HF's
// token-classification pipeline groups them (aggregation_strategy): a token
// joins the group before it when it carries the same entity type and is not
// tagged "B-"; labels without a B-/I- prefix count as "I-<label>"; a group's
// score is the mean of its members' scores and its span runs from its first
// member's start to its last member's end.
//
// "simple" groups tokens. "first", "average" and "max" first make words of a
// token and the "##" pieces after it, labelled by the first token's label, by
// the best class of the averaged probabilities, or by the surest token's
// label, so that a word is never split between entities.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "roformer/tokenizer.h"

namespace roformer {

enum class Aggregation { Simple, First, Average, Max };

// "simple", "first", "average" or "max"; anything else throws Error.
Aggregation parse_aggregation(std::string_view name);

struct TokenLabel {
  std::string label;   // id2label of the best class
  double score = 0;    // its probability
  CharSpan span;       // the token's characters in its text
  bool special = false;  // [CLS], [SEP], padding: never part of an entity
  int segment = 0;       // 0: the text, 1: its pair; a group stays in one
  bool subword = false;  // a "##" piece: continues the word before it
  std::vector<double> probs;  // every class's probability (Aggregation::Average only)
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
// Average needs every token's probs, one per name in `label_names`.
std::vector<Entity> group_entities(const std::vector<TokenLabel>& tokens, Aggregation aggregation = Aggregation::Simple,
                                   const std::vector<std::string>& label_names = {},
                                   const std::vector<std::string>& ignore = {"O"});

}  // namespace roformer
