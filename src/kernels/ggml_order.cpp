#include "kernels/ggml_order.h"

#include "kernels/gemm_amx.h"


namespace hearth::kernels::ggml {

namespace {
Profile detect() {
  Profile p;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  p.lanes = __builtin_cpu_supports("avx512f") ? 16 : 8;
  p.bf16_dot = __builtin_cpu_supports("avx512bf16");
  p.amx = gemm::amx::available();  // HEARTH_AMX=0: behave as a machine without AMX
#endif
  return p;
}
Profile g_profile = detect();

inline uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
}  // namespace

const Profile& profile() { return g_profile; }
void set_profile(const Profile& p) {
  g_profile = p;
  g_profile.lanes = p.lanes == 16 ? 16 : 8;
}

// exp(x) = 2^n * (1 + j(b)) with n = round(x / ln 2) and b the reduced argument, a degree-5 polynomial.
// The AVX2 form scales with an integer exponent and one multiply-add (handling |n| > 126 apart); the
// AVX-512 form folds the 1 into the polynomial and scales exactly with scalef.
namespace {
float expf_approx_avx512(float x) {
  const float r = 0x1.8p23f;
  const float z = std::fma(x, 0x1.715476p+0f, r);
  const float n = z - r;
  const float b = std::fma(-n, 0x1.7f7d1cp-20f, std::fma(-n, 0x1.62e4p-1f, x));
  const float u = b * b;
  const float j = std::fma(std::fma(std::fma(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, std::fma(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                           u, std::fma(0x1.ffffecp-1f, b, 1.0f));
  if (std::fabs(n) > 192.0f) return n <= 0.0f ? 0.0f : INFINITY;
  return std::ldexp(j, int(n));
}
}  // namespace

float expf_approx(float x) {
  if (lanes() == 16) return expf_approx_avx512(x);
  const float r = 0x1.8p23f;
  const float z = std::fma(x, 0x1.715476p+0f, r);
  const float n = z - r;
  const float b = std::fma(-n, 0x1.7f7d1cp-20f, std::fma(-n, 0x1.62e4p-1f, x));
  const uint32_t e = bits(z) << 23;
  const float k = from_bits(e + bits(1.0f));
  const float u = b * b;
  const float j = std::fma(std::fma(std::fma(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, std::fma(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                           u, 0x1.ffffecp-1f * b);
  if (!(std::fabs(n) > 126.0f)) return std::fma(j, k, k);
  const uint32_t g = n <= 0.0f ? 0x82000000u : 0u;
  const float s1 = from_bits(g + 0x7f000000u);
  const float s2 = from_bits(e - g);
  if (std::fabs(n) > 192.0f) return s1 * s1;
  return std::fma(s2, j, s2) * s1;
}

float LaneAcc::sum_vec_dot() const {
  float a[4][16];
  std::memcpy(a, acc, sizeof a);
  for (int i = 0; i < w; ++i) a[0][i] += a[2][i], a[1][i] += a[3][i];
  for (int i = 0; i < w; ++i) a[0][i] += a[1][i];
  return w == 16 ? reduce16(a[0]) : hadd8(a[0]);
}

float dot_f32(const float* x, const float* y, int64_t n) {
  const int w = lanes();
  const int64_t step = 4 * int64_t(w);
  const int64_t np = n / step * step;
  LaneAcc acc;
  acc.w = w;
  acc.n_acc = 4;
  for (int64_t i = 0; i < np; ++i) acc.add(i, x[i], y[i]);
  float sum = acc.sum_vec_dot();
  for (int64_t i = np; i < n; ++i) sum = std::fma(x[i], y[i], sum);
  return sum;
}

bool dot_f32_tinyblas(const float* x, const float* y, int64_t n, float* out) {
  const int w = lanes();
  if (n % w) return false;
  LaneAcc acc;
  acc.w = w;
  for (int64_t i = 0; i < n; ++i) acc.add(i, x[i], y[i]);
  *out = acc.sum_tinyblas();
  return true;
}

void softmax(float* x, int64_t n) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  const int w = lanes();
  double sum = 0;
  int64_t i = 0;
  for (; i + w <= n; i += w) {
    for (int l = 0; l < w; ++l) x[i + l] = expf_approx(x[i + l] - mx);
    sum += double(hsum(x + i, w));
  }
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += double(x[i]);
  }
  const float inv = float(1.0 / sum);
  for (int64_t k = 0; k < n; ++k) x[k] *= inv;
}

}  // namespace hearth::kernels::ggml
