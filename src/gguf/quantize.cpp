#include "gguf/quantize.h"

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/fp16.h"

namespace hearth::gguf {

namespace {

// Q8_0: d = amax/127, q = roundf(x/d) (half away from zero), as quantize_row_q8_0_ref.
void encode_q8_0(const float* x, int64_t n, uint8_t* y) {
  for (int64_t b = 0; b < n / 32; ++b, x += 32, y += 34) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const uint16_t dh = f32_to_fp16(d);
    std::memcpy(y, &dh, 2);
    for (int j = 0; j < 32; ++j) y[2 + j] = uint8_t(int8_t(std::roundf(x[j] * id)));
  }
}

// Q4_0: d = (signed value of largest magnitude)/-8, q = min(15, trunc(x/d + 8.5)); low nibbles hold
// elements 0..15, high nibbles 16..31 (quantize_row_q4_0_ref).
void encode_q4_0(const float* x, int64_t n, uint8_t* y) {
  for (int64_t b = 0; b < n / 32; ++b, x += 32, y += 18) {
    float amax = 0, max = 0;
    for (int j = 0; j < 32; ++j)
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const uint16_t dh = f32_to_fp16(d);
    std::memcpy(y, &dh, 2);
    for (int j = 0; j < 16; ++j) {
      const int q0 = std::min(15, int(int8_t(x[j] * id + 8.5f)));
      const int q1 = std::min(15, int(int8_t(x[j + 16] * id + 8.5f)));
      y[2 + j] = uint8_t(q0 | (q1 << 4));
    }
  }
}

}  // namespace

bool can_encode(GgmlType t) {
  return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16 || t == GgmlType::Q8_0 || t == GgmlType::Q4_0;
}

void encode_row(GgmlType type, const float* x, int64_t n, void* dst) {
  const TypeTraits& tt = type_traits(type);
  if (!can_encode(type)) throw Error(std::string("cannot write tensors of type ") + tt.name);
  if (n % tt.block_size) throw Error(std::string(tt.name) + " needs rows that are a multiple of " + std::to_string(tt.block_size) +
                                     " elements, got " + std::to_string(n));
  uint8_t* y = static_cast<uint8_t*>(dst);
  switch (type) {
    case GgmlType::F32: std::memcpy(y, x, size_t(n) * 4); break;
    case GgmlType::F16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_fp16(x[i]);
        std::memcpy(y + 2 * i, &h, 2);
      }
      break;
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_bf16(x[i]);
        std::memcpy(y + 2 * i, &h, 2);
      }
      break;
    case GgmlType::Q8_0: encode_q8_0(x, n, y); break;
    case GgmlType::Q4_0: encode_q4_0(x, n, y); break;
    default: break;
  }
}

}  // namespace hearth::gguf
