#include "roformer/length_batches.h"

#include <algorithm>
#include <numeric>
#include <string>

#include "roformer/error.h"

namespace roformer {

std::vector<std::vector<int64_t>> plan_length_batches(std::span<const int64_t> lengths, const LengthBatching& options) {
  check(options.max_batch >= 1, "length batches: max_batch must be at least 1, got " + std::to_string(options.max_batch));
  check(options.max_tokens >= 0, "length batches: max_tokens must not be negative, got " + std::to_string(options.max_tokens));
  for (std::size_t i = 0; i < lengths.size(); ++i)
    check(lengths[i] >= 0, "length batches: input " + std::to_string(i) + " has a negative length");

  std::vector<int64_t> order(lengths.size());
  std::iota(order.begin(), order.end(), int64_t{0});
  if (options.by_length)
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      return lengths[static_cast<std::size_t>(a)] > lengths[static_cast<std::size_t>(b)];
    });

  std::vector<std::vector<int64_t>> batches;
  int64_t longest = 0;
  for (const int64_t i : order) {
    const int64_t length = lengths[static_cast<std::size_t>(i)];
    if (!batches.empty()) {
      const auto rows = static_cast<int64_t>(batches.back().size());
      const int64_t widest = std::max(longest, length);
      // Compared as a quotient: rows × widest can overflow for hostile lengths.
      const bool fits = rows < options.max_batch && (options.max_tokens == 0 || widest <= options.max_tokens / (rows + 1));
      if (fits) {
        batches.back().push_back(i);
        longest = widest;
        continue;
      }
    }
    batches.push_back({i});
    longest = length;
  }
  return batches;
}

int64_t padded_tokens(std::span<const int64_t> lengths, const std::vector<std::vector<int64_t>>& batches) {
  int64_t total = 0;
  for (const auto& batch : batches) {
    int64_t longest = 0;
    for (const int64_t i : batch) {
      check(i >= 0 && static_cast<std::size_t>(i) < lengths.size(), "length batches: index out of range");
      longest = std::max(longest, lengths[static_cast<std::size_t>(i)]);
    }
    total += static_cast<int64_t>(batch.size()) * longest;
  }
  return total;
}

}  // namespace roformer
