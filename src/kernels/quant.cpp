#include "kernels/quant.h"

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/fp16.h"
#include "kernels/ggml_order.h"

namespace hearth::kernels {

namespace {

inline uint16_t rd16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline float rdh(const uint8_t* p) { return fp16_to_f32(rd16(p)); }

// Round half to even, as the SIMD quantizers (_mm256_round_ps nearest) and ggml's nearest_int do.
inline int round_even(float v) { return int(std::nearbyint(v)); }

// ------------------------------------------------------------------------------------ float encodings

void quantize_f32(const float* x, void* dst, int64_t n) { std::memcpy(dst, x, size_t(n) * 4); }
void quantize_f16(const float* x, void* dst, int64_t n) {
  uint16_t* y = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) y[i] = f32_to_fp16(x[i]);
}
void quantize_bf16(const float* x, void* dst, int64_t n) {
  uint16_t* y = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) y[i] = f32_to_bf16(x[i]);
}

// Float weights follow llama.cpp's two paths (ggml_order.h): one token at a time through ggml_vec_dot_*,
// several tokens through tinyBLAS. The lane width (8 or 16) is that of the machine llama.cpp would run on.
template <typename Load>
float vec_dot_order(int64_t n, Load ld, bool double_tail) {
  const int w = ggml::lanes();
  const int64_t np = n / (4 * w) * (4 * w);
  ggml::LaneAcc acc;
  acc.w = w;
  acc.n_acc = 4;
  for (int64_t i = 0; i < np; ++i) acc.add(i, ld.x(i), ld.y(i));
  if (double_tail) {
    double s = acc.sum_vec_dot();
    for (int64_t i = np; i < n; ++i) s += double(ld.x(i) * ld.y(i));
    return float(s);
  }
  float s = acc.sum_vec_dot();
  for (int64_t i = np; i < n; ++i) s = std::fma(ld.x(i), ld.y(i), s);
  return s;
}

template <typename Load>
float tinyblas_order(int64_t n, Load ld) {
  ggml::LaneAcc acc;
  acc.w = ggml::lanes();
  for (int64_t i = 0; i < n; ++i) acc.add(i, ld.x(i), ld.y(i));
  return acc.sum_tinyblas();
}

struct LoadF32 {
  const float *a, *b;
  float x(int64_t i) const { return a[i]; }
  float y(int64_t i) const { return b[i]; }
};
struct LoadF16 {
  const uint16_t *a, *b;
  float x(int64_t i) const { return fp16_to_f32(a[i]); }
  float y(int64_t i) const { return fp16_to_f32(b[i]); }
};
struct LoadBF16 {
  const uint16_t *a, *b;
  float x(int64_t i) const { return bf16_to_f32(a[i]); }
  float y(int64_t i) const { return bf16_to_f32(b[i]); }
};

float dot_f32(const void* w, const void* a, int64_t n) {
  return vec_dot_order(n, LoadF32{static_cast<const float*>(w), static_cast<const float*>(a)}, false);
}
float dot_f32_batched(const void* w, const void* a, int64_t n) {
  if (n % ggml::lanes()) return dot_f32(w, a, n);
  return tinyblas_order(n, LoadF32{static_cast<const float*>(w), static_cast<const float*>(a)});
}
float dot_f16(const void* w, const void* a, int64_t n) {
  return vec_dot_order(n, LoadF16{static_cast<const uint16_t*>(w), static_cast<const uint16_t*>(a)}, true);
}
float dot_f16_batched(const void* w, const void* a, int64_t n) {
  if (n % ggml::lanes()) return dot_f16(w, a, n);
  return tinyblas_order(n, LoadF16{static_cast<const uint16_t*>(w), static_cast<const uint16_t*>(a)});
}

// BF16 with the AVX512-BF16 dot-product instruction: 16 lanes, lane l adds the odd then the even product of
// element pair l of each 32-element step (the product of two bf16 values is exact in f32, so a fused
// multiply-add rounds exactly as the instruction's addition does).
inline void dpbf16(float* acc, const uint16_t* x, const uint16_t* y) {
  for (int l = 0; l < 16; ++l) {
    acc[l] += bf16_to_f32(x[2 * l + 1]) * bf16_to_f32(y[2 * l + 1]);
    acc[l] += bf16_to_f32(x[2 * l]) * bf16_to_f32(y[2 * l]);
  }
}

// ggml_vec_dot_bf16 on this machine's profile: AVX512-BF16 (two dpbf16 accumulators), AVX-512F (two
// 16-lane accumulators over 32-element steps) or AVX2 (four 8-lane accumulators over 32-element steps);
// partial sums and the leftover products are added in double.
float dot_bf16(const void* w, const void* a, int64_t n) {
  const uint16_t* x = static_cast<const uint16_t*>(w);
  const uint16_t* y = static_cast<const uint16_t*>(a);
  const ggml::Profile& pr = ggml::profile();
  double s = 0;
  int64_t i = 0;
  if (pr.bf16_dot) {
    float c1[16] = {}, c2[16] = {};
    for (; i + 64 <= n; i += 64) {
      dpbf16(c1, x + i, y + i);
      dpbf16(c2, x + i + 32, y + i + 32);
    }
    s = double(ggml::reduce16(c1)) + double(ggml::reduce16(c2));
  } else if (pr.lanes == 16) {
    float c[2][16] = {};
    for (; i + 32 <= n; i += 32)
      for (int l = 0; l < 32; ++l) c[l / 16][l % 16] += bf16_to_f32(x[i + l]) * bf16_to_f32(y[i + l]);
    s = double(ggml::reduce16(c[0])) + double(ggml::reduce16(c[1]));
  } else {
    float c[4][8] = {};
    for (; i + 32 <= n; i += 32)
      for (int l = 0; l < 32; ++l) c[l / 8][l % 8] += bf16_to_f32(x[i + l]) * bf16_to_f32(y[i + l]);
    float t[8];
    for (int l = 0; l < 8; ++l) t[l] = (c[0][l] + c[2][l]) + (c[1][l] + c[3][l]);
    s = double(ggml::hsum8(t));
  }
  for (; i < n; ++i) s += double(bf16_to_f32(x[i]) * bf16_to_f32(y[i]));
  return float(s);
}

// tinyBLAS on BF16: dpbf16 steps of 32 elements with AVX512-BF16, else BF16 widened to f32 in lanes().
float dot_bf16_batched(const void* w, const void* a, int64_t n) {
  const uint16_t* x = static_cast<const uint16_t*>(w);
  const uint16_t* y = static_cast<const uint16_t*>(a);
  if (ggml::profile().bf16_dot) {
    if (n % 32) return dot_bf16(w, a, n);
    float c[16] = {};
    for (int64_t i = 0; i < n; i += 32) dpbf16(c, x + i, y + i);
    return ggml::reduce16(c);
  }
  if (n % ggml::lanes()) return dot_bf16(w, a, n);
  return tinyblas_order(n, LoadBF16{x, y});
}

// --------------------------------------------------------------------------------- 32-element blocks
//
// ggml's CPU kernels for these types (its AVX2 path, which its AVX-512 builds use too) keep 8 float lanes:
// lane k adds, with one fused multiply-add per block, the block scale times the integer sum of elements
// 4k..4k+3, and the lanes are summed at the end in hsum_float_8's order. Following the same order here
// makes the reference agree with llama.cpp to the last bit on these dot products, and lets the SIMD kernels
// (which do exactly this) agree with the reference bit for bit.
struct Acc8 {
  float v[8] = {};
  // p: the 32 integer products of one block, in element order.
  void add(float d, const int* p) {
    for (int k = 0; k < 8; ++k) v[k] = std::fma(d, float(p[4 * k] + p[4 * k + 1] + p[4 * k + 2] + p[4 * k + 3]), v[k]);
  }
  void add(const Acc8& o) {
    for (int k = 0; k < 8; ++k) v[k] += o.v[k];
  }
  float sum() const {  // (hi + lo), then pairs (0,2) (1,3), then the two
    float r[4];
    for (int i = 0; i < 4; ++i) r[i] = v[i + 4] + v[i];
    return (r[0] + r[2]) + (r[1] + r[3]);
  }
};

inline float scale2(uint16_t a, uint16_t b) { return fp16_to_f32(a) * fp16_to_f32(b); }

float dot_q8_0(const void* w, const void* a, int64_t n) {
  const uint8_t* x = static_cast<const uint8_t*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  Acc8 acc;
  int p[32];
  for (int64_t b = 0; b < n / 32; ++b, x += 34) {
    const int8_t* q = reinterpret_cast<const int8_t*>(x + 2);
    for (int j = 0; j < 32; ++j) p[j] = int(q[j]) * int(y[b].qs[j]);
    acc.add(scale2(rd16(x), y[b].d), p);
  }
  return acc.sum();
}

float dot_q4_0(const void* w, const void* a, int64_t n) {
  const uint8_t* x = static_cast<const uint8_t*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  Acc8 acc;
  int p[32];
  for (int64_t b = 0; b < n / 32; ++b, x += 18) {
    const uint8_t* qs = x + 2;
    for (int j = 0; j < 16; ++j) {
      p[j] = ((qs[j] & 0x0F) - 8) * int(y[b].qs[j]);
      p[j + 16] = ((qs[j] >> 4) - 8) * int(y[b].qs[j + 16]);
    }
    acc.add(scale2(rd16(x), y[b].d), p);
  }
  return acc.sum();
}

// Q8_0 matrices on machines with AMX (ggml::Profile::amx; repacked_by_llama): each block's integer dot
// product in one step, acc = fma(sum_b, d_w * d_a, acc), block after block, as the AMX tile kernels do.
float dot_q8_0_seq(const void* w, const void* a, int64_t n) {
  const uint8_t* x = static_cast<const uint8_t*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  float acc = 0;
  for (int64_t b = 0; b < n / 32; ++b, x += 34) {
    const int8_t* q = reinterpret_cast<const int8_t*>(x + 2);
    int s = 0;
    for (int j = 0; j < 32; ++j) s += int(q[j]) * int(y[b].qs[j]);
    acc = std::fma(float(s), scale2(rd16(x), y[b].d), acc);
  }
  return acc;
}

// llama.cpp repacks Q4_0 and IQ4_NL weights on x86 machines with AVX2 (see repacked_by_llama) and its
// repacked kernels add each block's whole integer dot product into one float per row,
// acc = fma(sum_b, d_w * d_a, acc), block after block.
float dot_q4_0_seq(const void* w, const void* a, int64_t n) {
  const uint8_t* x = static_cast<const uint8_t*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  float acc = 0;
  for (int64_t b = 0; b < n / 32; ++b, x += 18) {
    const uint8_t* qs = x + 2;
    int s = 0;
    for (int j = 0; j < 16; ++j)
      s += ((qs[j] & 0x0F) - 8) * int(y[b].qs[j]) + ((qs[j] >> 4) - 8) * int(y[b].qs[j + 16]);
    acc = std::fma(float(s), scale2(rd16(x), y[b].d), acc);
  }
  return acc;
}

float dot_iq4_nl_seq(const void* w, const void* a, int64_t n) {
  const uint8_t* x = static_cast<const uint8_t*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  float acc = 0;
  for (int64_t b = 0; b < n / 32; ++b, x += 18) {
    const uint8_t* qs = x + 2;
    int s = 0;
    for (int j = 0; j < 16; ++j)
      s += int(gguf::kIq4nlValues[qs[j] & 0xF]) * int(y[b].qs[j]) +
           int(gguf::kIq4nlValues[qs[j] >> 4]) * int(y[b].qs[j + 16]);
    acc = std::fma(float(s), scale2(rd16(x), y[b].d), acc);
  }
  return acc;
}

float dot_q4_1(const void* w, const void* a, int64_t n) {
  const uint8_t* x = static_cast<const uint8_t*>(w);
  const BlockQ8_1* y = static_cast<const BlockQ8_1*>(a);
  Acc8 acc;
  float summs = 0;
  int p[32];
  for (int64_t b = 0; b < n / 32; ++b, x += 20) {
    const uint8_t* qs = x + 4;
    summs += rdh(x + 2) * fp16_to_f32(y[b].s);
    for (int j = 0; j < 16; ++j) {
      p[j] = (qs[j] & 0x0F) * int(y[b].qs[j]);
      p[j + 16] = (qs[j] >> 4) * int(y[b].qs[j + 16]);
    }
    acc.add(scale2(rd16(x), y[b].d), p);
  }
  return acc.sum() + summs;
}

float dot_q5_0(const void* w, const void* a, int64_t n) {
  const uint8_t* x = static_cast<const uint8_t*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  Acc8 acc;
  int p[32];
  for (int64_t b = 0; b < n / 32; ++b, x += 22) {
    uint32_t qh;
    std::memcpy(&qh, x + 2, 4);
    const uint8_t* qs = x + 6;
    for (int j = 0; j < 16; ++j) {
      p[j] = (int((qs[j] & 0x0F) | (((qh >> j) << 4) & 0x10)) - 16) * int(y[b].qs[j]);
      p[j + 16] = (int((qs[j] >> 4) | ((qh >> (j + 12)) & 0x10)) - 16) * int(y[b].qs[j + 16]);
    }
    acc.add(scale2(rd16(x), y[b].d), p);
  }
  return acc.sum();
}

float dot_q5_1(const void* w, const void* a, int64_t n) {
  const uint8_t* x = static_cast<const uint8_t*>(w);
  const BlockQ8_1* y = static_cast<const BlockQ8_1*>(a);
  Acc8 acc;
  float summs = 0;
  int p[32];
  for (int64_t b = 0; b < n / 32; ++b, x += 24) {
    uint32_t qh;
    std::memcpy(&qh, x + 4, 4);
    const uint8_t* qs = x + 8;
    summs += rdh(x + 2) * fp16_to_f32(y[b].s);
    for (int j = 0; j < 16; ++j) {
      p[j] = int((qs[j] & 0x0F) | (((qh >> j) << 4) & 0x10)) * int(y[b].qs[j]);
      p[j + 16] = int((qs[j] >> 4) | ((qh >> (j + 12)) & 0x10)) * int(y[b].qs[j + 16]);
    }
    acc.add(scale2(rd16(x), y[b].d), p);
  }
  return acc.sum() + summs;
}

// IQ4_NL alternates two accumulators over pairs of blocks; an odd last block is added in plain float.
float dot_iq4_nl(const void* w, const void* a, int64_t n) {
  const uint8_t* x = static_cast<const uint8_t*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  const int64_t nb = n / 32;
  Acc8 acc[2];
  int p[32];
  int64_t b = 0;
  for (; b + 1 < nb; b += 2)
    for (int h = 0; h < 2; ++h) {
      const uint8_t* blk = x + (b + h) * 18;
      for (int j = 0; j < 16; ++j) {
        p[j] = int(gguf::kIq4nlValues[blk[2 + j] & 0xF]) * int(y[b + h].qs[j]);
        p[j + 16] = int(gguf::kIq4nlValues[blk[2 + j] >> 4]) * int(y[b + h].qs[j + 16]);
      }
      acc[h].add(scale2(y[b + h].d, rd16(blk)), p);
    }
  acc[0].add(acc[1]);
  float sum = acc[0].sum();
  for (; b < nb; ++b) {
    const uint8_t* blk = x + b * 18;
    int s = 0;
    for (int j = 0; j < 16; ++j)
      s += int(gguf::kIq4nlValues[blk[2 + j] & 0xF]) * int(y[b].qs[j]) +
           int(gguf::kIq4nlValues[blk[2 + j] >> 4]) * int(y[b].qs[j + 16]);
    sum += scale2(y[b].d, rd16(blk)) * float(s);
  }
  return sum;
}

// ------------------------------------------------------------------------------ 256-element K-quants

inline void scale_min_k4(int j, const uint8_t* q, int* d, int* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

float dot_q4_k(const void* w, const void* a, int64_t n) {
  const uint8_t* x = static_cast<const uint8_t*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  float sum = 0;
  for (int64_t b = 0; b < n / 256; ++b, x += 144) {
    const uint8_t* scales = x + 4;
    const uint8_t* q = x + 16;
    const int8_t* q8 = y[b].qs;
    int sumi = 0, summ = 0;
    for (int c = 0; c < 4; ++c, q += 32, q8 += 64) {
      int sc0, m0, sc1, m1;
      scale_min_k4(2 * c, scales, &sc0, &m0);
      scale_min_k4(2 * c + 1, scales, &sc1, &m1);
      int s0 = 0, s1 = 0;
      for (int l = 0; l < 32; ++l) {
        s0 += (q[l] & 0xF) * int(q8[l]);
        s1 += (q[l] >> 4) * int(q8[l + 32]);
      }
      sumi += sc0 * s0 + sc1 * s1;
      summ += m0 * (y[b].bsums[4 * c] + y[b].bsums[4 * c + 1]) + m1 * (y[b].bsums[4 * c + 2] + y[b].bsums[4 * c + 3]);
    }
    sum += y[b].d * rdh(x) * float(sumi) - y[b].d * rdh(x + 2) * float(summ);
  }
  return sum;
}

float dot_q5_k(const void* w, const void* a, int64_t n) {
  const uint8_t* x = static_cast<const uint8_t*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  float sum = 0;
  for (int64_t b = 0; b < n / 256; ++b, x += 176) {
    const uint8_t* scales = x + 4;
    const uint8_t* qh = x + 16;
    const uint8_t* q = x + 48;
    const int8_t* q8 = y[b].qs;
    int sumi = 0, summ = 0;
    for (int c = 0; c < 4; ++c, q += 32, q8 += 64) {
      int sc0, m0, sc1, m1;
      scale_min_k4(2 * c, scales, &sc0, &m0);
      scale_min_k4(2 * c + 1, scales, &sc1, &m1);
      int s0 = 0, s1 = 0;
      for (int l = 0; l < 32; ++l) {
        s0 += ((q[l] & 0xF) + (((qh[l] >> (2 * c)) & 1) << 4)) * int(q8[l]);
        s1 += ((q[l] >> 4) + (((qh[l] >> (2 * c + 1)) & 1) << 4)) * int(q8[l + 32]);
      }
      sumi += sc0 * s0 + sc1 * s1;
      summ += m0 * (y[b].bsums[4 * c] + y[b].bsums[4 * c + 1]) + m1 * (y[b].bsums[4 * c + 2] + y[b].bsums[4 * c + 3]);
    }
    sum += y[b].d * rdh(x) * float(sumi) - y[b].d * rdh(x + 2) * float(summ);
  }
  return sum;
}

float dot_q6_k(const void* w, const void* a, int64_t n) {
  const uint8_t* x = static_cast<const uint8_t*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  float sum = 0;
  for (int64_t b = 0; b < n / 256; ++b, x += 210) {
    const uint8_t* ql = x;
    const uint8_t* qh = x + 128;
    const int8_t* sc = reinterpret_cast<const int8_t*>(x + 192);
    const int8_t* q8 = y[b].qs;
    int sumi = 0;
    for (int half = 0; half < 2; ++half, ql += 64, qh += 32, sc += 8, q8 += 128) {
      int s[8] = {};
      for (int l = 0; l < 32; ++l) {
        const int g = l / 16;
        const int q1 = int((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = int((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        s[g + 0] += q1 * q8[l];
        s[g + 2] += q2 * q8[l + 32];
        s[g + 4] += q3 * q8[l + 64];
        s[g + 6] += q4 * q8[l + 96];
      }
      for (int g = 0; g < 8; ++g) sumi += int(sc[g]) * s[g];
    }
    sum += y[b].d * rdh(x + 208) * float(sumi);
  }
  return sum;
}

float dot_iq4_xs(const void* w, const void* a, int64_t n) {
  const uint8_t* x = static_cast<const uint8_t*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  float sum = 0;
  for (int64_t b = 0; b < n / 256; ++b, x += 136) {
    const uint16_t scales_h = rd16(x + 2);
    const uint8_t* scales_l = x + 4;
    const uint8_t* qs = x + 8;
    const int8_t* q8 = y[b].qs;
    int sumi = 0;
    for (int ib = 0; ib < 8; ++ib, qs += 16, q8 += 32) {
      const int ls = ((scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((scales_h >> (2 * ib)) & 3) << 4);
      int s = 0;
      for (int j = 0; j < 16; ++j)
        s += int(gguf::kIq4nlValues[qs[j] & 0xF]) * q8[j] + int(gguf::kIq4nlValues[qs[j] >> 4]) * q8[j + 16];
      sumi += (ls - 32) * s;
    }
    sum += rdh(x) * y[b].d * float(sumi);
  }
  return sum;
}

const ActTraits kActs[] = {
    {ActType::F32, "F32", 1, 4, quantize_f32},
    {ActType::F16, "F16", 1, 2, quantize_f16},
    {ActType::BF16, "BF16", 1, 2, quantize_bf16},
    {ActType::Q8_0, "Q8_0", 32, sizeof(BlockQ8_0), quantize_row_q8_0},
    {ActType::Q8_1, "Q8_1", 32, sizeof(BlockQ8_1), quantize_row_q8_1},
    {ActType::Q8_K, "Q8_K", 256, sizeof(BlockQ8_K), quantize_row_q8_K},
};

const WeightKernels kWeights[] = {
    {GgmlType::F32, ActType::F32, dot_f32, dot_f32_batched}, {GgmlType::F16, ActType::F16, dot_f16, dot_f16_batched},
    {GgmlType::BF16, ActType::BF16, dot_bf16, dot_bf16_batched},    {GgmlType::Q8_0, ActType::Q8_0, dot_q8_0, nullptr, dot_q8_0_seq},
    {GgmlType::Q4_0, ActType::Q8_0, dot_q4_0, nullptr, dot_q4_0_seq},    {GgmlType::Q4_1, ActType::Q8_1, dot_q4_1},
    {GgmlType::Q5_0, ActType::Q8_0, dot_q5_0},    {GgmlType::Q5_1, ActType::Q8_1, dot_q5_1},
    {GgmlType::IQ4_NL, ActType::Q8_0, dot_iq4_nl, nullptr, dot_iq4_nl_seq}, {GgmlType::Q4_K, ActType::Q8_K, dot_q4_k},
    {GgmlType::Q5_K, ActType::Q8_K, dot_q5_k},    {GgmlType::Q6_K, ActType::Q8_K, dot_q6_k},
    {GgmlType::IQ4_XS, ActType::Q8_K, dot_iq4_xs},
};

}  // namespace

// ggml's x86 quantize_row_q8_0: d = amax/127 (stored fp16), id = 127/amax, q = round-half-even(x*id).
void quantize_row_q8_0(const float* x, void* dst, int64_t n) {
  BlockQ8_0* y = static_cast<BlockQ8_0*>(dst);
  for (int64_t b = 0; b < n / 32; ++b, x += 32) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.f;
    const float id = amax != 0.0f ? 127.f / amax : 0.0f;
    y[b].d = f32_to_fp16(d);
    for (int j = 0; j < 32; ++j) y[b].qs[j] = int8_t(round_even(x[j] * id));
  }
}

// As Q8_0 plus s = d * sum(q) (fp16), used by Q4_1/Q5_1 for their min term.
void quantize_row_q8_1(const float* x, void* dst, int64_t n) {
  BlockQ8_1* y = static_cast<BlockQ8_1*>(dst);
  for (int64_t b = 0; b < n / 32; ++b, x += 32) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.f;
    const float id = amax != 0.0f ? 127.f / amax : 0.0f;
    y[b].d = f32_to_fp16(d);
    int sum = 0;
    for (int j = 0; j < 32; ++j) {
      y[b].qs[j] = int8_t(round_even(x[j] * id));
      sum += y[b].qs[j];
    }
    y[b].s = f32_to_fp16(d * float(sum));
  }
}

// ggml's quantize_row_q8_K_ref: scale from the signed extreme value, q clamped to 127, group sums.
void quantize_row_q8_K(const float* x, void* dst, int64_t n) {
  BlockQ8_K* y = static_cast<BlockQ8_K*>(dst);
  for (int64_t b = 0; b < n / 256; ++b, x += 256) {
    float max = 0, amax = 0;
    for (int j = 0; j < 256; ++j) {
      const float ax = std::fabs(x[j]);
      if (ax > amax) {
        amax = ax;
        max = x[j];
      }
    }
    if (amax == 0) {
      std::memset(&y[b], 0, sizeof(BlockQ8_K));
      continue;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < 256; ++j) {
      const int v = round_even(iscale * x[j]);
      y[b].qs[j] = int8_t(v < 127 ? v : 127);
    }
    for (int g = 0; g < 16; ++g) {
      int s = 0;
      for (int j = 0; j < 16; ++j) s += y[b].qs[16 * g + j];
      y[b].bsums[g] = int16_t(s);
    }
    y[b].d = 1 / iscale;
  }
}

const ActTraits& act_traits(ActType t) {
  for (const ActTraits& a : kActs)
    if (a.type == t) return a;
  throw Error("unknown activation type");
}

bool repacked_by_llama(GgmlType t, int64_t n_out) {
  if (t == GgmlType::Q8_0) return ggml::profile().amx;  // AMX: llama.cpp's AMX buffers; hearth's tiles
  return (t == GgmlType::Q4_0 || t == GgmlType::IQ4_NL) && n_out % 8 == 0;
}

const WeightKernels* weight_kernels(GgmlType t) {
  for (const WeightKernels& k : kWeights)
    if (k.type == t) return &k;
  return nullptr;
}

}  // namespace hearth::kernels
