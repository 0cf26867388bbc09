#pragma once
// Rotary Position Embedding (Su et al. 2021, eq. 13-16 and the elementwise
// form eq. 34). Pair i of a head vector is rotated by the angle m*theta_i,
// theta_i = base^(-2i/r), where m is the token's position and r the number
// of rotated dimensions (the head size unless partial rotary is asked for).
//
//   Interleaved (paper, HF RoFormer, GPT-J): pair i = dimensions (2i, 2i+1).
//   Half-split  (GPT-NeoX, LLaMA):           pair i = dimensions (i, i + r/2).
//
// Rotation: (a, b) -> (a cos - b sin, a sin + b cos). Backward is the inverse
// rotation (angle -m*theta_i).
#include <cstdint>
#include <vector>

#include "roformer/cpu.h"
#include "roformer/tensor.h"

namespace roformer {

enum class RopeLayout { Interleaved, HalfSplit };

struct RopeSpec {
  int64_t head_dim = 64;
  int64_t rotary_dim = 0;  // 0 means head_dim; otherwise the first rotary_dim dims rotate
  double base = 10000.0;
  RopeLayout layout = RopeLayout::Interleaved;
  // Positions are multiplied by this before the angles are formed (position
  // interpolation uses 1/factor); 1 leaves every angle bit-identical.
  double position_scale = 1.0;

  int64_t rotary() const { return rotary_dim == 0 ? head_dim : rotary_dim; }
  int64_t pairs() const { return rotary() / 2; }
  // Throws Error for odd sizes, rotary_dim > head_dim, or a non-positive base.
  void validate() const;
  bool operator==(const RopeSpec&) const = default;
};

// cos/sin of m*theta_i for one position. The angle is formed in double
// (m / base^(2i/r)), so it stays exact to float rounding at any position.
void rope_angles(const RopeSpec& spec, int64_t position, float* cos_out, float* sin_out);

// Lazily grown table of rope_angles() for positions [0, size()). Positions
// at or past `cache_limit` are computed on the fly; both give identical bits.
class RopeTable {
 public:
  explicit RopeTable(const RopeSpec& spec, int64_t cache_limit = int64_t{1} << 16);

  const RopeSpec& spec() const { return spec_; }
  int64_t size() const { return rows_; }
  int64_t cache_limit() const { return cache_limit_; }
  // Caches every position up to max_position (capped at cache_limit).
  void ensure(int64_t max_position);
  // Row of pairs() cos values then pairs() sin values, or nullptr if not cached.
  const float* row(int64_t position) const {
    return position >= 0 && position < rows_ ? table_.data() + position * 2 * spec_.pairs() : nullptr;
  }

 private:
  RopeSpec spec_;
  int64_t cache_limit_;
  int64_t rows_ = 0;
  std::vector<float> table_;
};

enum class RopeDirection { Forward, Backward };

// Where the axes of a 4-D query/key tensor are.
enum class QkvLayout {
  BSHD,  // [batch, seq, heads, head_dim]
  BHSD,  // [batch, heads, seq, head_dim]
};

// Rotates x into out (which may be x itself for in-place), for every head of
// every token. x and out: 4-D F32 or BF16 (same dtype, same shape), last
// dimension contiguous; other strides arbitrary. positions: I64 [seq] (shared
// by the batch) or [batch, seq]. Forward rotates by +m*theta, Backward by
// -m*theta (the gradient of the forward, and its inverse). The table grows
// as needed; it is not safe to share one table between concurrent calls.
void rope_apply(RopeTable& table, const Tensor& x, const Tensor& out, const Tensor& positions, QkvLayout layout,
                RopeDirection direction, const ExecContext& ctx);

// The same for the common case of the layers' hot path, without building
// Tensor handles (so nothing is allocated): x is a contiguous F32
// [batch, seq, heads, table.spec().head_dim] buffer rotated in place;
// positions holds seq values, or batch * seq when per_row.
void rope_apply_inplace(RopeTable& table, float* x, int64_t batch, int64_t seq, int64_t heads,
                        const int64_t* positions, bool per_row, RopeDirection direction, const ExecContext& ctx);

}  // namespace roformer

namespace roformer {

// Long-term decay (paper section 3.4.3, Figure 2): for each relative distance
// r = 0..max_distance, the relative upper bound (1/(d/2)) * sum_{j=1..d/2} |S_j|
// with S_j = sum_{k<j} exp(i * r * theta_k), theta_k = base^(-2k/d).
std::vector<double> rope_decay_bound(int64_t head_dim, int64_t max_distance, double base = 10000.0);

}  // namespace roformer
