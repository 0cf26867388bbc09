// After warm-up, a training step (zero_grad, forward, loss, backward, AdamW)
// and an evaluation step allocate no heap memory with OpenBLAS behind the
// matrix products. oneDNN's sgemm allocates its packing buffers inside every
// call; with it, the count per step must at least stay constant (nothing of
// ours grows or leaks). This folder is its own test program because it links
// the counting allocator (tests/support/alloc_counter.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "roformer/model.h"
#include "roformer/optim.h"
#include "roformer/training.h"
#include "support/alloc_counter.h"
#include "support/model_fixtures.h"

namespace roformer {
namespace {

RoFormerConfig small_config() { return testing::tiny_mlm_config(); }

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
    const bool real = d.mask.data<int64_t>()[i] == 1;
    d.labels.data<int64_t>()[i] = i % 5 == 0 && real ? d.ids.data<int64_t>()[i] : -100;
  }
  return d;
}

void expect_no_allocations_in_steps(const RoFormerConfig& config, Task task, int threads, bool dropout,
                                    GemmBackend gemm = GemmBackend::OpenBlas, bool bf16_products = false,
                                    bool skip_padding = false) {
  TrainableRoFormer model(RoFormerModel::random_init(config, task, 3));
  model.set_dropout(dropout, 9);
  model.set_skip_padding(skip_padding);
  const ExecContext ctx{threads, best_isa(), gemm, bf16_products};
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
    ASSERT_EQ(s.encoder_rows, skip_padding ? 16 + 15 + 14 : 3 * 16) << "the padding was not skipped as asked";
    alloc_counter::Counts used;
    used.calls = after.calls - before.calls;
    used.bytes = after.bytes - before.bytes;
    if (step >= 2 && gemm == GemmBackend::OpenBlas && !bf16_products) {  // the first steps size the buffers
      EXPECT_EQ(used.calls, 0u) << "step " << step << ": " << used.calls << " allocations (" << used.bytes
                                << " bytes); " << (alloc_counter::counts_c_aligned_alloc() ? "" : "operator new only");
    }
    if (step >= 3 && (gemm == GemmBackend::OneDnn || bf16_products)) {
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

// Skipping the padding: the packed layout's buffers are kept between steps
// too, on the fused attention (no dropout) and the materialised one.
TEST(StepAllocations, SkippingThePaddingAllocatesNothing) {
  expect_no_allocations_in_steps(small_config(), Task::MaskedLM, 1, false, GemmBackend::OpenBlas, false, true);
  expect_no_allocations_in_steps(small_config(), Task::MaskedLM, 2, true, GemmBackend::OpenBlas, false, true);
}

TEST(StepAllocations, WithOneDnnTheCountPerStepIsConstant) {
  expect_no_allocations_in_steps(small_config(), Task::MaskedLM, 2, true, GemmBackend::OneDnn);
}

// bf16 products: the rounded copies of a step's weights and activations are
// kept between steps, so the count per step stays constant too (oneDNN's
// per-call objects where the CPU runs them natively; none of ours grows).
TEST(StepAllocations, WithBf16ProductsTheCountPerStepIsConstant) {
  expect_no_allocations_in_steps(small_config(), Task::MaskedLM, 2, true, GemmBackend::OneDnn, true);
}

// Inference: once warm, a forward allocates its outputs (and the head's
// transform) but none of its per-layer activations, which stay in reused
// per-thread buffers; with oneDNN add its small per-call objects. Plain
// weights through OpenBLAS, packed fp32 weights through oneDNN, and packed
// bf16 weights (native products where the CPU has them) with this CPU's
// default library. Without AVX-512, oneDNN's fp32 product is its sgemm on the
// weights as they are, which allocates its packing buffers on every call (the
// engine packs nothing and uses OpenBLAS there): the bytes per forward stay
// the same from one forward to the next, but are not bounded by the outputs.
TEST(ForwardAllocations, AWarmForwardAllocatesAboutItsOutputs) {
  RoFormerConfig c = small_config();
  c.hidden_size = 64;
  c.intermediate_size = 256;
  const int64_t B = 4, T = 64;
  const Data d = make_data(B, T);
  const Batch batch{d.ids, d.mask, d.types};
  enum class Weights { Plain, Packed, Bf16 };
  for (Weights kind : {Weights::Plain, Weights::Packed, Weights::Bf16}) {
    const bool packed = kind != Weights::Plain;
    RoFormerModel model = RoFormerModel::random_init(c, Task::MaskedLM, 3);
    if (kind == Weights::Bf16) model.set_bf16_matmuls(true);
    else model.set_packed_matmuls(packed);
    const GemmBackend library = kind == Weights::Plain    ? GemmBackend::OpenBlas
                                : kind == Weights::Packed ? GemmBackend::OneDnn
                                                          : default_gemm_backend();
    const ExecContext ctx{2, best_isa(), library};
    const bool bounded = kind != Weights::Packed || default_gemm_backend() == GemmBackend::OneDnn;
    uint64_t previous = 0;
    for (int i = 0; i < 4; ++i) {
      const alloc_counter::Counts before = alloc_counter::now();
      uint64_t output_bytes = 0;
      {
        const ModelOutput out = model.forward(batch, {}, ctx);
        output_bytes = out.last_hidden_state.nbytes();
        for (const auto& [name, t] : out.heads) output_bytes += t.nbytes();
      }
      const uint64_t used = alloc_counter::now().bytes - before.bytes;
      // One layer's activations alone (attention output, LN input, FFN) would be this much.
      const uint64_t layer_activations = static_cast<uint64_t>(B * T * (2 * c.hidden_size + c.intermediate_size)) * 4;
      if (i == 3)
        std::printf("weights %d: %llu bytes allocated per warm forward, outputs %llu bytes\n", static_cast<int>(kind),
                    static_cast<unsigned long long>(used), static_cast<unsigned long long>(output_bytes));
      if (i >= 2) {
        EXPECT_EQ(used, previous) << "forward " << i << " weights " << static_cast<int>(kind);
        if (bounded) {
          EXPECT_LE(used, 2 * output_bytes + (uint64_t{32} << 10))
              << "weights " << static_cast<int>(kind) << ": " << used << " bytes for " << output_bytes
              << " bytes of outputs";
          EXPECT_LT(used, output_bytes + layer_activations);
        }
      }
      previous = used;
    }
  }
}

// Decoding with a cache reserved for the whole generation: every step
// allocates about the same (its small outputs), none regrows the cache; without the
// reservation the step that crosses the capacity allocates every layer's
// doubled keys and values on top.
TEST(DecodeAllocations, AReservedCacheIsNeverRegrown) {
  RoFormerConfig c = small_config();
  c.is_decoder = true;
  c.architectures = {"RoFormerForCausalLM"};
  const RoFormerModel model = RoFormerModel::random_init(c, Task::CausalLM, 5);
  const ExecContext ctx{1, best_isa()};
  const int64_t prompt = 6, steps = 12;
  // One layer's keys and values at the first regrowth (capacity 12), in bytes.
  const uint64_t regrowth = 2ull * 2 * prompt * static_cast<uint64_t>(c.hidden_size) * sizeof(float);
  Tensor ids = Tensor::zeros({1, prompt}, DType::I64);
  for (int64_t i = 0; i < prompt; ++i) ids.data<int64_t>()[i] = 3 + i;
  ForwardOptions last;
  last.logits_to_keep = 1;
  for (bool reserve : {true, false}) {
    KvCache cache;
    if (reserve) cache.reserve(prompt + steps);
    (void)model.forward(Batch{ids, {}, {}}, last, ctx, &cache);
    Tensor one = Tensor::zeros({1, 1}, DType::I64);
    uint64_t least = ~uint64_t{0}, most = 0;
    for (int64_t s = 0; s < steps; ++s) {
      one.data<int64_t>()[0] = 10 + s;
      const alloc_counter::Counts before = alloc_counter::now();
      (void)model.forward(Batch{one, {}, {}}, last, ctx, &cache);
      const uint64_t used = alloc_counter::now().bytes - before.bytes;
      least = std::min(least, used);
      most = std::max(most, used);
    }
    EXPECT_EQ(cache.length(), prompt + steps);
    // The step's key-padding flags grow by a byte per cached token.
    if (reserve)
      EXPECT_LT(most - least, regrowth) << "a step allocated as much as a regrown cache layer";
    else
      EXPECT_GE(most - least, static_cast<uint64_t>(c.num_hidden_layers) * regrowth) << "the cache never grew";
  }
  // A cleared cache keeps its buffers: the next prompt allocates none of them.
  KvCache cache;
  cache.reserve(prompt + steps);
  const uint64_t buffers = 2ull * static_cast<uint64_t>(c.num_hidden_layers * (prompt + steps) * c.hidden_size) * sizeof(float);
  uint64_t fresh = 0, reused = 0;
  for (uint64_t* used : {&fresh, &reused}) {
    cache.clear();
    const alloc_counter::Counts before = alloc_counter::now();
    (void)model.forward(Batch{ids, {}, {}}, last, ctx, &cache);
    *used = alloc_counter::now().bytes - before.bytes;
  }
  EXPECT_GE(fresh, reused + buffers) << "fresh " << fresh << " bytes, reused " << reused;
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
