// Memory on 2 MiB boundaries with transparent huge pages requested: packed weights, and the big scratch
// buffers of a long prompt, which kernels write in 64-byte pieces spread over hundreds of rows (a 512-token
// FFN output is 12 MB; in 4 KiB pages nearly every store of such a pass lands on another page).
#pragma once
#include <cstddef>
#include <new>

namespace hearth {

inline constexpr size_t kHugePageBytes = size_t(2) << 20;

// Whole huge pages covering `bytes`, starting on a huge-page boundary, advised MADV_HUGEPAGE (advice only:
// without THP it is ordinary memory). nullptr when the system has no memory for it. Free with unmap_huge.
void* map_huge(size_t bytes);
void unmap_huge(void* p, size_t bytes);

// Whether HugePageAllocator maps big blocks itself. Not under AddressSanitizer: there every block comes from
// operator new, whose redzones catch overruns.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kHugePageAllocatorMaps = false;
#else
inline constexpr bool kHugePageAllocatorMaps = true;
#endif

// std::vector allocator: blocks of a huge page or more from map_huge, smaller ones from operator new.
template <class T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() = default;
  template <class U>
  HugePageAllocator(const HugePageAllocator<U>&) noexcept {}
  T* allocate(size_t n) {
    const size_t bytes = n * sizeof(T);
    if (!kHugePageAllocatorMaps || bytes < kHugePageBytes) return static_cast<T*>(::operator new(bytes));
    void* p = map_huge(bytes);
    if (!p) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t n) noexcept {
    const size_t bytes = n * sizeof(T);
    if (!kHugePageAllocatorMaps || bytes < kHugePageBytes) ::operator delete(p);
    else unmap_huge(p, bytes);
  }
  template <class U>
  bool operator==(const HugePageAllocator<U>&) const noexcept { return true; }
};

}  // namespace hearth
