// Huge-page memory (core/huge_pages.h): map_huge's alignment and size, and the vector allocator's two sources.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "core/huge_pages.h"

namespace {

using namespace hearth;

TEST(HugePages, MapHugeGivesWholeAlignedWritablePages) {
  const size_t bytes = 3 * kHugePageBytes + 12345;  // not a whole number of huge pages
  auto* p = static_cast<uint8_t*>(map_huge(bytes));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kHugePageBytes, 0u);
  std::memset(p, 0xA5, 4 * kHugePageBytes);  // the last huge page is all ours, not only `bytes`
  EXPECT_EQ(p[0], 0xA5);
  EXPECT_EQ(p[4 * kHugePageBytes - 1], 0xA5);
  unmap_huge(p, bytes);
  unmap_huge(nullptr, bytes);  // a no-op
}

TEST(HugePages, VectorKeepsItsValuesAcrossBothSources) {
  std::vector<float, HugePageAllocator<float>> v(1000);  // 4 KB: operator new
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(i);
  const size_t big = 3 * kHugePageBytes / sizeof(float);
  v.resize(big);  // 6 MiB: mapped (except under ASan)
  if (kHugePageAllocatorMaps) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data()) % kHugePageBytes, 0u);
  }
  for (size_t i = 0; i < 1000; ++i) {
    ASSERT_EQ(v[i], float(i)) << i;
  }
  for (size_t i = 1000; i < big; i += 4099) {
    ASSERT_EQ(v[i], 0.0f) << i;  // value-initialised
  }
  v.back() = 7.0f;
  std::vector<float, HugePageAllocator<float>> w = v;  // copies allocate too
  EXPECT_EQ(w.back(), 7.0f);
  v.clear();
  v.shrink_to_fit();  // gives the mapping back
  EXPECT_EQ(v.capacity(), 0u);
}

}  // namespace
