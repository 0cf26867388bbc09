// safetensors: writer/reader round trips, dtype conversions from hand-written
// files, and header validation on broken files (always Error, never a crash).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <vector>

#include "roformer/error.h"
#include "roformer/safetensors.h"
#include "support/test_support.h"
#include "torch_builder.h"

namespace roformer {
namespace {

using testing::Bytes;
using testing::as_bytes;
using testing::random_floats;

// 8-byte little-endian header length, the JSON header, then the data section.
Bytes safetensors_file(const std::string& header, const Bytes& data) {
  Bytes b;
  testing::put_le(b, header.size(), 8);
  b.insert(b.end(), header.begin(), header.end());
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

void expect_safetensors_error(const Bytes& b, const std::string& needle) {
  try {
    SafeTensors::from_bytes(b, "bad.safetensors");
    FAIL() << "expected Error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("bad.safetensors"), std::string::npos) << e.what();
  }
}

void expect_safetensors_error(const std::string& header, const Bytes& data, const std::string& needle) {
  expect_safetensors_error(safetensors_file(header, data), needle);
}

TEST(SafeTensors, RoundTripKeepsBitsShapesAndMetadata) {
  testing::TempDir dir;
  const Tensor f32 = Tensor::from_vector({3, 5}, random_floats(15, 1));
  const Tensor bf = Tensor::from_vector({2, 4}, random_floats(8, 2)).to(DType::BF16);
  Tensor i64 = Tensor::zeros({4}, DType::I64);
  for (int64_t k = 0; k < 4; ++k) i64.data<int64_t>()[k] = (k - 2) * (int64_t{1} << 40);
  // A transposed view: the writer must store it in row-major order.
  const Tensor strided = Tensor::view(f32.raw(), {5, 3}, DType::F32, nullptr, {1, 5});
  const Tensor scalar = Tensor::from_vector({}, {2.5f});
  const Tensor empty = Tensor::zeros({0, 3});
  const std::string path = dir.file("x.safetensors");
  save_safetensors(path, {{"f32", f32}, {"bf16", bf}, {"i64", i64}, {"strided", strided}, {"scalar", scalar},
                          {"empty", empty}},
                   {{"format", "pt"}, {"note", "round trip"}});

  const SafeTensors st = SafeTensors::open(path);
  EXPECT_EQ(st.names(), (std::vector<std::string>{"f32", "bf16", "i64", "strided", "scalar", "empty"}));
  EXPECT_EQ(st.metadata().at("note"), "round trip");
  EXPECT_EQ(st.info("bf16").dtype, "BF16");
  EXPECT_EQ(st.get("f32").to_vector(), f32.to_vector());
  const Tensor b = st.get("bf16");
  ASSERT_EQ(b.dtype(), DType::BF16);
  EXPECT_EQ(std::memcmp(b.raw(), bf.raw(), bf.nbytes()), 0);
  const Tensor i = st.get("i64");
  ASSERT_EQ(i.dtype(), DType::I64);
  EXPECT_EQ(std::memcmp(i.raw(), i64.raw(), i64.nbytes()), 0);
  EXPECT_EQ(st.get("strided").shape(), (Shape{5, 3}));
  EXPECT_EQ(st.get("strided").to_vector(), strided.to_vector());
  EXPECT_EQ(st.get("scalar").to_vector(), std::vector<float>{2.5f});
  EXPECT_EQ(st.get("empty").shape(), (Shape{0, 3}));
  EXPECT_FALSE(st.contains("nope"));
  EXPECT_THROW(st.info("nope"), Error);
  EXPECT_THROW(st.get("nope"), Error);
}

TEST(SafeTensors, WriterRejectsDuplicateAndReservedNames) {
  testing::TempDir dir;
  const Tensor t = Tensor::zeros({2});
  EXPECT_THROW(save_safetensors(dir.file("d.safetensors"), {{"a", t}, {"a", t}}), Error);
  EXPECT_THROW(save_safetensors(dir.file("m.safetensors"), {{"__metadata__", t}}), Error);
  EXPECT_THROW(save_safetensors(dir.path() + "/no/such/dir/x.safetensors", {{"a", t}}), Error);
}

TEST(SafeTensors, ConvertsF16F64AndI32AndHandlesMisalignedData) {
  const std::vector<uint16_t> f16 = {0x3c00, 0xc000, 0x0001, 0x03ff, 0x7bff, 0xfc00, 0x7e00, 0x8000};
  const std::vector<double> f64 = {0.1, -2.0};
  const std::vector<int32_t> i32 = {-7, 1 << 30};
  Bytes data = as_bytes(f16);
  const Bytes d64 = as_bytes(f64), d32 = as_bytes(i32);
  data.insert(data.end(), d64.begin(), d64.end());
  data.insert(data.end(), d32.begin(), d32.end());
  const std::vector<float> f32 = {1.5f, -0.25f};
  const Bytes d = as_bytes(f32);
  data.insert(data.end(), d.begin(), d.end());
  // A header of odd length leaves every tensor misaligned: the reader must copy.
  const std::string header =
      R"({"h":{"dtype":"F16","shape":[2,4],"data_offsets":[0,16]},)"
      R"("d":{"dtype":"F64","shape":[2],"data_offsets":[16,32]},)"
      R"("i":{"dtype":"I32","shape":[2],"data_offsets":[32,40]},)"
      R"("f":{"dtype":"F32","shape":[2],"data_offsets":[40,48]}} )";
  const SafeTensors st = SafeTensors::from_bytes(safetensors_file(header, data));
  const std::vector<float> h = st.get("h").to_vector();
  EXPECT_EQ(st.get("h").shape(), (Shape{2, 4}));
  EXPECT_EQ(h[0], 1.0f);
  EXPECT_EQ(h[1], -2.0f);
  EXPECT_EQ(h[2], std::ldexp(1.0f, -24));              // smallest subnormal
  EXPECT_EQ(h[3], std::ldexp(1023.0f, -24));           // largest subnormal
  EXPECT_EQ(h[4], 65504.0f);                           // largest normal
  EXPECT_TRUE(std::isinf(h[5]) && h[5] < 0);
  EXPECT_TRUE(std::isnan(h[6]));
  EXPECT_TRUE(h[7] == 0.0f && std::signbit(h[7]));
  EXPECT_EQ(st.get("d").to_vector(), (std::vector<float>{0.1f, -2.0f}));
  const Tensor i = st.get("i");
  ASSERT_EQ(i.dtype(), DType::I64);
  EXPECT_EQ(i.data<int64_t>()[0], -7);
  EXPECT_EQ(i.data<int64_t>()[1], 1 << 30);
  EXPECT_EQ(st.get("f").to_vector(), f32);
}

TEST(SafeTensors, TruncatedAtEveryLengthIsRejected) {
  testing::TempDir dir;
  save_safetensors(dir.file("s.safetensors"),
                   {{"a", Tensor::from_vector({2, 3}, random_floats(6, 3))}, {"b", Tensor::zeros({4}, DType::I64)}});
  std::ifstream in(dir.file("s.safetensors"), std::ios::binary);
  const Bytes full((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NO_THROW(SafeTensors::from_bytes(full));
  for (std::size_t n = 0; n < full.size(); ++n)
    EXPECT_THROW(SafeTensors::from_bytes(Bytes(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n))), Error)
        << "length " << n;
}

TEST(SafeTensors, HeaderValidation) {
  const Bytes eight(8, 0);
  const std::string ok = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  EXPECT_NO_THROW(SafeTensors::from_bytes(safetensors_file(ok, eight)));
  {
    Bytes b = safetensors_file(ok, eight);
    b[0] = 0xff;  // header length past the end of the file
    expect_safetensors_error(b, "runs past the end");
    b[7] = 0x7f;  // and absurdly large
    expect_safetensors_error(b, "limit");
  }
  expect_safetensors_error(Bytes{1, 2, 3}, "shorter than");
  expect_safetensors_error("[1, 2]", {}, "not a JSON object");
  expect_safetensors_error("\"text\"", {}, "not a JSON object");
  expect_safetensors_error("{not json", {}, "not a JSON object");
  expect_safetensors_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", eight, "outside the data section");
  expect_safetensors_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", eight, "outside the data section");
  expect_safetensors_error(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", eight, "needs 12");
  expect_safetensors_error(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}})", eight, "needs 4");
  expect_safetensors_error(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}})",
               eight, "overlap");
  expect_safetensors_error(R"({"a":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}})", eight, "unknown dtype 'Q7'");
  expect_safetensors_error(R"({"a":{"dtype":7,"shape":[2],"data_offsets":[0,8]}})", eight, "missing dtype");
  expect_safetensors_error(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", eight, "non-negative");
  expect_safetensors_error(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", eight,
               "larger than the file");
  expect_safetensors_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", eight, "data_offsets");
  expect_safetensors_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,-8]}})", eight, "data_offsets");
  expect_safetensors_error(R"({"a":[1,2]})", eight, "not an object");
  expect_safetensors_error(R"({"__metadata__":{"k":1}})", {}, "__metadata__");
  // U8 is a valid file dtype that roformer.cpp does not load: reading it (not opening) fails.
  const SafeTensors u8 = SafeTensors::from_bytes(
      safetensors_file(R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}})", eight));
  EXPECT_THROW(u8.get("a"), Error);
}

TEST(SafeTensors, DuplicateTensorNamesAreRejected) {
  const Bytes data(12, 0);
  expect_safetensors_error(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
               data, "duplicate");
}

TEST(SafeTensors, RandomByteFlipsLoadOrThrow) {
  testing::TempDir dir;
  save_safetensors(dir.file("s.safetensors"), {{"a", Tensor::from_vector({2, 3}, random_floats(6, 4))},
                                               {"b", Tensor::zeros({4}, DType::I64)}});
  std::ifstream in(dir.file("s.safetensors"), std::ios::binary);
  const Bytes full((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::mt19937 rng(7);
  for (int trial = 0; trial < 500; ++trial) {
    Bytes b = full;
    b[rng() % b.size()] = static_cast<uint8_t>(rng());
    try {
      const SafeTensors st = SafeTensors::from_bytes(b);
      for (const std::string& n : st.names()) {
        try {
          st.get(n).to_vector();
        } catch (const Error&) {  // e.g. an I64 tensor, or a dtype flipped to one we do not load
        }
      }
    } catch (const Error&) {
    }
  }
}

TEST(SafeTensors, FixturesOpen) {
  for (const char* dir : {"roformer-tiny-mlm", "roformer-tiny-causal"}) {
    const SafeTensors st = SafeTensors::open(testing::data_path(std::string("fixtures/") + dir + "/model.safetensors"));
    EXPECT_EQ(st.metadata().at("format"), "pt");
    EXPECT_EQ(st.names().size(), 44u);
  }
  EXPECT_THROW(SafeTensors::open(testing::data_path("fixtures/no-such.safetensors")), Error);
}

}  // namespace
}  // namespace roformer

namespace roformer {
namespace {

TEST(SafeTensors, ReleasedMappedPagesReadBackFromTheFile) {
  testing::TempDir dir;
  // 1 MiB of distinct values: whole pages inside the tensor's byte range.
  Tensor big = Tensor::zeros({256 * 1024});
  for (int64_t i = 0; i < big.numel(); ++i) big.data<float>()[i] = static_cast<float>(i) * 0.5f;
  save_safetensors(dir.file("big.safetensors"), {{"w", big}});
  SafeTensors st = SafeTensors::open(dir.file("big.safetensors"));
  const Tensor view = st.get("w");
  const std::size_t bytes = static_cast<std::size_t>(view.numel()) * sizeof(float);
  EXPECT_GT(release_mapped_pages(view.data<float>(), bytes), bytes / 2);
  for (int64_t i = 0; i < view.numel(); ++i) ASSERT_EQ(view.data<float>()[i], static_cast<float>(i) * 0.5f) << i;
  // Heap memory is never discarded.
  std::vector<float> heap(256 * 1024, 3.0f);
  EXPECT_EQ(release_mapped_pages(heap.data(), heap.size() * sizeof(float)), 0u);
  EXPECT_EQ(heap.front(), 3.0f);
  EXPECT_EQ(heap.back(), 3.0f);
  EXPECT_EQ(release_mapped_pages(big.data<float>(), bytes), 0u);
  EXPECT_EQ(big.data<float>()[1000], 500.0f);
  EXPECT_EQ(release_mapped_pages(nullptr, 0), 0u);
}

}  // namespace
}  // namespace roformer
