// Blocked matrix kernels for quantised weights (one Highway target per CPU family, chosen at run time).
// A kernel computes y[t][r] for a group of weight rows and every token, reusing each unpacked weight
// block across all tokens (prefill) and streaming weights once (decode). They reproduce the summation
// order of the reference dot in quant.h exactly (integer block sums are exact; the float operations are
// the same ones in the same order), so results are bit-identical to the references.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>

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
  const uint8_t* act_tiles = nullptr;  // Q8_0: the same in the kernel's tile layout below (optional)
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
  // Q8_0 x Q8_0 in the block order of AMX machines (quant.h dot_q8_0_seq, ggml::Profile::amx), any tokens.
  Fn q8_0_seq = nullptr;
  // Q8_0 / Q4_0 x Q8_0 in ggml's AVX2 vec_dot order (8 float lanes per row, hsum at the end).
  Fn q8_0_lanes = nullptr;
  Fn q4_0_lanes = nullptr;
  // q4_0_seq on weights in the packed layout below (Args::w = packed data of the first group).
  Fn q4_0_packed = nullptr;
  // AMX (gemm_amx.h) forms of q4_0_seq and q4_0_packed for prompts: groups of 16 rows, Args::acts and act_d
  // only (no activation tiles); set where the CPU and OS allow AMX tiles.
  Fn q4_0_seq_amx = nullptr;
  Fn q4_0_packed_amx = nullptr;
  Fn q8_0_seq_amx = nullptr;  // q8_0_seq for prompts (2+ tokens)
  // q8_0_seq on packed Q8_0 (Args::w = the first packed group, groups of 16 rows): any tokens, and the AMX
  // form for prompts.
  Fn q8_0_packed = nullptr;
  Fn q8_0_packed_amx = nullptr;
  // AVX-512 targets: q4_0_seq and q4_0_packed prefill read Args::act_tiles in TileLayout::q4_0 when given.
  bool wide_tiles = false;
  // q8_0_lanes for 4+ tokens, reading the activations from Args::act_tiles in TileLayout::q8_0 only.
  Fn q8_0_wide = nullptr;
  // Q4_K x Q8_K in the reference order (quant.cpp dot_q4_k) for 4+ tokens: groups of 16 rows, activations
  // from Args::act_tiles in TileLayout::q8_k, Args::scratch of scratch_bytes.
  Fn q4_k_wide = nullptr;
  Fn q5_k_wide = nullptr;  // the same for Q5_K (quant.cpp dot_q5_k)
  Fn q6_k_wide = nullptr;  // the same for Q6_K (quant.cpp dot_q6_k)
  // Q4_K / Q5_K / Q6_K x Q8_K for any number of tokens (used below 4: decode), Args::acts = Q8_K rows, groups of
  // rows_per_group rows; the reference dots' bits.
  Fn q4_k_rows = nullptr;
  Fn q5_k_rows = nullptr;
  Fn q6_k_rows = nullptr;  // the same for Q6_K
  // Whether decode runs faster on the packed layouts below than on rows as stored (q4_0_seq, q8_0_seq), so
  // that loading a model copies its Q4_0 / Q8_0 matrices into them (matmul.h packs_at_load).
  bool packs_by_default = false;
};

// Packed Q4_0 layout (what llama.cpp's load-time repacking achieves, in our own form): for each group of 8
// rows and each block, the 8 rows' fp16 scales, then 4 x 32 bytes where bytes 4r..4r+3 of vector k are
// quant bytes 4k..4k+3 of row r. One sequential stream per group, no shuffles in the kernel.
inline constexpr size_t kQ4_0PackedBlockBytes = 16 + 128;
inline size_t q4_0_packed_bytes(int64_t n_rows, int64_t n_in) {
  return size_t(n_rows / 8) * size_t(n_in / 32) * kQ4_0PackedBlockBytes;
}
// Packs rows [0, n_rows) (a multiple of 8) of a Q4_0 matrix into dst (q4_0_packed_bytes).
void pack_q4_0(const uint8_t* w, size_t row_bytes, int64_t n_rows, int64_t n_in, uint8_t* dst);

// Packed Q8_0 layout (Q8_0 in the block order of AMX machines): per group of 16 rows, first every block's
// 8 x 64 bytes where bytes 4r..4r+3 of vector k are quants 4k..4k+3 of row r plus 128 (unsigned), then every
// block's 16 fp16 scales. Decode streams it with one vpdpbusd per 64 bytes (no shuffles); the AMX prompt
// kernel turns each group back into signed B tiles with one xor per 64 bytes. Groups of 16 x row bytes
// (64-byte aligned when the block count is even).
inline constexpr size_t kQ8_0PackedBlockBytes = 512 + 32;
inline size_t q8_0_packed_bytes(int64_t n_rows, int64_t n_in) {
  return size_t(n_rows / 16) * size_t(n_in / 32) * kQ8_0PackedBlockBytes;
}
// Packs rows [0, n_rows) (a multiple of 16) of a Q8_0 matrix into dst (q8_0_packed_bytes).
void pack_q8_0(const uint8_t* w, size_t row_bytes, int64_t n_rows, int64_t n_in, uint8_t* dst);

// Q8_0 activations of kActTileTokens tokens at a time, interleaved per block for the AVX-512 prefill
// kernels. Tiles follow each other ([n_tok / 8 rounded up][n_in / 32] blocks of tile_block_bytes).
//  q4_0 (packed Q4_0 weights): int32 [8k + t] = quant bytes 4k..4k+3 of token t, [64 + t] = -8 * the
//       block's quant sum, [72 + t] = its scale (float); a short last tile leaves unused slots as they were.
//  q8_0 (Q8_0 weights): bytes [64p + 32h + j] = quant j of token 2p + h plus 128 (as unsigned), then the
//       eight scales (float); missing tokens of a short last tile are zeros.
//  q8_k (Q4_K / Q5_K / Q6_K weights, Q8_K activations), per superblock of 256: int32 [8i + t] = quant bytes 4i..4i+3 of
//       token t, [512 + 8j + t] = bsums 2j and 2j + 1 of token t as an int16 pair, [576 + t] = d (float).
enum class TileLayout { none, q4_0, q8_0, q8_k };
inline constexpr int kActTileTokens = 8;
inline constexpr size_t kActTileBlock = (64 + 8 + 8) * 4;
inline constexpr size_t tile_block_bytes(TileLayout l) {
  return l == TileLayout::q4_0 ? kActTileBlock : l == TileLayout::q8_k ? (512 + 64 + 8) * 4 : 4 * 64 + 8 * 4;
}
inline constexpr int64_t tile_blocks(TileLayout l, int64_t n_in) { return n_in / (l == TileLayout::q8_k ? 256 : 32); }
inline size_t act_tiles_bytes(TileLayout l, int64_t n_tok, int64_t n_in) {
  return size_t((n_tok + kActTileTokens - 1) / kActTileTokens) * size_t(tile_blocks(l, n_in)) * tile_block_bytes(l);
}
// Writes tiles [tile_begin, tile_end) of dst from Q8_0 rows (with their block sums and scales) or Q8_K rows.
void pack_act_tiles(TileLayout l, const uint8_t* acts, size_t row_bytes, const int32_t* sums, const float* d,
                    int64_t n_tok, int64_t n_in, int64_t tile_begin, int64_t tile_end, uint8_t* dst);

size_t scratch_bytes(int64_t n_in);
// The kernels of the best target (nullptrs where this CPU has no fast path). Respects simd::enabled().
const Kernels& best();
// Calls fn with the kernels of every target compiled in and supported by this CPU (tests, benchmarks).
void for_each_target(const std::function<void(const Kernels&)>& fn);

}  // namespace hearth::kernels::gemm
