#pragma once
// A strided n-dimensional array: shape, strides (in elements), dtype, and
// storage that is either owned (64-byte aligned) or borrowed (a view into
// memory someone else keeps alive, e.g. a memory-mapped checkpoint).
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "roformer/dtype.h"

namespace roformer {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& shape);
int64_t shape_numel(const Shape& shape);
Shape contiguous_strides(const Shape& shape);

class Tensor {
 public:
  Tensor() = default;

  // Owned, zero-filled, contiguous.
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32);
  // Owned copy of `data` (count must equal numel).
  static Tensor from_vector(const Shape& shape, const std::vector<float>& data);
  // Borrowed view: the caller keeps `owner` (may be null) and the memory alive together.
  static Tensor view(void* data, const Shape& shape, DType dtype, std::shared_ptr<void> owner = nullptr,
                     Shape strides = {});

  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int64_t dim() const { return static_cast<int64_t>(shape_.size()); }
  int64_t size(int64_t d) const;
  int64_t numel() const { return shape_numel(shape_); }
  DType dtype() const { return dtype_; }
  bool defined() const { return data_ != nullptr || numel() == 0; }
  bool is_contiguous() const {  // compared in place: building the strides would allocate
    int64_t expect = 1;
    for (std::size_t i = shape_.size(); i-- > 0;) {
      if (strides_[i] != expect) return false;
      expect *= shape_[i];
    }
    return true;
  }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }

  void* raw() const { return data_; }
  template <typename T>
  T* data() const;

  // Same storage, new shape (requires contiguity and equal element count).
  Tensor reshape(const Shape& shape) const;
  // Owned contiguous copy, converted to `dtype` (F32 <-> BF16; I64 only to I64).
  Tensor to(DType dtype) const;
  Tensor clone() const { return to(dtype_); }
  // Contiguous values as float (F32 or BF16 source).
  std::vector<float> to_vector() const;

 private:
  void check_dtype(DType expected) const;

  std::shared_ptr<void> owner_;
  void* data_ = nullptr;
  Shape shape_;
  Shape strides_;
  DType dtype_ = DType::F32;
};

template <>
inline float* Tensor::data<float>() const {
  check_dtype(DType::F32);
  return static_cast<float*>(data_);
}
template <>
inline bf16* Tensor::data<bf16>() const {
  check_dtype(DType::BF16);
  return static_cast<bf16*>(data_);
}
template <>
inline int64_t* Tensor::data<int64_t>() const {
  check_dtype(DType::I64);
  return static_cast<int64_t*>(data_);
}

// 64-byte aligned allocation for SIMD-friendly buffers. Large buffers (from
// 256 KiB) are recycled: the last few freed (at most 32 MiB) are kept for the
// next request of about their size, so repeated forwards reuse their output
// buffers instead of faulting fresh pages in.
std::shared_ptr<void> aligned_alloc_shared(std::size_t bytes);
// Hands every kept buffer back to the system.
void release_cached_tensor_memory();

}  // namespace roformer
