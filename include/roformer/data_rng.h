#pragma once
// The random numbers of the data pipeline (shuffling, MLM masking). Every
// draw is defined here bit for bit: xoshiro256** seeded through splitmix64,
// bounded integers by rejection, doubles from the top 53 bits. The std
// distributions are avoided on purpose: their output differs between
// standard libraries, and a run must shuffle and mask the same everywhere.
#include <array>
#include <cstdint>
#include <utility>

namespace roformer {

// splitmix64's output function: a good 64-bit mix, used to derive seeds.
inline uint64_t splitmix64_mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// One seed from several numbers (seed, epoch, item, ...): order matters.
inline uint64_t derive_seed(uint64_t seed, uint64_t a, uint64_t b = 0) {
  uint64_t h = splitmix64_mix(seed + 0x9E3779B97F4A7C15ull);
  h = splitmix64_mix(h ^ (a + 0x632BE59BD9B4E019ull));
  return splitmix64_mix(h ^ (b + 0x8CB92BA72F3D8DD7ull));
}

class DataRng {
 public:
  using State = std::array<uint64_t, 4>;

  explicit DataRng(uint64_t seed = 0) { reseed(seed); }

  void reseed(uint64_t seed) {
    uint64_t x = seed;
    for (auto& word : s_) {
      x += 0x9E3779B97F4A7C15ull;
      word = splitmix64_mix(x);
    }
  }

  // xoshiro256**.
  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, n), n > 0, without modulo bias (rejects the short last bucket).
  uint64_t below(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x = next();
    while (x >= limit) x = next();
    return x % n;
  }

  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

  // Fisher-Yates: the same permutation on every platform for the same state.
  template <typename Container>
  void shuffle(Container& items) {
    for (std::size_t i = items.size(); i > 1; --i) {
      const std::size_t j = static_cast<std::size_t>(below(i));
      using std::swap;
      swap(items[i - 1], items[j]);
    }
  }

  State state() const { return s_; }
  void set_state(const State& state) { s_ = state; }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  State s_{};
};

}  // namespace roformer
