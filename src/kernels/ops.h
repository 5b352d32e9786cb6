// Element-wise and per-row operations of the forward pass, with ggml's CPU numerics where they matter
// (GEMMA4.md §4.1, §4.8): RMSNorm sums squares in double, GELU goes through the fp16 lookup table,
// RoPE builds its angles by repeated float multiplication, the soft-cap multiplies by 1/cap.
#pragma once
#include <cstdint>

namespace hearth::kernels {

// y = x / sqrt(mean(x^2) + eps) (* w when w != nullptr). In place allowed (y == x).
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps);
// Its sum of squares: float products, summed in double as ggml does, but in 32 interleaved partial sums
// (the reference for the SIMD kernel).
double sum_squares(const float* x, int64_t n);
// Its last step, shared with the SIMD kernel so that both give the same bits: the 32 parts (part[k] holds the
// elements k mod 32 of x[0, i)) added up pairwise, then x[i, n) one by one. Overwrites part.
double sum_squares_finish(double* part, const float* x, int64_t i, int64_t n);

// tanh-approximation GELU through ggml's fp16 table: x <= -10 -> 0, x >= 10 -> x.
float gelu(float x);
void gelu_inplace(float* x, int64_t n);
// out[i] = gelu(gate[i]) * up[i]
void geglu(const float* gate, const float* up, float* out, int64_t n);
// gelu() of every fp16 value, as floats (65536 entries).
const float* gelu_table_f32();
// The exact formula in f32 (the table's source; tests and GPU-style numerics).
float gelu_exact(float x);

// NeoX-ordered rotary embedding of `n_heads` vectors of `head_dim` floats at position `pos`, rotating
// the first n_rot dims (pairs i, i + n_rot/2); `freq_factors` (n_rot/2 divisors) may be nullptr.
void rope_neox(float* x, int n_heads, int head_dim, int n_rot, int32_t pos, float base, const float* freq_factors);

// x = cap * tanh(x * (1/cap)) (glibc's tanhf, as ggml: a SIMD tanh of 4 ulp broke the goldens' exact logits)
void softcap(float* x, int64_t n, float cap);

// In-place softmax over n values (f32 exponentials, double sum as ggml_vec_soft_max_f32).
void softmax(float* x, int64_t n);

}  // namespace hearth::kernels
