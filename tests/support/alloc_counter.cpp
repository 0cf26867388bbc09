// See alloc_counter.h. Must be linked into the executable (not a shared
// library) so that its operator new replaces the default one.
#include "alloc_counter.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <new>

namespace {

std::atomic<uint64_t> g_allocs{0};          // every counted call
std::atomic<uint64_t> g_aligned_allocs{0};  // of which C aligned_alloc / posix_memalign (Tensor storage)
std::atomic<uint64_t> g_alloc_bytes{0};

void count_alloc(std::size_t bytes) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  g_alloc_bytes.fetch_add(bytes, std::memory_order_relaxed);
}

}  // namespace

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer) || __has_feature(thread_sanitizer)
#define ALLOC_COUNTER_UNDER_SANITIZER 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ALLOC_COUNTER_UNDER_SANITIZER 1
#endif

// A sanitizer intercepts the C allocator itself; defining aligned_alloc here
// would bypass it, so under a sanitizer only operator new is counted.
#if defined(__GLIBC__) && !defined(ALLOC_COUNTER_UNDER_SANITIZER)
#define ALLOC_COUNTER_COUNTS_C_ALIGNED 1
extern "C" void* __libc_memalign(std::size_t alignment, std::size_t size);  // glibc's, exported

namespace {
void* raw_aligned(std::size_t alignment, std::size_t size) { return __libc_memalign(alignment, size); }
bool power_of_two(std::size_t x) { return x != 0 && (x & (x - 1)) == 0; }
}  // namespace

extern "C" void* aligned_alloc(std::size_t alignment, std::size_t size) noexcept {
  if (!power_of_two(alignment)) {
    errno = EINVAL;
    return nullptr;
  }
  count_alloc(size);
  g_aligned_allocs.fetch_add(1, std::memory_order_relaxed);
  return raw_aligned(alignment, size);
}

extern "C" int posix_memalign(void** out, std::size_t alignment, std::size_t size) noexcept {
  if (!power_of_two(alignment) || alignment % sizeof(void*) != 0) return EINVAL;
  count_alloc(size);
  g_aligned_allocs.fetch_add(1, std::memory_order_relaxed);
  void* p = raw_aligned(alignment, size);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}
#else
#define ALLOC_COUNTER_COUNTS_C_ALIGNED 0
namespace {
void* raw_aligned(std::size_t alignment, std::size_t size) {
  void* p = nullptr;
  return posix_memalign(&p, std::max(alignment, sizeof(void*)), size) == 0 ? p : nullptr;
}
}  // namespace
#endif

namespace {

void* counted_new(std::size_t size) {
  count_alloc(size);
  void* p = std::malloc(size == 0 ? 1 : size);
  if (!p) throw std::bad_alloc();
  return p;
}

void* counted_new_aligned(std::size_t size, std::align_val_t al) {
  count_alloc(size);
  const std::size_t a = std::max(static_cast<std::size_t>(al), sizeof(void*));
  void* p = raw_aligned(a, size == 0 ? a : size);
  if (!p) throw std::bad_alloc();
  return p;
}

}  // namespace

void* operator new(std::size_t n) { return counted_new(n); }
void* operator new[](std::size_t n) { return counted_new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_new(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_new(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new(std::size_t n, std::align_val_t al) { return counted_new_aligned(n, al); }
void* operator new[](std::size_t n, std::align_val_t al) { return counted_new_aligned(n, al); }
void* operator new(std::size_t n, std::align_val_t al, const std::nothrow_t&) noexcept {
  try {
    return counted_new_aligned(n, al);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, std::align_val_t al, const std::nothrow_t&) noexcept {
  try {
    return counted_new_aligned(n, al);
  } catch (...) {
    return nullptr;
  }
}

void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }


namespace roformer::alloc_counter {

Counts now() {
  return Counts{g_allocs.load(), g_aligned_allocs.load(), g_alloc_bytes.load()};
}

bool counts_c_aligned_alloc() { return ALLOC_COUNTER_COUNTS_C_ALIGNED != 0; }

}  // namespace roformer::alloc_counter
