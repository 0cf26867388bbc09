#pragma once
// Endless, seeded, resumable order over `items` things (blocks, examples):
// epoch e visits every item once, in a permutation fixed by (seed, e) alone.
// The whole state is (epoch, position), so saving it with a checkpoint and
// restoring it later continues with exactly the items an uninterrupted run
// would have seen.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace roformer {

struct IteratorState {
  uint64_t seed = 0;
  int64_t items = 0;
  bool shuffle = true;
  int64_t epoch = 0;
  int64_t position = 0;  // items already taken from this epoch

  bool operator==(const IteratorState&) const = default;
  // One line of text ("rfiter 1 seed items shuffle epoch position") for checkpoint files.
  std::string to_string() const;
  // Throws Error on anything malformed.
  static IteratorState parse(std::string_view text);
};

class EpochIterator {
 public:
  EpochIterator(int64_t items, uint64_t seed, bool shuffle = true);

  // The next item; a finished epoch rolls over to the next permutation.
  int64_t next();
  void next(std::span<int64_t> out);

  int64_t items() const { return state_.items; }
  int64_t epoch() const { return state_.epoch; }
  int64_t position() const { return state_.position; }
  const IteratorState& state() const { return state_; }
  // Throws Error when the state is for another number of items, seed or mode.
  void restore(const IteratorState& state);

  // The permutation of an epoch (what next() walks through).
  std::vector<int64_t> epoch_order(int64_t epoch) const;

 private:
  IteratorState state_;
  std::vector<int64_t> order_;  // the current epoch's permutation
  int64_t order_epoch_ = -1;
};

}  // namespace roformer
