// Learning-rate schedules against values worked out by hand from the HF and
// fairseq formulas (see include/roformer/optim.h). Exact where the arithmetic
// is exact in double; 1e-15 relative where a cos/pow is involved.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "roformer/error.h"
#include "roformer/optim.h"

namespace roformer {
namespace {

LrSchedule make(LrDecay decay, double base, int64_t warmup, int64_t total = 0) {
  LrScheduleOptions o;
  o.decay = decay;
  o.base_lr = base;
  o.warmup_steps = warmup;
  o.total_steps = total;
  return LrSchedule(o);
}

constexpr double kRel = 1e-15;

TEST(LrSchedule, LinearWarmupThenLinearDecay) {
  const LrSchedule s = make(LrDecay::Linear, 1e-3, 10, 110);
  EXPECT_EQ(s.lr(0), 0.0);  // HF: the first update after warm-up starts runs at lr 0
  EXPECT_DOUBLE_EQ(s.lr(1), 1e-4);
  EXPECT_DOUBLE_EQ(s.lr(5), 5e-4);
  EXPECT_DOUBLE_EQ(s.lr(10), 1e-3);  // peak: (110 - 10) / 100
  EXPECT_DOUBLE_EQ(s.lr(60), 5e-4);
  EXPECT_DOUBLE_EQ(s.lr(100), 1e-4);
  EXPECT_EQ(s.lr(110), 0.0);
  EXPECT_EQ(s.lr(500), 0.0);  // clamped at 0
  // No warm-up: starts at the peak.
  const LrSchedule n = make(LrDecay::Linear, 2e-5, 0, 4);
  EXPECT_DOUBLE_EQ(n.lr(0), 2e-5);
  EXPECT_DOUBLE_EQ(n.lr(1), 1.5e-5);
  EXPECT_DOUBLE_EQ(n.lr(3), 5e-6);
  EXPECT_EQ(n.lr(4), 0.0);
}

TEST(LrSchedule, CosineWarmupThenHalfCosine) {
  const LrSchedule s = make(LrDecay::Cosine, 1e-3, 10, 110);
  EXPECT_EQ(s.lr(0), 0.0);
  EXPECT_DOUBLE_EQ(s.lr(4), 4e-4);
  EXPECT_DOUBLE_EQ(s.lr(10), 1e-3);
  // progress 1/4, 1/2, 3/4: 0.5 (1 + cos(pi p))
  EXPECT_NEAR(s.lr(35), 1e-3 * (0.5 + std::sqrt(0.5) / 2), 1e-3 * kRel);  // 0.853553390593...
  EXPECT_NEAR(s.lr(60), 5e-4, 1e-3 * kRel);
  EXPECT_NEAR(s.lr(85), 1e-3 * (0.5 - std::sqrt(0.5) / 2), 1e-3 * kRel);  // 0.146446609406...
  EXPECT_EQ(s.lr(110), 0.0);  // cos(pi) = -1 exactly in double
  // One full cycle: down to 0 at the middle, back up to the peak at the end (HF's formula).
  LrScheduleOptions o;
  o.decay = LrDecay::Cosine;
  o.base_lr = 1.0;
  o.total_steps = 100;
  o.num_cycles = 1.0;
  const LrSchedule full(o);
  EXPECT_NEAR(full.lr(50), 0.0, kRel);
  EXPECT_NEAR(full.lr(25), 0.5, kRel);
  EXPECT_DOUBLE_EQ(full.lr(100), 1.0);
}

TEST(LrSchedule, ConstantWithWarmup) {
  const LrSchedule s = make(LrDecay::Constant, 3e-4, 4);
  EXPECT_EQ(s.lr(0), 0.0);
  EXPECT_DOUBLE_EQ(s.lr(1), 7.5e-5);
  EXPECT_DOUBLE_EQ(s.lr(2), 1.5e-4);
  EXPECT_EQ(s.lr(4), 3e-4);
  EXPECT_EQ(s.lr(1000000), 3e-4);
  EXPECT_EQ(make(LrDecay::Constant, 3e-4, 0).lr(0), 3e-4);
}

TEST(LrSchedule, FairseqInverseSqrt) {
  LrScheduleOptions o;
  o.decay = LrDecay::InverseSqrt;
  o.base_lr = 5e-4;
  o.warmup_steps = 4000;
  o.warmup_init_lr = 1e-7;
  const LrSchedule s(o);
  EXPECT_EQ(s.lr(0), 1e-7);
  EXPECT_DOUBLE_EQ(s.lr(2000), 1e-7 + 2000 * (5e-4 - 1e-7) / 4000);  // 2.5005e-4
  EXPECT_NEAR(s.lr(2000), 2.5005e-4, 2.5e-4 * kRel);
  EXPECT_DOUBLE_EQ(s.lr(4000), 5e-4);            // 5e-4 · sqrt(4000) / sqrt(4000)
  EXPECT_DOUBLE_EQ(s.lr(16000), 2.5e-4);         // · 1/2
  EXPECT_DOUBLE_EQ(s.lr(36000), 5e-4 / 3);       // · 1/3
  EXPECT_DOUBLE_EQ(s.lr(400000), 5e-5);          // · 1/10
  // warmup_init_lr defaults to 0 (fairseq's default when warm-up is on).
  o.warmup_init_lr = 0;
  EXPECT_EQ(LrSchedule(o).lr(0), 0.0);
  EXPECT_DOUBLE_EQ(LrSchedule(o).lr(1000), 1.25e-4);
}

TEST(LrSchedule, NamesRoundTrip) {
  for (LrDecay d : {LrDecay::Constant, LrDecay::Linear, LrDecay::Cosine, LrDecay::InverseSqrt})
    EXPECT_EQ(parse_lr_decay(lr_decay_name(d)), d);
  EXPECT_THROW(parse_lr_decay("polynomial"), Error);
}

TEST(LrSchedule, RejectsBadArguments) {
  EXPECT_THROW(make(LrDecay::Linear, -1e-3, 0, 10), Error);
  EXPECT_THROW(make(LrDecay::Linear, 1e-3, -1, 10), Error);
  EXPECT_THROW(make(LrDecay::Linear, 1e-3, 20, 10), Error);  // total before warm-up ends
  EXPECT_THROW(make(LrDecay::Cosine, 1e-3, 0, 0), Error);
  EXPECT_THROW(make(LrDecay::InverseSqrt, 1e-3, 0), Error);
  LrScheduleOptions o;
  o.decay = LrDecay::InverseSqrt;
  o.warmup_steps = 10;
  o.warmup_init_lr = -1;
  EXPECT_THROW(LrSchedule{o}, Error);
  EXPECT_THROW(make(LrDecay::Constant, 1e-3, 0).lr(-1), Error);
}

}  // namespace
}  // namespace roformer
