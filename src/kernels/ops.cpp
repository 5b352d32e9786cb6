#include "kernels/ops.h"

#include <cmath>
#include <vector>

#include "core/fp16.h"
#include "kernels/simd.h"

namespace hearth::kernels {

double sum_squares(const float* x, int64_t n) {
  // Thirty-two partial sums (part k takes the elements i = k mod 32), added up pairwise: one running sum
  // waits out the add latency on every element (4 % of an E2B prompt's time, and still 1.3 % with eight
  // parts). In double the order changes the sum by about 1e-16 of itself, far below the float mean it is
  // rounded to (the goldens' logits stay bit-identical to llama.cpp's).
  double part[32] = {};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int k = 0; k < 32; ++k) part[k] += double(x[i + k] * x[i + k]);
  return sum_squares_finish(part, x, i, n);
}

double sum_squares_finish(double* part, const float* x, int64_t i, int64_t n) {
  for (int half = 16; half >= 1; half /= 2)
    for (int k = 0; k < half; ++k) part[k] += part[k + half];
  double sum = part[0];
  for (; i < n; ++i) sum += double(x[i] * x[i]);
  return sum;
}

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  const simd::Kernels* k = simd::enabled() ? &simd::best() : nullptr;
  const double sum = k && k->sum_squares ? k->sum_squares(x, n) : sum_squares(x, n);
  const float mean = float(sum / double(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  int64_t i = k && k->scale_mul ? k->scale_mul(x, w, scale, y, n) : 0;
  if (w) {
    for (; i < n; ++i) y[i] = (x[i] * scale) * w[i];
  } else {
    for (; i < n; ++i) y[i] = x[i] * scale;
  }
}

float gelu_exact(float x) {
  constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f;
  constexpr float kCoef = 0.044715f;
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + kCoef * x * x)));
}

namespace {
// ggml builds its table from the same formula as compiled by GCC, which fuses 1 + a*x*x into a multiply-add;
// that moves one of the 65536 entries (x = -1.99902) by an ulp, enough to be seen in a parity test.
float gelu_table_entry(float x) {
  constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f;
  const float inner = std::fma(0.044715f * x, x, 1.0f);
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * inner));
}

const uint16_t* gelu_table() {
  static const std::vector<uint16_t> table = [] {
    std::vector<uint16_t> t(65536);
    for (uint32_t i = 0; i < 65536; ++i) t[i] = f32_to_fp16(gelu_table_entry(fp16_to_f32(uint16_t(i))));
    return t;
  }();
  return table.data();
}
}  // namespace

float gelu(float x) {
  if (x <= -10.0f) return 0.0f;
  if (x >= 10.0f) return x;
  static const uint16_t* table = gelu_table();
  return fp16_to_f32(table[f32_to_fp16(x)]);
}

void gelu_inplace(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = gelu(x[i]);
}

const float* gelu_table_f32() {
  static const std::vector<float> table = [] {
    const uint16_t* h = gelu_table();
    std::vector<float> t(65536);
    for (uint32_t i = 0; i < 65536; ++i) t[i] = fp16_to_f32(h[i]);
    return t;
  }();
  return table.data();
}

void geglu(const float* gate, const float* up, float* out, int64_t n) {
  int64_t i = 0;
  if (simd::enabled() && simd::best().geglu) i = simd::best().geglu(gelu_table_f32(), gate, up, out, n);
  for (; i < n; ++i) out[i] = gelu(gate[i]) * up[i];
}

void rope_neox(float* x, int n_heads, int head_dim, int n_rot, int32_t pos, float base, const float* freq_factors) {
  const int half = n_rot / 2;
  const float theta_scale = std::pow(base, -2.0f / float(n_rot));
  // Angles for this position, built as ggml does: theta_i = pos * theta_scale^i by repeated multiplication.
  float cos_buf[1024], sin_buf[1024];
  std::vector<float> big;
  float* cs = cos_buf;
  float* sn = sin_buf;
  if (half > 1024) {
    big.resize(size_t(2 * half));
    cs = big.data();
    sn = big.data() + half;
  }
  float theta = float(pos);
  for (int i = 0; i < half; ++i) {
    const float ff = freq_factors ? freq_factors[i] : 1.0f;
    const float t = theta / ff;
    cs[i] = std::cos(t);
    sn[i] = std::sin(t);
    theta *= theta_scale;
  }
  for (int h = 0; h < n_heads; ++h) {
    float* v = x + int64_t(h) * head_dim;
    for (int i = 0; i < half; ++i) {
      const float x0 = v[i], x1 = v[i + half];
      // ggml's compiled rope fuses the first product of each expression into a multiply-add.
      v[i] = std::fma(x0, cs[i], -(x1 * sn[i]));
      v[i + half] = std::fma(x0, sn[i], x1 * cs[i]);
    }
  }
}

void softcap(float* x, int64_t n, float cap) {
  const float inv = 1.0f / cap;
  for (int64_t i = 0; i < n; ++i) x[i] = std::tanh(x[i] * inv) * cap;
}

void softmax(float* x, int64_t n) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float e = std::exp(x[i] - mx);
    x[i] = e;
    sum += double(e);
  }
  const float inv = float(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace hearth::kernels
