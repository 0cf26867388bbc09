// TensorSource: one name -> tensor view over HF checkpoint directories, single
// files and sharded indexes (safetensors and torch .bin), with the index
// validated (missing shards, paths leaving the directory, misplaced tensors).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "roformer/checkpoint_files.h"
#include "roformer/error.h"
#include "roformer/safetensors.h"
#include "support/test_support.h"

namespace roformer {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::data_path;
using testing::random_floats;
using testing::same_bits;
using testing::write_file;


void expect_open_error(const std::string& path, const std::string& needle) {
  try {
    TensorSource::open(path);
    FAIL() << "expected Error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

// Two shards plus an index, as save_pretrained(max_shard_size=...) lays them out.
struct ShardedDir {
  TempDir dir;
  Tensor a = Tensor::from_vector({2, 3}, random_floats(6, 11));
  Tensor b = Tensor::from_vector({4}, random_floats(4, 12));
  Tensor c = Tensor::from_vector({3}, random_floats(3, 13));
  ShardedDir() {
    save_safetensors(dir.file("model-00001-of-00002.safetensors"), {{"a", a}, {"b", b}});
    save_safetensors(dir.file("model-00002-of-00002.safetensors"), {{"c", c}, {"extra", c}});
    index(R"("a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors",
             "c": "model-00002-of-00002.safetensors")");
  }
  void index(const std::string& weight_map) const {
    write_file(dir.file("model.safetensors.index.json"),
               R"({"metadata": {"total_size": 52}, "weight_map": {)" + weight_map + "}}");
  }
};

TEST(TensorSource, ShardedSafetensorsDirectory) {
  const ShardedDir d;
  const TensorSource src = TensorSource::open(d.dir.path());
  EXPECT_EQ(src.names(), (std::vector<std::string>{"a", "b", "c"}));  // "extra" is not in the index
  EXPECT_EQ(src.files().size(), 2u);
  EXPECT_TRUE(src.contains("c"));
  EXPECT_FALSE(src.contains("extra"));
  EXPECT_EQ(src.shape("a"), (Shape{2, 3}));
  EXPECT_EQ(src.dtype("b"), "F32");
  EXPECT_TRUE(same_bits(src.get("a"), d.a));
  EXPECT_TRUE(same_bits(src.get("b"), d.b));
  EXPECT_TRUE(same_bits(src.get("c"), d.c));
  EXPECT_THROW(src.get("extra"), Error);
  // The index file itself is accepted as an explicit path.
  EXPECT_EQ(TensorSource::open(d.dir.file("model.safetensors.index.json")).names().size(), 3u);
}

TEST(TensorSource, ShardedIndexIsValidated) {
  const ShardedDir d;
  const std::string index = d.dir.file("model.safetensors.index.json");
  d.index(R"("a": "model-00001-of-00002.safetensors", "z": "model-00003-of-00003.safetensors")");
  expect_open_error(index, "model-00003-of-00003.safetensors");
  expect_open_error(d.dir.path(), "is missing");
  d.index(R"("a": "../model-00001-of-00002.safetensors")");
  expect_open_error(index, "outside the checkpoint directory");
  d.index(R"("a": "/etc/passwd")");
  expect_open_error(index, "outside the checkpoint directory");
  d.index(R"("a": "sub/../../x.safetensors")");
  expect_open_error(index, "outside the checkpoint directory");
  d.index(R"("c": "model-00001-of-00002.safetensors")");
  expect_open_error(index, "tensor 'c' is not in its shard");
  d.index(R"("a": 3)");
  expect_open_error(index, "not a file name");
  d.index("");
  expect_open_error(index, "empty");
  write_file(index, "[1, 2, 3]");
  expect_open_error(index, "weight_map");
  write_file(index, "{\"weight_map\": ");
  expect_open_error(index, "not valid JSON");
}

TEST(TensorSource, FixtureDirectoryPrefersSafetensorsAndBinMatches) {
  const std::string dir = data_path("fixtures/roformer-tiny-mlm");
  const TensorSource st = TensorSource::open(dir);
  ASSERT_EQ(st.files().size(), 1u);
  EXPECT_NE(st.files()[0].find("model.safetensors"), std::string::npos);
  const TensorSource bin = TensorSource::open(dir + "/pytorch_model.bin");
  EXPECT_EQ(bin.names().size(), st.names().size() + 2);  // the tied decoder aliases
  for (const std::string& n : st.names()) EXPECT_TRUE(same_bits(st.get(n), bin.get(n))) << n;
}

TEST(TensorSource, BinDirectoriesSingleAndSharded) {
  TempDir dir;
  const std::string src = data_path("fixtures/roformer-tiny-qa/pytorch_model.bin");
  // A directory with only the .bin falls back to it.
  fs::copy_file(src, dir.file("pytorch_model.bin"));
  const TensorSource single = TensorSource::open(dir.path());
  EXPECT_NE(single.files()[0].find("pytorch_model.bin"), std::string::npos);
  const SafeTensors ref = SafeTensors::open(data_path("fixtures/roformer-tiny-qa/model.safetensors"));
  for (const std::string& n : ref.names()) EXPECT_TRUE(same_bits(single.get(n), ref.get(n))) << n;

  // A .bin index over two copies of the checkpoint, each tensor taken from one of them.
  fs::remove(dir.file("pytorch_model.bin"));
  fs::copy_file(src, dir.file("pytorch_model-00001-of-00002.bin"));
  fs::copy_file(src, dir.file("pytorch_model-00002-of-00002.bin"));
  std::string map;
  const std::vector<std::string> names = ref.names();
  for (std::size_t k = 0; k < names.size(); ++k) {
    if (k) map += ',';
    map += "\"" + names[k] + "\": \"pytorch_model-0000" + (k % 2 ? "1" : "2") + "-of-00002.bin\"";
  }
  write_file(dir.file("pytorch_model.bin.index.json"), "{\"weight_map\": {" + map + "}}");
  const TensorSource sharded = TensorSource::open(dir.path());
  EXPECT_EQ(sharded.files().size(), 2u);
  EXPECT_EQ(sharded.names().size(), names.size());
  for (const std::string& n : names) EXPECT_TRUE(same_bits(sharded.get(n), ref.get(n))) << n;
}

TEST(TensorSource, MissingOrEmptyPaths) {
  TempDir dir;
  expect_open_error(dir.path(), "no model.safetensors");
  expect_open_error(dir.file("nothing"), "no such file");
  write_file(dir.file("model.safetensors"), "garbage");
  expect_open_error(dir.path(), "model.safetensors");
}

}  // namespace
}  // namespace roformer
