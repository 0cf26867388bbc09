// Vectors for large streamed weights (kernels/huge_pages.h): large buffers
// start on a 2 MiB boundary, small ones come from the default allocator, and
// both hold and hand back what they are given (the sanitizer build checks
// each goes back to the allocator it came from).
#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>

#include "kernels/huge_pages.h"

namespace roformer::kernels {
namespace {

TEST(HugePages, LargeBuffersStartOnAHugePageAndKeepTheirValues) {
  for (const std::size_t n : {std::size_t{1} << 20, (std::size_t{5} << 20) + 3}) {
    HugePageVector<uint16_t> v(n);
    ASSERT_EQ(v.size(), n);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(v.data()) % kHugePageBytes, 0u) << n;
    std::iota(v.begin(), v.end(), uint16_t{0});
    for (std::size_t i = 0; i < n; i += 4099) ASSERT_EQ(v[i], static_cast<uint16_t>(i)) << i;
    HugePageVector<uint16_t> copy = v;  // another allocation of the same size
    EXPECT_EQ(copy, v);
    EXPECT_NE(copy.data(), v.data());
  }
}

TEST(HugePages, SmallBuffersAndGrowingOnesWork) {
  HugePageVector<int8_t> v;
  for (int i = 0; i < 3 << 20; ++i) v.push_back(static_cast<int8_t>(i % 127));  // crosses the 2 MiB line
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(v.data()) % kHugePageBytes, 0u);
  for (int i = 0; i < 3 << 20; i += 10007) ASSERT_EQ(v[static_cast<std::size_t>(i)], static_cast<int8_t>(i % 127));
  HugePageVector<int8_t> small(100, int8_t{7});
  EXPECT_EQ(small[99], 7);
  small.shrink_to_fit();
  EXPECT_EQ(small.size(), 100u);
}

}  // namespace
}  // namespace roformer::kernels
