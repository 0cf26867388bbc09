#include "roformer/length_batches.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "roformer/error.h"

namespace roformer {
namespace {

using Plan = std::vector<std::vector<int64_t>>;

Plan in_order_chunks(int64_t n, int64_t size) {
  Plan plan;
  for (int64_t i = 0; i < n; ++i) {
    if (i % size == 0) plan.emplace_back();
    plan.back().push_back(i);
  }
  return plan;
}

TEST(LengthBatches, GroupsSimilarLengthsLongestFirst) {
  const std::vector<int64_t> lengths = {3, 50, 4, 48, 5, 47};
  const Plan plan = plan_length_batches(lengths, {.max_batch = 2});
  EXPECT_EQ(plan, (Plan{{1, 3}, {5, 4}, {2, 0}}));
  EXPECT_EQ(padded_tokens(lengths, plan), 2 * 50 + 2 * 47 + 2 * 4);
  EXPECT_EQ(padded_tokens(lengths, in_order_chunks(6, 2)), 2 * 50 + 2 * 48 + 2 * 47);
}

TEST(LengthBatches, InputOrderKeepsTheOrderAndCutsByTheSameLimits) {
  const std::vector<int64_t> lengths = {3, 50, 4, 48, 5, 47, 1};
  EXPECT_EQ(plan_length_batches(lengths, {.max_batch = 3, .by_length = false}), (Plan{{0, 1, 2}, {3, 4, 5}, {6}}));
  // A third row would pad each pair to 3 × 50, 3 × 48 and 3 × 47 > 120 tokens.
  EXPECT_EQ(plan_length_batches(lengths, {.max_batch = 3, .max_tokens = 120, .by_length = false}),
            (Plan{{0, 1}, {2, 3}, {4, 5}, {6}}));
}

TEST(LengthBatches, AnInputLongerThanTheTokenLimitRunsAlone) {
  const std::vector<int64_t> lengths = {10, 700, 12, 11};
  const Plan plan = plan_length_batches(lengths, {.max_batch = 8, .max_tokens = 36});
  EXPECT_EQ(plan, (Plan{{1}, {2, 3, 0}}));
}

TEST(LengthBatches, EmptyInputGivesNoBatches) {
  EXPECT_TRUE(plan_length_batches(std::vector<int64_t>{}, {}).empty());
  const std::vector<int64_t> zeros = {0, 0, 0};
  EXPECT_EQ(plan_length_batches(zeros, {.max_batch = 2}), (Plan{{0, 1}, {2}}));
}

TEST(LengthBatches, BadOptionsAndLengthsAreErrors) {
  const std::vector<int64_t> lengths = {1, 2};
  EXPECT_THROW(plan_length_batches(lengths, {.max_batch = 0}), Error);
  EXPECT_THROW(plan_length_batches(lengths, {.max_tokens = -1}), Error);
  const std::vector<int64_t> negative = {4, -1};
  EXPECT_THROW(plan_length_batches(negative, {}), Error);
  EXPECT_THROW(padded_tokens(lengths, Plan{{0, 2}}), Error);
}

// Random lengths from a long-tailed mix, as lines of prose are.
std::vector<int64_t> random_lengths(std::mt19937& rng, int64_t n) {
  std::uniform_int_distribution<int64_t> shortish(0, 40), longish(0, 600);
  std::bernoulli_distribution tail(0.1);
  std::vector<int64_t> lengths(static_cast<std::size_t>(n));
  for (auto& l : lengths) l = tail(rng) ? longish(rng) : shortish(rng);
  return lengths;
}

TEST(LengthBatches, EveryPlanCoversEachInputOnceWithinItsLimits) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    const int64_t n = std::uniform_int_distribution<int64_t>(1, 200)(rng);
    const std::vector<int64_t> lengths = random_lengths(rng, n);
    const LengthBatching options{.max_batch = std::uniform_int_distribution<int64_t>(1, 32)(rng),
                                 .max_tokens = std::uniform_int_distribution<int64_t>(0, 4000)(rng),
                                 .by_length = trial % 3 != 0};
    const Plan plan = plan_length_batches(lengths, options);
    std::vector<int64_t> seen;
    for (const auto& batch : plan) {
      ASSERT_FALSE(batch.empty());
      ASSERT_LE(static_cast<int64_t>(batch.size()), options.max_batch);
      int64_t longest = 0;
      for (const int64_t i : batch) longest = std::max(longest, lengths[static_cast<std::size_t>(i)]);
      if (options.max_tokens > 0 && batch.size() > 1) {
        ASSERT_LE(static_cast<int64_t>(batch.size()) * longest, options.max_tokens);
      }
      seen.insert(seen.end(), batch.begin(), batch.end());
    }
    ASSERT_EQ(static_cast<int64_t>(seen.size()), n);
    if (!options.by_length) {
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(seen[static_cast<std::size_t>(i)], i);
      continue;
    }
    // Longest first, equal lengths in input order.
    for (std::size_t k = 1; k < seen.size(); ++k) {
      const int64_t a = lengths[static_cast<std::size_t>(seen[k - 1])], b = lengths[static_cast<std::size_t>(seen[k])];
      ASSERT_GE(a, b);
      if (a == b) {
        ASSERT_LT(seen[k - 1], seen[k]);
      }
    }
  }
}

// With every batch full, sorted runs are the least padding of any grouping
// (swapping two inputs between batches never lowers a sorted plan's cost),
// so no input order can beat them.
TEST(LengthBatches, FullSortedBatchesPadNoMoreThanAnyInputOrder) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 200; ++trial) {
    const int64_t size = std::uniform_int_distribution<int64_t>(1, 16)(rng);
    const int64_t n = size * std::uniform_int_distribution<int64_t>(1, 12)(rng);
    const std::vector<int64_t> lengths = random_lengths(rng, n);
    const int64_t sorted = padded_tokens(lengths, plan_length_batches(lengths, {.max_batch = size}));
    ASSERT_LE(sorted, padded_tokens(lengths, in_order_chunks(n, size)));
    std::vector<int64_t> shuffled(static_cast<std::size_t>(n));
    for (int64_t i = 0; i < n; ++i) shuffled[static_cast<std::size_t>(i)] = i;
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    Plan other = in_order_chunks(n, size);
    for (auto& batch : other)
      for (auto& i : batch) i = shuffled[static_cast<std::size_t>(i)];
    ASSERT_LE(sorted, padded_tokens(lengths, other));
  }
}

}  // namespace
}  // namespace roformer
