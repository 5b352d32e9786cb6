#include "kernels/attention.h"

#include <cmath>
#include <vector>

#include "core/fp16.h"
#include "kernels/ops.h"

namespace hearth::kernels {

void attend_head(const float* q_head, int kv_head, int head_dim, const KvView& kv, int32_t lo, int32_t hi,
                 float* out, float* scores) {
  const int n = hi - lo + 1;
  const size_t head_off = size_t(kv_head) * size_t(head_dim) * (kv.f16 ? 2 : 4);
  if (kv.f16) {
    // ggml converts the F32 query to F16 for the K·q product with an F16 cache.
    float qh[1024];
    std::vector<float> qbig;
    float* qq = qh;
    if (head_dim > 1024) {
      qbig.resize(size_t(head_dim));
      qq = qbig.data();
    }
    for (int i = 0; i < head_dim; ++i) qq[i] = round_to_fp16(q_head[i]);
    for (int j = 0; j < n; ++j) {
      const int32_t p = lo + j;
      const uint16_t* k =
          reinterpret_cast<const uint16_t*>(kv.k + size_t(p % kv.capacity) * kv.row_bytes + head_off);
      float s = 0;
      for (int i = 0; i < head_dim; ++i) s += qq[i] * fp16_to_f32(k[i]);
      scores[j] = s;
    }
  } else {
    for (int j = 0; j < n; ++j) {
      const int32_t p = lo + j;
      const float* k = reinterpret_cast<const float*>(kv.k + size_t(p % kv.capacity) * kv.row_bytes + head_off);
      float s = 0;
      for (int i = 0; i < head_dim; ++i) s += q_head[i] * k[i];
      scores[j] = s;
    }
  }
  softmax(scores, n);
  for (int i = 0; i < head_dim; ++i) out[i] = 0;
  for (int j = 0; j < n; ++j) {
    const int32_t p = lo + j;
    const uint8_t* vrow = kv.v + size_t(p % kv.capacity) * kv.row_bytes + head_off;
    if (kv.f16) {
      const float w = round_to_fp16(scores[j]);
      const uint16_t* v = reinterpret_cast<const uint16_t*>(vrow);
      for (int i = 0; i < head_dim; ++i) out[i] += w * fp16_to_f32(v[i]);
    } else {
      const float w = scores[j];
      const float* v = reinterpret_cast<const float*>(vrow);
      for (int i = 0; i < head_dim; ++i) out[i] += w * v[i];
    }
  }
}

void attend(const float* q, int n_head, int n_head_kv, int head_dim, const KvView& kv, int32_t lo, int32_t hi,
            float* out, float* scores) {
  const int group = n_head / n_head_kv;
  for (int h = 0; h < n_head; ++h)
    attend_head(q + size_t(h) * size_t(head_dim), h / group, head_dim, kv, lo, hi, out + size_t(h) * size_t(head_dim),
                scores);
}

}  // namespace hearth::kernels
