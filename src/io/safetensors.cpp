#include "roformer/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "roformer/error.h"

namespace roformer {
namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // the format's own limit

std::size_t file_dtype_size(const std::string& dtype) {
  if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
  if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
  if (dtype == "I8" || dtype == "U8" || dtype == "BOOL") return 1;
  return 0;
}

}  // namespace

SafeTensors SafeTensors::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open (" + std::strerror(errno) + ")");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": not a regular file");
  }
  SafeTensors f;
  f.label_ = path;
  f.size_ = static_cast<uint64_t>(st.st_size);
  if (f.size_ > 0) {
    void* p = ::mmap(nullptr, f.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) throw Error(path + ": mmap failed (" + std::strerror(errno) + ")");
    const uint64_t n = f.size_;
    f.keep_alive_ = std::shared_ptr<void>(p, [n](void* q) { ::munmap(q, n); });
    f.bytes_ = static_cast<const uint8_t*>(p);
  } else {
    ::close(fd);
  }
  f.parse();
  return f;
}

SafeTensors SafeTensors::from_bytes(std::vector<uint8_t> bytes, const std::string& label) {
  SafeTensors f;
  f.label_ = label;
  auto owned = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
  f.bytes_ = owned->data();
  f.size_ = owned->size();
  f.keep_alive_ = owned;
  f.parse();
  return f;
}

void SafeTensors::parse() {
  auto fail = [&](const std::string& why) { throw Error(label_ + ": invalid safetensors file: " + why); };
  if (size_ < 8) fail("shorter than the 8-byte header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | bytes_[i];
  if (n > kMaxHeaderBytes) fail("header length " + std::to_string(n) + " exceeds the 100 MiB limit");
  if (n > size_ - 8) fail("header length " + std::to_string(n) + " runs past the end of the file");
  data_start_ = 8 + n;
  const uint64_t data_size = size_ - data_start_;

  const char* h = reinterpret_cast<const char*>(bytes_ + 8);
  // JSON objects keep only the last of repeated keys; a repeated tensor name
  // would silently hide a tensor, so the parser reports top-level keys here.
  std::set<std::string> keys;
  std::string duplicate;
  const json::parser_callback_t note_keys = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1 && !keys.insert(parsed.get<std::string>()).second &&
        duplicate.empty())
      duplicate = parsed.get<std::string>();
    return true;
  };
  json header = json::parse(h, h + n, note_keys, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) fail("header is not a JSON object");
  if (!duplicate.empty()) fail("duplicate tensor name '" + duplicate + "'");

  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) fail("__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) fail("__metadata__ value of '" + m.key() + "' is not a string");
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "': ";
    if (!v.is_object()) fail(where + "entry is not an object");
    if (!v.contains("dtype") || !v["dtype"].is_string()) fail(where + "missing dtype");
    if (!v.contains("shape") || !v["shape"].is_array()) fail(where + "missing shape");
    if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2)
      fail(where + "data_offsets must be [begin, end]");
    SafeTensorInfo info;
    info.dtype = v["dtype"].get<std::string>();
    const std::size_t esize = file_dtype_size(info.dtype);
    if (esize == 0) fail(where + "unknown dtype '" + info.dtype + "'");
    if (v["shape"].size() > 16) fail(where + "too many dimensions");
    uint64_t numel = 1;
    for (const json& d : v["shape"]) {
      if (!d.is_number_unsigned()) fail(where + "shape entries must be non-negative integers");
      const uint64_t dim = d.get<uint64_t>();
      if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          (dim != 0 && numel > data_size / dim + 1))
        fail(where + "shape is larger than the file");
      numel *= dim;
      info.shape.push_back(static_cast<int64_t>(dim));
    }
    for (const json& o : v["data_offsets"])
      if (!o.is_number_unsigned()) fail(where + "data_offsets must be non-negative integers");
    info.begin = v["data_offsets"][0].get<uint64_t>();
    info.end = v["data_offsets"][1].get<uint64_t>();
    if (info.begin > info.end || info.end > data_size)
      fail(where + "data_offsets [" + std::to_string(info.begin) + ", " + std::to_string(info.end) +
           ") lie outside the data section of " + std::to_string(data_size) + " bytes");
    if (numel > data_size || info.end - info.begin != numel * esize)
      fail(where + "data_offsets span " + std::to_string(info.end - info.begin) + " bytes but shape " +
           shape_str(info.shape) + " of " + info.dtype + " needs " + std::to_string(numel * esize));
    ranges.emplace_back(info.begin, info.end);
    infos_.emplace(name, std::move(info));
  }
  std::sort(ranges.begin(), ranges.end());
  for (std::size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second) fail("two tensors overlap in the data section");
}

std::vector<std::string> SafeTensors::names() const {
  std::vector<std::string> out;
  for (const auto& [name, _] : infos_) out.push_back(name);
  std::sort(out.begin(), out.end(), [&](const std::string& a, const std::string& b) {
    const auto& ia = infos_.at(a);
    const auto& ib = infos_.at(b);
    return ia.begin != ib.begin ? ia.begin < ib.begin : a < b;
  });
  return out;
}

const SafeTensorInfo& SafeTensors::info(const std::string& name) const {
  auto it = infos_.find(name);
  if (it == infos_.end()) throw Error(label_ + ": no tensor named '" + name + "'");
  return it->second;
}

Tensor SafeTensors::get(const std::string& name) const {
  const SafeTensorInfo& i = info(name);
  const uint8_t* src = bytes_ + data_start_ + i.begin;
  const std::size_t bytes = i.end - i.begin;
  auto as_view = [&](DType dt) {
    if (reinterpret_cast<uintptr_t>(src) % dtype_size(dt) == 0)
      return Tensor::view(const_cast<uint8_t*>(src), i.shape, dt, keep_alive_);
    Tensor t = Tensor::zeros(i.shape, dt);  // misaligned data: copy
    std::memcpy(t.raw(), src, bytes);
    return t;
  };
  if (i.dtype == "F32") return as_view(DType::F32);
  if (i.dtype == "BF16") return as_view(DType::BF16);
  if (i.dtype == "I64") return as_view(DType::I64);
  const int64_t n = shape_numel(i.shape);
  if (i.dtype == "F16" || i.dtype == "F64") {
    Tensor t = Tensor::zeros(i.shape, DType::F32);
    float* dst = t.data<float>();
    for (int64_t k = 0; k < n; ++k) {
      if (i.dtype == "F16") {
        uint16_t h;
        std::memcpy(&h, src + 2 * k, 2);
        dst[k] = f16_to_f32(h);
      } else {
        double d;
        std::memcpy(&d, src + 8 * k, 8);
        dst[k] = static_cast<float>(d);
      }
    }
    return t;
  }
  if (i.dtype == "I32") {
    Tensor t = Tensor::zeros(i.shape, DType::I64);
    int64_t* dst = t.data<int64_t>();
    for (int64_t k = 0; k < n; ++k) {
      int32_t v;
      std::memcpy(&v, src + 4 * k, 4);
      dst[k] = v;
    }
    return t;
  }
  throw Error(label_ + ": tensor '" + name + "' has dtype " + i.dtype + ", which roformer.cpp does not load");
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<Tensor> contiguous;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    ROFORMER_CHECK(name != "__metadata__" && !header.contains(name), "save_safetensors: duplicate or reserved name '" + name + "'");
    Tensor c = t.is_contiguous() ? t : t.clone();
    header[name] = {{"dtype", std::string(dtype_name(c.dtype()))},
                    {"shape", c.shape()},
                    {"data_offsets", {offset, offset + c.nbytes()}}};
    offset += c.nbytes();
    contiguous.push_back(std::move(c));
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keep tensor data 8-byte aligned
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw Error(path + ": cannot write (" + std::strerror(errno) + ")");
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));
  bool ok = std::fwrite(len, 1, 8, f) == 8 && std::fwrite(text.data(), 1, text.size(), f) == text.size();
  for (const Tensor& c : contiguous)
    ok = ok && (c.nbytes() == 0 || std::fwrite(c.raw(), 1, c.nbytes(), f) == c.nbytes());
  ok = std::fflush(f) == 0 && ok;
  ok = ::fsync(::fileno(f)) == 0 && ok;
  ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error(path + ": write failed");
  }
}

std::size_t release_mapped_pages(const void* data, std::size_t bytes) {
  const long page_size = ::sysconf(_SC_PAGESIZE);
  if (data == nullptr || bytes == 0 || page_size <= 0) return 0;
  const auto page = static_cast<uintptr_t>(page_size);
  const auto begin = reinterpret_cast<uintptr_t>(data);
  const uintptr_t end = begin + bytes;
  // Only whole pages inside the range: a neighbouring tensor may share the edges.
  const uintptr_t first = (begin + page - 1) / page * page, last = end / page * page;
  if (first >= last) return 0;
  // /proc/self/maps: "start-end perms offset dev inode path". Discarding pages
  // is safe only for a private file mapping that was never writable (its
  // pages are always clean copies of the file); anonymous memory would be lost.
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    std::istringstream in(line);
    std::string range, perms, offset, dev, path;
    unsigned long long inode = 0;
    if (!(in >> range >> perms >> offset >> dev >> inode >> path)) continue;
    const std::size_t dash = range.find('-');
    if (dash == std::string::npos) continue;
    const uintptr_t lo = std::stoull(range.substr(0, dash), nullptr, 16);
    const uintptr_t hi = std::stoull(range.substr(dash + 1), nullptr, 16);
    if (first < lo || last > hi) continue;
    if (perms.size() < 4 || perms[1] != '-' || perms[3] != 'p' || inode == 0 || path.empty() || path[0] != '/') return 0;
    if (::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED) != 0) return 0;
    return last - first;
  }
  return 0;
}

}  // namespace roformer
