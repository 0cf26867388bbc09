// Inference with packed weights. bf16 (weights and activations of the matrix
// products rounded to bf16, fp32 accumulation) against HF's fp32 outputs, and
// its boundaries: switching it off restores fp32 exactly, and training or
// saving a bf16 model still sees the fp32 weights. Packed fp32 against HF and
// the plain products.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>

#include "kernels/packed_matmul.h"
#include "roformer/error.h"
#include "roformer/model.h"
#include "roformer/safetensors.h"
#include "roformer/training.h"
#include "support/model_fixtures.h"
#include "support/test_support.h"

namespace roformer {
namespace {

using testing::fixture_batch;
using testing::data_path;
using testing::max_abs_diff;

// bf16 keeps 8 significant bits (relative rounding error <= 2^-9 per value).
// Through the tiny fixtures' 2 layers with LayerNorm after every block the
// outputs move by well under 1e-2 relative (measured: see the printout); the
// bound leaves room for other CPUs' accumulation orders while still failing
// if a product were computed wrongly (errors of order 1).
constexpr double kBf16Tolerance = 3e-2;

using Case = testing::TaskFixture;

// The HF fixtures both suites run on, named by their head.
const Case kFixtures[] = {{"roformer-tiny-mlm", Task::MaskedLM},
                          {"roformer-tiny-cls", Task::SequenceClassification},
                          {"roformer-tiny-causal", Task::CausalLM},
                          {"roformer-tiny-qa", Task::QuestionAnswering}};

std::string fixture_name(const ::testing::TestParamInfo<Case>& info) {
  return info.param.dir.substr(std::string("roformer-tiny-").size());
}

// int8 quantizes weights per output row (127 steps each side) and activations
// per token (255 steps over the row's range): each operand's rounding error is
// at most half a step, about 0.4 % of the row's largest value, so products move
// by several times bf16's 2^-9 (measured up to 6e-2 on these random-weight
// models, against bf16's 2e-2: see the printout). The bound still
// fails if a sum or a scale were wrong (errors of order 1).
constexpr double kInt8Tolerance = 1e-1;

struct Reduced {
  const char* name;
  bool int8;
  double tolerance;
  double least;  // the reduced precision must move the outputs at least this much
  std::string bf16_kernel = "auto";
};

// Loaded with `r`'s products: within its tolerance of HF's fp32 outputs at 1
// and 2 threads; switched off again: exactly the fp32 model.
void check_close_to_hf_and_switchable(const Case& c, const Reduced& r) {
  const std::string dir = data_path("fixtures/" + c.dir);
  SafeTensors expected = SafeTensors::open(dir + "/expected.safetensors");
  Batch batch = fixture_batch(expected);
  LoadOptions load;
  load.bf16_matmuls = !r.int8;
  load.int8_matmuls = r.int8;
  load.bf16_kernel = r.bf16_kernel;
  RoFormerModel model = RoFormerModel::from_pretrained(dir, load);
  ASSERT_EQ(model.bf16_matmuls(), !r.int8);
  ASSERT_EQ(model.int8_matmuls(), r.int8);
  ASSERT_EQ(model.task(), c.task);
  std::vector<float> first;
  for (int threads : {1, 2}) {
    const ModelOutput out = model.forward(batch, {}, ExecContext{threads});
    std::vector<std::pair<std::string, Tensor>> compared{{"last_hidden_state", out.last_hidden_state}};
    for (const auto& [name, t] : out.heads) compared.emplace_back(name, t);
    for (const auto& [name, t] : compared) {
      const auto ours = t.to_vector(), ref = expected.get(name).to_vector();
      const double scaled = testing::max_scaled_diff(ours, ref);
      std::printf("%s %s %s threads %d: max|diff| / max(1, max|ref|) = %.2e\n", r.name, c.dir.c_str(), name.c_str(),
                  threads, scaled);
      EXPECT_LE(scaled, r.tolerance) << c.dir << " " << name;
      EXPECT_GT(scaled, r.least) << c.dir << " " << name << ": " << r.name << " rounding should show";
    }
    // int8 quantizes per row and sums exactly: the thread count changes no bit.
    if (first.empty()) {
      first = out.last_hidden_state.to_vector();
    } else if (r.int8) {
      EXPECT_EQ(out.last_hidden_state.to_vector(), first);
    }
  }
  // Off again: exactly the fp32 model's outputs.
  if (r.int8) model.set_int8_matmuls(false);
  else model.set_bf16_matmuls(false);
  EXPECT_FALSE(model.bf16_matmuls());
  EXPECT_FALSE(model.int8_matmuls());
  EXPECT_FALSE(model.packed_matmuls());
  LoadOptions plain;
  plain.packed_matmuls = false;
  const RoFormerModel fp32 = RoFormerModel::from_pretrained(dir, plain);
  EXPECT_EQ(max_abs_diff(model.forward(batch, {}, ExecContext{1}).last_hidden_state.to_vector(),
                         fp32.forward(batch, {}, ExecContext{1}).last_hidden_state.to_vector()),
            0.0);
}

class Bf16Inference : public ::testing::TestWithParam<Case> {};

TEST_P(Bf16Inference, CloseToHfFp32AndSwitchable) {
  check_close_to_hf_and_switchable(GetParam(), Reduced{"bf16", false, kBf16Tolerance, 1e-6});
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Bf16Inference,
                         ::testing::ValuesIn(kFixtures), fixture_name);

// Each code behind the bf16 products by name: oneDNN everywhere (emulated
// where the CPU has no bf16), our AVX512-BF16 panels where the CPU has them
// and a clear error where it does not.
class Bf16Kernels : public ::testing::TestWithParam<Case> {};

TEST_P(Bf16Kernels, EachCloseToHfFp32) {
  check_close_to_hf_and_switchable(GetParam(), Reduced{"bf16 onednn", false, kBf16Tolerance, 1e-6, "onednn"});
  if (cpu_has_avx512_bf16()) {
    check_close_to_hf_and_switchable(GetParam(), Reduced{"bf16 panels", false, kBf16Tolerance, 1e-6, "panels"});
  } else {
    LoadOptions load;
    load.bf16_matmuls = true;
    load.bf16_kernel = "panels";
    EXPECT_THROW(RoFormerModel::from_pretrained(data_path("fixtures/" + GetParam().dir), load), Error);
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Bf16Kernels, ::testing::ValuesIn(kFixtures), fixture_name);

TEST(Bf16Kernels, UnknownNameIsAnError) {
  LoadOptions load;
  load.bf16_matmuls = true;
  load.bf16_kernel = "fastest";
  EXPECT_THROW(RoFormerModel::from_pretrained(data_path("fixtures/roformer-tiny-cls"), load), Error);
}

class Int8Inference : public ::testing::TestWithParam<Case> {};

TEST_P(Int8Inference, CloseToHfFp32AndSwitchable) {
  check_close_to_hf_and_switchable(GetParam(), Reduced{"int8", true, kInt8Tolerance, 1e-5});
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Int8Inference,
                         ::testing::ValuesIn(kFixtures), fixture_name);

TEST(ReducedPrecision, BothAtOnceIsAnError) {
  LoadOptions both;
  both.int8_matmuls = both.bf16_matmuls = true;
  EXPECT_THROW(RoFormerModel::from_pretrained(data_path("fixtures/roformer-tiny-cls"), both), Error);
}

// Packed fp32 products (the default where oneDNN runs this CPU's products,
// with bias, activation and residual fused, and where our own AVX2 panels
// take the libraries' place): HF's outputs to fp32 accuracy, the plain
// products' to a few roundings; a context that does not run oneDNN reads the
// plain weights bit for bit, or, with our panels, runs them as oneDNN's does;
// a scalar context always reads the plain weights.
class PackedInference : public ::testing::TestWithParam<Case> {};

TEST_P(PackedInference, MatchesHfAndThePlainProducts) {
  const Case& c = GetParam();
  const std::string dir = data_path("fixtures/" + c.dir);
  SafeTensors expected = SafeTensors::open(dir + "/expected.safetensors");
  Batch batch = fixture_batch(expected);
  RoFormerModel packed = RoFormerModel::from_pretrained(dir);
  EXPECT_EQ(packed.packed_matmuls(),
            default_gemm_backend() == GemmBackend::OneDnn || kernels::PackedMatmul::own_f32_panels());
  packed.set_packed_matmuls(true);  // also where oneDNN is not the default
  ASSERT_TRUE(packed.packed_matmuls());
  LoadOptions no_pack;
  no_pack.packed_matmuls = false;
  const RoFormerModel plain = RoFormerModel::from_pretrained(dir, no_pack);
  ASSERT_FALSE(plain.packed_matmuls());
  for (int threads : {1, 2}) {
    ExecContext onednn{threads};
    onednn.gemm = GemmBackend::OneDnn;
    const ModelOutput a = packed.forward(batch, {}, onednn), b = plain.forward(batch, {}, onednn);
    EXPECT_LE(testing::max_scaled_diff(a.last_hidden_state.to_vector(), b.last_hidden_state.to_vector()), 1e-5);
    EXPECT_LE(testing::max_scaled_diff(a.last_hidden_state.to_vector(), expected.get("last_hidden_state").to_vector()),
              1e-4);
    for (const auto& [name, t] : a.heads) {
      EXPECT_LE(testing::max_scaled_diff(t.to_vector(), b.heads.at(name).to_vector()), 1e-5) << name;
      EXPECT_LE(testing::max_scaled_diff(t.to_vector(), expected.get(name).to_vector()), 1e-4) << name;
    }
    ExecContext openblas{threads};
    openblas.gemm = GemmBackend::OpenBlas;
    const std::vector<float> packed_openblas = packed.forward(batch, {}, openblas).last_hidden_state.to_vector();
    const std::vector<float> plain_openblas = plain.forward(batch, {}, openblas).last_hidden_state.to_vector();
    if (kernels::PackedMatmul::own_f32_panels()) {
      EXPECT_EQ(max_abs_diff(packed_openblas, a.last_hidden_state.to_vector()), 0.0);
      EXPECT_LE(testing::max_scaled_diff(packed_openblas, plain_openblas), 1e-5);
    } else {
      EXPECT_EQ(max_abs_diff(packed_openblas, plain_openblas), 0.0);
    }
    ExecContext scalar{threads, Isa::Scalar};
    EXPECT_EQ(max_abs_diff(packed.forward(batch, {}, scalar).last_hidden_state.to_vector(),
                           plain.forward(batch, {}, scalar).last_hidden_state.to_vector()),
              0.0);
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, PackedInference,
                         ::testing::ValuesIn(kFixtures), fixture_name);

// Reduced-precision packs are for inference only: training and saving a
// bf16 or int8 model see the fp32 weights, bit for bit.
TEST(ReducedPrecision, TrainingAndSavingUseTheFp32Weights) {
  const std::string dir = data_path("fixtures/roformer-tiny-cls");
  SafeTensors expected = SafeTensors::open(dir + "/expected.safetensors");
  Batch batch = fixture_batch(expected);
  const RoFormerModel fp32 = RoFormerModel::from_pretrained(dir);
  TrainLabels labels;
  labels.labels = Tensor::zeros({batch.input_ids.size(0)}, DType::I64);
  TrainableRoFormer t32(fp32);
  const double l32 = t32.forward_backward(batch, labels, ExecContext{1}).loss;
  const auto p32 = t32.parameters();

  for (const bool int8 : {false, true}) {
    LoadOptions load;
    load.bf16_matmuls = !int8;
    load.int8_matmuls = int8;
    const RoFormerModel reduced = RoFormerModel::from_pretrained(dir, load);
    ASSERT_TRUE(int8 ? reduced.int8_matmuls() : reduced.bf16_matmuls());
    TrainableRoFormer t(reduced);
    EXPECT_EQ(t.forward_backward(batch, labels, ExecContext{1}).loss, l32) << (int8 ? "int8" : "bf16");
    const auto p = t.parameters();
    ASSERT_EQ(p32.size(), p.size());
    for (std::size_t i = 0; i < p32.size(); ++i)
      EXPECT_EQ(max_abs_diff(p32[i].grad.to_vector(), p[i].grad.to_vector()), 0.0) << p32[i].name;

    const auto saved = std::filesystem::temp_directory_path() / (int8 ? "roformer_int8_save_test" : "roformer_bf16_save_test");
    reduced.save_pretrained(saved.string());
    SafeTensors back = SafeTensors::open((saved / "model.safetensors").string());
    for (const auto& [name, tensor] : fp32.named_tensors()) {
      ASSERT_TRUE(back.contains(name)) << name;
      EXPECT_EQ(max_abs_diff(back.get(name).to_vector(), tensor.to_vector()), 0.0) << name;
    }
    std::filesystem::remove_all(saved);
  }
}

}  // namespace
}  // namespace roformer
