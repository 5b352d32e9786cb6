// Summation orders and elementary functions of llama.cpp's CPU backend (ggml), reproduced so that hearth's
// results match llama.cpp's to the last bit on the same machine, not merely within a tolerance. Random-weight
// test models amplify a one-ulp difference into a different greedy token within a few layers, so parity
// tests need the same order of floating-point operations, not just the same formulas.
//
// ggml picks its kernels by CPU: an AVX2 machine sums floats in 8-lane vectors, an AVX-512 machine in
// 16-lane vectors. lanes() says which of the two hearth reproduces (the one llama.cpp would use here).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace hearth::kernels::ggml {

// What llama.cpp's CPU backend would use on this machine: 8-lane (AVX2) or 16-lane (AVX-512F) float
// vectors, whether BF16 dot products use the AVX512-BF16 instruction, and whether the machine has AMX int8
// tiles (llama.cpp then moves Q8_0 weights to its AMX buffers; hearth sums Q8_0 matrices in block order,
// quant.h repacked_by_llama / dot_repacked, for every token count).
struct Profile {
  int lanes = 8;
  bool bf16_dot = false;
  bool amx = false;
};
const Profile& profile();
void set_profile(const Profile& p);  // tests: emulate another machine (the goldens came from a Zen 4)
inline int lanes() { return profile().lanes; }

// ggml_soft_max over n values in place: ggml's exp on whole registers, expf on the tail, partial sums per
// register added in double, then one multiplication by float(1/sum).
void softmax(float* x, int64_t n);

// ggml_v_expf: ggml's vectorised exp, element by element (its softmax uses it instead of expf).
float expf_approx(float x);

// Reductions of a vector register's lanes, in the order of ggml's horizontal sums.
// hsum8: (hi + lo) then (0+2, 1+3) then the pair   (hsum_float_8, tinyBLAS hsum, _mm256 softmax chunk)
inline float hsum8(const float* v) {
  float r[4];
  for (int i = 0; i < 4; ++i) r[i] = v[i + 4] + v[i];
  return (r[0] + r[2]) + (r[1] + r[3]);
}
// hadd8: (lo + hi) then hadd twice: (0+1) + (2+3)   (GGML_F32x8_REDUCE's last step)
inline float hadd8(const float* v) {
  float r[4];
  for (int i = 0; i < 4; ++i) r[i] = v[i] + v[i + 4];
  return (r[0] + r[1]) + (r[2] + r[3]);
}
// reduce16: _mm512_reduce_add_ps as GCC implements it.
inline float reduce16(const float* v) {
  float b[8], c[4];
  for (int i = 0; i < 8; ++i) b[i] = v[i + 8] + v[i];
  for (int i = 0; i < 4; ++i) c[i] = b[i + 4] + b[i];
  return (c[0] + c[2]) + (c[1] + c[3]);
}
// One register's horizontal sum at the current lane width (tinyBLAS hsum / softmax chunk sum).
inline float hsum(const float* v, int w) { return w == 16 ? reduce16(v) : hsum8(v); }

// ggml_vec_dot_f32: 4 accumulators of `lanes()` floats over steps of 4*lanes() elements (fused multiply-add),
// folded pairwise (0+2, 1+3, 0+1) and reduced; leftover elements added one by one.
float dot_f32(const float* x, const float* y, int64_t n);
// tinyBLAS (llama.cpp's prompt-path matrix product): one accumulator of lanes() floats over the whole row.
// Returns false (and leaves *out alone) when n is not a multiple of lanes(), where llama.cpp falls back to
// ggml_vec_dot_f32.
bool dot_f32_tinyblas(const float* x, const float* y, int64_t n, float* out);

// Lane-accumulated sum of products where only some elements are non-zero: element i goes to accumulator
// (i / w) % n_acc, lane i % w. Used for products over KV cells, whose masked cells contribute zero.
struct LaneAcc {
  float acc[4][16] = {};
  int w = 8;
  int n_acc = 1;
  void add(int64_t i, float a, float b) {
    float& s = acc[(i / w) % n_acc][i % w];
    s = std::fma(a, b, s);
  }
  // tinyBLAS: one accumulator, hsum.
  float sum_tinyblas() const { return hsum(acc[0], w); }
  // ggml_vec_dot_f32: four accumulators folded, then GGML_F32x{8,16}_REDUCE.
  float sum_vec_dot() const;
};

}  // namespace hearth::kernels::ggml
