// PyTorch .bin checkpoints: the HF fixtures against their safetensors twins,
// bit for bit, and hand-built archives for every feature the reader claims
// (dtypes, strides, shared storages, prefixes, deflate, ZIP64, OrderedDict,
// parameters).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "roformer/error.h"
#include "roformer/safetensors.h"
#include "roformer/torch_checkpoint.h"
#include "support/test_support.h"
#include "torch_builder.h"

namespace roformer {
namespace {

using testing::Bytes;
using testing::FakeTensor;
using testing::StateDictStyle;
using testing::as_bytes;
using testing::data_path;
using testing::same_bits;
using testing::state_dict_pickle;
using testing::torch_archive;

const char* kFixtures[] = {"roformer-tiny-mlm", "roformer-tiny-cls", "roformer-tiny-tok",
                           "roformer-tiny-causal", "roformer-tiny-qa", "roformer-tiny-mc"};

TEST(TorchCheckpoint, FixturesMatchSafetensorsBitForBit) {
  // HF drops the tied aliases from safetensors; the .bin keeps them.
  const std::map<std::string, std::string> aliases = {
      {"cls.predictions.decoder.weight", "roformer.embeddings.word_embeddings.weight"},
      {"cls.predictions.decoder.bias", "cls.predictions.bias"}};
  for (const char* dir : kFixtures) {
    SCOPED_TRACE(dir);
    const TorchCheckpoint bin = TorchCheckpoint::open(data_path(std::string("fixtures/") + dir + "/pytorch_model.bin"));
    const SafeTensors st = SafeTensors::open(data_path(std::string("fixtures/") + dir + "/model.safetensors"));
    for (const std::string& name : st.names()) {
      SCOPED_TRACE(name);
      ASSERT_TRUE(bin.contains(name));
      EXPECT_EQ(bin.shape(name), st.info(name).shape);
      EXPECT_EQ(bin.dtype(name), st.info(name).dtype);
      const Tensor t = bin.get(name);
      EXPECT_TRUE(t.is_contiguous());
      EXPECT_TRUE(same_bits(t, st.get(name)));
    }
    for (const std::string& name : bin.names()) {
      if (st.contains(name)) continue;
      SCOPED_TRACE(name);
      auto it = aliases.find(name);
      ASSERT_NE(it, aliases.end()) << "unexpected tensor only in the .bin";
      const Tensor alias = bin.get(name), target = bin.get(it->second);
      EXPECT_TRUE(same_bits(alias, st.get(it->second)));
      EXPECT_EQ(alias.raw(), target.raw()) << "tied tensors should view one storage";
    }
    EXPECT_GE(bin.names().size(), st.names().size());
  }
}

TEST(TorchCheckpoint, ViewsOutliveTheCheckpointObject) {
  Tensor t;
  {
    const TorchCheckpoint bin = TorchCheckpoint::open(data_path("fixtures/roformer-tiny-mlm/pytorch_model.bin"));
    t = bin.get("roformer.embeddings.word_embeddings.weight");
  }
  const SafeTensors st = SafeTensors::open(data_path("fixtures/roformer-tiny-mlm/model.safetensors"));
  EXPECT_TRUE(same_bits(t, st.get("roformer.embeddings.word_embeddings.weight")));
}

TEST(TorchCheckpoint, NamesFollowPickleOrderAndMissingNameThrows) {
  const TorchCheckpoint bin = TorchCheckpoint::open(data_path("fixtures/roformer-tiny-mlm/pytorch_model.bin"));
  ASSERT_FALSE(bin.names().empty());
  EXPECT_EQ(bin.names().front(), "roformer.embeddings.word_embeddings.weight");
  EXPECT_FALSE(bin.contains("nope"));
  try {
    bin.get("nope");
    FAIL() << "expected Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'nope'"), std::string::npos);
  }
}

std::vector<float> iota_floats(std::size_t n) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<float>(i) * 0.5f - 3.0f;
  return v;
}

TEST(TorchCheckpoint, StridedAndOffsetTensorsBecomeContiguousCopies) {
  const std::vector<float> s = iota_floats(24);
  std::vector<FakeTensor> ts = {
      {"plain", "FloatStorage", "0", 24, 0, {4, 6}, {6, 1}},
      {"transposed", "FloatStorage", "0", 24, 0, {6, 4}, {1, 6}},
      {"slice", "FloatStorage", "0", 24, 7, {2, 3}, {6, 2}},
      {"broadcast", "FloatStorage", "0", 24, 5, {3, 2}, {0, 1}},
      {"scalar", "FloatStorage", "0", 24, 11, {}, {}},
      {"empty", "FloatStorage", "0", 24, 24, {0, 5}, {5, 1}},
  };
  const TorchCheckpoint ck =
      TorchCheckpoint::from_bytes(torch_archive(state_dict_pickle(ts), {{"0", as_bytes(s)}}), "strided");
  EXPECT_EQ(ck.get("plain").to_vector(), s);
  std::vector<float> tr, sl, bc;
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 4; ++j) tr.push_back(s[static_cast<std::size_t>(j * 6 + i)]);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j) sl.push_back(s[static_cast<std::size_t>(7 + i * 6 + j * 2)]);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 2; ++j) bc.push_back(s[static_cast<std::size_t>(5 + j)]);
  const Tensor t = ck.get("transposed");
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.to_vector(), tr);
  EXPECT_EQ(ck.get("slice").to_vector(), sl);
  EXPECT_EQ(ck.get("broadcast").to_vector(), bc);
  EXPECT_EQ(ck.get("scalar").to_vector(), std::vector<float>{s[11]});
  EXPECT_EQ(ck.get("scalar").shape(), Shape{});
  EXPECT_EQ(ck.get("empty").shape(), (Shape{0, 5}));
}

TEST(TorchCheckpoint, ConvertsEveryStorageType) {
  const std::vector<uint16_t> f16 = {0x3c00, 0xc000, 0x0001, 0x7bff, 0x7c00, 0x8000};  // 1 -2 2^-24 65504 inf -0
  const std::vector<uint16_t> b16 = {0x3f80, 0xc040, 0x0000};                          // 1 -3 0
  const std::vector<double> f64 = {0.1, -1e300, 2.5};
  const std::vector<int64_t> i64 = {-5, 1ll << 40, 7};
  const std::vector<int32_t> i32 = {-2, 3};
  const std::vector<int16_t> i16 = {-300, 300};
  const std::vector<int8_t> i8 = {-1, 1};
  const Bytes u8 = {0, 255}, boolean = {0, 1, 2};
  std::vector<FakeTensor> ts = {
      {"f16", "HalfStorage", "a", 6, 0, {6}, {1}},   {"bf16", "BFloat16Storage", "b", 3, 0, {3}, {1}},
      {"f64", "DoubleStorage", "c", 3, 0, {3}, {1}}, {"i64", "LongStorage", "d", 3, 0, {3}, {1}},
      {"i32", "IntStorage", "e", 2, 0, {2}, {1}},    {"i16", "ShortStorage", "f", 2, 0, {2}, {1}},
      {"i8", "CharStorage", "g", 2, 0, {2}, {1}},    {"u8", "ByteStorage", "h", 2, 0, {2}, {1}},
      {"bool", "BoolStorage", "i", 3, 0, {3}, {1}},  {"i64_strided", "LongStorage", "d", 3, 0, {2}, {2}},
  };
  const Bytes archive = torch_archive(state_dict_pickle(ts), {{"a", as_bytes(f16)},
                                                              {"b", as_bytes(b16)},
                                                              {"c", as_bytes(f64)},
                                                              {"d", as_bytes(i64)},
                                                              {"e", as_bytes(i32)},
                                                              {"f", as_bytes(i16)},
                                                              {"g", as_bytes(i8)},
                                                              {"h", u8},
                                                              {"i", boolean}});
  const TorchCheckpoint ck = TorchCheckpoint::from_bytes(archive, "dtypes");
  EXPECT_EQ(ck.dtype("f16"), "F16");
  EXPECT_EQ(ck.dtype("bool"), "BOOL");
  const std::vector<float> h = ck.get("f16").to_vector();
  EXPECT_EQ(h[0], 1.0f);
  EXPECT_EQ(h[1], -2.0f);
  EXPECT_EQ(h[2], std::ldexp(1.0f, -24));
  EXPECT_EQ(h[3], 65504.0f);
  EXPECT_TRUE(std::isinf(h[4]) && h[4] > 0);
  EXPECT_TRUE(h[5] == 0.0f && std::signbit(h[5]));
  EXPECT_EQ(ck.get("bf16").to_vector(), (std::vector<float>{1.0f, -3.0f, 0.0f}));
  const std::vector<float> d = ck.get("f64").to_vector();
  EXPECT_EQ(d[0], 0.1f);
  EXPECT_TRUE(std::isinf(d[1]) && d[1] < 0);
  auto ints = [&](const std::string& n) {
    const Tensor t = ck.get(n);
    EXPECT_EQ(t.dtype(), DType::I64);
    return std::vector<int64_t>(t.data<int64_t>(), t.data<int64_t>() + t.numel());
  };
  EXPECT_EQ(ints("i64"), i64);
  EXPECT_EQ(ints("i32"), (std::vector<int64_t>{-2, 3}));
  EXPECT_EQ(ints("i16"), (std::vector<int64_t>{-300, 300}));
  EXPECT_EQ(ints("i8"), (std::vector<int64_t>{-1, 1}));
  EXPECT_EQ(ints("u8"), (std::vector<int64_t>{0, 255}));
  EXPECT_EQ(ints("bool"), (std::vector<int64_t>{0, 1, 1}));
  EXPECT_EQ(ints("i64_strided"), (std::vector<int64_t>{-5, 7}));
}

TEST(TorchCheckpoint, OrderedDictParametersPrefixDeflateAndZip64) {
  const std::vector<float> s = iota_floats(10);
  const std::vector<FakeTensor> ts = {{"w", "FloatStorage", "0", 10, 2, {2, 4}, {4, 1}},
                                      {"tied", "FloatStorage", "0", 10, 2, {2, 4}, {4, 1}}};
  const std::vector<float> want(s.begin() + 2, s.end());
  struct Case {
    StateDictStyle style;
    std::string prefix;
    testing::ZipOptions zip;
  };
  const Case cases[] = {
      {{true, false, false}, "archive", {}},
      {{false, true, false}, "my_model", {}},
      {{true, true, true}, "x", {}},
      {{false, false, false}, "archive", {true, false}},
      {{false, false, true}, "big", {false, true}},
      {{true, false, false}, "big", {true, true}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.prefix + (c.zip.deflate ? " deflate" : "") + (c.zip.zip64 ? " zip64" : ""));
    const Bytes archive = torch_archive(state_dict_pickle(ts, c.style), {{"0", as_bytes(s)}}, c.prefix, c.zip);
    const TorchCheckpoint ck = TorchCheckpoint::from_bytes(archive, "styles");
    EXPECT_EQ(ck.names(), (std::vector<std::string>{"w", "tied"}));
    EXPECT_EQ(ck.get("w").to_vector(), want);
    EXPECT_EQ(ck.get("tied").to_vector(), want);
  }
}

TEST(TorchCheckpoint, OpensFromDiskAndRejectsLegacyFormat) {
  testing::TempDir dir;
  const Bytes legacy = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, '.'};
  std::ofstream(dir.file("old.bin"), std::ios::binary).write(reinterpret_cast<const char*>(legacy.data()),
                                                             static_cast<std::streamsize>(legacy.size()));
  try {
    TorchCheckpoint::open(dir.file("old.bin"));
    FAIL() << "expected Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("legacy torch.save format not supported"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("old.bin"), std::string::npos);
  }
  std::ofstream(dir.file("empty.bin"), std::ios::binary).flush();
  EXPECT_THROW(TorchCheckpoint::open(dir.file("empty.bin")), Error);
  EXPECT_THROW(TorchCheckpoint::open(dir.file("missing.bin")), Error);
  EXPECT_THROW(TorchCheckpoint::open(dir.path()), Error);  // a directory
}

}  // namespace
}  // namespace roformer
