// Weight encoders: F32 rows -> F32/F16/BF16/Q8_0/Q4_0 bytes, rounding exactly as ggml's reference
// quantizers (and gguf-py) do, so a file written by hearth holds the bits llama-quantize would write.
// Used by `hearth synth` and tests; activations use kernels/quant.h instead (different rounding).
#pragma once
#include <cstdint>

#include "gguf/types.h"

namespace hearth::gguf {

// True for the types encode_row can write.
bool can_encode(GgmlType type);
// Encodes n floats (a multiple of the type's block size) into dst (row_bytes(type, n) bytes).
// Throws hearth::Error for unsupported types or a ragged n.
void encode_row(GgmlType type, const float* x, int64_t n, void* dst);

}  // namespace hearth::gguf
