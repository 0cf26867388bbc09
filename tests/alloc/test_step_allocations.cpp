// After warm-up, a training step (zero_grad, forward, loss, backward, AdamW)
// and an evaluation step allocate no heap memory with OpenBLAS behind the
// matrix products. oneDNN's sgemm allocates its packing buffers inside every
// call; with it, the count per step must at least stay constant (nothing of
// ours grows or leaks). This folder is its own test program because it links
// the counting allocator (tests/support/alloc_counter.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "roformer/model.h"
#include "roformer/optim.h"
#include "roformer/training.h"
#include "support/alloc_counter.h"

namespace roformer {
namespace {

RoFormerConfig small_config() {
  RoFormerConfig c;
  c.vocab_size = 97;
  c.hidden_size = 32;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.intermediate_size = 64;
  c.architectures = {"RoFormerForMaskedLM"};
  return c;
}

struct Data {
  Tensor ids, mask, types, labels;
};

Data make_data(int64_t B, int64_t T) {
  Data d{Tensor::zeros({B, T}, DType::I64), Tensor::zeros({B, T}, DType::I64), Tensor::zeros({B, T}, DType::I64),
         Tensor::zeros({B, T}, DType::I64)};
  for (int64_t i = 0; i < B * T; ++i) {
    d.ids.data<int64_t>()[i] = 5 + (i * 7) % 90;
    d.mask.data<int64_t>()[i] = (i % T) < T - (i / T) ? 1 : 0;  // padded rows
    d.types.data<int64_t>()[i] = (i % T) < T / 2 ? 0 : 1;
    d.labels.data<int64_t>()[i] = i % 5 == 0 ? d.ids.data<int64_t>()[i] : -100;
  }
  return d;
}

void expect_no_allocations_in_steps(const RoFormerConfig& config, Task task, int threads, bool dropout,
                                    GemmBackend gemm = GemmBackend::OpenBlas) {
  TrainableRoFormer model(RoFormerModel::random_init(config, task, 3));
  model.set_dropout(dropout, 9);
  const ExecContext ctx{threads, best_isa(), gemm};
  std::vector<Parameter> params;
  for (const auto& p : model.parameters())
    params.push_back({p.name, p.value.data<float>(), p.grad.data<float>(), p.value.numel(), true, p.value.shape()});
  AdamWOptions ao;
  ao.lr = 1e-3;
  ao.weight_decay = 0.01;
  ao.exec = ctx;
  AdamW adamw(params, bert_style_groups(params, 0.01), ao);
  const Data d = make_data(3, 16);
  const Batch batch{d.ids, d.mask, d.types};
  const TrainLabels labels{d.labels, {}, {}};
  alloc_counter::Counts previous{};
  for (int step = 0; step < 5; ++step) {
    const alloc_counter::Counts before = alloc_counter::now();
    model.zero_grad();
    const TrainStep s = model.forward_backward(batch, labels, ctx);
    adamw.step(1e-3);
    const TrainStep e = model.evaluate(batch, labels, ctx);
    const alloc_counter::Counts after = alloc_counter::now();
    ASSERT_TRUE(std::isfinite(s.loss) && std::isfinite(e.loss));
    alloc_counter::Counts used;
    used.calls = after.calls - before.calls;
    used.bytes = after.bytes - before.bytes;
    if (step >= 2 && gemm == GemmBackend::OpenBlas) {  // the first steps size the buffers
      EXPECT_EQ(used.calls, 0u) << "step " << step << ": " << used.calls << " allocations (" << used.bytes
                                << " bytes); " << (alloc_counter::counts_c_aligned_alloc() ? "" : "operator new only");
    }
    if (step >= 3 && gemm == GemmBackend::OneDnn) {
      EXPECT_EQ(used.calls, previous.calls) << "step " << step;
      EXPECT_EQ(used.bytes, previous.bytes) << "step " << step;
    }
    previous = used;
  }
}

TEST(StepAllocations, MaskedLmStepAllocatesNothing) {
  expect_no_allocations_in_steps(small_config(), Task::MaskedLM, 1, false);
}

TEST(StepAllocations, TwoThreadsWithDropoutAllocateNothing) {
  expect_no_allocations_in_steps(small_config(), Task::MaskedLM, 2, true);
}

TEST(StepAllocations, CausalLmStepAllocatesNothing) {
  RoFormerConfig c = small_config();
  c.is_decoder = true;
  c.architectures = {"RoFormerForCausalLM"};
  expect_no_allocations_in_steps(c, Task::CausalLM, 1, false);
}

TEST(StepAllocations, WithOneDnnTheCountPerStepIsConstant) {
  expect_no_allocations_in_steps(small_config(), Task::MaskedLM, 2, true, GemmBackend::OneDnn);
}

TEST(StepAllocations, TheCounterSeesAllocations) {
  const alloc_counter::Counts before = alloc_counter::now();
  auto* v = new std::vector<int>(1000);
  Tensor t = Tensor::zeros({64});
  const alloc_counter::Counts after = alloc_counter::now();
  delete v;
  EXPECT_GE(after.calls - before.calls, alloc_counter::counts_c_aligned_alloc() ? 3u : 2u);
  EXPECT_GE(after.bytes - before.bytes, 1000 * sizeof(int));
}

}  // namespace
}  // namespace roformer
