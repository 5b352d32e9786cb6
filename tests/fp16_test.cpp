// Half and bfloat16 conversions: exhaustive over all 65536 bit patterns, and against the CPU's own F16C
// conversion instructions on random floats (round to nearest even, subnormals, overflow, NaN).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/fp16.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace {

using namespace hearth;

TEST(Fp16, EveryHalfConvertsExactlyAndBack) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = fp16_to_f32_compute(uint16_t(h));
    EXPECT_EQ(f32_bits(fp16_to_f32(uint16_t(h))), f32_bits(f)) << h;  // table == computed form
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(fp16_to_f32(f32_to_fp16(f))));
      continue;
    }
    ASSERT_EQ(f32_to_fp16(f), h) << "half " << h << " (" << f << ") does not round-trip";
  }
}

TEST(Fp16, RoundsToNearestEven) {
  EXPECT_EQ(f32_to_fp16(1.0f + 0x1p-11f), 0x3c00);        // tie -> even (down)
  EXPECT_EQ(f32_to_fp16(1.0f + 3 * 0x1p-11f), 0x3c02);    // tie -> even (up)
  EXPECT_EQ(f32_to_fp16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_fp16(65520.0f), 0x7c00);               // rounds to infinity
  EXPECT_EQ(f32_to_fp16(-1e10f), 0xfc00);
  EXPECT_EQ(f32_to_fp16(0x1p-25f), 0x0000);               // tie with zero -> zero
  EXPECT_EQ(f32_to_fp16(0x1.8p-25f), 0x0001);             // above the tie -> smallest subnormal
  EXPECT_EQ(f32_to_fp16(-0.0f), 0x8000);
}

#if defined(__x86_64__)
__attribute__((target("f16c"))) uint16_t hw_f32_to_f16(float f) {
  return uint16_t(_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(f), _MM_FROUND_TO_NEAREST_INT), 0));
}

TEST(Fp16, MatchesTheF16cInstructionOnRandomFloats) {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("f16c")) GTEST_SKIP() << "no F16C on this CPU";
  std::mt19937 rng(42);
  for (int i = 0; i < 2000000; ++i) {
    const uint32_t bits = rng();
    const float f = f32_from_bits(bits);
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_fp16(f), hw_f32_to_f16(f)) << std::hex << bits;
  }
}
#endif

TEST(Bf16, RoundsToNearestEvenAndKeepsNaN) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x3f808000)), 0x3f80);  // tie -> even
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x3f818000)), 0x3f82);  // tie -> even (up)
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x3f808001)), 0x3f81);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::nanf("")))));
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = bf16_to_f32(uint16_t(h));
    if (!std::isnan(f)) {
      ASSERT_EQ(f32_to_bf16(f), h);
    }
  }
}

}  // namespace
