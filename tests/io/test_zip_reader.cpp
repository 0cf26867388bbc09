// The ZIP reader on well-formed archives (stored, deflated, ZIP64) and on
// hand-damaged ones: every damage must end in roformer::Error.
#include <gtest/gtest.h>

#include <string>

#include "io/zip_reader.h"
#include "roformer/error.h"
#include "torch_builder.h"

namespace roformer {
namespace {

using io::ZipReader;
using testing::Bytes;
using testing::ZipFileEntry;
using testing::ZipOptions;
using testing::build_zip;

Bytes text(const std::string& s) { return Bytes(s.begin(), s.end()); }

std::vector<ZipFileEntry> sample_entries() {
  Bytes big(5000);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 7 % 13);
  return {{"a/first", text("hello")}, {"a/empty", {}}, {"a/big", big}};
}

ZipReader reader(Bytes b) { return ZipReader(io::own_bytes(std::move(b)), "test.zip"); }

void poke(Bytes& b, uint64_t at, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b.at(at + static_cast<uint64_t>(i)) = static_cast<uint8_t>(v >> (8 * i));
}
uint64_t peek(const Bytes& b, uint64_t at, int n) {
  uint64_t v = 0;
  for (int i = n; i-- > 0;) v = v << 8 | b.at(at + static_cast<uint64_t>(i));
  return v;
}
// Offset of the first central directory record of a non-ZIP64 archive.
uint64_t central(const Bytes& b) { return peek(b, b.size() - 6, 4); }

void expect_zip_error(const Bytes& b, const std::string& needle) {
  try {
    ZipReader z = reader(b);
    for (const io::ZipEntry& e : z.entries()) z.read(e, 1u << 20);
    FAIL() << "expected Error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("test.zip"), std::string::npos) << e.what();
  }
}

TEST(ZipReader, ReadsStoredDeflatedAndZip64Archives) {
  const auto entries = sample_entries();
  for (bool deflate : {false, true}) {
    for (bool zip64 : {false, true}) {
      SCOPED_TRACE(std::to_string(deflate) + std::to_string(zip64));
      const ZipReader z = reader(build_zip(entries, ZipOptions{deflate, zip64}));
      ASSERT_EQ(z.entries().size(), entries.size());
      for (const ZipFileEntry& want : entries) {
        const io::ZipEntry& e = z.at(want.name);
        EXPECT_EQ(e.size, want.data.size());
        EXPECT_EQ(z.read(e, 1u << 20), want.data);
        if (!deflate) {
          const auto v = z.view(e);
          EXPECT_EQ(Bytes(v.begin(), v.end()), want.data);
          if (!want.data.empty()) {
            EXPECT_EQ(e.data_offset % 64, 0u);  // torch-style alignment
          }
        } else {
          EXPECT_THROW(z.view(e), Error);
        }
      }
      EXPECT_EQ(z.find("a/missing"), nullptr);
      EXPECT_THROW(z.at("a/missing"), Error);
      EXPECT_THROW(z.read(z.at("a/big"), 100), Error);  // over the caller's limit
    }
  }
}

TEST(ZipReader, RejectsNonZipAndTruncatedInput) {
  expect_zip_error(text(""), "too short");
  expect_zip_error(text("this is not a zip file at all, just text"), "no end of central directory");
  const Bytes good = build_zip(sample_entries());
  for (std::size_t n = 0; n < good.size(); ++n) {
    Bytes cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_THROW(reader(std::move(cut)), Error) << "length " << n;
  }
}

TEST(ZipReader, RejectsBadDirectoryRecords) {
  const Bytes good = build_zip(sample_entries());
  const uint64_t eocd = good.size() - 22, cd = central(good);
  {
    Bytes b = good;
    poke(b, eocd + 8, 0xfffe, 2);
    poke(b, eocd + 10, 0xfffe, 2);
    expect_zip_error(b, "absurd entry count");
  }
  {
    Bytes b = good;
    poke(b, eocd + 16, good.size() * 3, 4);
    expect_zip_error(b, "central directory");
  }
  {
    Bytes b = good;
    poke(b, eocd + 4, 1, 2);
    expect_zip_error(b, "multi-disk");
  }
  {
    Bytes b = good;
    poke(b, cd, 0x12345678, 4);
    expect_zip_error(b, "bad signature");
  }
  {
    Bytes b = good;
    poke(b, cd + 42, cd - 10, 4);  // local header inside the directory
    expect_zip_error(b, "local header");
  }
  {
    Bytes b = good;
    poke(b, cd + 42, 1, 4);  // no local header there
    expect_zip_error(b, "bad local header signature");
  }
  {
    Bytes b = good;
    poke(b, cd + 8, 1, 2);
    expect_zip_error(b, "encrypted");
  }
  {
    Bytes b = good;
    poke(b, cd + 10, 12, 2);
    expect_zip_error(b, "compression method 12");
  }
  {
    Bytes b = good;
    poke(b, cd + 20, 6, 4);  // stored with different sizes
    expect_zip_error(b, "different compressed");
  }
  {
    Bytes b = good;  // first entry's data grown into the next entry's header
    poke(b, cd + 20, 200, 4);
    poke(b, cd + 24, 200, 4);
    expect_zip_error(b, "overlap");
  }
  {
    Bytes b = good;  // first entry's data runs into the central directory
    poke(b, cd + 20, cd, 4);
    poke(b, cd + 24, cd, 4);
    expect_zip_error(b, "runs past");
  }
  {
    Bytes b = good;
    b[cd + 46] = 'b';  // central name "b/first" no longer matches the local header
    expect_zip_error(b, "local header name");
  }
  {
    Bytes b = build_zip({{"same", text("1")}, {"same", text("2")}});
    expect_zip_error(b, "duplicate name");
  }
  {
    Bytes b = good;
    poke(b, cd + 24, 0xffffffffu, 4);  // saturated without a ZIP64 extra field
    expect_zip_error(b, "ZIP64 extra field");
  }
  {
    Bytes b = good;
    poke(b, eocd + 16, 0xffffffffu, 4);
    expect_zip_error(b, "ZIP64 locator is missing");
  }
}

TEST(ZipReader, RejectsBadZip64Records) {
  const Bytes good = build_zip(sample_entries(), ZipOptions{false, true});
  const uint64_t locator = good.size() - 22 - 20;
  {
    Bytes b = good;
    poke(b, locator + 8, good.size() + 100, 8);
    expect_zip_error(b, "ZIP64 end record lies outside");
  }
  {
    Bytes b = good;
    const uint64_t end64 = peek(b, locator + 8, 8);
    poke(b, end64, 0, 4);
    expect_zip_error(b, "bad ZIP64 end record signature");
  }
  {
    Bytes b = good;
    const uint64_t end64 = peek(b, locator + 8, 8);
    poke(b, end64 + 24, 1ull << 40, 8);
    poke(b, end64 + 32, 1ull << 40, 8);
    expect_zip_error(b, "absurd entry count");
  }
  {
    Bytes b = good;
    const uint64_t end64 = peek(b, locator + 8, 8);
    poke(b, end64 + 48, 1ull << 62, 8);
    expect_zip_error(b, "central directory");
  }
}

TEST(ZipReader, RejectsCorruptDeflateAndZipBombs) {
  const Bytes good = build_zip(sample_entries(), ZipOptions{true, false});
  const ZipReader z = reader(good);
  const io::ZipEntry big = z.at("a/big");
  {
    Bytes b = good;
    for (uint64_t k = 0; k < big.compressed_size; k += 3) b[big.data_offset + k] ^= 0x5a;
    expect_zip_error(b, "a/big");
  }
  {
    Bytes b = good;  // claims a larger uncompressed size than the stream gives
    const uint64_t cd = central(b);
    uint64_t pos = cd;
    for (int i = 0; i < 2; ++i) pos += 46 + peek(b, pos + 28, 2) + peek(b, pos + 30, 2) + peek(b, pos + 32, 2);
    poke(b, pos + 24, big.size + 1, 4);
    expect_zip_error(b, "wrong uncompressed size");
    poke(b, pos + 24, 0xfffffff0u, 4);  // a 4 GiB claim from 100-odd bytes
    expect_zip_error(b, "impossible compression ratio");
  }
  {
    Bytes b = good;  // CRC mismatch on otherwise valid data
    const uint64_t cd = central(b);
    poke(b, cd + 16, peek(b, cd + 16, 4) ^ 1, 4);
    expect_zip_error(b, "CRC-32 mismatch");
  }
}

}  // namespace
}  // namespace roformer
