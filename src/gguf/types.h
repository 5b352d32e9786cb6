// ggml tensor types: block geometry for every type id a GGUF may carry, and exact (bit-for-bit with
// ggml) dequantisation for the ones hearth computes with (GEMMA4.md §9.3).
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace hearth::gguf {

enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30, TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
};

// Dequantise `n` consecutive elements (n a multiple of the block size) starting at a block boundary.
using DequantizeFn = void (*)(const void* src, float* dst, int64_t n);

struct TypeTraits {
  GgmlType type;
  const char* name;
  int64_t block_size;   // elements per block
  int64_t type_size;    // bytes per block
  DequantizeFn dequantize;  // nullptr: hearth can read the file but not compute with this type
};

// nullptr for an id that is not a known ggml type.
const TypeTraits* type_traits(uint32_t type_id);
const TypeTraits& type_traits(GgmlType t);
inline const char* type_name(GgmlType t) { return type_traits(t).name; }
std::optional<GgmlType> type_from_name(const std::string& name);  // "Q4_0", "q8_0", "BF16", ...

// Bytes for a row of `ne0` elements (ne0 must be a multiple of the block size).
inline size_t row_bytes(GgmlType t, int64_t ne0) {
  const TypeTraits& tt = type_traits(t);
  return size_t(ne0 / tt.block_size) * size_t(tt.type_size);
}

// The IQ4_NL / IQ4_XS non-linear 4-bit codebook.
extern const int8_t kIq4nlValues[16];

}  // namespace hearth::gguf
