#pragma once
// Helpers shared by the optimizer tests: parameters that own their buffers.
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "roformer/optim.h"

namespace roformer::testing {

// Owns values and gradients; params() gives the non-owning views AdamW takes.
// Buffers never move after add(), so the views stay valid.
class ParamStore {
 public:
  void add(const std::string& name, std::vector<float> value, bool trainable = true, Shape shape = {}) {
    Entry e;
    e.name = name;
    e.grad.assign(value.size(), 0.0f);
    e.value = std::move(value);
    e.trainable = trainable;
    e.shape = std::move(shape);
    entries_.push_back(std::move(e));
  }
  std::vector<Parameter> params() {
    std::vector<Parameter> out;
    for (Entry& e : entries_)
      out.push_back(Parameter{e.name, e.value.data(), e.trainable ? e.grad.data() : nullptr,
                              static_cast<int64_t>(e.value.size()), e.trainable, e.shape});
    return out;
  }
  std::size_t size() const { return entries_.size(); }
  const std::vector<float>& value(std::size_t i) const { return entries_[i].value; }
  const std::vector<float>& grad(std::size_t i) const { return entries_[i].grad; }
  // Copy in place: the buffers must not move under the views.
  void set_value(std::size_t i, const std::vector<float>& v) { copy_into(entries_[i].value, v); }
  void set_grad(std::size_t i, const std::vector<float>& g) { copy_into(entries_[i].grad, g); }
  const std::string& name(std::size_t i) const { return entries_[i].name; }
  bool trainable(std::size_t i) const { return entries_[i].trainable; }

 private:
  static void copy_into(std::vector<float>& dst, const std::vector<float>& src) {
    if (dst.size() != src.size()) throw std::runtime_error("ParamStore: size mismatch");
    std::copy(src.begin(), src.end(), dst.begin());
  }
  struct Entry {
    std::string name;
    std::vector<float> value, grad;
    bool trainable = true;
    Shape shape;
  };
  std::vector<Entry> entries_;
};

inline bool bit_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

}  // namespace roformer::testing
