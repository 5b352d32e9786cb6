// Sampling: greedy is argmax, seeds reproduce, and the filters keep what they should.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "runtime/sampler.h"

namespace {

using hearth::runtime::Sampler;
using hearth::runtime::SamplerParams;

TEST(Sampler, GreedyIsArgmaxWithLowestIdOnTies) {
  const std::vector<float> l = {1, 5, 3, 5, -2};
  SamplerParams p;
  p.temperature = 0;
  Sampler s(p);
  EXPECT_EQ(s.sample(l.data(), 5), 1);
  EXPECT_EQ(hearth::runtime::argmax(l.data(), 5), 1);
}

TEST(Sampler, SameSeedSameDrawsDifferentSeedDifferentDraws) {
  std::vector<float> l(100);
  for (int i = 0; i < 100; ++i) l[size_t(i)] = std::sin(float(i)) * 2;
  SamplerParams p;
  p.temperature = 1.5f;
  p.top_k = 0;
  p.top_p = 1;
  p.min_p = 0;
  p.seed = 42;
  auto draw = [&](uint64_t seed) {
    p.seed = seed;
    Sampler s(p);
    std::vector<int32_t> out;
    for (int i = 0; i < 50; ++i) out.push_back(s.sample(l.data(), 100));
    return out;
  };
  EXPECT_EQ(draw(42), draw(42));
  EXPECT_NE(draw(42), draw(43));
}

TEST(Sampler, FrequenciesFollowTheTemperedSoftmax) {
  const std::vector<float> l = {2.0f, 1.0f, 0.0f};
  SamplerParams p;
  p.temperature = 0.5f;
  p.top_k = 0;
  p.top_p = 1;
  p.min_p = 0;
  p.seed = 7;
  Sampler s(p);
  std::map<int, int> n;
  const int N = 200000;
  for (int i = 0; i < N; ++i) n[s.sample(l.data(), 3)]++;
  const double z = std::exp(4.0) + std::exp(2.0) + 1.0;
  EXPECT_NEAR(n[0] / double(N), std::exp(4.0) / z, 0.005);
  EXPECT_NEAR(n[1] / double(N), std::exp(2.0) / z, 0.005);
  EXPECT_NEAR(n[2] / double(N), 1.0 / z, 0.005);
}

TEST(Sampler, FiltersRemoveUnlikelyTokens) {
  // probabilities at temperature 1: token 0 dominant, token 3 tiny.
  const std::vector<float> l = {5.0f, 4.0f, 3.5f, -5.0f};
  auto seen = [&](SamplerParams p) {
    p.temperature = 1.0f;
    p.seed = 1;
    Sampler s(p);
    std::map<int, int> n;
    for (int i = 0; i < 20000; ++i) n[s.sample(l.data(), 4)]++;
    return n;
  };
  SamplerParams k1;
  k1.top_k = 1;
  EXPECT_EQ(seen(k1).size(), 1u);
  SamplerParams k2;
  k2.top_k = 2, k2.top_p = 1, k2.min_p = 0;
  auto n2 = seen(k2);
  EXPECT_EQ(n2.size(), 2u);
  EXPECT_EQ(n2.count(2), 0u);
  SamplerParams mp;
  mp.top_k = 0, mp.top_p = 1, mp.min_p = 0.5f;  // keeps p >= 0.5 * p(top): tokens 0 and 1 (e^-1 = 0.37 < 0.5? no)
  auto nm = seen(mp);
  EXPECT_EQ(nm.count(3), 0u);
  EXPECT_EQ(nm.count(2), 0u);  // e^-1.5 = 0.22 < 0.5
  EXPECT_EQ(nm.size(), 1u);    // e^-1 = 0.37 < 0.5 as well: only the top token survives
  SamplerParams tp;
  tp.top_k = 0, tp.top_p = 0.5f, tp.min_p = 0;  // the top token alone holds ~0.6
  EXPECT_EQ(seen(tp).size(), 1u);
}

}  // namespace

TEST(Sampler, NeverDrawsAMaskedToken) {
  // A grammar leaves 3 of 1000 tokens; top-k 40 and any temperature must still draw only those.
  std::vector<float> logits(1000, -INFINITY);
  logits[7] = -30.0f;
  logits[500] = -31.0f;
  logits[999] = -29.5f;
  for (uint64_t seed = 0; seed < 2000; ++seed) {
    hearth::runtime::Sampler s({1.5f, 40, 1.0f, 0.0f, seed});
    const int32_t id = s.sample(logits.data(), int(logits.size()));
    ASSERT_TRUE(id == 7 || id == 500 || id == 999) << "seed " << seed << " drew " << id;
  }
}
