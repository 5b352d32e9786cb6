// SIMD kernels (Google Highway, runtime dispatch). Each has the contract of its scalar reference in
// quant.h and agrees with it up to summation order; tests compare them on every target the CPU runs.
// HEARTH_SIMD=0 in the environment (or set_enabled(false)) forces the scalar references.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "kernels/quant.h"

namespace hearth::kernels::simd {

// Function pointers of one dispatch target.
struct Kernels {
  const char* target = "";
  VecDotFn dot_q4_0 = nullptr;   // Q4_0 weights x Q8_0 activations
  VecDotFn dot_q4_0_repacked = nullptr;  // the same in llama.cpp's repacked-layout order
  VecDotFn dot_q8_0 = nullptr;   // Q8_0 x Q8_0
  // dot_q4_1, dot_q5_0, dot_q5_1 and dot_q5_k exist on x86 targets with AVX2 and better only; nullptr
  // elsewhere, where the references serve. All are bit-identical to their references.
  VecDotFn dot_q4_1 = nullptr;   // Q4_1 x Q8_1
  VecDotFn dot_q5_0 = nullptr;   // Q5_0 x Q8_0
  VecDotFn dot_q5_1 = nullptr;   // Q5_1 x Q8_1
  VecDotFn dot_q4_k = nullptr;   // Q4_K x Q8_K
  VecDotFn dot_q5_k = nullptr;   // Q5_K x Q8_K
  VecDotFn dot_q6_k = nullptr;   // Q6_K x Q8_K
  void (*quantize_q8_0)(const float* x, void* dst, int64_t n) = nullptr;  // bit-identical to the reference
  void (*quantize_q8_k)(const float* x, void* dst, int64_t n) = nullptr;  // bit-identical to the reference
  void (*quantize_f16)(const float* x, void* dst, int64_t n) = nullptr;   // F16C; bit-identical to the reference
  float (*dot_f32_f16)(const float* q, const uint16_t* k, int64_t n) = nullptr;  // F16 KV cache: q . k
  // F16 cache values: out = sum_j w[j] * rows[j] (multiply-adds in row order, from zero; fused where
  // native_fma, else multiply then add).
  void (*sum_rows_f16)(const float* w, const uint16_t* const* rows, int64_t n_rows, float* out, int64_t n) = nullptr;
  // The same two for nq query heads reading the same cache rows (grouped-query attention): head h's query is
  // q + h * q_stride (its weights w + h * w_stride, its output out[h * out_stride] or out + h * out_stride); each
  // result has the bits of the one-head kernel. Each cache row is converted once per four heads.
  void (*dot_f32_f16_heads)(const float* q, int64_t q_stride, int nq, const uint16_t* k, int64_t n, float* out,
                            int64_t out_stride) = nullptr;
  void (*sum_rows_f16_heads)(const float* w, int64_t w_stride, int nq, const uint16_t* const* rows, int64_t n_rows,
                             float* out, int64_t out_stride, int64_t n) = nullptr;
  void (*round_f16)(const float* x, float* out, int64_t n) = nullptr;  // out = float(half(x)), nearest even
  // rms_norm's two passes, with ops.cpp's bits: ops.h sum_squares (x86 AVX2 and better), and y = (x * scale) * w
  // (x * scale where w is nullptr) on whole vectors, returning how many elements it did.
  double (*sum_squares)(const float* x, int64_t n) = nullptr;
  int64_t (*scale_mul)(const float* x, const float* w, float scale, float* y, int64_t n) = nullptr;
  bool native_fma = false;  // F32 / F16 weights in ggml's vec_dot and tinyBLAS orders, [0] for 8 lanes, [1] for 16 (ggml_order.h):
  // bit-identical to the references in quant.cpp.
  VecDotFn dot_f32_order[2] = {}, dot_f32_tinyblas[2] = {}, dot_f16_order[2] = {}, dot_f16_tinyblas[2] = {};
  // BF16 weights in ggml_vec_dot_bf16's and tinyBLAS's orders, one per ggml profile (bf16_profile_index):
  // [0] 8 lanes, [1] 16 lanes, [2] the AVX512-BF16 dot instruction. Bit-identical to quant.cpp's dot_bf16 and
  // dot_bf16_batched under that profile. x86 (AVX2 and better) only; [2] runs the instruction itself only where
  // the CPU has it, else emulates it.
  VecDotFn dot_bf16_order[3] = {}, dot_bf16_tinyblas[3] = {};
  // out = gelu(gate) * up through the fp16 table, as ops.h geglu; returns how many elements it did.
  int64_t (*geglu)(const float* table, const float* gate, const float* up, float* out, int64_t n) = nullptr;
};

// Which of the dot_bf16_* kernels reproduces ggml's BF16 order under the current ggml::profile().
int bf16_profile_index();

// The best target this CPU supports (computed once).
const Kernels& best();
// The dot product hearth uses for a weight type: SIMD when enabled and available, else the reference.
VecDotFn dot(GgmlType t, bool batched, bool repacked = false);

bool enabled();
void set_enabled(bool on);

// Runs fn once with each dispatch target compiled in and supported by this CPU forced (Highway's test hook),
// then restores normal dispatch. Any file's HWY_DYNAMIC_DISPATCH inside fn picks that target.
void run_on_each_target(const std::function<void()>& fn);
// Calls fn once per dispatch target compiled in and supported by this CPU (for tests and benchmarks).
void for_each_target(const std::function<void(const Kernels&)>& fn);

}  // namespace hearth::kernels::simd
