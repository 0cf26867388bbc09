#include "roformer/torch_checkpoint.h"

#include <cstring>
#include <unordered_map>

#include "io/torch_pickle.h"
#include "io/zip_reader.h"
#include "roformer/error.h"

namespace roformer {
namespace {

constexpr uint64_t kMaxPickleBytes = 256u << 20;  // data.pkl of a 100k-tensor model is a few MiB

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// Calls f(destination index, source element offset) for every element, row-major.
template <typename F>
void for_each_element(const Shape& shape, const Shape& strides, int64_t offset, F&& f) {
  const int64_t n = shape_numel(shape);
  if (n == 0) return;
  if (shape.empty()) {
    f(0, offset);
    return;
  }
  const std::size_t r = shape.size();
  const int64_t inner = shape[r - 1], inner_stride = strides[r - 1];
  std::vector<int64_t> idx(r, 0);
  int64_t base = offset;
  for (int64_t i = 0; i < n; i += inner) {
    for (int64_t k = 0; k < inner; ++k) f(i + k, base + k * inner_stride);
    for (std::size_t d = r - 1; d-- > 0;) {  // advance the outer index like an odometer
      if (++idx[d] < shape[d]) {
        base += strides[d];
        break;
      }
      base -= strides[d] * (shape[d] - 1);
      idx[d] = 0;
    }
  }
}

// Strides that address the elements in row-major order (size-1 dimensions may carry any stride).
bool dense(const Shape& shape, const Shape& strides) {
  int64_t expect = 1;
  for (std::size_t d = shape.size(); d-- > 0;) {
    if (shape[d] != 1 && strides[d] != expect) return false;
    expect *= shape[d];
  }
  return true;
}

template <typename Out, typename In, typename Convert>
Tensor convert_copy(const io::TorchTensorRef& t, const uint8_t* base, DType out_dtype, Convert convert) {
  Tensor out = Tensor::zeros(t.shape, out_dtype);
  Out* dst = static_cast<Out*>(out.raw());
  for_each_element(t.shape, t.strides, t.offset,
                   [&](int64_t i, int64_t off) { dst[i] = convert(load<In>(base + off * sizeof(In))); });
  return out;
}

bool is_legacy_format(const io::MappedBytes& m) {
  // Before torch 1.6, torch.save wrote a bare pickle stream (starting with PROTO)
  // or, earlier still, a tar archive.
  if (m.size >= 1 && m.data[0] == 0x80) return true;
  return m.size >= 262 && std::memcmp(m.data + 257, "ustar", 5) == 0;
}

}  // namespace

struct TorchCheckpoint::Impl {
  std::string label;
  io::ZipReader zip;
  io::TorchStateDict dict;
  std::vector<const io::ZipEntry*> storage_entries;  // parallel to dict.storages
  std::unordered_map<std::string, std::size_t> by_name;

  Impl(io::MappedBytes bytes, const std::string& path) : label(path), zip(check_format(std::move(bytes), path), path) {
    const std::string prefix = find_prefix();
    if (const io::ZipEntry* order = zip.find(prefix + "byteorder")) {
      const std::vector<uint8_t> text = zip.read(*order, 16);
      if (std::string(text.begin(), text.end()) != "little")
        throw Error(label + ": checkpoint was written on a big-endian machine, which is not supported");
    }
    const io::ZipEntry& pkl = zip.at(prefix + "data.pkl");
    const std::vector<uint8_t> pickle = zip.read(pkl, kMaxPickleBytes);
    dict = io::parse_torch_pickle(pickle, label + " (" + pkl.name + ")");
    for (const io::TorchStorage& s : dict.storages) {
      const io::ZipEntry& e = zip.at(prefix + "data/" + s.key);
      const std::size_t esize = io::torch_dtype_size(s.dtype);
      if (s.numel > e.size / esize)
        throw Error(label + ": storage '" + s.key + "' declares " + std::to_string(s.numel) + " " + s.dtype +
                    " elements but its entry holds " + std::to_string(e.size) + " bytes");
      storage_entries.push_back(&e);
    }
    for (std::size_t k = 0; k < dict.tensors.size(); ++k) by_name.emplace(dict.tensors[k].first, k);
  }

  static io::MappedBytes check_format(io::MappedBytes bytes, const std::string& path) {
    if (is_legacy_format(bytes))
      throw Error(path + ": legacy torch.save format not supported; re-save with torch>=1.6");
    return bytes;
  }

  // torch names the top folder after the file it first wrote ("archive",
  // "pytorch_model", ...); exactly one <prefix>/data.pkl must exist.
  std::string find_prefix() const {
    std::string found;
    int count = 0;
    for (const io::ZipEntry& e : zip.entries()) {
      const std::size_t slash = e.name.find('/');
      if (slash != std::string::npos && slash > 0 && e.name.compare(slash, std::string::npos, "/data.pkl") == 0) {
        found = e.name.substr(0, slash + 1);
        ++count;
      }
    }
    if (count == 0) throw Error(label + ": no <archive>/data.pkl entry; not a torch.save checkpoint");
    if (count > 1) throw Error(label + ": several <archive>/data.pkl entries; ambiguous torch checkpoint");
    return found;
  }

  const io::TorchTensorRef& ref(const std::string& name) const {
    auto it = by_name.find(name);
    if (it == by_name.end()) throw Error(label + ": no tensor named '" + name + "'");
    return dict.tensors[it->second].second;
  }
};

TorchCheckpoint TorchCheckpoint::open(const std::string& path) {
  return TorchCheckpoint(std::make_shared<const Impl>(io::map_file(path), path));
}

TorchCheckpoint TorchCheckpoint::from_bytes(std::vector<uint8_t> bytes, const std::string& label) {
  return TorchCheckpoint(std::make_shared<const Impl>(io::own_bytes(std::move(bytes)), label));
}

const std::string& TorchCheckpoint::path() const { return impl_->label; }

std::vector<std::string> TorchCheckpoint::names() const {
  std::vector<std::string> out;
  out.reserve(impl_->dict.tensors.size());
  for (const auto& [name, _] : impl_->dict.tensors) out.push_back(name);
  return out;
}

bool TorchCheckpoint::contains(const std::string& name) const { return impl_->by_name.count(name) != 0; }

Shape TorchCheckpoint::shape(const std::string& name) const { return impl_->ref(name).shape; }

std::string TorchCheckpoint::dtype(const std::string& name) const {
  return impl_->dict.storages[impl_->ref(name).storage].dtype;
}

Tensor TorchCheckpoint::get(const std::string& name) const {
  const io::TorchTensorRef& t = impl_->ref(name);
  const io::TorchStorage& s = impl_->dict.storages[t.storage];
  const io::ZipEntry& e = *impl_->storage_entries[t.storage];
  // Stored entries are used in place; compressed ones are inflated into a buffer the views keep alive.
  std::shared_ptr<const void> keep = impl_->zip.keep_alive();
  const uint8_t* base = nullptr;
  if (e.method == 0) {
    base = impl_->zip.view(e).data();
  } else {
    auto inflated = std::make_shared<const std::vector<uint8_t>>(impl_->zip.read(e, e.size));
    base = inflated->data();
    keep = inflated;
  }
  const std::size_t esize = io::torch_dtype_size(s.dtype);
  const int64_t n = shape_numel(t.shape);
  const uint8_t* first = n == 0 ? nullptr : base + static_cast<std::size_t>(t.offset) * esize;

  if ((s.dtype == "F32" || s.dtype == "I64") && n > 0 && dense(t.shape, t.strides) &&
      reinterpret_cast<uintptr_t>(first) % esize == 0) {
    // The view keeps the mapping (or the inflated buffer) alive on its own.
    return Tensor::view(const_cast<uint8_t*>(first), t.shape, s.dtype == "F32" ? DType::F32 : DType::I64,
                        std::const_pointer_cast<void>(keep));
  }
  const auto same = [](auto v) { return v; };
  const auto to_i64 = [](auto v) { return static_cast<int64_t>(v); };
  if (s.dtype == "F32") return convert_copy<float, float>(t, base, DType::F32, same);
  if (s.dtype == "F16") return convert_copy<float, uint16_t>(t, base, DType::F32, f16_to_f32);
  if (s.dtype == "BF16")
    return convert_copy<float, uint16_t>(t, base, DType::F32, [](uint16_t v) { return bf16_to_f32(bf16{v}); });
  if (s.dtype == "F64")
    return convert_copy<float, double>(t, base, DType::F32, [](double v) { return static_cast<float>(v); });
  if (s.dtype == "I64") return convert_copy<int64_t, int64_t>(t, base, DType::I64, same);
  if (s.dtype == "I32") return convert_copy<int64_t, int32_t>(t, base, DType::I64, to_i64);
  if (s.dtype == "I16") return convert_copy<int64_t, int16_t>(t, base, DType::I64, to_i64);
  if (s.dtype == "I8") return convert_copy<int64_t, int8_t>(t, base, DType::I64, to_i64);
  if (s.dtype == "U8") return convert_copy<int64_t, uint8_t>(t, base, DType::I64, to_i64);
  if (s.dtype == "BOOL")
    return convert_copy<int64_t, uint8_t>(t, base, DType::I64, [](uint8_t v) { return int64_t{v != 0}; });
  throw Error(impl_->label + ": tensor '" + name + "' has unsupported dtype " + s.dtype);
}

}  // namespace roformer
