#include "core/fp16.h"

#include <vector>

namespace hearth {
namespace {
const float* build_fp16_table() {
  static std::vector<float> table = [] {
    std::vector<float> t(65536);
    for (uint32_t i = 0; i < 65536; ++i) t[i] = fp16_to_f32_compute(uint16_t(i));
    return t;
  }();
  return table.data();
}
}  // namespace
const float* const kFp16Table = build_fp16_table();
}  // namespace hearth
