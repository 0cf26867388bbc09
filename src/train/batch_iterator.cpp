#include "roformer/batch_iterator.h"

#include <cinttypes>
#include <cstdio>
#include <numeric>
#include <sstream>

#include "roformer/data_rng.h"
#include "roformer/error.h"

namespace roformer {

std::string IteratorState::to_string() const {
  char buf[160];
  std::snprintf(buf, sizeof buf, "rfiter 1 %" PRIu64 " %" PRId64 " %d %" PRId64 " %" PRId64, seed, items,
                shuffle ? 1 : 0, epoch, position);
  return buf;
}

IteratorState IteratorState::parse(std::string_view text) {
  std::istringstream in{std::string(text)};
  std::string magic, extra;
  int version = 0, shuffle = -1;
  IteratorState s;
  in >> magic >> version >> s.seed >> s.items >> shuffle >> s.epoch >> s.position;
  const bool ok = !in.fail() && !(in >> extra) && magic == "rfiter" && version == 1 && (shuffle == 0 || shuffle == 1) &&
                  s.items > 0 && s.epoch >= 0 && s.position >= 0 && s.position <= s.items;
  ROFORMER_CHECK(ok, "iterator state: cannot parse '" + std::string(text.substr(0, 120)) + "'");
  s.shuffle = shuffle == 1;
  return s;
}

EpochIterator::EpochIterator(int64_t items, uint64_t seed, bool shuffle) {
  ROFORMER_CHECK(items > 0, "EpochIterator: nothing to iterate over (0 items)");
  state_.seed = seed;
  state_.items = items;
  state_.shuffle = shuffle;
}

std::vector<int64_t> EpochIterator::epoch_order(int64_t epoch) const {
  std::vector<int64_t> order(static_cast<std::size_t>(state_.items));
  std::iota(order.begin(), order.end(), int64_t{0});
  if (state_.shuffle) {
    DataRng rng(derive_seed(state_.seed, 0x0E90C4ull, static_cast<uint64_t>(epoch)));
    rng.shuffle(order);
  }
  return order;
}

int64_t EpochIterator::next() {
  if (state_.position == state_.items) {
    ++state_.epoch;
    state_.position = 0;
  }
  if (order_epoch_ != state_.epoch) {
    order_ = epoch_order(state_.epoch);
    order_epoch_ = state_.epoch;
  }
  return order_[static_cast<std::size_t>(state_.position++)];
}

void EpochIterator::next(std::span<int64_t> out) {
  for (auto& x : out) x = next();
}

void EpochIterator::restore(const IteratorState& state) {
  ROFORMER_CHECK(state.items == state_.items && state.seed == state_.seed && state.shuffle == state_.shuffle,
        "EpochIterator: the saved state is for another data set or seed (" + state.to_string() + " vs " +
            state_.to_string() + ")");
  ROFORMER_CHECK(state.epoch >= 0 && state.position >= 0 && state.position <= state.items,
        "EpochIterator: saved position out of range (" + state.to_string() + ")");
  state_ = state;
}

}  // namespace roformer
