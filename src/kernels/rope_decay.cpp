// The paper's long-term decay bound of RoPE (section 3.4.3).
#include <cmath>
#include <complex>

#include "roformer/error.h"
#include "roformer/rope.h"

namespace roformer {

std::vector<double> rope_decay_bound(int64_t head_dim, int64_t max_distance, double base) {
  RopeSpec{head_dim, 0, base, RopeLayout::Interleaved}.validate();
  ROFORMER_CHECK(max_distance >= 0 && max_distance <= 100000000, "decay: max distance must be in [0, 1e8]");
  const int64_t half = head_dim / 2;
  std::vector<double> bound(static_cast<std::size_t>(max_distance + 1));
  for (int64_t r = 0; r <= max_distance; ++r) {
    std::complex<double> partial = 0;  // S_j, built up term by term
    double sum = 0;
    for (int64_t k = 0; k < half; ++k) {
      const double theta = std::pow(base, -2.0 * static_cast<double>(k) / static_cast<double>(head_dim));
      partial += std::polar(1.0, static_cast<double>(r) * theta);
      sum += std::abs(partial);
    }
    bound[static_cast<std::size_t>(r)] = sum / static_cast<double>(half);
  }
  return bound;
}

}  // namespace roformer
