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
#if defined(__aarch64__)
#include <arm_neon.h>
#endif

#include "core/fp16.h"
#include "kernels/ggml_order.h"
#include "kernels/ops.h"
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
// The 32 nibbles of a 32-element block's 16 bytes as bytes in element order (low nibbles 0-15, high 16-31).
HWY_INLINE __m256i nibbles32(const uint8_t* qs) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i lo = _mm_and_si128(raw, _mm_set1_epi8(0x0F));
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0x0F));
  return _mm256_set_m128i(hi, lo);
}
// The 32 weights of a Q4_0 block as signed bytes in element order, minus 8.
HWY_INLINE __m256i q4_0_bytes(const uint8_t* qs) { return _mm256_sub_epi8(nibbles32(qs), _mm256_set1_epi8(8)); }
// The fifth bits of a Q5_0/Q5_1 block (bit e of the 32-bit qh for element e) as bytes: 0x10 where set, else 0.
HWY_INLINE __m256i q5_high_bits(const uint8_t* qh_bytes) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, 4);
  // Byte e gets qh's byte e / 8 (the shuffle stays within 128-bit halves, each of which holds all of qh),
  // then keeps bit e % 8.
  const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(int(qh)),
                                             _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                                               0x0101010101010101, 0));
  const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201u));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
  return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}
// Eight int32 partial sums of x[i]*y[i] over 32 bytes, x unsigned (at most 127 so pairs fit int16), y signed.
HWY_INLINE __m256i dot32_u8(__m256i x, __m256i y) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), _mm256_set1_epi16(1));
}
#endif

#undef HEARTH_ARM_INT8
#if HWY_ARCH_ARM_A64
// 64-bit ARM (every Highway target there, NEON or SVE, has the NEON instructions): the integer block dots
// with widening multiplies and pairwise adds, which every ARMv8 CPU has (no dotprod extension needed).
#define HEARTH_ARM_INT8 1
// Lane k = sum of x[i]*y[i] over i = 4k..4k+3 of 16 signed bytes: the grouping of ggml's AVX2 lanes (Acc8 in
// quant.cpp), so the float steps that follow can be the references' own. |x*y| <= 128*127 fits int16.
HWY_INLINE int32x4_t dot16_i8(int8x16_t x, int8x16_t y) {
  const int16x8_t lo = vmull_s8(vget_low_s8(x), vget_low_s8(y));
  const int16x8_t hi = vmull_high_s8(x, y);
  return vpaddq_s32(vpaddlq_s16(lo), vpaddlq_s16(hi));
}
// A Q4_0 block's quants minus 8 as signed bytes: elements 0-15 (low nibbles) and 16-31 (high nibbles).
HWY_INLINE void q4_0_halves(const uint8_t* qs, int8x16_t* lo, int8x16_t* hi) {
  const uint8x16_t raw = vld1q_u8(qs);
  *lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(raw, vdupq_n_u8(0x0F))), vdupq_n_s8(8));
  *hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(raw, 4)), vdupq_n_s8(8));
}
// Acc8 over two 4-lane halves: lanes 0-3 = elements 0-15 of each block, 4-7 = elements 16-31; fused
// multiply-adds like std::fma in the reference, then its sum order ((hi + lo), pairs (0,2) (1,3), the two).
struct Acc8Neon {
  float32x4_t lo = vdupq_n_f32(0), hi = vdupq_n_f32(0);
  HWY_INLINE void add(float d, int32x4_t p_lo, int32x4_t p_hi) {
    lo = vfmaq_f32(lo, vcvtq_f32_s32(p_lo), vdupq_n_f32(d));
    hi = vfmaq_f32(hi, vcvtq_f32_s32(p_hi), vdupq_n_f32(d));
  }
  HWY_INLINE float sum() const {
    const float32x4_t r = vaddq_f32(hi, lo);
    return (vgetq_lane_f32(r, 0) + vgetq_lane_f32(r, 2)) + (vgetq_lane_f32(r, 1) + vgetq_lane_f32(r, 3));
  }
};
#endif

// The integer block dots follow ggml's AVX2 structure exactly (see quant.cpp: one 8-lane accumulator,
// one fused multiply-add per block), so on x86 they are bit-identical to the scalar references; 64-bit ARM
// builds the same lane sums with NEON (dot16_i8). Other targets use the references themselves.
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
#elif defined(HEARTH_ARM_INT8)
  const uint8_t* x = static_cast<const uint8_t*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  Acc8Neon acc;
  for (int64_t b = 0; b < n / 32; ++b, x += 34) {
    const int8_t* q = reinterpret_cast<const int8_t*>(x + 2);
    acc.add(half(x) * fp16_to_f32(y[b].d), dot16_i8(vld1q_s8(q), vld1q_s8(y[b].qs)),
            dot16_i8(vld1q_s8(q + 16), vld1q_s8(y[b].qs + 16)));
  }
  return acc.sum();
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
#elif defined(HEARTH_ARM_INT8)
  const uint8_t* x = static_cast<const uint8_t*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  Acc8Neon acc;
  for (int64_t b = 0; b < n / 32; ++b, x += 18) {
    int8x16_t lo, hi;
    q4_0_halves(x + 2, &lo, &hi);
    acc.add(half(x) * fp16_to_f32(y[b].d), dot16_i8(lo, vld1q_s8(y[b].qs)), dot16_i8(hi, vld1q_s8(y[b].qs + 16)));
  }
  return acc.sum();
#else
  return weight_kernels(GgmlType::Q4_0)->dot(w, a, n);
#endif
}

#ifdef HEARTH_X86_INT8
// Q5_0 x Q8_0 as Q4_0 with the fifth bit ORed in (quant.cpp dot_q5_0). Like every kernel in a HEARTH_X86_INT8
// block without a portable branch, it exists on x86 targets with AVX2 only: elsewhere its Kernels entry stays
// null and the reference serves.
float DotQ5_0(const void* w, const void* a, int64_t n) {
  const uint8_t* x = static_cast<const uint8_t*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / 32; ++b, x += 22) {
    const __m256i q = _mm256_sub_epi8(_mm256_or_si256(nibbles32(x + 6), q5_high_bits(x + 2)), _mm256_set1_epi8(16));
    const __m256i p = dot32_i8(q, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[b].qs)));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(half(x) * fp16_to_f32(y[b].d)), _mm256_cvtepi32_ps(p), acc);
  }
  return hsum8(acc);
}

// Q4_1 / Q5_1 x Q8_1: the unsigned quants in the same 8-lane order as Q4_0; the min term m * s of each block
// summed in a float of its own, block by block, and added last (quant.cpp dot_q4_1 / dot_q5_1).
template <bool kQ5>
float DotQx_1(const void* w, const void* a, int64_t n) {
  constexpr int64_t kBlockBytes = kQ5 ? 24 : 20, kQsAt = kQ5 ? 8 : 4;
  const uint8_t* x = static_cast<const uint8_t*>(w);
  const BlockQ8_1* y = static_cast<const BlockQ8_1*>(a);
  __m256 acc = _mm256_setzero_ps();
  float summs = 0;
  for (int64_t b = 0; b < n / 32; ++b, x += kBlockBytes) {
    summs += half(x + 2) * fp16_to_f32(y[b].s);
    __m256i q = nibbles32(x + kQsAt);
    if constexpr (kQ5) q = _mm256_or_si256(q, q5_high_bits(x + 4));
    const __m256i p = dot32_u8(q, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[b].qs)));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(half(x) * fp16_to_f32(y[b].d)), _mm256_cvtepi32_ps(p), acc);
  }
  return hsum8(acc) + summs;
}
#endif  // HEARTH_X86_INT8

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
#elif defined(HEARTH_ARM_INT8)
  const uint8_t* x = static_cast<const uint8_t*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  float acc = 0;
  for (int64_t b = 0; b < n / 32; ++b, x += 18) {
    int8x16_t lo, hi;
    q4_0_halves(x + 2, &lo, &hi);
    const int32_t s = vaddvq_s32(vaddq_s32(dot16_i8(lo, vld1q_s8(y[b].qs)), dot16_i8(hi, vld1q_s8(y[b].qs + 16))));
    acc = std::fma(float(s), half(x) * fp16_to_f32(y[b].d), acc);
  }
  return acc;
#else
  return weight_kernels(GgmlType::Q4_0)->dot_repacked(w, a, n);
#endif
}

// Q8_0 activation encoding. x86: ggml's AVX2 quantize_row_q8_0 (max of |x|, round-to-nearest-even of
// x * 127/amax), bit-identical to the reference; other targets use the reference.
void QuantizeQ8_0(const float* x, void* dst, int64_t n) {
#ifdef HEARTH_X86_INT8
  BlockQ8_0* y = static_cast<BlockQ8_0*>(dst);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t b = 0; b < n / 32; ++b, x += 32) {
    __m256 v[4];
    for (int j = 0; j < 4; ++j) v[j] = _mm256_loadu_ps(x + 8 * j);
    __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1])),
                             _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3])));
    __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    y[b].d = f32_to_fp16(amax / 127.f);
    const __m256 id = _mm256_set1_ps(amax != 0.0f ? 127.f / amax : 0.0f);
    __m256i q[4];
    for (int j = 0; j < 4; ++j)
      q[j] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[j], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    const __m256i p16 = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    const __m256i ordered = _mm256_permutevar8x32_epi32(p16, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[b].qs), ordered);
  }
#else
  quantize_row_q8_0(x, dst, n);
#endif
}

// Q8_K activation encoding (for K-quant weights). x86: the reference's steps eight lanes at a time, so the
// same bits: the element of largest magnitude (the first such, as the reference's strict > keeps; NaN never
// wins), q = round-half-even(x * -127/max) capped at 127, bsums of sixteen, d = 1 / scale.
void QuantizeQ8_K(const float* x, void* dst, int64_t n) {
#ifdef HEARTH_X86_INT8
  BlockQ8_K* y = static_cast<BlockQ8_K*>(dst);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256i c127 = _mm256_set1_epi32(127);
  for (int64_t b = 0; b < n / 256; ++b, x += 256) {
    __m256 m = _mm256_setzero_ps();
    for (int j = 0; j < 32; ++j) m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * j)), m);
    __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    if (amax == 0) {
      std::memset(&y[b], 0, sizeof(BlockQ8_K));
      continue;
    }
    float max = amax;
    const __m256 am = _mm256_set1_ps(amax);
    for (int j = 0; j < 32; ++j) {
      const int hit = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * j)), am, _CMP_EQ_OQ));
      if (hit) {
        max = x[8 * j + __builtin_ctz(unsigned(hit))];
        break;
      }
    }
    const float iscale = -127.f / max;
    const __m256 is = _mm256_set1_ps(iscale);
    for (int j = 0; j < 8; ++j) {  // 32 elements: bsums 2j and 2j + 1
      __m256i q[4];
      for (int k = 0; k < 4; ++k)
        q[k] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 32 * j + 8 * k), is),
                                                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)),
                                c127);
      const __m256i p16 = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[b].qs + 32 * j),
                          _mm256_permutevar8x32_epi32(p16, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
      for (int h = 0; h < 2; ++h) {
        const __m256i s8 = _mm256_add_epi32(q[2 * h], q[2 * h + 1]);
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
        y[b].bsums[2 * j + h] = int16_t(_mm_cvtsi128_si32(s4));
      }
    }
    y[b].d = 1 / iscale;
  }
#else
  quantize_row_q8_K(x, dst, n);
#endif
}

// F16 cache attention: q · k with k in F16, and out += w * v. Portable Highway code (every target).
float DotF32F16(const float* q, const uint16_t* k, int64_t n) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<hwy::float16_t, decltype(df)> dh;
  const int64_t N = int64_t(hn::Lanes(df));
  auto a0 = hn::Zero(df), a1 = hn::Zero(df);
  const hwy::float16_t* kh = reinterpret_cast<const hwy::float16_t*>(k);
  int64_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    a0 = hn::MulAdd(hn::LoadU(df, q + i), hn::PromoteTo(df, hn::LoadU(dh, kh + i)), a0);
    a1 = hn::MulAdd(hn::LoadU(df, q + i + N), hn::PromoteTo(df, hn::LoadU(dh, kh + i + N)), a1);
  }
  for (; i + N <= n; i += N) a0 = hn::MulAdd(hn::LoadU(df, q + i), hn::PromoteTo(df, hn::LoadU(dh, kh + i)), a0);
  float s = hn::GetLane(hn::SumOfLanes(df, hn::Add(a0, a1)));
  for (; i < n; ++i) s += q[i] * fp16_to_f32(k[i]);
  return s;
}

// out = sum over j of w[j] * rows[j], the target's multiply-adds in row order from zero, every element. Eight vectors of the output stay in registers while every row passes,
// so each row costs loads and FMAs, not a load and store of the whole output.
void SumRowsF16(const float* w, const uint16_t* const* rows, int64_t n_rows, float* out, int64_t n) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<hwy::float16_t, decltype(df)> dh;
  const int64_t N = int64_t(hn::Lanes(df));
  int64_t i = 0;
  for (; i + 8 * N <= n; i += 8 * N) {
    auto a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
    auto a4 = hn::Zero(df), a5 = hn::Zero(df), a6 = hn::Zero(df), a7 = hn::Zero(df);
    for (int64_t j = 0; j < n_rows; ++j) {
      const hwy::float16_t* v = reinterpret_cast<const hwy::float16_t*>(rows[j]) + i;
      const auto vw = hn::Set(df, w[j]);
      a0 = hn::MulAdd(vw, hn::PromoteTo(df, hn::LoadU(dh, v + 0 * N)), a0);
      a1 = hn::MulAdd(vw, hn::PromoteTo(df, hn::LoadU(dh, v + 1 * N)), a1);
      a2 = hn::MulAdd(vw, hn::PromoteTo(df, hn::LoadU(dh, v + 2 * N)), a2);
      a3 = hn::MulAdd(vw, hn::PromoteTo(df, hn::LoadU(dh, v + 3 * N)), a3);
      a4 = hn::MulAdd(vw, hn::PromoteTo(df, hn::LoadU(dh, v + 4 * N)), a4);
      a5 = hn::MulAdd(vw, hn::PromoteTo(df, hn::LoadU(dh, v + 5 * N)), a5);
      a6 = hn::MulAdd(vw, hn::PromoteTo(df, hn::LoadU(dh, v + 6 * N)), a6);
      a7 = hn::MulAdd(vw, hn::PromoteTo(df, hn::LoadU(dh, v + 7 * N)), a7);
    }
    hn::StoreU(a0, df, out + i + 0 * N);
    hn::StoreU(a1, df, out + i + 1 * N);
    hn::StoreU(a2, df, out + i + 2 * N);
    hn::StoreU(a3, df, out + i + 3 * N);
    hn::StoreU(a4, df, out + i + 4 * N);
    hn::StoreU(a5, df, out + i + 5 * N);
    hn::StoreU(a6, df, out + i + 6 * N);
    hn::StoreU(a7, df, out + i + 7 * N);
  }
  for (; i + N <= n; i += N) {
    auto a = hn::Zero(df);
    for (int64_t j = 0; j < n_rows; ++j)
      a = hn::MulAdd(hn::Set(df, w[j]), hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(rows[j]) + i)), a);
    hn::StoreU(a, df, out + i);
  }
  for (; i < n; ++i) {
    float a = 0;
    for (int64_t j = 0; j < n_rows; ++j) {
      const float v = fp16_to_f32(rows[j][i]);
#if HWY_NATIVE_FMA
      a = std::fma(w[j], v, a);  // the bits of MulAdd
#else
      a = a + w[j] * v;  // MulAdd on targets without FMA: multiply, round, add
#endif
    }
    out[i] = a;
  }
}

// Several query heads that read the same F16 cache rows (grouped-query attention): each key or value row is
// loaded and converted once for four heads. Each head's result has exactly the bits of DotF32F16 /
// SumRowsF16 (the same accumulators, the same order); lengths that are not a multiple of two vectors take
// those kernels head by head.
void DotF32F16Heads(const float* q, int64_t q_stride, int nq, const uint16_t* k, int64_t n, float* out,
                    int64_t out_stride) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<hwy::float16_t, decltype(df)> dh;
  const int64_t N = int64_t(hn::Lanes(df));
  int h = 0;
  if (n % (2 * N) == 0) {
    const hwy::float16_t* kh = reinterpret_cast<const hwy::float16_t*>(k);
    for (; h + 4 <= nq; h += 4) {
      const float* q0 = q + h * q_stride;
      const float *q1 = q0 + q_stride, *q2 = q1 + q_stride, *q3 = q2 + q_stride;
      auto a0 = hn::Zero(df), a1 = hn::Zero(df), b0 = hn::Zero(df), b1 = hn::Zero(df);
      auto c0 = hn::Zero(df), c1 = hn::Zero(df), d0 = hn::Zero(df), d1 = hn::Zero(df);
      for (int64_t i = 0; i < n; i += 2 * N) {
        const auto k0 = hn::PromoteTo(df, hn::LoadU(dh, kh + i)), k1 = hn::PromoteTo(df, hn::LoadU(dh, kh + i + N));
        a0 = hn::MulAdd(hn::LoadU(df, q0 + i), k0, a0);
        a1 = hn::MulAdd(hn::LoadU(df, q0 + i + N), k1, a1);
        b0 = hn::MulAdd(hn::LoadU(df, q1 + i), k0, b0);
        b1 = hn::MulAdd(hn::LoadU(df, q1 + i + N), k1, b1);
        c0 = hn::MulAdd(hn::LoadU(df, q2 + i), k0, c0);
        c1 = hn::MulAdd(hn::LoadU(df, q2 + i + N), k1, c1);
        d0 = hn::MulAdd(hn::LoadU(df, q3 + i), k0, d0);
        d1 = hn::MulAdd(hn::LoadU(df, q3 + i + N), k1, d1);
      }
      out[h * out_stride] = hn::GetLane(hn::SumOfLanes(df, hn::Add(a0, a1)));
      out[(h + 1) * out_stride] = hn::GetLane(hn::SumOfLanes(df, hn::Add(b0, b1)));
      out[(h + 2) * out_stride] = hn::GetLane(hn::SumOfLanes(df, hn::Add(c0, c1)));
      out[(h + 3) * out_stride] = hn::GetLane(hn::SumOfLanes(df, hn::Add(d0, d1)));
    }
  }
  for (; h < nq; ++h) out[h * out_stride] = DotF32F16(q + h * q_stride, k, n);
}

void SumRowsF16Heads(const float* w, int64_t w_stride, int nq, const uint16_t* const* rows, int64_t n_rows,
                     float* out, int64_t out_stride, int64_t n) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<hwy::float16_t, decltype(df)> dh;
  const int64_t N = int64_t(hn::Lanes(df));
  int h = 0;
  if (n % (2 * N) == 0) {
    for (; h + 4 <= nq; h += 4) {
      const float* w0 = w + h * w_stride;
      const float *w1 = w0 + w_stride, *w2 = w1 + w_stride, *w3 = w2 + w_stride;
      float* o0 = out + h * out_stride;
      for (int64_t i = 0; i < n; i += 2 * N) {
        auto a0 = hn::Zero(df), a1 = hn::Zero(df), b0 = hn::Zero(df), b1 = hn::Zero(df);
        auto c0 = hn::Zero(df), c1 = hn::Zero(df), d0 = hn::Zero(df), d1 = hn::Zero(df);
        for (int64_t j = 0; j < n_rows; ++j) {
          const hwy::float16_t* v = reinterpret_cast<const hwy::float16_t*>(rows[j]) + i;
          const auto v0 = hn::PromoteTo(df, hn::LoadU(dh, v)), v1 = hn::PromoteTo(df, hn::LoadU(dh, v + N));
          const auto s0 = hn::Set(df, w0[j]), s1 = hn::Set(df, w1[j]), s2 = hn::Set(df, w2[j]), s3 = hn::Set(df, w3[j]);
          a0 = hn::MulAdd(s0, v0, a0);
          a1 = hn::MulAdd(s0, v1, a1);
          b0 = hn::MulAdd(s1, v0, b0);
          b1 = hn::MulAdd(s1, v1, b1);
          c0 = hn::MulAdd(s2, v0, c0);
          c1 = hn::MulAdd(s2, v1, c1);
          d0 = hn::MulAdd(s3, v0, d0);
          d1 = hn::MulAdd(s3, v1, d1);
        }
        hn::StoreU(a0, df, o0 + i);
        hn::StoreU(a1, df, o0 + i + N);
        hn::StoreU(b0, df, o0 + out_stride + i);
        hn::StoreU(b1, df, o0 + out_stride + i + N);
        hn::StoreU(c0, df, o0 + 2 * out_stride + i);
        hn::StoreU(c1, df, o0 + 2 * out_stride + i + N);
        hn::StoreU(d0, df, o0 + 3 * out_stride + i);
        hn::StoreU(d1, df, o0 + 3 * out_stride + i + N);
      }
    }
  }
  for (; h < nq; ++h) SumRowsF16(w + h * w_stride, rows, n_rows, out + h * out_stride, n);
}

// out = float(half(x)), round to nearest even (as core/fp16.h round_to_fp16). Only where the conversion is
// the hardware's (F16C): Highway's emulation on older x86 targets truncates.
[[maybe_unused]] void RoundF16(const float* x, float* out, int64_t n) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<hwy::float16_t, decltype(df)> dh;
  const int64_t N = int64_t(hn::Lanes(df));
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::PromoteTo(df, hn::DemoteTo(dh, hn::LoadU(df, x + i))), df, out + i);
  for (; i < n; ++i) out[i] = round_to_fp16(x[i]);
}

// rms_norm's sum of squares (ops.h sum_squares): float products summed in double in 32 partial sums, part
// k taking the elements i = k (mod 32): lane l of vector j holds part 4j + l, so the parts have the scalar
// code's bits, and the same ops.h sum_squares_finish adds them up. (Four double lanes: AVX2 and better.)
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
double SumSquares(const float* x, int64_t n) {
  const hn::FixedTag<double, 4> dd;
  const hn::Rebind<float, decltype(dd)> df;
  hn::Vec<decltype(dd)> v[8];
  for (auto& p : v) p = hn::Zero(dd);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int j = 0; j < 8; ++j) {
      const auto a = hn::LoadU(df, x + i + 4 * j);
      v[j] = hn::Add(v[j], hn::PromoteTo(dd, hn::Mul(a, a)));
    }
  alignas(32) double part[32];
  for (int j = 0; j < 8; ++j) hn::Store(v[j], dd, part + 4 * j);
  return sum_squares_finish(part, x, i, n);
}
#endif

// rms_norm's scaling (ops.h): y = (x * scale) * w, or x * scale without w; two roundings, as the scalar
// code. Whole vectors; returns how many elements it did.
int64_t ScaleMul(const float* x, const float* w, float scale, float* y, int64_t n) {
  const hn::ScalableTag<float> df;
  const int64_t N = int64_t(hn::Lanes(df));
  const auto s = hn::Set(df, scale);
  int64_t i = 0;
  if (w) {
    for (; i + N <= n; i += N) hn::StoreU(hn::Mul(hn::Mul(hn::LoadU(df, x + i), s), hn::LoadU(df, w + i)), df, y + i);
  } else {
    for (; i + N <= n; i += N) hn::StoreU(hn::Mul(hn::LoadU(df, x + i), s), df, y + i);
  }
  return i;
}

// F16 bits of x, round to nearest even (quant.cpp quantize_f16: core/fp16.h f32_to_fp16): F16 activations and
// the F16 KV cache's stores. F16C only, as RoundF16.
[[maybe_unused]] void QuantizeF16(const float* x, void* dst, int64_t n) {
  uint16_t* out = static_cast<uint16_t*>(dst);
  const hn::ScalableTag<float> df;
  const hn::Rebind<hwy::float16_t, decltype(df)> dh;
  const int64_t N = int64_t(hn::Lanes(df));
  int64_t i = 0;
  for (; i + N <= n; i += N)
    hn::StoreU(hn::DemoteTo(dh, hn::LoadU(df, x + i)), dh, reinterpret_cast<hwy::float16_t*>(out + i));
  for (; i < n; ++i) out[i] = f32_to_fp16(x[i]);
}

#ifdef HEARTH_X86_INT8
// gelu(x) = table[fp16(x)] (F16C rounds to nearest even, as f32_to_fp16), 0 below -10, x above 10.
int64_t Geglu(const float* table, const float* gate, const float* up, float* out, int64_t n) {
  int64_t i = 0;
  const __m256 lo = _mm256_set1_ps(-10.0f), hi = _mm256_set1_ps(10.0f);
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(gate + i);
    const __m256i h = _mm256_cvtepu16_epi32(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
    __m256 g = _mm256_i32gather_ps(table, h, 4);
    g = _mm256_blendv_ps(g, x, _mm256_cmp_ps(x, hi, _CMP_GE_OQ));
    g = _mm256_blendv_ps(g, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LE_OQ));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(g, _mm256_loadu_ps(up + i)));
  }
  return i;
}
#endif

// F32/F16 weights in ggml's orders (ggml_order.h), with the lane width W of the profile, not of this target:
// the per-lane fused multiply-adds are the references' own, only done in vector registers (this target's
// FMA instructions instead of libm's fma). F16 operands are widened to float first (exact).
template <int W, bool kF16>
HWY_INLINE void widen(const void* p, int64_t i, float* out) {
  if constexpr (kF16) {
    const hn::ScalableTag<float> df;
    const hn::Rebind<hwy::float16_t, decltype(df)> dh;
    const int64_t N = int64_t(hn::Lanes(df));
    const hwy::float16_t* h = static_cast<const hwy::float16_t*>(p) + i;
    if (N <= 4 * W && (4 * W) % N == 0) {
      for (int64_t j = 0; j < 4 * W; j += N) hn::StoreU(hn::PromoteTo(df, hn::LoadU(dh, h + j)), df, out + j);
      return;
    }
    const uint16_t* u = static_cast<const uint16_t*>(p) + i;
    for (int j = 0; j < 4 * W; ++j) out[j] = fp16_to_f32(u[j]);
  } else {
    std::memcpy(out, static_cast<const float*>(p) + i, sizeof(float) * 4 * W);
  }
}
template <bool kF16>
HWY_INLINE float elem(const void* p, int64_t i) {
  if constexpr (kF16) return fp16_to_f32(static_cast<const uint16_t*>(p)[i]);
  return static_cast<const float*>(p)[i];
}

template <int W, bool kF16>
float VecDotOrder(const void* w, const void* a, int64_t n) {
  float acc[4][W] = {};
  const int64_t np = n / (4 * W) * (4 * W);
  alignas(64) float xs[4 * W], ys[4 * W];
  for (int64_t i = 0; i < np; i += 4 * W) {
    widen<W, kF16>(w, i, xs);
    widen<W, kF16>(a, i, ys);
    for (int k = 0; k < 4; ++k)
      for (int l = 0; l < W; ++l) acc[k][l] = std::fma(xs[k * W + l], ys[k * W + l], acc[k][l]);
  }
  for (int l = 0; l < W; ++l) acc[0][l] += acc[2][l], acc[1][l] += acc[3][l];
  for (int l = 0; l < W; ++l) acc[0][l] += acc[1][l];
  const float red = W == 16 ? ggml::reduce16(acc[0]) : ggml::hadd8(acc[0]);
  if constexpr (kF16) {
    double s = red;
    for (int64_t i = np; i < n; ++i) s += double(elem<true>(w, i) * elem<true>(a, i));
    return float(s);
  }
  float s = red;
  for (int64_t i = np; i < n; ++i) s = std::fma(elem<false>(w, i), elem<false>(a, i), s);
  return s;
}

// tinyBLAS: one accumulator of W lanes (n a multiple of W; the caller checks).
template <int W, bool kF16>
float TinyBlasOrder(const void* w, const void* a, int64_t n) {
  if (n % W) return VecDotOrder<W, kF16>(w, a, n);
  float acc[W] = {};
  alignas(64) float xs[4 * W], ys[4 * W];
  int64_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    widen<W, kF16>(w, i, xs);
    widen<W, kF16>(a, i, ys);
    for (int k = 0; k < 4; ++k)
      for (int l = 0; l < W; ++l) acc[l] = std::fma(xs[k * W + l], ys[k * W + l], acc[l]);
  }
  for (; i < n; i += W)
    for (int l = 0; l < W; ++l) acc[l] = std::fma(elem<kF16>(w, i + l), elem<kF16>(a, i + l), acc[l]);
  return W == 16 ? ggml::reduce16(acc) : ggml::hsum8(acc);
}

#ifdef HEARTH_X86_INT8
#include "kernels/kquant_sums_x86.inc"  // q4k_row_sums, q6k_row_sums (compiled per target)

// Q4_K (kQ5 = false) or Q5_K x Q8_K with the reference's arithmetic (quant.cpp dot_q4_k / dot_q5_k): the integer
// sums of each super-block (exact) in vectors, then the reference's float expression per super-block (no
// contraction: -ffp-contract=off).
template <bool kQ5>
float DotQ4KOrQ5K(const void* w, const void* a, int64_t n) {
  constexpr size_t kBlockBytes = kQ5 ? 176 : 144;
  const uint8_t* x = static_cast<const uint8_t*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  float sum = 0;
  for (int64_t b = 0; b < n / 256; ++b, x += kBlockBytes) {
    __m256i acc, mm;
    q4k_row_sums<kQ5>(x, y[b], acc, mm);
    // Both integer sums at once: lanes (sumi, summ) after two horizontal adds and a fold of the halves.
    const __m256i h = _mm256_hadd_epi32(acc, mm);  // i01 i23 m01 m23 | i45 i67 m45 m67
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    s4 = _mm_hadd_epi32(s4, s4);  // sumi, summ, sumi, summ
    const int sumi = _mm_cvtsi128_si32(s4), summ = _mm_extract_epi32(s4, 1);
    sum += y[b].d * half(x) * float(sumi) - y[b].d * half(x + 2) * float(summ);
  }
  return sum;
}
#endif  // HEARTH_X86_INT8

// Q4_K x Q8_K with the reference's arithmetic (quant.cpp dot_q4_k): the integer sums of each super-block
// (exact) in vectors, then the reference's float expression per super-block.
float DotQ4K(const void* w, const void* a, int64_t n) {
#ifdef HEARTH_X86_INT8
  return DotQ4KOrQ5K<false>(w, a, n);
#elif defined(HEARTH_ARM_INT8)
  const uint8_t* x = static_cast<const uint8_t*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  float sum = 0;
  for (int64_t b = 0; b < n / 256; ++b, x += 144) {
    uint32_t u[4];
    const uint8_t* sm = k_scales_mins(x + 4, u);
    const uint8_t* q = x + 16;
    const int8_t* q8 = y[b].qs;
    int sumi = 0, summ = 0;
    for (int c = 0; c < 4; ++c, q += 32, q8 += 64) {
      const int sc[2] = {sm[2 * c], sm[2 * c + 1]}, mn[2] = {sm[8 + 2 * c], sm[8 + 2 * c + 1]};
      int32x4_t s[2] = {vdupq_n_s32(0), vdupq_n_s32(0)};
      for (int h = 0; h < 2; ++h) {
        const uint8x16_t raw = vld1q_u8(q + 16 * h);
        s[0] = vaddq_s32(s[0], dot16_i8(vreinterpretq_s8_u8(vandq_u8(raw, vdupq_n_u8(0x0F))), vld1q_s8(q8 + 16 * h)));
        s[1] = vaddq_s32(s[1], dot16_i8(vreinterpretq_s8_u8(vshrq_n_u8(raw, 4)), vld1q_s8(q8 + 32 + 16 * h)));
      }
      sumi += sc[0] * vaddvq_s32(s[0]) + sc[1] * vaddvq_s32(s[1]);
      summ += mn[0] * (y[b].bsums[4 * c] + y[b].bsums[4 * c + 1]) + mn[1] * (y[b].bsums[4 * c + 2] + y[b].bsums[4 * c + 3]);
    }
    sum += y[b].d * half(x) * float(sumi) - y[b].d * half(x + 2) * float(summ);
  }
  return sum;
#else
  return weight_kernels(GgmlType::Q4_K)->dot(w, a, n);
#endif
}

// Q6_K x Q8_K with the reference's arithmetic (quant.cpp dot_q6_k): quants taken as unsigned 0..63 (the -32
// offset is folded in through the activation block sums), integer sums in vectors, the same float expression.
float DotQ6K(const void* w, const void* a, int64_t n) {
#ifdef HEARTH_X86_INT8
  const uint8_t* x = static_cast<const uint8_t*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  float sum = 0;
  for (int64_t b = 0; b < n / 256; ++b, x += 210) {
    __m256i acc, cm;
    q6k_row_sums(x, y[b], acc, cm);
    // Reduced together: lanes (isum, corr).
    const __m256i hsum = _mm256_hadd_epi32(acc, cm);
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(hsum), _mm256_extracti128_si256(hsum, 1));
    s4 = _mm_hadd_epi32(s4, s4);
    const int sumi = _mm_cvtsi128_si32(s4) - 32 * _mm_extract_epi32(s4, 1);
    sum += y[b].d * half(x + 208) * float(sumi);
  }
  return sum;
#elif defined(HEARTH_ARM_INT8)
  const uint8_t* x = static_cast<const uint8_t*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  const uint8x16_t m4 = vdupq_n_u8(0x0F), m2 = vdupq_n_u8(3);
  const int8x16_t k32 = vdupq_n_s8(32);
  float sum = 0;
  for (int64_t b = 0; b < n / 256; ++b, x += 210) {
    const int8_t* sc = reinterpret_cast<const int8_t*>(x + 192);
    int sumi = 0;
    for (int h = 0; h < 2; ++h) {  // the reference's halves: ql += 64, qh += 32, scales 8h.., q8 += 128
      const uint8_t* ql = x + 64 * h;
      const uint8_t* qh = x + 128 + 32 * h;
      const int8_t* q8 = y[b].qs + 128 * h;
      for (int g = 0; g < 2; ++g) {  // elements l = 16g..16g+15 of the reference's loop: scales g, g+2, g+4, g+6
        const uint8x16_t la = vld1q_u8(ql + 16 * g), lb = vld1q_u8(ql + 32 + 16 * g), hb = vld1q_u8(qh + 16 * g);
        const uint8x16_t u[4] = {
            vorrq_u8(vandq_u8(la, m4), vshlq_n_u8(vandq_u8(hb, m2), 4)),
            vorrq_u8(vandq_u8(lb, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 2), m2), 4)),
            vorrq_u8(vshrq_n_u8(la, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 4), m2), 4)),
            vorrq_u8(vshrq_n_u8(lb, 4), vshlq_n_u8(vshrq_n_u8(hb, 6), 4))};
        for (int k = 0; k < 4; ++k) {
          const int8x16_t qv = vsubq_s8(vreinterpretq_s8_u8(u[k]), k32);
          sumi += int(sc[8 * h + g + 2 * k]) * vaddvq_s32(dot16_i8(qv, vld1q_s8(q8 + 32 * k + 16 * g)));
        }
      }
    }
    sum += y[b].d * half(x + 208) * float(sumi);
  }
  return sum;
#else
  return weight_kernels(GgmlType::Q6_K)->dot(w, a, n);
#endif
}

#ifdef HEARTH_X86_INT8
// BF16 x BF16 in ggml_vec_dot_bf16's and tinyBLAS's orders (quant.cpp dot_bf16 / dot_bf16_batched) for profile
// P (bf16_profile_index): 0 = 8 lanes, 1 = 16 lanes, 2 = the AVX512-BF16 instruction, emulated here as the
// reference does (lane l adds the odd then the even product of pair l). A bf16 is the high half of a float, so
// widening is a shift; the product of two is exact in float. The reference adds products with a plain
// addition (vec_dot) or std::fma (tinyBLAS): the same here, multiply then add or fused.

// Eight bf16 values as floats, in element order.
HWY_INLINE __m256 bf16x8(const uint16_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
// One 32-element step of the emulated dot instruction; acc[0] holds lanes 0-7, acc[1] lanes 8-15. Pair l is
// 32-bit word l: its high half (odd element) is a float once the low half is cleared, its low half (even
// element) once shifted up.
HWY_INLINE void dpbf16_step(__m256* acc, const uint16_t* x, const uint16_t* y) {
  const __m256i hi_half = _mm256_set1_epi32(int(0xFFFF0000u));
  for (int h = 0; h < 2; ++h) {
    const __m256i xw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 16 * h));
    const __m256i yw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + 16 * h));
    const __m256 odd = _mm256_mul_ps(_mm256_castsi256_ps(_mm256_and_si256(xw, hi_half)),
                                     _mm256_castsi256_ps(_mm256_and_si256(yw, hi_half)));
    const __m256 even = _mm256_mul_ps(_mm256_castsi256_ps(_mm256_slli_epi32(xw, 16)),
                                      _mm256_castsi256_ps(_mm256_slli_epi32(yw, 16)));
    acc[h] = _mm256_add_ps(_mm256_add_ps(acc[h], odd), even);
  }
}
// A 16-lane accumulator held as two halves, reduced in _mm512_reduce_add_ps's order.
HWY_INLINE float reduce16(const __m256* v) {
  alignas(32) float f[16];
  _mm256_store_ps(f, v[0]);
  _mm256_store_ps(f + 8, v[1]);
  return ggml::reduce16(f);
}
HWY_INLINE float bf16_product(const uint16_t* x, const uint16_t* y, int64_t i) {
  return bf16_to_f32(x[i]) * bf16_to_f32(y[i]);
}

template <int P>
float DotBF16Order(const void* w, const void* a, int64_t n) {
  const uint16_t* x = static_cast<const uint16_t*>(w);
  const uint16_t* y = static_cast<const uint16_t*>(a);
  double s;
  int64_t i = 0;
  if constexpr (P == 2) {
    __m256 c1[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()}, c2[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    for (; i + 64 <= n; i += 64) {
      dpbf16_step(c1, x + i, y + i);
      dpbf16_step(c2, x + i + 32, y + i + 32);
    }
    s = double(reduce16(c1)) + double(reduce16(c2));
  } else {
    // Element l of each 32-element step goes to register l / 8, lane l % 8: for 16 lanes, registers 0-1 are
    // the first accumulator and 2-3 the second; for 8 lanes, they are the four accumulators.
    __m256 c[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (; i + 32 <= n; i += 32)
      for (int r = 0; r < 4; ++r)
        c[r] = _mm256_add_ps(c[r], _mm256_mul_ps(bf16x8(x + i + 8 * r), bf16x8(y + i + 8 * r)));
    if constexpr (P == 1) {
      s = double(reduce16(c)) + double(reduce16(c + 2));
    } else {
      alignas(32) float t[8];
      _mm256_store_ps(t, _mm256_add_ps(_mm256_add_ps(c[0], c[2]), _mm256_add_ps(c[1], c[3])));
      s = double(ggml::hsum8(t));
    }
  }
  for (; i < n; ++i) s += double(bf16_product(x, y, i));
  return float(s);
}

// tinyBLAS: one accumulator over the whole row in steps of the instruction (32 elements) or of the lanes; a
// row that is not a whole number of steps takes the vec_dot order, as in llama.cpp.
template <int P>
float DotBF16TinyBlas(const void* w, const void* a, int64_t n) {
  constexpr int kStep = P == 2 ? 32 : P == 1 ? 16 : 8;
  if (n % kStep) return DotBF16Order<P>(w, a, n);
  const uint16_t* x = static_cast<const uint16_t*>(w);
  const uint16_t* y = static_cast<const uint16_t*>(a);
  if constexpr (P == 2) {
    __m256 c[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t i = 0; i < n; i += 32) dpbf16_step(c, x + i, y + i);
    return reduce16(c);
  } else if constexpr (P == 1) {
    __m256 c[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t i = 0; i < n; i += 16) {
      c[0] = _mm256_fmadd_ps(bf16x8(x + i), bf16x8(y + i), c[0]);
      c[1] = _mm256_fmadd_ps(bf16x8(x + i + 8), bf16x8(y + i + 8), c[1]);
    }
    return reduce16(c);
  } else {
    __m256 c = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 8) c = _mm256_fmadd_ps(bf16x8(x + i), bf16x8(y + i), c);
    alignas(32) float t[8];
    _mm256_store_ps(t, c);
    return ggml::hsum8(t);
  }
}

#if HWY_TARGET <= HWY_AVX3
// The AVX512-BF16 instruction itself (profile 2 on CPUs that have it; GetKernels checks). Highway 1.0.3's
// targets do not enable AVX512-BF16, so these functions add it to the target's own feature string. The
// instruction treats denormal inputs as zero and flushes denormal results, which the emulation does not: the
// two agree except on denormals, which bf16 weights and activations do not normally contain.
#define HEARTH_AVX512_BF16 __attribute__((target(HWY_TARGET_STR ",avx512bf16")))
HEARTH_AVX512_BF16 inline __m512 dpbf16_native(__m512 acc, const uint16_t* x, const uint16_t* y) {
  return _mm512_dpbf16_ps(acc, reinterpret_cast<__m512bh>(_mm512_loadu_si512(x)),
                          reinterpret_cast<__m512bh>(_mm512_loadu_si512(y)));
}
HEARTH_AVX512_BF16 inline float reduce16(__m512 v) {
  alignas(64) float f[16];
  _mm512_store_ps(f, v);
  return ggml::reduce16(f);
}
HEARTH_AVX512_BF16 float DotBF16Native(const void* w, const void* a, int64_t n) {
  const uint16_t* x = static_cast<const uint16_t*>(w);
  const uint16_t* y = static_cast<const uint16_t*>(a);
  __m512 c1 = _mm512_setzero_ps(), c2 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    c1 = dpbf16_native(c1, x + i, y + i);
    c2 = dpbf16_native(c2, x + i + 32, y + i + 32);
  }
  double s = double(reduce16(c1)) + double(reduce16(c2));
  for (; i < n; ++i) s += double(bf16_product(x, y, i));
  return float(s);
}
HEARTH_AVX512_BF16 float DotBF16TinyBlasNative(const void* w, const void* a, int64_t n) {
  if (n % 32) return DotBF16Native(w, a, n);
  const uint16_t* x = static_cast<const uint16_t*>(w);
  const uint16_t* y = static_cast<const uint16_t*>(a);
  __m512 c = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 32) c = dpbf16_native(c, x + i, y + i);
  return reduce16(c);
}
#undef HEARTH_AVX512_BF16
#endif  // HWY_TARGET <= HWY_AVX3
#endif  // HEARTH_X86_INT8

Kernels GetKernels() {
  Kernels k;
  k.target = hwy::TargetName(HWY_TARGET);
  k.dot_q4_0 = DotQ4_0;
  k.dot_q4_0_repacked = DotQ4_0Repacked;
  k.dot_q8_0 = DotQ8_0;
  k.dot_q4_k = DotQ4K;
  k.dot_q6_k = DotQ6K;
  k.quantize_q8_0 = QuantizeQ8_0;
  k.quantize_q8_k = QuantizeQ8_K;
  k.dot_f32_f16 = DotF32F16;
  k.sum_rows_f16 = SumRowsF16;
  k.dot_f32_f16_heads = DotF32F16Heads;
  k.sum_rows_f16_heads = SumRowsF16Heads;
  k.native_fma = HWY_NATIVE_FMA;
  k.scale_mul = ScaleMul;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  k.round_f16 = RoundF16;
  k.quantize_f16 = QuantizeF16;
  k.sum_squares = SumSquares;
#endif
  k.dot_f32_order[0] = VecDotOrder<8, false>;
  k.dot_f32_order[1] = VecDotOrder<16, false>;
  k.dot_f32_tinyblas[0] = TinyBlasOrder<8, false>;
  k.dot_f32_tinyblas[1] = TinyBlasOrder<16, false>;
  k.dot_f16_order[0] = VecDotOrder<8, true>;
  k.dot_f16_order[1] = VecDotOrder<16, true>;
  k.dot_f16_tinyblas[0] = TinyBlasOrder<8, true>;
  k.dot_f16_tinyblas[1] = TinyBlasOrder<16, true>;
#ifdef HEARTH_X86_INT8
  k.geglu = Geglu;
  k.dot_q4_1 = DotQx_1<false>;
  k.dot_q5_0 = DotQ5_0;
  k.dot_q5_1 = DotQx_1<true>;
  k.dot_q5_k = DotQ4KOrQ5K<true>;
  k.dot_bf16_order[0] = DotBF16Order<0>;
  k.dot_bf16_order[1] = DotBF16Order<1>;
  k.dot_bf16_order[2] = DotBF16Order<2>;
  k.dot_bf16_tinyblas[0] = DotBF16TinyBlas<0>;
  k.dot_bf16_tinyblas[1] = DotBF16TinyBlas<1>;
  k.dot_bf16_tinyblas[2] = DotBF16TinyBlas<2>;
#if HWY_TARGET <= HWY_AVX3
  __builtin_cpu_init();  // GetKernels may run before libgcc's constructor that fills in the CPU features
  if (__builtin_cpu_supports("avx512bf16")) {
    k.dot_bf16_order[2] = DotBF16Native;
    k.dot_bf16_tinyblas[2] = DotBF16TinyBlasNative;
  }
#endif
#endif
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

int bf16_profile_index() {
  const ggml::Profile& p = ggml::profile();
  return p.bf16_dot ? 2 : p.lanes == 16 ? 1 : 0;
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
    case GgmlType::Q8_0: f = repacked ? nullptr : k.dot_q8_0; break;  // block order (AMX): the reference
    // F32/F16: the references' per-machine orders (ggml_order.h) at the profile's lane width. tinyBLAS needs
    // n to be a multiple of the lanes; otherwise llama.cpp (and the reference) use the vec_dot order.
    case GgmlType::F32:
    case GgmlType::F16: {
      const int wi = ggml::lanes() == 16 ? 1 : 0;
      const bool f16 = t == GgmlType::F16;
      if (batched && !repacked) return f16 ? k.dot_f16_tinyblas[wi] : k.dot_f32_tinyblas[wi];
      f = f16 ? k.dot_f16_order[wi] : k.dot_f32_order[wi];
      break;
    }
    // BF16: the kernel of the current profile, as the reference picks its order at each call.
    case GgmlType::BF16: {
      const int pi = bf16_profile_index();
      f = batched ? k.dot_bf16_tinyblas[pi] : k.dot_bf16_order[pi];
      break;
    }
    case GgmlType::Q4_1: f = k.dot_q4_1; break;
    case GgmlType::Q5_0: f = k.dot_q5_0; break;
    case GgmlType::Q5_1: f = k.dot_q5_1; break;
    case GgmlType::Q4_K: f = k.dot_q4_k; break;
    case GgmlType::Q5_K: f = k.dot_q5_k; break;
    case GgmlType::Q6_K: f = k.dot_q6_k; break;
    default: break;
  }
  return f ? f : scalar;
}

void run_on_each_target(const std::function<void()>& fn) {
  for (uint32_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    fn();
  }
  hwy::SetSupportedTargetsForTest(0);
}

void for_each_target(const std::function<void(const Kernels&)>& fn) {
  run_on_each_target([&] { fn(HWY_DYNAMIC_DISPATCH(GetKernels)()); });
}

}  // namespace hearth::kernels::simd
#endif  // HWY_ONCE
