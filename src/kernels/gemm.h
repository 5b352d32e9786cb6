// Blocked matrix kernels for quantised weights (one Highway target per CPU family, chosen at run time).
// A kernel computes y[t][r] for a group of weight rows and every token, reusing each unpacked weight
// block across all tokens (prefill) and streaming weights once (decode). They reproduce the summation
// order of the reference dot in quant.h exactly (integer block sums are exact; the float operations are
// the same ones in the same order), so results are bit-identical to the references.
#pragma once
#include <cstddef>
#include <cstdint>

namespace hearth::kernels::gemm {

struct Args {
  const uint8_t* w = nullptr;  // first weight row of the group
  size_t w_row_bytes = 0;
  int64_t n_rows = 0;  // rows in this call (a multiple of rows_per_group)
  int64_t n_in = 0;
  const uint8_t* acts = nullptr;  // encoded activation rows
  size_t act_row_bytes = 0;
  int64_t n_tok = 0;
  const int32_t* act_sums = nullptr;  // Q8_0: sum of each block's 32 quants, [n_tok][n_in / 32]
  const float* act_d = nullptr;       // Q8_0: each block's scale as float, [n_tok][n_in / 32]
  float* y = nullptr;  // y[t * y_stride + r] for r relative to the group's first row
  int64_t y_stride = 0;
  uint8_t* scratch = nullptr;  // at least scratch_bytes(n_in)
};

using Fn = void (*)(const Args&);

struct Kernels {
  const char* target = "";
  int rows_per_group = 8;
  // Q4_0 weights x Q8_0 activations in the order of llama.cpp's repacked kernels (quant.h dot_q4_0_seq).
  Fn q4_0_seq = nullptr;
  // Q8_0 / Q4_0 x Q8_0 in ggml's AVX2 vec_dot order (8 float lanes per row, hsum at the end).
  Fn q8_0_lanes = nullptr;
  Fn q4_0_lanes = nullptr;
};

size_t scratch_bytes(int64_t n_in);
// The kernels of the best target (nullptrs where this CPU has no fast path). Respects simd::enabled().
const Kernels& best();

}  // namespace hearth::kernels::gemm
