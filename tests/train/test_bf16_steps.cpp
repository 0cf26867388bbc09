// Mixed-precision training steps over several optimizer updates: each step
// rounds the weights its products read (the encoder's and the LM decoder,
// i.e. the tied word embeddings) once as it starts, so after an update the
// next step must read the new weights' rounding: its loss and gradients are
// bit for bit those of a fresh trainer holding the updated weights.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "roformer/optim.h"
#include "roformer/safetensors.h"
#include "roformer/training.h"
#include "train/job_support.h"
#include "support/model_fixtures.h"
#include "support/test_support.h"

namespace roformer {
namespace {

using testing::data_path;
using testing::fixture_batch;

TEST(Bf16Steps, RoundTheWeightsAsTheyAreNow) {
  const std::string dir = data_path("fixtures/roformer-tiny-mlm");
  SafeTensors expected = SafeTensors::open(dir + "/expected.safetensors");
  SafeTensors golden = SafeTensors::open(dir + "/train_expected.safetensors");
  const TrainLabels labels{golden.get("train.labels"), {}, {}};
  std::vector<ExecContext> contexts{ExecContext{1, Isa::Scalar, GemmBackend::OpenBlas, true}};
  if (best_isa() != Isa::Scalar) contexts.push_back(ExecContext{1, best_isa(), default_gemm_backend(), true});
  for (const ExecContext& ctx : contexts) {
    SCOPED_TRACE(std::string(isa_name(ctx.isa)) + " " + product_precision_label(true, ctx.isa));
    TrainableRoFormer moving(RoFormerModel::from_pretrained(dir));
    AdamWOptions o;
    o.lr = 1e-2;  // large enough to move every weight across bf16 steps
    AdamW opt(train::optimizer_parameters(moving), o);
    moving.forward_backward(fixture_batch(expected), labels, ctx);
    opt.step();
    opt.zero_grad();
    const TrainStep next = moving.forward_backward(fixture_batch(expected), labels, ctx);

    TrainableRoFormer fresh(moving.snapshot());
    const TrainStep ref = fresh.forward_backward(fixture_batch(expected), labels, ctx);
    EXPECT_EQ(next.loss, ref.loss);
    const auto& got = moving.parameters();
    const auto& want = fresh.parameters();
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t i = 0; i < got.size(); ++i)
      EXPECT_EQ(got[i].grad.to_vector(), want[i].grad.to_vector()) << got[i].name;
  }
}

}  // namespace
}  // namespace roformer
