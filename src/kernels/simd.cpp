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

float DotF32(const void* w, const void* a, int64_t n) {
  const float* x = static_cast<const float*>(w);
  const float* y = static_cast<const float*>(a);
  const hn::ScalableTag<float> d;
  const int64_t N = int64_t(hn::Lanes(d));
  auto s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    s0 = hn::MulAdd(hn::LoadU(d, x + i), hn::LoadU(d, y + i), s0);
    s1 = hn::MulAdd(hn::LoadU(d, x + i + N), hn::LoadU(d, y + i + N), s1);
    s2 = hn::MulAdd(hn::LoadU(d, x + i + 2 * N), hn::LoadU(d, y + i + 2 * N), s2);
    s3 = hn::MulAdd(hn::LoadU(d, x + i + 3 * N), hn::LoadU(d, y + i + 3 * N), s3);
  }
  for (; i + N <= n; i += N) s0 = hn::MulAdd(hn::LoadU(d, x + i), hn::LoadU(d, y + i), s0);
  float sum = hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(s0, s1), hn::Add(s2, s3))));
  for (; i < n; ++i) sum += x[i] * y[i];
  return sum;
}

float DotF16(const void* w, const void* a, int64_t n) {
  const hwy::float16_t* x = static_cast<const hwy::float16_t*>(w);
  const hwy::float16_t* y = static_cast<const hwy::float16_t*>(a);
  const hn::ScalableTag<float> d;
  const hn::Rebind<hwy::float16_t, decltype(d)> dh;
  const int64_t N = int64_t(hn::Lanes(d));
  auto s0 = hn::Zero(d), s1 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    s0 = hn::MulAdd(hn::PromoteTo(d, hn::LoadU(dh, x + i)), hn::PromoteTo(d, hn::LoadU(dh, y + i)), s0);
    s1 = hn::MulAdd(hn::PromoteTo(d, hn::LoadU(dh, x + i + N)), hn::PromoteTo(d, hn::LoadU(dh, y + i + N)), s1);
  }
  for (; i + N <= n; i += N)
    s0 = hn::MulAdd(hn::PromoteTo(d, hn::LoadU(dh, x + i)), hn::PromoteTo(d, hn::LoadU(dh, y + i)), s0);
  float sum = hn::GetLane(hn::SumOfLanes(d, hn::Add(s0, s1)));
  const uint16_t* xs = static_cast<const uint16_t*>(w);
  const uint16_t* ys = static_cast<const uint16_t*>(a);
  for (; i < n; ++i) sum += fp16_to_f32(xs[i]) * fp16_to_f32(ys[i]);
  return sum;
}

// BF16: ggml's AVX512-BF16 kernels accumulate 16 lanes, lane l adding the odd then the even product of
// element pair l of each 32-element step. Reproduced here with as many f32 vectors as 16 lanes need; the
// product of two bf16 values is exact in f32, so MulAdd rounds exactly as dpbf16's addition does.
using DF = hn::CappedTag<float, 8>;
using DU = hn::RebindToUnsigned<DF>;
constexpr size_t kMaxVecs16 = 16;  // 16 lanes in vectors of at least one lane

struct Lanes16 {
  hn::Vec<DF> v[kMaxVecs16];
  size_t nv;
  explicit Lanes16(DF d) : nv(16 / hn::Lanes(d)) {
    for (size_t k = 0; k < nv; ++k) v[k] = hn::Zero(d);
  }
};

HWY_INLINE void Dpbf16(Lanes16& acc, const uint16_t* x, const uint16_t* y) {
  const DF d;
  const DU du;
  const size_t N = hn::Lanes(d);
  const auto mask = hn::Set(du, 0xFFFF0000u);
  const uint32_t* x32 = reinterpret_cast<const uint32_t*>(x);
  const uint32_t* y32 = reinterpret_cast<const uint32_t*>(y);
  for (size_t k = 0; k < acc.nv; ++k) {
    const auto xv = hn::LoadU(du, x32 + k * N);
    const auto yv = hn::LoadU(du, y32 + k * N);
    acc.v[k] = hn::MulAdd(hn::BitCast(d, hn::And(xv, mask)), hn::BitCast(d, hn::And(yv, mask)), acc.v[k]);
    acc.v[k] = hn::MulAdd(hn::BitCast(d, hn::ShiftLeft<16>(xv)), hn::BitCast(d, hn::ShiftLeft<16>(yv)), acc.v[k]);
  }
}

// _mm512_reduce_add_ps's order: halves, then quarters, then pairs.
HWY_INLINE float Reduce16(const Lanes16& a) {
  const DF d;
  HWY_ALIGN float l[16];
  for (size_t k = 0; k < a.nv; ++k) hn::Store(a.v[k], d, l + k * hn::Lanes(d));
  float b[8], c[4];
  for (int i = 0; i < 8; ++i) b[i] = l[i] + l[i + 8];
  for (int i = 0; i < 4; ++i) c[i] = b[i] + b[i + 4];
  return (c[0] + c[2]) + (c[1] + c[3]);
}

float DotBF16(const void* w, const void* a, int64_t n) {
  const uint16_t* x = static_cast<const uint16_t*>(w);
  const uint16_t* y = static_cast<const uint16_t*>(a);
  const DF d;
  Lanes16 c1(d), c2(d);
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    Dpbf16(c1, x + i, y + i);
    Dpbf16(c2, x + i + 32, y + i + 32);
  }
  double s = double(Reduce16(c1)) + double(Reduce16(c2));
  for (; i < n; ++i) s += double(bf16_to_f32(x[i]) * bf16_to_f32(y[i]));
  return float(s);
}

float DotBF16Batched(const void* w, const void* a, int64_t n) {
  const uint16_t* x = static_cast<const uint16_t*>(w);
  const uint16_t* y = static_cast<const uint16_t*>(a);
  const DF d;
  Lanes16 c(d);
  for (int64_t i = 0; i + 32 <= n; i += 32) Dpbf16(c, x + i, y + i);
  return Reduce16(c);
}

Kernels GetKernels() {
  Kernels k;
  k.target = hwy::TargetName(HWY_TARGET);
  k.dot_q4_0 = DotQ4_0;
  k.dot_q8_0 = DotQ8_0;
  k.dot_f16 = DotF16;
  k.dot_bf16 = DotBF16;
  k.dot_bf16_batched = DotBF16Batched;
  k.dot_f32 = DotF32;
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

VecDotFn dot(GgmlType t, bool batched) {
  const WeightKernels* ref = weight_kernels(t);
  if (!ref) return nullptr;
  const VecDotFn scalar = batched && ref->dot_batched ? ref->dot_batched : ref->dot;
  if (!enabled()) return scalar;
  const Kernels& k = best();
  VecDotFn f = nullptr;
  switch (t) {
    case GgmlType::Q4_0: f = k.dot_q4_0; break;
    case GgmlType::Q8_0: f = k.dot_q8_0; break;
    case GgmlType::F16: f = k.dot_f16; break;
    case GgmlType::BF16: f = batched ? k.dot_bf16_batched : k.dot_bf16; break;
    case GgmlType::F32: f = k.dot_f32; break;
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
