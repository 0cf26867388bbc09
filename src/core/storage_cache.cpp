#include "core/storage_cache.h"

#include <cstdlib>
#include <mutex>
#include <vector>

namespace roformer::storage_cache {

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kEnabled = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kEnabled = false;
#else
constexpr bool kEnabled = true;
#endif
#else
constexpr bool kEnabled = true;
#endif

// Whole pages, so requests that differ by a few bytes share buffers.
std::size_t capacity_for(std::size_t bytes) {
  constexpr std::size_t kPage = 4096;
  return (bytes + kPage - 1) / kPage * kPage;
}

struct Kept {
  void* p;
  std::size_t capacity;
};

struct Cache {
  std::mutex mutex;
  std::vector<Kept> kept;  // oldest first
  std::size_t bytes = 0;
};

// Never destroyed: tensors with static storage may be freed after main().
Cache& cache() {
  static Cache* c = new Cache;
  return *c;
}

}  // namespace

void* take(std::size_t bytes) {
  const std::size_t capacity = capacity_for(bytes);
  if (kEnabled && bytes >= kMinBytes) {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    std::size_t best = c.kept.size();
    for (std::size_t i = 0; i < c.kept.size(); ++i) {
      const std::size_t have = c.kept[i].capacity;
      if (have >= capacity && have <= capacity + capacity / 4 &&
          (best == c.kept.size() || have < c.kept[best].capacity))
        best = i;
    }
    if (best < c.kept.size()) {
      void* p = c.kept[best].p;
      c.bytes -= c.kept[best].capacity;
      c.kept.erase(c.kept.begin() + static_cast<std::ptrdiff_t>(best));
      return p;
    }
  }
  return std::aligned_alloc(64, capacity);
}

void give(void* p, std::size_t bytes) {
  if (p == nullptr) return;
  const std::size_t capacity = capacity_for(bytes);
  if (!kEnabled || bytes < kMinBytes || capacity > kMaxBytes) {
    std::free(p);
    return;
  }
  std::vector<void*> evicted;
  {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    c.kept.push_back({p, capacity});
    c.bytes += capacity;
    while (c.kept.size() > kMaxBuffers || c.bytes > kMaxBytes) {
      evicted.push_back(c.kept.front().p);
      c.bytes -= c.kept.front().capacity;
      c.kept.erase(c.kept.begin());
    }
  }
  for (void* q : evicted) std::free(q);
}

void release() {
  std::vector<Kept> all;
  {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    all.swap(c.kept);
    c.bytes = 0;
  }
  for (const Kept& k : all) std::free(k.p);
}

bool enabled() { return kEnabled; }

std::size_t kept_bytes() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.bytes;
}

}  // namespace roformer::storage_cache
