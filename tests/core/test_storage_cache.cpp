// The recycling of large tensor buffers (core/storage_cache.h): a dropped
// buffer serves the next request of about its size, never one it is too
// small or far too large for; the cache stays within its bounds; recycled
// storage still starts zeroed in Tensor::zeros. Under AddressSanitizer
// nothing is kept.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/storage_cache.h"
#include "roformer/tensor.h"

namespace roformer {
namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;

TEST(StorageCache, ADroppedBufferServesTheNextRequestOfItsSize) {
  release_cached_tensor_memory();
  void* first = nullptr;
  {
    auto a = aligned_alloc_shared(3 * kMiB);
    first = a.get();
    ASSERT_EQ(reinterpret_cast<std::uintptr_t>(first) % 64, 0u);
  }
  if (!storage_cache::enabled()) {
    EXPECT_EQ(storage_cache::kept_bytes(), 0u);
    return;
  }
  EXPECT_EQ(storage_cache::kept_bytes(), 3 * kMiB);
  {
    // Far larger or smaller requests do not take it.
    auto big = aligned_alloc_shared(4 * kMiB);
    auto small = aligned_alloc_shared(2 * kMiB);
    EXPECT_NE(big.get(), first);
    EXPECT_NE(small.get(), first);
    // A few bytes less does (whole pages are kept).
    auto again = aligned_alloc_shared(3 * kMiB - 100);
    EXPECT_EQ(again.get(), first);
  }
  // Small buffers are never kept.
  release_cached_tensor_memory();
  { auto tiny = aligned_alloc_shared(1000); }
  EXPECT_EQ(storage_cache::kept_bytes(), 0u);
  release_cached_tensor_memory();
}

TEST(StorageCache, StaysWithinItsBounds) {
  release_cached_tensor_memory();
  for (std::size_t mib : {1, 2, 3, 5, 7, 11, 13, 17, 40}) {
    auto b = aligned_alloc_shared(mib * kMiB);
    std::fill_n(static_cast<char*>(b.get()), mib * kMiB, 1);
    b.reset();
    EXPECT_LE(storage_cache::kept_bytes(), storage_cache::kMaxBytes);
  }
  if (storage_cache::enabled()) {
    // The newest that fit: 17 + 13 MiB (40 MiB is over the limit and 11 would
    // take the total past it).
    EXPECT_EQ(storage_cache::kept_bytes(), 30 * kMiB);
  } else {
    EXPECT_EQ(storage_cache::kept_bytes(), 0u);
  }
  release_cached_tensor_memory();
  EXPECT_EQ(storage_cache::kept_bytes(), 0u);
}

TEST(StorageCache, RecycledStorageStartsZeroed) {
  release_cached_tensor_memory();
  const Shape shape{512, 768};
  {
    Tensor t = Tensor::zeros(shape);
    std::fill_n(t.data<float>(), t.numel(), 3.5f);
  }
  const Tensor u = Tensor::zeros(shape);
  const float* p = u.data<float>();
  EXPECT_TRUE(std::all_of(p, p + u.numel(), [](float v) { return v == 0.0f; }));
  release_cached_tensor_memory();
}

}  // namespace
}  // namespace roformer
