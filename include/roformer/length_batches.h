#pragma once
// Which inputs to run together when many texts of different lengths go
// through the model. A padded batch costs its row count times its longest
// input in every weight product, so texts of similar length belong together:
// sorted by length, a batch of prose sentences pads a few tokens instead of
// up to its longest neighbour's length. The plan is a list of batches of input
// indices; the caller runs them in any order and puts the results back by
// index, so what it prints keeps the input order.
#include <cstdint>
#include <span>
#include <vector>

namespace roformer {

struct LengthBatching {
  int64_t max_batch = 16;  // inputs per batch (>= 1)
  // Padded tokens per batch, rows × longest row (0: no limit). It bounds the
  // activations' memory; an input longer than this runs alone.
  int64_t max_tokens = 0;
  bool by_length = true;  // false: batches in input order, cut by the same two limits
};

// Batches of indices into `lengths`, every index exactly once. By length:
// longest first (the largest activations show up first), equal lengths in
// input order, so the plan depends on the lengths alone. Throws Error on a
// negative length or limit, or max_batch < 1.
std::vector<std::vector<int64_t>> plan_length_batches(std::span<const int64_t> lengths, const LengthBatching& options);

// What the plan costs: the sum over batches of rows × longest row.
int64_t padded_tokens(std::span<const int64_t> lengths, const std::vector<std::vector<int64_t>>& batches);

}  // namespace roformer
