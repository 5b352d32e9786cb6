// The forward pass's element-wise operations against straightforward double-precision formulas.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/fp16.h"
#include "kernels/ops.h"

namespace {

using namespace hearth::kernels;

std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> x(n);
  for (float& v : x) v = nd(rng);
  return x;
}

TEST(Ops, RmsNormMatchesTheFormula) {
  const auto x = randn(1536, 1, 3.0f), w = randn(1536, 2);
  std::vector<float> y(x.size());
  rms_norm(x.data(), w.data(), y.data(), int64_t(x.size()), 1e-6f);
  double ss = 0;
  for (float v : x) ss += double(v) * v;
  const double inv = 1.0 / std::sqrt(ss / double(x.size()) + 1e-6);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(y[i], x[i] * inv * w[i], 1e-5 * std::fabs(x[i] * inv * w[i]) + 1e-7);
  std::vector<float> z = x;  // in place, no weight
  rms_norm(z.data(), nullptr, z.data(), int64_t(z.size()), 1e-6f);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(z[i], x[i] * inv, 1e-5);
}

TEST(Ops, GeluTableFollowsTheTanhFormulaToHalfPrecision) {
  for (float x = -12.0f; x <= 12.0f; x += 0.001f) {
    const double xd = x;
    const double exact = 0.5 * xd * (1.0 + std::tanh(0.7978845608028654 * (xd + 0.044715 * xd * xd * xd)));
    const float g = gelu(x);
    if (x <= -10.0f) {
      EXPECT_EQ(g, 0.0f) << x;
    } else if (x >= 10.0f) {
      EXPECT_EQ(g, x);
    } else {
      // The table is indexed by x rounded to fp16: the error is |gelu'(x)| * (x's fp16 rounding) + fp16 output.
      EXPECT_NEAR(g, exact, 2e-3 * std::fabs(exact) + 2e-3) << x;
    }
    EXPECT_NEAR(gelu_exact(x), exact, 1e-5 * std::fabs(exact) + 1e-6) << x;
  }
  std::vector<float> gate = randn(64, 3, 2.0f), up = randn(64, 4), out(64);
  geglu(gate.data(), up.data(), out.data(), 64);
  for (int i = 0; i < 64; ++i) EXPECT_EQ(out[size_t(i)], gelu(gate[size_t(i)]) * up[size_t(i)]);
}

TEST(Ops, RopeRotatesPairsByPositionTimesFrequency) {
  const int hd = 64, n_rot = 64, heads = 2;
  const float base = 10000.0f;
  const auto x = randn(size_t(hd * heads), 5);
  for (int pos : {0, 1, 7, 1000}) {
    std::vector<float> y = x;
    rope_neox(y.data(), heads, hd, n_rot, pos, base, nullptr);
    for (int h = 0; h < heads; ++h)
      for (int i = 0; i < n_rot / 2; ++i) {
        const double theta = pos * std::pow(double(base), -2.0 * i / n_rot);
        const double a = x[size_t(h * hd + i)], b = x[size_t(h * hd + i + n_rot / 2)];
        EXPECT_NEAR(y[size_t(h * hd + i)], a * std::cos(theta) - b * std::sin(theta), 2e-4) << pos << " " << i;
        EXPECT_NEAR(y[size_t(h * hd + i + n_rot / 2)], a * std::sin(theta) + b * std::cos(theta), 2e-4);
      }
  }
  // Frequency factors of 1e30 (Gemma 4's proportional RoPE) leave those pairs unrotated.
  std::vector<float> ff(hd / 2, 1.0f);
  for (int i = 8; i < hd / 2; ++i) ff[size_t(i)] = 1e30f;
  std::vector<float> y = x;
  rope_neox(y.data(), heads, hd, n_rot, 123, base, ff.data());
  for (int i = 8; i < hd / 2; ++i) {
    EXPECT_EQ(y[size_t(i)], x[size_t(i)]);
    EXPECT_EQ(y[size_t(i + hd / 2)], x[size_t(i + hd / 2)]);
  }
  EXPECT_NE(y[1], x[1]);
}

TEST(Ops, SoftcapAndSoftmax) {
  auto x = randn(1000, 6, 40.0f);
  auto y = x;
  softcap(y.data(), int64_t(y.size()), 30.0f);
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_NEAR(y[i], 30.0 * std::tanh(x[i] / 30.0), 1e-4);
    EXPECT_LE(std::fabs(y[i]), 30.0f);
  }
  auto p = randn(300, 7, 5.0f);
  const auto q = p;
  softmax(p.data(), int64_t(p.size()));
  double mx = q[0], sum = 0, total = 0;
  for (float v : q) mx = std::max(mx, double(v));
  for (float v : q) sum += std::exp(double(v) - mx);
  for (size_t i = 0; i < p.size(); ++i) {
    EXPECT_NEAR(p[i], std::exp(double(q[i]) - mx) / sum, 1e-6);
    total += p[i];
  }
  EXPECT_NEAR(total, 1.0, 1e-5);
}

}  // namespace
