// A 16-row byte transpose shared by the AVX-512 prefill kernels (gemm.cpp) and the AMX ones (gemm_amx.cpp).
#pragma once
#if defined(__x86_64__) || defined(__i386__)
// GCC 12 reports the AVX-512 intrinsics' internal _mm512_undefined_* values as maybe-uninitialized once they
// are inlined (a false positive). The state at the intrinsics' definitions is what counts, so it is set here,
// where this header may be the first to include them (Highway does the same for the kernel files).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstddef>
#include <cstdint>

namespace hearth::kernels::x86 {

// out[k] lane r = dword k of the 16 bytes at p + r * stride, for sixteen rows r: four rows fill one vector,
// then two-source permutes pick dword k of every row (gathers were slower than the tiles they fed).
__attribute__((target("avx512f"))) inline void transpose16x4(const uint8_t* p, size_t stride, __m512i out[4]) {
  __m512i four[4];  // rows 4i..4i+3
  for (int i = 0; i < 4; ++i) {
    const uint8_t* r = p + size_t(4 * i) * stride;
    __m512i v = _mm512_zextsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r)));
    v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(r + stride)), 1);
    v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(r + 2 * stride)), 2);
    four[i] = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(r + 3 * stride)), 3);
  }
  for (int k = 0; k < 4; ++k) {  // lanes 0-7 (and again 8-15): dword k of the eight rows of two sources
    const __m512i pick = _mm512_setr_epi32(k, 4 + k, 8 + k, 12 + k, 16 + k, 20 + k, 24 + k, 28 + k, k, 4 + k, 8 + k,
                                           12 + k, 16 + k, 20 + k, 24 + k, 28 + k);
    const __m512i lo8 = _mm512_permutex2var_epi32(four[0], pick, four[1]);
    const __m512i hi8 = _mm512_permutex2var_epi32(four[2], pick, four[3]);
    out[k] = _mm512_shuffle_i64x2(lo8, hi8, 0x44);  // rows 0-7 | rows 8-15
  }
}

}  // namespace hearth::kernels::x86
#endif
