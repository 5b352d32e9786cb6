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

void attend_heads(const float* q, int nh, int kv_head, int head_dim, const KvView& kv, int32_t lo, int32_t hi,
                  float* out, float* scores, bool batched) {
  const int n = hi - lo + 1;
  if (!kv.f16) {
    for (int h = 0; h < nh; ++h)
      attend_head_f32(q + size_t(h) * size_t(head_dim), kv_head, head_dim, kv, lo, hi, out + size_t(h) * size_t(head_dim),
                      scores, batched);
    return;
  }
  const size_t head_off = size_t(kv_head) * size_t(head_dim) * 2;
  // The cells' rows, walked around the ring once (no division per cell).
  thread_local std::vector<const uint16_t*> k_rows, v_rows;
  thread_local std::vector<float> qbuf;
  k_rows.resize(size_t(n));
  v_rows.resize(size_t(n));
  for (int j = 0, cell = lo % kv.capacity; j < n; ++j, cell = cell + 1 == kv.capacity ? 0 : cell + 1) {
    const size_t off = size_t(cell) * kv.row_bytes + head_off;
    k_rows[size_t(j)] = reinterpret_cast<const uint16_t*>(kv.k + off);
    v_rows[size_t(j)] = reinterpret_cast<const uint16_t*>(kv.v + off);
  }
  const simd::Kernels& sk = simd::best();
  const bool fast = simd::enabled() && sk.dot_f32_f16_heads && sk.sum_rows_f16_heads;
  const bool fast_round = simd::enabled() && sk.round_f16;
  // ggml converts the F32 query to F16 for the K·q product with an F16 cache.
  const size_t hd = size_t(head_dim);
  qbuf.resize(size_t(nh) * hd);
  float* qq = qbuf.data();
  if (fast_round)
    sk.round_f16(q, qq, int64_t(nh) * head_dim);
  else
    for (size_t i = 0; i < size_t(nh) * hd; ++i) qq[i] = round_to_fp16(q[i]);
  // scores[h * n + j]: head h, cell lo + j.
  if (fast) {
    for (int j = 0; j < n; ++j) sk.dot_f32_f16_heads(qq, head_dim, nh, k_rows[size_t(j)], head_dim, scores + j, n);
  } else {
    for (int h = 0; h < nh; ++h)
      for (int j = 0; j < n; ++j) {
        const uint16_t* k = k_rows[size_t(j)];
        const float* qh = qq + size_t(h) * hd;
        float s = 0;
        for (int i = 0; i < head_dim; ++i) s += qh[i] * fp16_to_f32(k[i]);
        scores[size_t(h) * size_t(n) + size_t(j)] = s;
      }
  }
  for (int h = 0; h < nh; ++h) softmax(scores + size_t(h) * size_t(n), n);
  // The probabilities are rounded to F16 too before they weight the value rows.
  if (fast_round)
    sk.round_f16(scores, scores, int64_t(nh) * n);
  else
    for (size_t j = 0; j < size_t(nh) * size_t(n); ++j) scores[j] = round_to_fp16(scores[j]);
  if (fast) {
    sk.sum_rows_f16_heads(scores, n, nh, v_rows.data(), n, out, head_dim, head_dim);
    return;
  }
  for (int h = 0; h < nh; ++h) {
    float* o = out + size_t(h) * hd;
    const float* w = scores + size_t(h) * size_t(n);
    for (int i = 0; i < head_dim; ++i) o[i] = 0;
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < head_dim; ++i) o[i] += w[j] * fp16_to_f32(v_rows[size_t(j)][i]);
  }
}

void attend_head(const float* q_head, int kv_head, int head_dim, const KvView& kv, int32_t lo, int32_t hi,
                 float* out, float* scores, bool batched) {
  attend_heads(q_head, 1, kv_head, head_dim, kv, lo, hi, out, scores, batched);
}

void attend(const float* q, int n_head, int n_head_kv, int head_dim, const KvView& kv, int32_t lo, int32_t hi,
            float* out, float* scores, bool batched) {
  const int group = n_head / n_head_kv;
  for (int h = 0; h < n_head; ++h)
    attend_head(q + size_t(h) * size_t(head_dim), h / group, head_dim, kv, lo, hi, out + size_t(h) * size_t(head_dim),
                scores, batched);
}

}  // namespace hearth::kernels
