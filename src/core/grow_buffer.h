#pragma once
// Buffers reused from call to call at varying sizes.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace roformer {

// Makes room for n values: the buffer grows to the largest size asked and
// never shrinks, so calls of varying sizes (ragged batches, packed rows)
// reuse it without clearing; a shrink-then-grow resize would fill the tail
// with zeros every time. The caller writes every value it reads.
template <class T>
void grow_to(std::vector<T>& v, int64_t n) {
  if (v.size() < static_cast<std::size_t>(n)) v.resize(static_cast<std::size_t>(n));
}

}  // namespace roformer
