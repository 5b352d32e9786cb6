// SIMD dot products, compiled once per Highway target and chosen at run time.
//
// Portable Highway code serves every target; on x86 targets with AVX2 or better the integer block dots use
// maddubs/madd (the fastest int8 path AVX2 has) through raw intrinsics, inside Highway's per-target
// compilation so that the same binary still runs on any x86-64.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/simd.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// Must come after foreach_target.h.
#include "hwy/highway.h"

#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "kernels/quant.h"
#include "kernels/simd.h"

HWY_BEFORE_NAMESPACE();
namespace hearth::kernels::simd::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

inline float half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_f32(h);
}

#undef HEARTH_X86_INT8  // this file is compiled once per target: decide afresh each time
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
#define HEARTH_X86_INT8 1
// Eight int32 partial sums of x[i]*y[i] over 32 signed bytes (x in [-128,127], y in [-127,127]):
// maddubs needs an unsigned operand, so multiply |x| by y carrying x's sign.
HWY_INLINE __m256i dot32_i8(__m256i x, __m256i y) {
  const __m256i ax = _mm256_sign_epi8(x, x);
  const __m256i sy = _mm256_sign_epi8(y, x);
  const __m256i p16 = _mm256_maddubs_epi16(ax, sy);
  return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}
HWY_INLINE float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
// The 32 weights of a Q4_0 block as signed bytes in element order (low nibbles 0-15, high 16-31), minus 8.
HWY_INLINE __m256i q4_0_bytes(const uint8_t* qs) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i lo = _mm_and_si128(raw, _mm_set1_epi8(0x0F));
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0x0F));
  return _mm256_sub_epi8(_mm256_set_m128i(hi, lo), _mm256_set1_epi8(8));
}
#endif

// The integer block dots follow ggml's AVX2 structure exactly (see quant.cpp: one 8-lane accumulator,
// one fused multiply-add per block), so on x86 they are bit-identical to the scalar references. Targets
// without the x86 int8 instructions use the references themselves.
float DotQ8_0(const void* w, const void* a, int64_t n) {
#ifdef HEARTH_X86_INT8
  const uint8_t* x = static_cast<const uint8_t*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / 32; ++b, x += 34) {
    const __m256i p = dot32_i8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 2)),
                               _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[b].qs)));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(half(x) * fp16_to_f32(y[b].d)), _mm256_cvtepi32_ps(p), acc);
  }
  return hsum8(acc);
#else
  return weight_kernels(GgmlType::Q8_0)->dot(w, a, n);
#endif
}

float DotQ4_0(const void* w, const void* a, int64_t n) {
#ifdef HEARTH_X86_INT8
  const uint8_t* x = static_cast<const uint8_t*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / 32; ++b, x += 18) {
    const __m256i p = dot32_i8(q4_0_bytes(x + 2), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[b].qs)));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(half(x) * fp16_to_f32(y[b].d)), _mm256_cvtepi32_ps(p), acc);
  }
  return hsum8(acc);
#else
  return weight_kernels(GgmlType::Q4_0)->dot(w, a, n);
#endif
}

// One float per row, one fused multiply-add per block with the block's whole integer dot product.
float DotQ4_0Repacked(const void* w, const void* a, int64_t n) {
#ifdef HEARTH_X86_INT8
  const uint8_t* x = static_cast<const uint8_t*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  float acc = 0;
  for (int64_t b = 0; b < n / 32; ++b, x += 18) {
    const __m256i p = dot32_i8(q4_0_bytes(x + 2), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[b].qs)));
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    acc = std::fma(float(_mm_cvtsi128_si32(s)), half(x) * fp16_to_f32(y[b].d), acc);
  }
  return acc;
#else
  return weight_kernels(GgmlType::Q4_0)->dot_repacked(w, a, n);
#endif
}

Kernels GetKernels() {
  Kernels k;
  k.target = hwy::TargetName(HWY_TARGET);
  k.dot_q4_0 = DotQ4_0;
  k.dot_q4_0_repacked = DotQ4_0Repacked;
  k.dot_q8_0 = DotQ8_0;
  return k;
}

}  // namespace hearth::kernels::simd::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <atomic>
#include <cstdlib>

#include "hwy/targets.h"

namespace hearth::kernels::simd {

HWY_EXPORT(GetKernels);

namespace {
std::atomic<int> g_enabled{-1};  // -1: not decided yet (read HEARTH_SIMD)
}

const Kernels& best() {
  static const Kernels k = HWY_DYNAMIC_DISPATCH(GetKernels)();
  return k;
}

bool enabled() {
  int e = g_enabled.load(std::memory_order_relaxed);
  if (e < 0) {
    const char* env = std::getenv("HEARTH_SIMD");
    e = (env && env[0] == '0') ? 0 : 1;
    g_enabled.store(e, std::memory_order_relaxed);
  }
  return e == 1;
}

void set_enabled(bool on) { g_enabled.store(on ? 1 : 0); }

VecDotFn dot(GgmlType t, bool batched, bool repacked) {
  const WeightKernels* ref = weight_kernels(t);
  if (!ref) return nullptr;
  const VecDotFn scalar = repacked && ref->dot_repacked ? ref->dot_repacked
                          : batched && ref->dot_batched ? ref->dot_batched
                                                        : ref->dot;
  if (!enabled()) return scalar;
  const Kernels& k = best();
  VecDotFn f = nullptr;
  switch (t) {
    case GgmlType::Q4_0: f = repacked ? k.dot_q4_0_repacked : k.dot_q4_0; break;
    case GgmlType::Q8_0: f = k.dot_q8_0; break;
    // F32/F16/BF16: the references follow llama.cpp's per-machine summation orders; SIMD versions of those
    // orders are still to come, so these use the references.
    case GgmlType::Q4_K: f = k.dot_q4_k; break;
    case GgmlType::Q5_K: f = k.dot_q5_k; break;
    case GgmlType::Q6_K: f = k.dot_q6_k; break;
    default: break;
  }
  return f ? f : scalar;
}

void for_each_target(const std::function<void(const Kernels&)>& fn) {
  for (uint32_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    fn(HWY_DYNAMIC_DISPATCH(GetKernels)());
  }
  hwy::SetSupportedTargetsForTest(0);
}

}  // namespace hearth::kernels::simd
#endif  // HWY_ONCE
