// Checkpoint averaging: the element-wise mean in double, dtypes kept, and a
// clear error for every kind of mismatch.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "roformer/checkpoint_average.h"
#include "roformer/error.h"
#include "roformer/safetensors.h"
#include "support/test_support.h"

namespace roformer {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

Tensor bf16_tensor(const std::vector<float>& v) {
  Tensor t = Tensor::zeros({static_cast<int64_t>(v.size())}, DType::BF16);
  for (std::size_t i = 0; i < v.size(); ++i) t.data<bf16>()[i] = f32_to_bf16(v[i]);
  return t;
}

Tensor i64_tensor(const std::vector<int64_t>& v) {
  Tensor t = Tensor::zeros({static_cast<int64_t>(v.size())}, DType::I64);
  for (std::size_t i = 0; i < v.size(); ++i) t.data<int64_t>()[i] = v[i];
  return t;
}

// Checkpoint k of three: w = i + 0.5 k, plus one column that cancels in float.
void write_checkpoint(const std::string& path, int k) {
  std::vector<float> w(6);
  for (int i = 0; i < 6; ++i) w[static_cast<std::size_t>(i)] = static_cast<float>(i) + 0.5f * static_cast<float>(k);
  const float big[] = {1e8f, 1.0f, -1e8f};  // a float running sum loses the 1
  w[5] = big[k];
  const float b[] = {1.0f, 2.0f, 4.0f};
  const int64_t pos[] = {1, 2, 4};
  save_safetensors(path, {{"encoder.w", Tensor::from_vector({2, 3}, w)},
                          {"encoder.b", bf16_tensor({b[k], -b[k]})},
                          {"position_ids", i64_tensor({pos[k], -pos[k], 7})}},
                   {{"format", "pt"}, {"step", std::to_string(k)}});
}

std::string average_error_of(const std::vector<std::string>& inputs, const std::string& out) {
  try {
    average_checkpoints(inputs, out);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// A valid safetensors file with one F16 tensor (the writer has no F16).
void write_f16_file(const std::string& path) {
  const std::string header = R"({"encoder.w":{"dtype":"F16","shape":[2,3],"data_offsets":[0,12]}})";
  std::ofstream out(path, std::ios::binary);
  const uint64_t n = header.size();
  char len[8];
  std::memcpy(len, &n, 8);
  out.write(len, 8);
  out << header << std::string(12, '\0');
}

TEST(CheckpointAverage, MeanOfThreeInDoubleKeepingDtypes) {
  TempDir dir;
  std::vector<std::string> inputs;
  for (int k = 0; k < 3; ++k) {
    inputs.push_back(dir.file("c" + std::to_string(k) + ".safetensors"));
    write_checkpoint(inputs.back(), k);
  }
  const CheckpointAverageReport rep = average_checkpoints(inputs, dir.file("avg.safetensors"));
  EXPECT_EQ(rep.tensors, 3);
  EXPECT_EQ(rep.elements, 6 + 2 + 3);
  EXPECT_EQ(rep.inputs, inputs);

  const SafeTensors avg = SafeTensors::open(dir.file("avg.safetensors"));
  EXPECT_EQ(avg.names(), (std::vector<std::string>{"encoder.w", "encoder.b", "position_ids"}));
  EXPECT_EQ(avg.info("encoder.w").dtype, "F32");
  EXPECT_EQ(avg.info("encoder.b").dtype, "BF16");
  EXPECT_EQ(avg.info("position_ids").dtype, "I64");
  EXPECT_EQ(avg.info("encoder.w").shape, (Shape{2, 3}));

  const std::vector<float> w = avg.get("encoder.w").to_vector();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(w[static_cast<std::size_t>(i)], static_cast<float>(i) + 0.5f) << i;
  EXPECT_EQ(w[5], static_cast<float>(1.0 / 3.0));  // (1e8 + 1 - 1e8) / 3, exact only in double

  const Tensor b = avg.get("encoder.b");
  EXPECT_EQ(b.data<bf16>()[0].bits, f32_to_bf16(static_cast<float>(7.0 / 3.0)).bits);
  EXPECT_EQ(b.data<bf16>()[1].bits, f32_to_bf16(static_cast<float>(-7.0 / 3.0)).bits);

  const Tensor pos = avg.get("position_ids");  // floor of the mean, like fairseq's //
  EXPECT_EQ(pos.data<int64_t>()[0], 2);
  EXPECT_EQ(pos.data<int64_t>()[1], -3);
  EXPECT_EQ(pos.data<int64_t>()[2], 7);

  EXPECT_EQ(avg.metadata().at("averaged_checkpoints"), "3");
  EXPECT_EQ(avg.metadata().at("step"), "0");  // the first input's metadata is kept
}

TEST(CheckpointAverage, OneCheckpointIsCopiedExactlyAndDirectoriesWork) {
  TempDir dir;
  fs::create_directories(dir.file("ck"));
  write_checkpoint(dir.file("ck/model.safetensors"), 1);
  average_checkpoints({dir.file("ck")}, dir.file("one.safetensors"));
  const SafeTensors a = SafeTensors::open(dir.file("ck/model.safetensors"));
  const SafeTensors b = SafeTensors::open(dir.file("one.safetensors"));
  EXPECT_EQ(a.get("encoder.w").to_vector(), b.get("encoder.w").to_vector());
  EXPECT_EQ(a.get("encoder.b").data<bf16>()[1].bits, b.get("encoder.b").data<bf16>()[1].bits);
  EXPECT_EQ(b.get("position_ids").data<int64_t>()[1], -2);
}

TEST(CheckpointAverage, MismatchesAreClearErrors) {
  TempDir dir;
  write_checkpoint(dir.file("a.safetensors"), 0);
  const std::string out = dir.file("out.safetensors");

  save_safetensors(dir.file("missing.safetensors"), {{"encoder.w", Tensor::zeros({2, 3})}});
  EXPECT_NE(average_error_of({dir.file("a.safetensors"), dir.file("missing.safetensors")}, out).find("'encoder.b'"),
            std::string::npos);

  save_safetensors(dir.file("extra.safetensors"), {{"encoder.w", Tensor::zeros({2, 3})},
                                                  {"encoder.b", bf16_tensor({0, 0})},
                                                  {"position_ids", i64_tensor({0, 0, 0})},
                                                  {"head.x", Tensor::zeros({1})}});
  EXPECT_NE(average_error_of({dir.file("a.safetensors"), dir.file("extra.safetensors")}, out).find("'head.x'"),
            std::string::npos);

  save_safetensors(dir.file("shape.safetensors"), {{"encoder.w", Tensor::zeros({3, 2})},
                                                  {"encoder.b", bf16_tensor({0, 0})},
                                                  {"position_ids", i64_tensor({0, 0, 0})}});
  const std::string shape_err = average_error_of({dir.file("a.safetensors"), dir.file("shape.safetensors")}, out);
  EXPECT_NE(shape_err.find("shape"), std::string::npos) << shape_err;
  EXPECT_NE(shape_err.find("encoder.w"), std::string::npos) << shape_err;

  save_safetensors(dir.file("dtype.safetensors"), {{"encoder.w", Tensor::zeros({2, 3})},
                                                  {"encoder.b", Tensor::zeros({2})},
                                                  {"position_ids", i64_tensor({0, 0, 0})}});
  const std::string dtype_err = average_error_of({dir.file("a.safetensors"), dir.file("dtype.safetensors")}, out);
  EXPECT_NE(dtype_err.find("BF16"), std::string::npos) << dtype_err;
  EXPECT_NE(dtype_err.find("F32"), std::string::npos) << dtype_err;

  write_f16_file(dir.file("f16.safetensors"));
  EXPECT_NE(average_error_of({dir.file("f16.safetensors")}, out).find("dtype F16"), std::string::npos);

  EXPECT_NE(average_error_of({}, out).find("no checkpoint"), std::string::npos);
  EXPECT_THROW(average_checkpoints({dir.file("nope.safetensors")}, out), Error);
  EXPECT_FALSE(fs::exists(out));  // nothing written after a failure
}

TEST(CheckpointAverage, LastCheckpointsAreOrderedByStepNumber) {
  TempDir dir;
  for (const char* step : {"5", "100", "10", "7", "x"}) {
    fs::create_directories(dir.file(std::string("checkpoint-") + step));
    if (std::string(step) != "7") write_checkpoint(dir.file(std::string("checkpoint-") + step + "/model.safetensors"), 0);
  }
  fs::create_directories(dir.file("final"));
  const std::vector<std::string> last = last_checkpoints(dir.path(), 2);
  ASSERT_EQ(last.size(), 2u);
  EXPECT_EQ(fs::path(last[0]).parent_path().filename(), "checkpoint-10");
  EXPECT_EQ(fs::path(last[1]).parent_path().filename(), "checkpoint-100");
  EXPECT_EQ(last_checkpoints(dir.path(), 3).front(), dir.file("checkpoint-5/model.safetensors"));
  EXPECT_THROW(last_checkpoints(dir.path(), 4), Error);  // checkpoint-7 has no model, checkpoint-x no step
  EXPECT_THROW(last_checkpoints(dir.file("absent"), 1), Error);
}

}  // namespace
}  // namespace roformer
