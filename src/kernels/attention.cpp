#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/fp16.h"
#include "kernels/ggml_order.h"
#include "kernels/ops.h"
#include "kernels/simd.h"

namespace hearth::kernels {

namespace {

// F32 cache: K·q as ggml_vec_dot_f32, softmax with ggml's exp and its per-register partial sums (cells in
// aligned groups of lanes(); masked cells contribute zeros), then the probability-weighted sum of value rows
// as llama.cpp computes it: tinyBLAS lanes for a batch of queries, ggml_vec_dot_f32 lanes for one.
void attend_head_f32(const float* q, int kv_head, int head_dim, const KvView& kv, int32_t lo, int32_t hi, float* out,
                     float* scores, bool batched) {
  const int n = hi - lo + 1;
  const size_t head_off = size_t(kv_head) * size_t(head_dim) * 4;
  auto row = [&](const uint8_t* base, int32_t p) {
    return reinterpret_cast<const float*>(base + size_t(p % kv.capacity) * kv.row_bytes + head_off);
  };
  float mx = -INFINITY;
  for (int j = 0; j < n; ++j) {
    scores[j] = ggml::dot_f32(q, row(kv.k, lo + j), head_dim);
    mx = std::max(mx, scores[j]);
  }
  const int w = ggml::lanes();
  double sum = 0;
  float chunk[16];
  for (int32_t c0 = lo / w * w; c0 <= hi; c0 += w) {
    for (int i = 0; i < w; ++i) {
      const int32_t p = c0 + i;
      chunk[i] = (p >= lo && p <= hi) ? (scores[p - lo] = ggml::expf_approx(scores[p - lo] - mx)) : 0.0f;
    }
    sum += double(ggml::hsum(chunk, w));
  }
  const float inv = float(1.0 / sum);
  for (int j = 0; j < n; ++j) scores[j] *= inv;
  for (int i = 0; i < head_dim; ++i) {
    ggml::LaneAcc acc;
    acc.w = w;
    acc.n_acc = batched ? 1 : 4;
    for (int j = 0; j < n; ++j) acc.add(lo + j, row(kv.v, lo + j)[i], scores[j]);
    out[i] = batched ? acc.sum_tinyblas() : acc.sum_vec_dot();
  }
}

}  // namespace

void attend_head(const float* q_head, int kv_head, int head_dim, const KvView& kv, int32_t lo, int32_t hi,
                 float* out, float* scores, bool batched) {
  if (!kv.f16) {
    attend_head_f32(q_head, kv_head, head_dim, kv, lo, hi, out, scores, batched);
    return;
  }
  const int n = hi - lo + 1;
  const size_t head_off = size_t(kv_head) * size_t(head_dim) * 2;
  // ggml converts the F32 query to F16 for the K·q product with an F16 cache.
  float qh[1024];
  std::vector<float> qbig;
  float* qq = qh;
  if (head_dim > 1024) {
    qbig.resize(size_t(head_dim));
    qq = qbig.data();
  }
  for (int i = 0; i < head_dim; ++i) qq[i] = round_to_fp16(q_head[i]);
  const simd::Kernels& sk = simd::best();
  const bool fast = simd::enabled() && sk.dot_f32_f16 && sk.axpy_f16;
  for (int j = 0; j < n; ++j) {
    const int32_t p = lo + j;
    const uint16_t* k = reinterpret_cast<const uint16_t*>(kv.k + size_t(p % kv.capacity) * kv.row_bytes + head_off);
    if (fast) {
      scores[j] = sk.dot_f32_f16(qq, k, head_dim);
      continue;
    }
    float s = 0;
    for (int i = 0; i < head_dim; ++i) s += qq[i] * fp16_to_f32(k[i]);
    scores[j] = s;
  }
  softmax(scores, n);
  for (int i = 0; i < head_dim; ++i) out[i] = 0;
  for (int j = 0; j < n; ++j) {
    const int32_t p = lo + j;
    const uint16_t* v = reinterpret_cast<const uint16_t*>(kv.v + size_t(p % kv.capacity) * kv.row_bytes + head_off);
    const float wgt = round_to_fp16(scores[j]);
    if (fast) {
      sk.axpy_f16(wgt, v, out, head_dim);
      continue;
    }
    for (int i = 0; i < head_dim; ++i) out[i] += wgt * fp16_to_f32(v[i]);
  }
}

void attend(const float* q, int n_head, int n_head_kv, int head_dim, const KvView& kv, int32_t lo, int32_t hi,
            float* out, float* scores, bool batched) {
  const int group = n_head / n_head_kv;
  for (int h = 0; h < n_head; ++h)
    attend_head(q + size_t(h) * size_t(head_dim), h / group, head_dim, kv, lo, hi, out + size_t(h) * size_t(head_dim),
                scores, batched);
}

}  // namespace hearth::kernels
