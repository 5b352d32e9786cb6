// Activation formats and dot products, per weight type (GEMMA4.md §4.8): before a matrix product the
// activation row is converted once to the weight type's "dot type" (Q8_0 for Q4_0/Q5_0/Q8_0/IQ4_NL,
// Q8_1 for Q4_1/Q5_1, Q8_K for K-quants and IQ4_XS, F16/BF16/F32 for float weights), exactly as
// ggml's CPU backend does, and the dot product runs on the two encoded rows.
//
// These are the scalar reference kernels: the test oracle for the SIMD kernels that slot in beside them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "gguf/types.h"

namespace hearth::kernels {

using gguf::GgmlType;

enum class ActType { F32, F16, BF16, Q8_0, Q8_1, Q8_K };

struct ActTraits {
  ActType type;
  const char* name;
  int64_t block_size;
  size_t block_bytes;
  // Encodes n floats (n a multiple of block_size).
  void (*quantize)(const float* x, void* dst, int64_t n);
};
const ActTraits& act_traits(ActType t);
inline size_t act_row_bytes(ActType t, int64_t n) {
  const ActTraits& a = act_traits(t);
  return size_t(n / a.block_size) * a.block_bytes;
}

// Dot product of one weight row and one encoded activation row, n elements.
using VecDotFn = float (*)(const void* w, const void* a, int64_t n);

struct WeightKernels {
  GgmlType type;
  ActType act;
  VecDotFn dot;
  VecDotFn dot_batched = nullptr;   // summation order of the prompt (multi-token) path, when it differs
  VecDotFn dot_repacked = nullptr;  // summation order of llama.cpp's repacked weights (see below)
};
// nullptr when hearth cannot compute with this weight type.
const WeightKernels* weight_kernels(GgmlType t);

// Whether llama.cpp's CPU backend rewrites such a matrix into its interleaved layout on x86 machines with AVX2
// (Q4_0 and IQ4_NL with a multiple of 8 rows), which changes its summation order (dot_repacked); and Q8_0 on
// machines with AMX (ggml::Profile::amx), whose order hearth takes as the block order for every token count.
bool repacked_by_llama(GgmlType t, int64_t n_out);

// Block layouts of the activation formats (ggml's block_q8_0 / block_q8_1 / block_q8_K).
struct BlockQ8_0 {
  uint16_t d;  // fp16
  int8_t qs[32];
};
struct BlockQ8_1 {
  uint16_t d;  // fp16
  uint16_t s;  // fp16: d * sum(qs)
  int8_t qs[32];
};
struct BlockQ8_K {
  float d;
  int8_t qs[256];
  int16_t bsums[16];  // sums of qs in groups of 16
};
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36 && sizeof(BlockQ8_K) == 292);

// The eight 6-bit scales and eight 6-bit mins of a Q4_K / Q5_K super-block (12 packed bytes at p), unpacked
// with 32-bit masks into u: returns u's bytes, 0-7 the scales and 8-15 the mins (quant.cpp scale_min_k4).
inline const uint8_t* k_scales_mins(const uint8_t* p, uint32_t* u) {
  std::memcpy(u, p, 12);
  u[3] = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);
  const uint32_t mins_lo = u[1] & 0x3f3f3f3fu;
  u[1] = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);
  u[2] = mins_lo;
  u[0] &= 0x3f3f3f3fu;
  return reinterpret_cast<const uint8_t*>(u);
}

void quantize_row_q8_0(const float* x, void* dst, int64_t n);
void quantize_row_q8_1(const float* x, void* dst, int64_t n);
void quantize_row_q8_K(const float* x, void* dst, int64_t n);

}  // namespace hearth::kernels
