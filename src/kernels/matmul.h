// Matrix products against GGUF weights: y[t] = W · x[t] for every token t of a batch.
// The activations are encoded once per row to the weight's dot type (quant.h), then every output row
// is a dot product against each encoded token row; threads split the output rows.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "gguf/reader.h"
#include "kernels/quant.h"
#include "kernels/threadpool.h"

namespace hearth::kernels {

// A 2-D weight view: n_out rows of n_in contiguous elements (ggml [n_in, n_out]).
struct Matrix {
  GgmlType type = GgmlType::F32;
  const uint8_t* data = nullptr;
  int64_t n_in = 0;
  int64_t n_out = 0;
  size_t row_bytes = 0;
  bool repacked = false;    // summed in the order of llama.cpp's repacked layout (quant.h)
  bool mul_mat_id = false;  // an expert slice: llama.cpp's expert product always sums as for one token
  // The first n_out - n_out % 8 rows in the packed Q4_0 layout of gemm.h (Q8_0: n_out - n_out % 16 rows in the
  // packed Q8_0 layout), set by PackedWeights, or null.
  const uint8_t* packed = nullptr;

  const uint8_t* row(int64_t r) const { return data + size_t(r) * row_bytes; }
  explicit operator bool() const { return data != nullptr; }

  // The whole tensor (2-D) or one slice of a 3-D tensor (for example one expert of ffn_gate_up_exps).
  static Matrix of(const gguf::TensorInfo& t, int64_t slice = 0);
  // Rows [r0, r0 + n) only (for example the gate half of a merged gate/up matrix).
  Matrix rows(int64_t r0, int64_t n) const;
};

// Activations encoded for one dot type, reusable across several matrices of that type.
struct EncodedActs {
  ActType type = ActType::F32;
  int64_t n_in = 0;
  int64_t n_tok = 0;
  size_t row_bytes = 0;
  std::vector<uint8_t> data;
  // Q8_0 only: each block's quant sum and scale (as float), [n_tok][n_in / 32], for the blocked kernels.
  std::vector<int32_t> block_sums;
  std::vector<float> block_d;
  // Q8_0 / Q8_K with at least 4 tokens: the same in a prefill kernel's tile layout (gemm::pack_act_tiles), made
  // by the first matmul that wants that layout (a cache: matmuls of one EncodedActs run one at a time).
  mutable std::vector<uint8_t> tiles;
  mutable int tile_layout = 0;  // a gemm::TileLayout; 0 = none
  const uint8_t* row(int64_t t) const { return data.data() + size_t(t) * row_bytes; }
};

// The row encoder for t that encode_acts uses: the SIMD one where enabled and this CPU has it (the same bits),
// else the reference act_traits(t).quantize. (Also the F16 KV cache's stores.)
using QuantizeFn = void (*)(const float* x, void* dst, int64_t n);
QuantizeFn best_quantize(ActType t);

// Encodes n_tok rows of n_in floats (row stride x_stride floats) into `out`.
void encode_acts(ActType type, const float* x, int64_t n_tok, int64_t n_in, int64_t x_stride, EncodedActs& out,
                 ThreadPool& pool);

// y[t * y_stride + o] = dot(W row o, acts row t). `acts.type` must be W's dot type.
void matmul(const Matrix& w, const EncodedActs& acts, float* y, int64_t y_stride, ThreadPool& pool);

// One product of a batch for matmul_many: y[t * y_stride + o] = dot(W row o, acts row tok0 + t), t < n_tok.
struct MatmulJob {
  Matrix w;
  const EncodedActs* acts = nullptr;
  int64_t tok0 = 0;
  int64_t n_tok = 0;
  float* y = nullptr;
  int64_t y_stride = 0;
};

// From this many tokens, matmul may run tile kernels that read the activations re-laid in tiles of tokens
// (faster for prompts, the same bits); below it every kernel reads the encoded rows as they are.
inline constexpr int64_t kTileMinTokens = 4;

// Runs several products with the same bits as matmul on each: the jobs below kTileMinTokens tokens in one
// hand-off to the pool (the threads share all their rows: a decode step's Q/K/V, or its experts, pass one
// barrier, not one each); a job over its whole encoding with kTileMinTokens or more tokens through matmul
// (its tile kernels); any other job in the shared hand-off too, on the encoded rows (slower for 4+ tokens).
void matmul_many(const std::vector<MatmulJob>& jobs, ThreadPool& pool);

// Convenience: encode + matmul. `scratch` keeps its allocation between calls.
void matmul(const Matrix& w, const float* x, int64_t n_tok, int64_t x_stride, float* y, int64_t y_stride,
            ThreadPool& pool, EncodedActs& scratch);

// The dot type of a weight type; throws hearth::Error (naming the tensor) if hearth cannot compute with it.
ActType dot_type_of(GgmlType t, const char* what = nullptr);

// Packed copies of weights for the fast kernels (Q4_0 in llama.cpp's repacked summation order; Q8_0 in the
// block order of AMX machines),
// made once at load on all cores. The copies live as long as this object; each Matrix gets its `packed`
// pointer. The source pages of a packed matrix are released back to the page cache (madvise) unless
// the matrix is listed in keep_source (for example a tied embedding table still read by row lookups).
// The copies sit in one anonymous mapping per call, on transparent huge pages where the kernel gives them
// (madvise): decode streams them once per token, and 4 KiB pages cost a TLB walk every 4 KiB (two-level
// under a hypervisor). Only the matrices packs_at_load names are copied.
class PackedWeights {
 public:
  void pack(const std::vector<Matrix*>& matrices, const std::vector<const Matrix*>& keep_source = {});
  size_t bytes() const { return bytes_; }

 private:
  struct Unmap {
    size_t bytes = 0;
    void operator()(uint8_t* p) const;
  };
  std::vector<std::unique_ptr<uint8_t, Unmap>> regions_;  // one anonymous mapping per pack() call
  size_t bytes_ = 0;
};

// Whether PackedWeights::pack copies a matrix of this type and row count into a packed layout: where this
// machine has a packed kernel for it and packing is its default (gemm::Kernels::packs_by_default: not on
// Intel, where rows as stored decode faster), or HEARTH_PACK=1 in the environment asks for it anyway;
// HEARTH_PACK=0 turns packing off. The memory plan asks it about a tied embedding table, whose packed copy
// (as the LM head) comes on top of the rows kept for token lookups.
bool packs_at_load(GgmlType t, int64_t n_out);

// Asks the kernel to read W's pages ahead (memory-mapped weights on a cold page cache), without waiting.
void will_need(const Matrix& w);

// Dequantises row r of W into out[0 .. n_in).
void dequantize_row(const Matrix& w, int64_t r, float* out);

}  // namespace hearth::kernels
