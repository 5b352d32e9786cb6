// Quantised formats against llama.cpp's own ggml (loaded from the reference install with dlopen):
//  * dequantisation of every type hearth reads is bit-exact with ggml's to_float;
//  * hearth's weight encoders (Q8_0, Q4_0, F16, BF16) write exactly the bytes of ggml's from_float_ref;
//  * activation encoders (Q8_0, Q8_1, Q8_K) write the bytes of ggml's CPU backend (x86 builds);
//  * the reference dot product of each weight type agrees with ggml's vec_dot on the same encoded rows.
// Skips when the reference (scripts/setup-reference.sh) is not installed.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>

#include "gguf/quantize.h"
#include "gguf/types.h"
#include "kernels/quant.h"
#include "test_data.h"

namespace {

using hearth::gguf::GgmlType;

// The parts of ggml.h / ggml-cpu.h used here (ggml v0.5.0 layouts).
struct GgmlTypeTraits {
  const char* type_name;
  int64_t blck_size;
  int64_t blck_size_interleave;
  size_t type_size;
  bool is_quantized;
  void (*to_float)(const void* x, float* y, int64_t k);
  void (*from_float_ref)(const float* x, void* y, int64_t k);
};
struct GgmlTypeTraitsCpu {
  void (*from_float)(const float* x, void* y, int64_t k);
  void (*vec_dot)(int n, float* s, size_t bs, const void* x, size_t bx, const void* y, size_t by, int nrc);
  int vec_dot_type;
  int64_t nrows;
};

struct Ggml {
  const GgmlTypeTraits* (*traits)(int) = nullptr;
  const GgmlTypeTraitsCpu* (*traits_cpu)(int) = nullptr;
  std::string cpu_variant;
};


const Ggml* ggml() {
  static const Ggml* g = [] {
    const std::string bins = hearth::test::ref_dir() + "/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/";
    auto* out = new Ggml;
    void* base = dlopen((bins + "libggml-base.so").c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (!base) return static_cast<const Ggml*>(out);
    out->traits = reinterpret_cast<const GgmlTypeTraits* (*)(int)>(dlsym(base, "ggml_get_type_traits"));
    // The CPU variant llama.cpp would pick here (the most capable one this CPU runs).
    std::vector<std::string> variants;
#if defined(__x86_64__) || defined(__i386__)  // the reference ships x86-64 libraries only
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512bf16"))
      variants.push_back("zen4");
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) variants.push_back("haswell");
    variants.push_back("x64");
#endif
    for (const std::string& v : variants) {
      void* cpu = dlopen((bins + "libggml-cpu-" + v + ".so").c_str(), RTLD_NOW | RTLD_LOCAL);
      if (!cpu) continue;
      if (auto init = reinterpret_cast<void (*)()>(dlsym(cpu, "ggml_cpu_init"))) init();
      out->traits_cpu = reinterpret_cast<const GgmlTypeTraitsCpu* (*)(int)>(dlsym(cpu, "ggml_get_type_traits_cpu"));
      out->cpu_variant = v;
      break;
    }
    return static_cast<const Ggml*>(out);
  }();
  return g;
}

#define REQUIRE_GGML()                                                                                  \
  do {                                                                                                  \
    if (!ggml()->traits || !ggml()->traits_cpu)                                                         \
      GTEST_SKIP() << "llama.cpp's ggml libraries not found under " << hearth::test::ref_dir()          \
                   << " (run scripts/setup-reference.sh)";                                              \
  } while (0)

// Rows of realistic values: normal with a per-block scale spread over 6 orders of magnitude, some zero
// blocks and a few outliers.
std::vector<float> sample_rows(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_real_distribution<float> ud(-3.0f, 3.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t b = 0; b < n; b += 32) {
    const float scale = std::pow(10.0f, ud(rng));
    const bool zero = rng() % 17 == 0;
    for (int64_t i = b; i < std::min(n, b + 32); ++i) x[size_t(i)] = zero ? 0.0f : nd(rng) * scale;
    if (rng() % 5 == 0) x[size_t(b)] *= 20.0f;
  }
  return x;
}

const GgmlType kReadable[] = {GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1,   GgmlType::Q5_0,
                              GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K,   GgmlType::Q6_K,
                              GgmlType::IQ4_NL, GgmlType::IQ4_XS};

TEST(Quant, DequantisationIsBitExactWithGgml) {
  REQUIRE_GGML();
  const int64_t n = 256 * 64;
  for (GgmlType t : kReadable) {
    const auto* gt = ggml()->traits(int(t));
    ASSERT_TRUE(gt && gt->from_float_ref && gt->to_float) << hearth::gguf::type_name(t);
    const auto& ht = hearth::gguf::type_traits(t);
    ASSERT_EQ(gt->type_size, size_t(ht.type_size));
    ASSERT_EQ(gt->blck_size, ht.block_size);
    for (uint32_t seed = 1; seed <= 3; ++seed) {
      const std::vector<float> x = sample_rows(n, seed);
      std::vector<uint8_t> q(hearth::gguf::row_bytes(t, n));
      gt->from_float_ref(x.data(), q.data(), n);  // a valid encoding, made by ggml itself
      std::vector<float> want(static_cast<size_t>(n)), got(static_cast<size_t>(n));
      gt->to_float(q.data(), want.data(), n);
      ht.dequantize(q.data(), got.data(), n);
      EXPECT_EQ(std::memcmp(want.data(), got.data(), size_t(n) * 4), 0) << ht.name << " seed " << seed;
    }
  }
}

TEST(Quant, WeightEncodersWriteGgmlsBytes) {
  REQUIRE_GGML();
  const int64_t n = 32 * 512;
  for (GgmlType t : {GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0}) {
    for (uint32_t seed = 1; seed <= 3; ++seed) {
      std::vector<float> x = sample_rows(n, seed);
      x[5] = 0.0f;
      x[6] = -0.0f;
      std::vector<uint8_t> want(hearth::gguf::row_bytes(t, n)), got(want.size());
      ggml()->traits(int(t))->from_float_ref(x.data(), want.data(), n);
      hearth::gguf::encode_row(t, x.data(), n, got.data());
      EXPECT_EQ(want, got) << hearth::gguf::type_name(t) << " seed " << seed;
    }
  }
}

TEST(Quant, ActivationEncodersMatchGgmlsCpuBackend) {
  REQUIRE_GGML();
  using hearth::kernels::ActType;
  const int64_t n = 256 * 32;
  const std::pair<ActType, GgmlType> acts[] = {
      {ActType::Q8_0, GgmlType::Q8_0}, {ActType::Q8_1, GgmlType::Q8_1}, {ActType::Q8_K, GgmlType::Q8_K}};
  for (auto [a, g] : acts) {
    const auto* cpu = ggml()->traits_cpu(int(g));
    ASSERT_TRUE(cpu && cpu->from_float);
    for (uint32_t seed = 1; seed <= 3; ++seed) {
      const std::vector<float> x = sample_rows(n, seed);
      const size_t bytes = hearth::kernels::act_row_bytes(a, n);
      std::vector<uint8_t> want(bytes), got(bytes);
      cpu->from_float(x.data(), want.data(), n);
      hearth::kernels::act_traits(a).quantize(x.data(), got.data(), n);
      EXPECT_EQ(want, got) << hearth::kernels::act_traits(a).name << " vs ggml-cpu-" << ggml()->cpu_variant;
    }
  }
}

// The reference dots may sum in another order than the SIMD kernels of the ggml build loaded here, so the
// comparison allows float rounding (relative 1e-5 of the sum of |terms|), which any wrong kernel exceeds.
TEST(Quant, ReferenceDotsAgreeWithGgmlVecDot) {
  REQUIRE_GGML();
  const int64_t n = 256 * 16;
  for (GgmlType t : kReadable) {
    const auto* hk = hearth::kernels::weight_kernels(t);
    const auto* cpu = ggml()->traits_cpu(int(t));
    ASSERT_TRUE(hk && cpu && cpu->vec_dot) << hearth::gguf::type_name(t);
    const auto& at = hearth::kernels::act_traits(hk->act);
    for (uint32_t seed = 1; seed <= 4; ++seed) {
      const std::vector<float> w = sample_rows(n, seed), x = sample_rows(n, seed + 100);
      std::vector<uint8_t> wq(hearth::gguf::row_bytes(t, n)), xq(hearth::kernels::act_row_bytes(hk->act, n));
      ggml()->traits(int(t))->from_float_ref(w.data(), wq.data(), n);
      at.quantize(x.data(), xq.data(), n);
      float want = 0;
      cpu->vec_dot(int(n), &want, 0, wq.data(), 0, xq.data(), 0, 1);
      const float got = hk->dot(wq.data(), xq.data(), n);
      std::vector<float> wd(static_cast<size_t>(n));
      hearth::gguf::type_traits(t).dequantize(wq.data(), wd.data(), n);
      double mag = 0;
      for (int64_t i = 0; i < n; ++i) mag += std::fabs(double(wd[size_t(i)]) * x[size_t(i)]);
      EXPECT_NEAR(got, want, 1e-5 * mag + 1e-30) << hearth::gguf::type_name(t) << " seed " << seed;
    }
  }
}

}  // namespace
