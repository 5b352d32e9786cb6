#include "core/huge_pages.h"

#include <sys/mman.h>

#include <cstdint>

namespace hearth {
namespace {
uintptr_t round_up(uintptr_t n) { return (n + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes; }
}  // namespace

void* map_huge(size_t bytes) {
  const size_t n = round_up(bytes);
  // One huge page more than needed, then the unaligned head and the tail beyond n given back.
  void* p = mmap(nullptr, n + kHugePageBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  const uintptr_t b = reinterpret_cast<uintptr_t>(p);
  const uintptr_t a = round_up(b);
  if (a > b) munmap(p, a - b);
  if (const uintptr_t end = b + n + kHugePageBytes; end > a + n) munmap(reinterpret_cast<void*>(a + n), end - (a + n));
  madvise(reinterpret_cast<void*>(a), n, MADV_HUGEPAGE);  // advice only: errors change nothing
  return reinterpret_cast<void*>(a);
}

void unmap_huge(void* p, size_t bytes) {
  if (p) munmap(p, round_up(bytes));
}

}  // namespace hearth
