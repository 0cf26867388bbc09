#pragma once
// Hand-built torch.save archives for the io tests: a tiny ZIP writer (stored
// or deflated entries, optional ZIP64 records, torch-style 64-byte data
// alignment) and a pickle writer emitting the opcodes torch.save uses.
#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "roformer/tensor.h"

namespace roformer::testing {

using Bytes = std::vector<uint8_t>;

inline void put_le(Bytes& b, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

struct ZipOptions {
  bool deflate = false;  // compress every entry
  bool zip64 = false;    // write ZIP64 extra fields and end records, as torch does for big files
};

struct ZipFileEntry {
  std::string name;
  Bytes data;
};

inline Bytes raw_deflate(const Bytes& in) {
  z_stream zs{};
  if (deflateInit2(&zs, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) throw std::runtime_error("deflate");
  Bytes out(deflateBound(&zs, static_cast<uLong>(in.size())));
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  if (deflate(&zs, Z_FINISH) != Z_STREAM_END) throw std::runtime_error("deflate");
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

inline Bytes build_zip(const std::vector<ZipFileEntry>& entries, const ZipOptions& opt = {}) {
  Bytes z;
  Bytes central;
  for (const ZipFileEntry& e : entries) {
    const uint64_t offset = z.size();
    const Bytes payload = opt.deflate ? raw_deflate(e.data) : e.data;
    const uint32_t crc = static_cast<uint32_t>(crc32(0, e.data.data(), static_cast<uInt>(e.data.size())));
    const uint16_t method = opt.deflate ? 8 : 0;
    // Local header, padded with an extra field so the data starts at a multiple of 64.
    const uint64_t unpadded = offset + 30 + e.name.size() + 4;
    const uint64_t pad = (64 - unpadded % 64) % 64;
    put_le(z, 0x04034b50, 4);
    put_le(z, 20, 2);
    put_le(z, 0, 2);
    put_le(z, method, 2);
    put_le(z, 0, 4);  // time, date
    put_le(z, crc, 4);
    put_le(z, payload.size(), 4);
    put_le(z, e.data.size(), 4);
    put_le(z, e.name.size(), 2);
    put_le(z, 4 + pad, 2);
    z.insert(z.end(), e.name.begin(), e.name.end());
    put_le(z, 0x4246, 2);  // "FB": padding, as torch writes it
    put_le(z, pad, 2);
    z.insert(z.end(), pad, 'Z');
    z.insert(z.end(), payload.begin(), payload.end());

    put_le(central, 0x02014b50, 4);
    put_le(central, 45, 2);
    put_le(central, 45, 2);
    put_le(central, 0, 2);
    put_le(central, method, 2);
    put_le(central, 0, 4);
    put_le(central, crc, 4);
    put_le(central, opt.zip64 ? 0xffffffffu : payload.size(), 4);
    put_le(central, opt.zip64 ? 0xffffffffu : e.data.size(), 4);
    put_le(central, e.name.size(), 2);
    put_le(central, opt.zip64 ? 28 : 0, 2);
    put_le(central, 0, 2);  // comment
    put_le(central, 0, 2);  // disk
    put_le(central, 0, 2);
    put_le(central, 0, 4);
    put_le(central, opt.zip64 ? 0xffffffffu : offset, 4);
    central.insert(central.end(), e.name.begin(), e.name.end());
    if (opt.zip64) {
      put_le(central, 0x0001, 2);
      put_le(central, 24, 2);
      put_le(central, e.data.size(), 8);
      put_le(central, payload.size(), 8);
      put_le(central, offset, 8);
    }
  }
  const uint64_t cd_offset = z.size();
  z.insert(z.end(), central.begin(), central.end());
  if (opt.zip64) {
    const uint64_t end64 = z.size();
    put_le(z, 0x06064b50, 4);
    put_le(z, 44, 8);
    put_le(z, 45, 2);
    put_le(z, 45, 2);
    put_le(z, 0, 4);
    put_le(z, 0, 4);
    put_le(z, entries.size(), 8);
    put_le(z, entries.size(), 8);
    put_le(z, central.size(), 8);
    put_le(z, cd_offset, 8);
    put_le(z, 0x07064b50, 4);
    put_le(z, 0, 4);
    put_le(z, end64, 8);
    put_le(z, 1, 4);
  }
  put_le(z, 0x06054b50, 4);
  put_le(z, 0, 4);
  put_le(z, opt.zip64 ? 0xffff : entries.size(), 2);
  put_le(z, opt.zip64 ? 0xffff : entries.size(), 2);
  put_le(z, opt.zip64 ? 0xffffffffu : central.size(), 4);
  put_le(z, opt.zip64 ? 0xffffffffu : cd_offset, 4);
  put_le(z, 0, 2);
  return z;
}

// Writes pickle opcodes; each method appends one value or operation.
class PickleWriter {
 public:
  PickleWriter& proto(uint8_t v = 2) { return op(0x80).byte(v); }
  PickleWriter& op(uint8_t code) { return byte(code); }
  PickleWriter& byte(uint8_t v) {
    b_.push_back(v);
    return *this;
  }
  PickleWriter& le(uint64_t v, int n) {
    put_le(b_, v, n);
    return *this;
  }
  PickleWriter& raw(const std::string& s) {
    b_.insert(b_.end(), s.begin(), s.end());
    return *this;
  }
  std::size_t size() const { return b_.size(); }
  PickleWriter& str(const std::string& s) {
    op('X');
    put_le(b_, s.size(), 4);
    b_.insert(b_.end(), s.begin(), s.end());
    return *this;
  }
  PickleWriter& integer(int64_t v) {
    if (v >= 0 && v < 256) return op('K').byte(static_cast<uint8_t>(v));
    if (v >= 0 && v < 65536) {
      op('M');
      put_le(b_, static_cast<uint64_t>(v), 2);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      op('J');
      put_le(b_, static_cast<uint64_t>(v), 4);
    } else {
      op(0x8a).byte(8);
      put_le(b_, static_cast<uint64_t>(v), 8);
    }
    return *this;
  }
  PickleWriter& global(const std::string& module, const std::string& name) {
    op('c');
    b_.insert(b_.end(), module.begin(), module.end());
    b_.push_back('\n');
    b_.insert(b_.end(), name.begin(), name.end());
    b_.push_back('\n');
    return *this;
  }
  PickleWriter& int_tuple(const Shape& v) {
    op('(');
    for (int64_t x : v) integer(x);
    return op('t');
  }
  PickleWriter& put(uint8_t index) { return op('q').byte(index); }
  PickleWriter& get(uint8_t index) { return op('h').byte(index); }
  const Bytes& bytes() const { return b_; }

 private:
  Bytes b_;
};

// What one tensor of a hand-made state dict looks like inside the pickle.
struct FakeTensor {
  std::string name;
  std::string storage_type = "FloatStorage";
  std::string key = "0";
  int64_t storage_numel = 0;
  int64_t offset = 0;
  Shape size;
  Shape stride;
};

struct StateDictStyle {
  bool ordered_dict = false;  // collections.OrderedDict() + BUILD with _metadata, like model.state_dict()
  bool parameters = false;    // wrap each tensor in torch._utils._rebuild_parameter
  bool metadata_arg = false;  // pass the 7th (metadata) argument to _rebuild_tensor_v2
};

inline Bytes state_dict_pickle(const std::vector<FakeTensor>& tensors, const StateDictStyle& style = {}) {
  PickleWriter p;
  p.proto(2);
  if (style.ordered_dict) {
    p.global("collections", "OrderedDict").op(')').op('R');
  } else {
    p.op('}');
  }
  p.op('(');
  for (const FakeTensor& t : tensors) {
    p.str(t.name);
    if (style.parameters) p.global("torch._utils", "_rebuild_parameter").op('(');
    p.global("torch._utils", "_rebuild_tensor_v2").op('(');
    p.op('(').str("storage").global("torch", t.storage_type).str(t.key).str("cpu").integer(t.storage_numel).op('t');
    p.op('Q');
    p.integer(t.offset).int_tuple(t.size).int_tuple(t.stride).op(0x89);
    p.global("collections", "OrderedDict").op(')').op('R');
    if (style.metadata_arg) p.op('}');
    p.op('t').op('R');
    if (style.parameters) p.op(0x89).global("collections", "OrderedDict").op(')').op('R').op('t').op('R');
  }
  p.op('u');
  if (style.ordered_dict) {
    // state: {"_metadata": OrderedDict({"": {"version": 1}})}
    p.op('}').str("_metadata").global("collections", "OrderedDict").op(')').op('R');
    p.str("").op('}').str("version").integer(1).op('s').op('s');
    p.op('s').op('b');
  }
  p.op('.');
  return p.bytes();
}

// A torch-style archive: <prefix>/data.pkl, <prefix>/data/<key>..., <prefix>/version, <prefix>/byteorder.
inline Bytes torch_archive(const Bytes& pickle, const std::vector<std::pair<std::string, Bytes>>& storages,
                           const std::string& prefix = "archive", const ZipOptions& opt = {}) {
  std::vector<ZipFileEntry> entries;
  entries.push_back({prefix + "/data.pkl", pickle});
  entries.push_back({prefix + "/byteorder", Bytes{'l', 'i', 't', 't', 'l', 'e'}});
  for (const auto& [key, data] : storages) entries.push_back({prefix + "/data/" + key, data});
  entries.push_back({prefix + "/version", Bytes{'3', '\n'}});
  return build_zip(entries, opt);
}

template <typename T>
Bytes as_bytes(const std::vector<T>& v) {
  Bytes b(v.size() * sizeof(T));
  if (!b.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

}  // namespace roformer::testing
