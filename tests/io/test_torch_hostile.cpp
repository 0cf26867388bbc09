// Damaged .bin files, seeded: truncations, byte flips anywhere, and byte flips
// inside data.pkl with the CRC repaired (so the pickle VM itself sees them).
// Each case must either load, with every tensor readable, or throw
// roformer::Error; a crash or a sanitizer report is a failure (CI runs ASan).
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <random>

#include "io/torch_pickle.h"
#include "io/zip_reader.h"
#include "roformer/error.h"
#include "roformer/torch_checkpoint.h"
#include "support/test_support.h"
#include "torch_builder.h"

namespace roformer {
namespace {

using testing::Bytes;

Bytes read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

const Bytes& fixture() {
  static const Bytes b = read_all(testing::data_path("fixtures/roformer-tiny-qa/pytorch_model.bin"));
  return b;
}

// Loads and touches every tensor; returns false when the input was rejected with Error.
bool load_all(Bytes bytes) {
  try {
    const TorchCheckpoint ck = TorchCheckpoint::from_bytes(std::move(bytes), "damaged.bin");
    for (const std::string& n : ck.names()) {
      const Tensor t = ck.get(n);
      volatile double sink = 0;
      if (t.numel() > 0 && t.dtype() == DType::F32) sink = sink + static_cast<const float*>(t.raw())[t.numel() - 1];
    }
    return true;
  } catch (const Error&) {
    return false;
  }
}

TEST(TorchHostile, FixtureLoadsIntact) { EXPECT_TRUE(load_all(fixture())); }

TEST(TorchHostile, TruncatedArchivesAreRejected) {
  const Bytes& full = fixture();
  std::vector<std::size_t> lengths;
  for (std::size_t n = 0; n < 6000 && n < full.size(); n += 7) lengths.push_back(n);                  // pickle region
  for (std::size_t n = full.size() - 4000; n < full.size(); n += 3) lengths.push_back(n);             // directory
  for (std::size_t n = 6000; n + 5000 < full.size(); n += full.size() / 97) lengths.push_back(n);   // tensor data
  for (std::size_t n : lengths) {
    Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_FALSE(load_all(std::move(cut))) << "length " << n;
  }
}

TEST(TorchHostile, RandomByteFlipsLoadOrThrow) {
  const Bytes& full = fixture();
  const io::ZipReader zip(io::own_bytes(full), "qa");
  const io::ZipEntry& pkl = zip.at("pytorch_model/data.pkl");
  // Flips concentrate where structure lives: headers, pickle, central directory.
  const std::size_t head = static_cast<std::size_t>(pkl.data_offset + pkl.size + 256);
  const std::size_t tail = 5000;
  std::mt19937 rng(1234);
  int loaded = 0;
  for (int trial = 0; trial < 400; ++trial) {
    Bytes b = full;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) {
      std::size_t at;
      switch (rng() % 3) {
        case 0: at = rng() % b.size(); break;
        case 1: at = rng() % head; break;
        default: at = b.size() - 1 - rng() % tail; break;
      }
      b[at] = (rng() % 2) ? static_cast<uint8_t>(b[at] ^ (1u << (rng() % 8))) : static_cast<uint8_t>(rng());
    }
    loaded += load_all(std::move(b));
  }
  EXPECT_GT(loaded, 0);    // flips in tensor data still load
  EXPECT_LT(loaded, 400);  // and structural ones are caught
}

// The pickle of the fixture, damaged, then repackaged with a valid CRC.
TEST(TorchHostile, DamagedPicklesLoadOrThrow) {
  const io::ZipReader zip(io::own_bytes(fixture()), "qa");
  const Bytes pickle = zip.read(zip.at("pytorch_model/data.pkl"), 1u << 20);
  std::vector<std::pair<std::string, Bytes>> storages;
  for (const io::ZipEntry& e : zip.entries()) {
    const std::string prefix = "pytorch_model/data/";
    if (e.name.rfind(prefix, 0) == 0) storages.emplace_back(e.name.substr(prefix.size()), zip.read(e, 1u << 24));
  }
  EXPECT_TRUE(load_all(testing::torch_archive(pickle, storages, "pytorch_model")));

  std::mt19937 rng(99);
  int parsed = 0, loaded = 0;
  const int trials = 1500;
  for (int trial = 0; trial < trials; ++trial) {
    Bytes p = pickle;
    const int mode = trial % 4;
    if (mode == 3) {
      p.resize(rng() % p.size());  // truncated
    } else {
      for (int k = 0; k <= mode; ++k) {
        const std::size_t at = rng() % p.size();
        p[at] = (rng() % 2) ? static_cast<uint8_t>(p[at] ^ (1u << (rng() % 8))) : static_cast<uint8_t>(rng());
      }
    }
    try {
      io::parse_torch_pickle(p, "damaged.pkl");
      ++parsed;
    } catch (const Error&) {
    }
    // The whole-archive path for a subset (repackaging costs a copy of the storages).
    if (trial % 5 == 0) loaded += load_all(testing::torch_archive(p, storages, "pytorch_model"));
  }
  EXPECT_GT(parsed, 0);
  EXPECT_LT(parsed, trials);
  EXPECT_LE(loaded, parsed);
}

}  // namespace
}  // namespace roformer
