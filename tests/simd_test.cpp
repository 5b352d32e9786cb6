// Every SIMD kernel against its scalar reference, on every dispatch target this CPU can run.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/fp16.h"
#include "gguf/types.h"
#include "kernels/ggml_order.h"
#include "kernels/quant.h"
#include "kernels/simd.h"

namespace {

using hearth::gguf::GgmlType;
using namespace hearth::kernels;
using hearth::kernels::simd::Kernels;

// Random weights of type t for a row of n elements (encoded through the activation encoders where the
// layouts coincide, else random bytes with sane scales).
std::vector<uint8_t> random_weights(GgmlType t, int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> f(static_cast<size_t>(n));
  for (float& v : f) v = nd(rng);
  const size_t bytes = hearth::gguf::row_bytes(t, n);
  std::vector<uint8_t> w(bytes);
  switch (t) {
    case GgmlType::F32: act_traits(ActType::F32).quantize(f.data(), w.data(), n); break;
    case GgmlType::F16: act_traits(ActType::F16).quantize(f.data(), w.data(), n); break;
    case GgmlType::BF16: act_traits(ActType::BF16).quantize(f.data(), w.data(), n); break;
    case GgmlType::Q8_0: act_traits(ActType::Q8_0).quantize(f.data(), w.data(), n); break;
    case GgmlType::Q4_0: {
      std::uniform_int_distribution<int> byte(0, 255);
      for (size_t b = 0; b < bytes; b += 18) {
        const uint16_t d = hearth::f32_to_fp16(0.01f + 0.05f * std::fabs(nd(rng)));
        std::memcpy(&w[b], &d, 2);
        for (int j = 2; j < 18; ++j) w[b + size_t(j)] = uint8_t(byte(rng));
      }
      break;
    }
    case GgmlType::Q4_K: {  // random quants and scales, small positive d and dmin
      std::uniform_int_distribution<int> byte(0, 255);
      for (auto& v : w) v = uint8_t(byte(rng));
      for (size_t b = 0; b < bytes; b += 144) {
        const uint16_t d = hearth::f32_to_fp16(0.001f + 0.01f * std::fabs(nd(rng)));
        const uint16_t dmin = hearth::f32_to_fp16(0.001f + 0.01f * std::fabs(nd(rng)));
        std::memcpy(&w[b], &d, 2);
        std::memcpy(&w[b + 2], &dmin, 2);
      }
      break;
    }
    case GgmlType::Q4_1:
    case GgmlType::Q5_0:
    case GgmlType::Q5_1: {  // random quants (and fifth bits), a small fp16 d, a negative fp16 min for the _1 kinds
      const bool has_min = t != GgmlType::Q5_0;
      const size_t bb = t == GgmlType::Q4_1 ? 20 : t == GgmlType::Q5_0 ? 22 : 24;
      std::uniform_int_distribution<int> byte(0, 255);
      for (auto& v : w) v = uint8_t(byte(rng));
      for (size_t b = 0; b < bytes; b += bb) {
        const uint16_t d = hearth::f32_to_fp16(0.01f + 0.05f * std::fabs(nd(rng)));
        std::memcpy(&w[b], &d, 2);
        if (has_min) {
          const uint16_t m = hearth::f32_to_fp16(-0.2f - 0.5f * std::fabs(nd(rng)));
          std::memcpy(&w[b + 2], &m, 2);
        }
      }
      break;
    }
    case GgmlType::Q5_K: {  // as Q4_K: random quants, fifth bits and scales, small positive d and dmin
      std::uniform_int_distribution<int> byte(0, 255);
      for (auto& v : w) v = uint8_t(byte(rng));
      for (size_t b = 0; b < bytes; b += 176) {
        const uint16_t d = hearth::f32_to_fp16(0.001f + 0.01f * std::fabs(nd(rng)));
        const uint16_t dmin = hearth::f32_to_fp16(0.001f + 0.01f * std::fabs(nd(rng)));
        std::memcpy(&w[b], &d, 2);
        std::memcpy(&w[b + 2], &dmin, 2);
      }
      break;
    }
    case GgmlType::Q6_K: {  // random quants and int8 scales, a small fp16 d at the end of each block
      std::uniform_int_distribution<int> byte(0, 255);
      for (auto& v : w) v = uint8_t(byte(rng));
      for (size_t b = 0; b < bytes; b += 210) {
        const uint16_t d = hearth::f32_to_fp16(0.0005f + 0.005f * std::fabs(nd(rng)));
        std::memcpy(&w[b + 208], &d, 2);
      }
      break;
    }
    default: ADD_FAILURE() << "no generator for " << hearth::gguf::type_name(t);
  }
  return w;
}

struct Case {
  GgmlType type;
  VecDotFn Kernels::*fn;
  bool batched;
  bool bit_exact;
  bool repacked = false;  // the SIMD kernel follows the reference's summation order exactly
  bool x86_only = false;  // null on targets without AVX2 (the reference serves there)
};

// Whether this machine runs the x86 AVX2 kernels (and must have every x86_only kernel on its best target).
bool has_x86_kernels() {
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

TEST(Simd, EveryKernelMatchesItsReferenceOnEveryTarget) {
  const std::vector<Case> cases = {
      {GgmlType::Q4_0, &Kernels::dot_q4_0, false, true},   {GgmlType::Q4_0, &Kernels::dot_q4_0_repacked, false, true, true},   {GgmlType::Q8_0, &Kernels::dot_q8_0, false, true},
      {GgmlType::Q4_K, &Kernels::dot_q4_k, false, true},
      {GgmlType::Q6_K, &Kernels::dot_q6_k, false, true},
      {GgmlType::Q4_1, &Kernels::dot_q4_1, false, true, false, true},
      {GgmlType::Q5_0, &Kernels::dot_q5_0, false, true, false, true},
      {GgmlType::Q5_1, &Kernels::dot_q5_1, false, true, false, true},
      {GgmlType::Q5_K, &Kernels::dot_q5_k, false, true, false, true},
  };
  int targets = 0;
  std::vector<int> compared(cases.size(), 0);  // rows compared per case, over all targets
  simd::for_each_target([&](const Kernels& k) {
    ++targets;
    std::mt19937 rng(1234);
    for (size_t ci = 0; ci < cases.size(); ++ci) {
      const Case& c = cases[ci];
      const VecDotFn f = k.*(c.fn);
      if (!f && c.x86_only) continue;
      ASSERT_NE(f, nullptr) << k.target;
      const WeightKernels* ref = weight_kernels(c.type);
      const VecDotFn rf = c.repacked ? ref->dot_repacked : c.batched && ref->dot_batched ? ref->dot_batched : ref->dot;
      const ActTraits& at = act_traits(ref->act);
      for (int64_t n : {32, 64, 96, 256, 1536, 2816, 5376}) {
        if (n % at.block_size) continue;
        for (int rep = 0; rep < 4; ++rep) {
          std::vector<uint8_t> w = random_weights(c.type, n, rng);
          std::normal_distribution<float> nd(0.0f, 1.0f + float(rep));
          std::vector<float> x(static_cast<size_t>(n));
          for (float& v : x) v = nd(rng);
          std::vector<uint8_t> a(act_row_bytes(ref->act, n));
          at.quantize(x.data(), a.data(), n);
          const float want = rf(w.data(), a.data(), n);
          const float got = f(w.data(), a.data(), n);
          ++compared[ci];
          if (c.bit_exact) {
            EXPECT_EQ(hearth::f32_bits(got), hearth::f32_bits(want))
                << k.target << " " << hearth::gguf::type_name(c.type) << (c.batched ? " batched" : "") << " n=" << n
                << ": " << got << " vs " << want;
          } else {
            EXPECT_NEAR(got, want, 1e-5 * std::sqrt(double(n)) * (1 + std::fabs(want)))
                << k.target << " " << hearth::gguf::type_name(c.type) << " n=" << n;
          }
        }
      }
    }
  });
  EXPECT_GE(targets, 1);
  for (size_t ci = 0; ci < cases.size(); ++ci) {
    EXPECT_TRUE(compared[ci] > 0 || (cases[ci].x86_only && !has_x86_kernels()))
        << hearth::gguf::type_name(cases[ci].type) << " was never compared";
    if (cases[ci].x86_only && has_x86_kernels()) {
      EXPECT_NE(simd::best().*(cases[ci].fn), nullptr) << hearth::gguf::type_name(cases[ci].type);
    }
  }
  std::printf("checked %d dispatch targets; best here: %s\n", targets, simd::best().target);
}

// Restores the ggml profile a test changed.
struct ProfileGuard {
  ggml::Profile saved = ggml::profile();
  ~ProfileGuard() { ggml::set_profile(saved); }
};

// BF16 follows ggml's order of the machine's profile, so each profile's kernels are compared with the
// reference under that profile (the reference emulates the AVX512-BF16 instruction on any CPU; the kernels
// run the instruction itself where the CPU has it). Row lengths include ones that are not whole steps of 64,
// 32, 16 or 8, which take the leftover and fallback paths.
TEST(Simd, BF16MatchesItsReferenceInEveryProfileOnEveryTarget) {
  const ProfileGuard guard;
  const ggml::Profile profiles[] = {{8, false}, {16, false}, {16, true}};
  const WeightKernels* ref = weight_kernels(GgmlType::BF16);
  ASSERT_NE(ref, nullptr);
  int compared = 0;
  for (const ggml::Profile& p : profiles) {
    ggml::set_profile(p);
    const int pi = simd::bf16_profile_index();
    ASSERT_EQ(pi, p.bf16_dot ? 2 : p.lanes == 16 ? 1 : 0);
    simd::for_each_target([&](const Kernels& k) {
      std::mt19937 rng(99);
      for (const bool batched : {false, true}) {
        const VecDotFn f = batched ? k.dot_bf16_tinyblas[pi] : k.dot_bf16_order[pi];
        if (!f) continue;  // targets without AVX2
        const VecDotFn rf = batched ? ref->dot_batched : ref->dot;
        for (int64_t n : {8, 24, 32, 64, 100, 256, 1000, 1040, 1536, 1568, 2816, 2821}) {
          for (int rep = 0; rep < 3; ++rep) {
            std::vector<uint8_t> w = random_weights(GgmlType::BF16, n, rng);
            std::normal_distribution<float> nd(0.0f, 1.0f + 10.0f * float(rep));
            std::vector<float> x(static_cast<size_t>(n));
            for (float& v : x) v = nd(rng);
            std::vector<uint8_t> a(act_row_bytes(ActType::BF16, n));
            act_traits(ActType::BF16).quantize(x.data(), a.data(), n);
            const float want = rf(w.data(), a.data(), n);
            const float got = f(w.data(), a.data(), n);
            ++compared;
            EXPECT_EQ(hearth::f32_bits(got), hearth::f32_bits(want))
                << k.target << " profile " << pi << (batched ? " batched" : "") << " n=" << n << ": " << got << " vs "
                << want;
          }
        }
      }
    });
    // Dispatch picks this profile's kernels (or the references where there are none).
    if (has_x86_kernels()) {
      EXPECT_EQ(simd::dot(GgmlType::BF16, false), simd::best().dot_bf16_order[pi]);
      EXPECT_EQ(simd::dot(GgmlType::BF16, true), simd::best().dot_bf16_tinyblas[pi]);
    }
  }
  if (has_x86_kernels()) {
    EXPECT_GT(compared, 0);
  }
}

TEST(Simd, CanBeForcedOff) {
  simd::set_enabled(false);
  EXPECT_EQ(simd::dot(GgmlType::Q4_0, false), weight_kernels(GgmlType::Q4_0)->dot);
  EXPECT_EQ(simd::dot(GgmlType::BF16, true), weight_kernels(GgmlType::BF16)->dot_batched);
  EXPECT_EQ(simd::dot(GgmlType::Q4_0, false, true), weight_kernels(GgmlType::Q4_0)->dot_repacked);
  simd::set_enabled(true);
  EXPECT_EQ(simd::dot(GgmlType::Q4_0, false), simd::best().dot_q4_0);
}

}  // namespace
