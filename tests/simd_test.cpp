// Every SIMD kernel against its scalar reference, on every dispatch target this CPU can run.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/fp16.h"
#include "gguf/types.h"
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
};

TEST(Simd, EveryKernelMatchesItsReferenceOnEveryTarget) {
  const std::vector<Case> cases = {
      {GgmlType::Q4_0, &Kernels::dot_q4_0, false, true},   {GgmlType::Q4_0, &Kernels::dot_q4_0_repacked, false, true, true},   {GgmlType::Q8_0, &Kernels::dot_q8_0, false, true},
      {GgmlType::Q4_K, &Kernels::dot_q4_k, false, true},
      {GgmlType::Q6_K, &Kernels::dot_q6_k, false, true},
  };
  int targets = 0;
  simd::for_each_target([&](const Kernels& k) {
    ++targets;
    std::mt19937 rng(1234);
    for (const Case& c : cases) {
      const VecDotFn f = k.*(c.fn);
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
  std::printf("checked %d dispatch targets; best here: %s\n", targets, simd::best().target);
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
