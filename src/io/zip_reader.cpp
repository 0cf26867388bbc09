#include "io/zip_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "roformer/error.h"

namespace roformer::io {
namespace {

constexpr uint32_t kLocalSig = 0x04034b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr uint32_t kEnd64Sig = 0x06064b50;
constexpr uint32_t kLocator64Sig = 0x07064b50;
constexpr uint64_t kEndSize = 22;
constexpr uint64_t kLocator64Size = 20;
constexpr uint64_t kEnd64Size = 56;
constexpr uint64_t kCentralSize = 46;
constexpr uint64_t kLocalSize = 30;
constexpr uint64_t kMaxEntries = 1u << 20;  // far above any checkpoint, far below a memory problem
// DEFLATE cannot expand data by more than ~1032x; a larger claim is a zip bomb.
constexpr uint64_t kMaxDeflateRatio = 1032;

uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }
uint32_t le32(const uint8_t* p) { return static_cast<uint32_t>(le16(p)) | static_cast<uint32_t>(le16(p + 2)) << 16; }
uint64_t le64(const uint8_t* p) { return static_cast<uint64_t>(le32(p)) | static_cast<uint64_t>(le32(p + 4)) << 32; }

// True when [offset, offset + length) lies inside [0, limit), without overflow.
bool fits(uint64_t offset, uint64_t length, uint64_t limit) { return offset <= limit && length <= limit - offset; }

std::string errno_text() { return std::strerror(errno); }

}  // namespace

MappedBytes map_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open (" + errno_text() + ")");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": not a regular file");
  }
  MappedBytes m;
  m.size = static_cast<uint64_t>(st.st_size);
  if (m.size == 0) {
    ::close(fd);
    return m;
  }
  void* p = ::mmap(nullptr, m.size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) throw Error(path + ": mmap failed (" + errno_text() + ")");
  const uint64_t n = m.size;
  m.keep_alive = std::shared_ptr<const void>(p, [n](const void* q) { ::munmap(const_cast<void*>(q), n); });
  m.data = static_cast<const uint8_t*>(p);
  return m;
}

MappedBytes own_bytes(std::vector<uint8_t> bytes) {
  auto owned = std::make_shared<const std::vector<uint8_t>>(std::move(bytes));
  MappedBytes m;
  m.data = owned->empty() ? nullptr : owned->data();
  m.size = owned->size();
  m.keep_alive = owned;
  return m;
}

ZipReader::ZipReader(MappedBytes bytes, std::string label) : bytes_(std::move(bytes)), label_(std::move(label)) {
  const Directory dir = find_directory();
  read_directory(dir);
  check_local_headers(dir);
}

void ZipReader::fail(const std::string& why) const { throw Error(label_ + ": invalid zip archive: " + why); }

ZipReader::Directory ZipReader::find_directory() const {
  const uint8_t* b = bytes_.data;
  const uint64_t n = bytes_.size;
  if (n < kEndSize) fail("file of " + std::to_string(n) + " bytes is too short for a zip end record");
  // The end record sits at the very end, after a comment of at most 64 KiB.
  // Scan backwards and take the last record whose comment reaches exactly to the end.
  uint64_t end_pos = n;
  const uint64_t lowest = n - kEndSize > 0xffff ? n - kEndSize - 0xffff : 0;
  for (uint64_t pos = n - kEndSize + 1; pos-- > lowest;) {
    if (le32(b + pos) == kEndSig && pos + kEndSize + le16(b + pos + 20) == n) {
      end_pos = pos;
      break;
    }
  }
  if (end_pos == n) fail("no end of central directory record (not a zip file, or truncated)");
  const uint8_t* e = b + end_pos;
  Directory dir;
  dir.count = le16(e + 10);
  dir.size = le32(e + 12);
  dir.offset = le32(e + 16);
  dir.end = end_pos;
  const bool disks_ok = (le16(e + 4) == 0 || le16(e + 4) == 0xffff) && (le16(e + 6) == 0 || le16(e + 6) == 0xffff) &&
                        le16(e + 8) == le16(e + 10);
  if (!disks_ok) fail("multi-disk archives are not supported");

  // ZIP64: a locator right before the end record points at the ZIP64 end record.
  if (end_pos >= kLocator64Size && le32(b + end_pos - kLocator64Size) == kLocator64Sig) {
    const uint8_t* loc = b + end_pos - kLocator64Size;
    if (le32(loc + 4) != 0 || le32(loc + 16) > 1) fail("multi-disk ZIP64 archives are not supported");
    const uint64_t pos64 = le64(loc + 8);
    if (!fits(pos64, kEnd64Size, end_pos - kLocator64Size)) fail("ZIP64 end record lies outside the file");
    const uint8_t* e64 = b + pos64;
    if (le32(e64) != kEnd64Sig) fail("bad ZIP64 end record signature");
    if (le32(e64 + 16) != 0 || le32(e64 + 20) != 0 || le64(e64 + 24) != le64(e64 + 32))
      fail("multi-disk ZIP64 archives are not supported");
    dir.count = le64(e64 + 32);
    dir.size = le64(e64 + 40);
    dir.offset = le64(e64 + 48);
    dir.end = pos64;
  } else if (dir.count == 0xffff || dir.size == 0xffffffffu || dir.offset == 0xffffffffu) {
    fail("end record asks for ZIP64 but the ZIP64 locator is missing");
  }
  if (!fits(dir.offset, dir.size, dir.end))
    fail("central directory [" + std::to_string(dir.offset) + ", +" + std::to_string(dir.size) +
         ") lies outside the file");
  if (dir.count > kMaxEntries || dir.count > dir.size / kCentralSize)
    fail("absurd entry count " + std::to_string(dir.count) + " for a central directory of " +
         std::to_string(dir.size) + " bytes");
  return dir;
}

void ZipReader::read_directory(const Directory& dir) {
  const uint8_t* b = bytes_.data;
  const uint64_t cd_end = dir.offset + dir.size;
  uint64_t pos = dir.offset;
  entries_.reserve(dir.count);
  for (uint64_t i = 0; i < dir.count; ++i) {
    const std::string where = "central directory entry " + std::to_string(i) + ": ";
    if (!fits(pos, kCentralSize, cd_end)) fail(where + "runs past the end of the central directory");
    const uint8_t* h = b + pos;
    if (le32(h) != kCentralSig) fail(where + "bad signature");
    const uint16_t flags = le16(h + 8);
    const uint64_t name_len = le16(h + 28), extra_len = le16(h + 30), comment_len = le16(h + 32);
    const uint64_t record = kCentralSize + name_len + extra_len + comment_len;
    if (!fits(pos, record, cd_end)) fail(where + "runs past the end of the central directory");
    ZipEntry e;
    e.name.assign(reinterpret_cast<const char*>(h + kCentralSize), name_len);
    e.method = le16(h + 10);
    e.crc32 = le32(h + 16);
    e.compressed_size = le32(h + 20);
    e.size = le32(h + 24);
    e.header_offset = le32(h + 42);
    const std::string at_entry = "entry '" + e.name + "': ";
    if (e.name.empty()) fail(where + "empty name");
    if (flags & 1u) fail(at_entry + "encrypted entries are not supported");
    if (e.method != 0 && e.method != 8)
      fail(at_entry + "compression method " + std::to_string(e.method) + " is not supported (only stored/deflate)");
    if (le16(h + 34) != 0 && le16(h + 34) != 0xffff) fail(at_entry + "lies on another disk");

    // ZIP64 extra field: 8-byte values for exactly the 32-bit fields that are saturated.
    const bool need_size = e.size == 0xffffffffu, need_csize = e.compressed_size == 0xffffffffu,
               need_offset = e.header_offset == 0xffffffffu;
    if (need_size || need_csize || need_offset) {
      const uint8_t* x = h + kCentralSize + name_len;
      const uint8_t* x_end = x + extra_len;
      bool found = false;
      while (x_end - x >= 4) {
        const uint16_t id = le16(x), len = le16(x + 2);
        if (len > x_end - x - 4) fail(at_entry + "extra field runs past its record");
        if (id == 0x0001) {
          const uint8_t* v = x + 4;
          const uint64_t want = 8u * (need_size + need_csize + need_offset);
          if (len < want) fail(at_entry + "ZIP64 extra field too short");
          if (need_size) {
            e.size = le64(v);
            v += 8;
          }
          if (need_csize) {
            e.compressed_size = le64(v);
            v += 8;
          }
          if (need_offset) e.header_offset = le64(v);
          found = true;
          break;
        }
        x += 4 + len;
      }
      if (!found) fail(at_entry + "32-bit size or offset saturated but no ZIP64 extra field");
    }
    if (e.method == 0 && e.size != e.compressed_size)
      fail(at_entry + "stored entry with different compressed (" + std::to_string(e.compressed_size) +
           ") and uncompressed (" + std::to_string(e.size) + ") sizes");
    if (e.method == 8 && e.size / kMaxDeflateRatio > e.compressed_size + 1)
      fail(at_entry + "claims an impossible compression ratio");
    if (!by_name_.emplace(e.name, entries_.size()).second) fail(at_entry + "duplicate name");
    entries_.push_back(std::move(e));
    pos += record;
  }
}

void ZipReader::check_local_headers(const Directory& dir) {
  const uint8_t* b = bytes_.data;
  // Entry data must lie before the central directory and never overlap.
  for (ZipEntry& e : entries_) {
    const std::string at_entry = "entry '" + e.name + "': ";
    if (!fits(e.header_offset, kLocalSize, dir.offset)) fail(at_entry + "local header lies outside the file data");
    const uint8_t* h = b + e.header_offset;
    if (le32(h) != kLocalSig) fail(at_entry + "bad local header signature");
    const uint64_t name_len = le16(h + 26), extra_len = le16(h + 28);
    if (name_len != e.name.size() || !fits(e.header_offset + kLocalSize, name_len, dir.offset) ||
        std::memcmp(h + kLocalSize, e.name.data(), name_len) != 0)
      fail(at_entry + "local header name differs from the central directory");
    e.data_offset = e.header_offset + kLocalSize + name_len + extra_len;
    if (!fits(e.data_offset, e.compressed_size, dir.offset))
      fail(at_entry + "data [" + std::to_string(e.data_offset) + ", +" + std::to_string(e.compressed_size) +
           ") runs past the start of the central directory");
  }
  std::vector<const ZipEntry*> order;
  order.reserve(entries_.size());
  for (const ZipEntry& e : entries_) order.push_back(&e);
  std::sort(order.begin(), order.end(),
            [](const ZipEntry* a, const ZipEntry* c) { return a->header_offset < c->header_offset; });
  for (std::size_t i = 1; i < order.size(); ++i)
    if (order[i - 1]->data_offset + order[i - 1]->compressed_size > order[i]->header_offset)
      fail("entries '" + order[i - 1]->name + "' and '" + order[i]->name + "' overlap");
}

const ZipEntry* ZipReader::find(std::string_view name) const {
  auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : &entries_[it->second];
}

const ZipEntry& ZipReader::at(std::string_view name) const {
  const ZipEntry* e = find(name);
  if (!e) throw Error(label_ + ": zip entry '" + std::string(name) + "' is missing");
  return *e;
}

std::span<const uint8_t> ZipReader::view(const ZipEntry& entry) const {
  if (entry.method != 0)
    throw Error(label_ + ": zip entry '" + entry.name + "' is compressed and cannot be viewed in place");
  if (entry.size == 0) return {};
  return {bytes_.data + entry.data_offset, static_cast<std::size_t>(entry.size)};
}

std::vector<uint8_t> ZipReader::read(const ZipEntry& entry, uint64_t max_bytes) const {
  const std::string where = label_ + ": zip entry '" + entry.name + "': ";
  if (entry.size > max_bytes)
    throw Error(where + std::to_string(entry.size) + " bytes exceed the limit of " + std::to_string(max_bytes));
  std::vector<uint8_t> out(static_cast<std::size_t>(entry.size));
  if (entry.method == 0) {
    if (!out.empty()) std::memcpy(out.data(), bytes_.data + entry.data_offset, out.size());
  } else {
    z_stream zs{};
    if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) throw Error(where + "zlib initialisation failed");
    // avail_in/avail_out are 32-bit: feed and drain in chunks.
    constexpr uint64_t kChunk = 1u << 30;
    uint64_t in_left = entry.compressed_size, out_left = entry.size;
    zs.next_in = const_cast<Bytef*>(bytes_.data + entry.data_offset);
    uint8_t no_output = 0;  // zlib rejects a null next_out even when nothing is to be written
    zs.next_out = out.empty() ? &no_output : out.data();
    int rc = Z_OK;
    while (rc == Z_OK) {
      if (zs.avail_in == 0 && in_left > 0) {
        zs.avail_in = static_cast<uInt>(std::min(in_left, kChunk));
        in_left -= zs.avail_in;
      }
      if (zs.avail_out == 0 && out_left > 0) {
        zs.avail_out = static_cast<uInt>(std::min(out_left, kChunk));
        out_left -= zs.avail_out;
      }
      const uInt before_in = zs.avail_in, before_out = zs.avail_out;
      rc = inflate(&zs, Z_NO_FLUSH);
      if (rc == Z_BUF_ERROR && (before_in != zs.avail_in || before_out != zs.avail_out)) rc = Z_OK;
      if (rc == Z_OK && zs.avail_in == before_in && zs.avail_out == before_out) rc = Z_BUF_ERROR;
    }
    const bool complete = rc == Z_STREAM_END && out_left == 0 && zs.avail_out == 0;
    inflateEnd(&zs);
    if (!complete) throw Error(where + "corrupt deflate data or wrong uncompressed size");
  }
  if (crc32_z(0, out.data(), out.size()) != entry.crc32) throw Error(where + "CRC-32 mismatch (corrupt data)");
  return out;
}

}  // namespace roformer::io
