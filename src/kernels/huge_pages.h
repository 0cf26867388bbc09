#pragma once
// Vectors for large weight buffers that are streamed once per decoding step
// (the fp32 and bf16 panels, the emulated int8 codes): from 2 MiB on they are aligned to
// 2 MiB and advised to the kernel as huge-page candidates (MADV_HUGEPAGE,
// a hint that Linux honours where transparent huge pages are on "madvise" or
// "always"). With 4 KiB pages a stream of 100+ MB takes a TLB miss every
// 4 KiB; on a Zen 3 core the bf16 decoding loop read 10-13 GB/s from 4 KiB
// pages and 12-15 GB/s from huge ones.
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace roformer::kernels {

inline constexpr std::size_t kHugePageBytes = std::size_t{2} << 20;

template <class T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() noexcept = default;
  template <class U>
  HugePageAllocator(const HugePageAllocator<U>&) noexcept {}

  T* allocate(std::size_t n) {
    if (n > static_cast<std::size_t>(-1) / sizeof(T)) throw std::bad_array_new_length();
    const std::size_t bytes = n * sizeof(T);
    if (bytes < kHugePageBytes) return std::allocator<T>{}.allocate(n);
    const std::size_t rounded = (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
    void* p = std::aligned_alloc(kHugePageBytes, rounded);
    if (p == nullptr) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    // Only the whole huge pages the buffer fills: advising the partial last
    // one as well made the kernel back all of it on first touch (up to 2 MiB
    // of memory that holds nothing, per buffer). A hint: failure changes nothing.
    (void)::madvise(p, bytes / kHugePageBytes * kHugePageBytes, MADV_HUGEPAGE);
#endif
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if (n * sizeof(T) < kHugePageBytes) {
      std::allocator<T>{}.deallocate(p, n);
    } else {
      std::free(p);
    }
  }
  template <class U>
  bool operator==(const HugePageAllocator<U>&) const noexcept {
    return true;
  }
};

template <class T>
using HugePageVector = std::vector<T, HugePageAllocator<T>>;

}  // namespace roformer::kernels
