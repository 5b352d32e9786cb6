// Scaled-dot-product attention of one query token over a span of cached positions (scale 1.0: Gemma 4's
// Q/K norms replace 1/sqrt(d)). With an F32 cache every sum follows llama.cpp's order (ggml_order.h), with
// position p standing for KV cell p. Keys and values sit in a ring of `capacity` rows (position p at row
// p % capacity), F32 or F16. With an F16 cache the query and the probabilities are rounded to F16
// before their dot products, as ggml does when it multiplies F16 caches.
#pragma once
#include <cstddef>
#include <cstdint>

namespace hearth::kernels {

struct KvView {
  const uint8_t* k = nullptr;
  const uint8_t* v = nullptr;
  size_t row_bytes = 0;  // one position: n_head_kv * head_dim elements
  int capacity = 0;
  bool f16 = false;
};

// out[h * head_dim ...] for every query head h. GQA: query head h reads KV head h / (n_head / n_head_kv).
// Positions lo..hi (inclusive) are visible. `scores` must hold hi - lo + 1 floats.
void attend(const float* q, int n_head, int n_head_kv, int head_dim, const KvView& kv, int32_t lo, int32_t hi,
            float* out, float* scores, bool batched = false);

// One head only (lets the caller parallelise over heads). `batched`: the query is one of several tokens
// evaluated together (llama.cpp then sums the value rows in its prompt-path order; see ggml_order.h).
void attend_head(const float* q_head, int kv_head, int head_dim, const KvView& kv, int32_t lo, int32_t hi,
                 float* out_head, float* scores, bool batched = false);

// nh consecutive query heads that all read KV head kv_head (one group of grouped-query attention): head i's
// query at q + i * head_dim, its output at out + i * head_dim; `scores` must hold nh * (hi - lo + 1) floats.
// Each head's output has exactly the bits attend_head gives it; an F16 cache's rows are converted once for
// several heads.
void attend_heads(const float* q, int nh, int kv_head, int head_dim, const KvView& kv, int32_t lo, int32_t hi,
                  float* out, float* scores, bool batched = false);

}  // namespace hearth::kernels
