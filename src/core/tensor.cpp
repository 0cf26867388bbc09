#include "roformer/tensor.h"

#include <cstdlib>
#include <cstring>
#include <limits>

#include "core/storage_cache.h"
#include "roformer/error.h"

namespace roformer {

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::BF16: return "BF16";
    case DType::I64: return "I64";
  }
  return "?";
}

std::string shape_str(const Shape& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    ROFORMER_CHECK(d >= 0, "negative dimension in shape " + shape_str(shape));
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) throw Error("shape too large: " + shape_str(shape));
    n *= d;
  }
  return n;
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t s = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

std::shared_ptr<void> aligned_alloc_shared(std::size_t bytes) {
  const std::size_t rounded = (bytes + 63) / 64 * 64;
  const std::size_t request = rounded == 0 ? 64 : rounded;
  void* p = storage_cache::take(request);
  if (!p) throw Error("out of memory allocating " + std::to_string(bytes) + " bytes");
  return std::shared_ptr<void>(p, [request](void* q) { storage_cache::give(q, request); });
}

void release_cached_tensor_memory() { storage_cache::release(); }

Tensor Tensor::zeros(const Shape& shape, DType dtype) {
  Tensor t;
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  t.dtype_ = dtype;
  const std::size_t bytes = t.nbytes();
  t.owner_ = aligned_alloc_shared(bytes);
  t.data_ = t.owner_.get();
  if (bytes > 0) std::memset(t.data_, 0, bytes);
  return t;
}

Tensor Tensor::from_vector(const Shape& shape, const std::vector<float>& data) {
  ROFORMER_CHECK(static_cast<int64_t>(data.size()) == shape_numel(shape),
        "from_vector: " + std::to_string(data.size()) + " values for shape " + shape_str(shape));
  Tensor t = zeros(shape, DType::F32);
  if (!data.empty()) std::memcpy(t.data_, data.data(), data.size() * sizeof(float));
  return t;
}

Tensor Tensor::view(void* data, const Shape& shape, DType dtype, std::shared_ptr<void> owner, Shape strides) {
  Tensor t;
  t.shape_ = shape;
  t.strides_ = strides.empty() ? contiguous_strides(shape) : std::move(strides);
  ROFORMER_CHECK(t.strides_.size() == shape.size(), "view: strides rank differs from shape rank");
  t.dtype_ = dtype;
  t.data_ = data;
  t.owner_ = std::move(owner);
  return t;
}

int64_t Tensor::size(int64_t d) const {
  if (d < 0) d += dim();
  ROFORMER_CHECK(d >= 0 && d < dim(), "dimension " + std::to_string(d) + " out of range for shape " + shape_str(shape_));
  return shape_[static_cast<std::size_t>(d)];
}

void Tensor::check_dtype(DType expected) const {
  if (dtype_ != expected)
    throw Error("tensor has dtype " + std::string(dtype_name(dtype_)) + ", expected " +
                std::string(dtype_name(expected)));
}

Tensor Tensor::reshape(const Shape& shape) const {
  ROFORMER_CHECK(is_contiguous(), "reshape of a non-contiguous tensor");
  ROFORMER_CHECK(shape_numel(shape) == numel(), "cannot reshape " + shape_str(shape_) + " to " + shape_str(shape));
  Tensor t = *this;
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  return t;
}

namespace {
// Visits every element offset (in elements) of a strided tensor in row-major order.
template <typename F>
void for_each_offset(const Shape& shape, const Shape& strides, F&& f) {
  const int64_t n = shape_numel(shape);
  if (n == 0) return;
  std::vector<int64_t> idx(shape.size(), 0);
  int64_t off = 0;
  for (int64_t i = 0; i < n; ++i) {
    f(i, off);
    for (std::size_t d = shape.size(); d-- > 0;) {
      if (++idx[d] < shape[d]) {
        off += strides[d];
        break;
      }
      off -= strides[d] * (shape[d] - 1);
      idx[d] = 0;
    }
  }
}
}  // namespace

Tensor Tensor::to(DType dtype) const {
  ROFORMER_CHECK(defined(), "cannot convert an empty (undefined) tensor");
  Tensor out = zeros(shape_, dtype);
  if (dtype_ == DType::I64 || dtype == DType::I64) {
    ROFORMER_CHECK(dtype_ == dtype, "cannot convert between I64 and floating tensors");
    const auto* src = static_cast<const int64_t*>(data_);
    auto* dst = static_cast<int64_t*>(out.data_);
    for_each_offset(shape_, strides_, [&](int64_t i, int64_t off) { dst[i] = src[off]; });
    return out;
  }
  auto load = [&](int64_t off) -> float {
    return dtype_ == DType::F32 ? static_cast<const float*>(data_)[off]
                                : bf16_to_f32(static_cast<const bf16*>(data_)[off]);
  };
  if (dtype == DType::F32) {
    auto* dst = static_cast<float*>(out.data_);
    for_each_offset(shape_, strides_, [&](int64_t i, int64_t off) { dst[i] = load(off); });
  } else {
    auto* dst = static_cast<bf16*>(out.data_);
    for_each_offset(shape_, strides_, [&](int64_t i, int64_t off) {
      dst[i] = dtype_ == DType::BF16 ? static_cast<const bf16*>(data_)[off] : f32_to_bf16(load(off));
    });
  }
  return out;
}

std::vector<float> Tensor::to_vector() const {
  Tensor c = to(DType::F32);
  const float* p = c.data<float>();
  return std::vector<float>(p, p + c.numel());
}

}  // namespace roformer
