// Key/value storage for the attention layers of one model, for n_seq independent sequences.
//
// * Global layers keep every position: n_ctx rows per sequence.
// * Sliding-window layers keep a ring of min(n_ctx, W - 1 + max_ubatch) rows: enough for the window of
//   every token of a batch of up to max_ubatch tokens, and constant in the context length.
// * Layers that read another layer's cache (Gemma 4's shared-KV layers) own no storage.
// Rows are F32 or F16 (ggml's default, and hearth's). The runtime decides which sequence is which;
// the forward pass writes and reads through this class.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/attention.h"

namespace hearth::models {

enum class KvType { F32, F16 };
const char* kv_type_name(KvType t);
KvType kv_type_from_name(const std::string& name);  // "f32", "f16"; throws hearth::Error

struct KvLayerSpec {
  int n_head_kv = 0;
  int head_dim = 0;
  int window = 0;     // 0 = global (full) attention
  int source = -1;    // the layer whose cache this layer reads; its own index when it writes one
  bool has_v = true;  // false: cached values are the cached keys (nothing stored for V)
};

struct KvCacheOptions {
  int n_ctx = 4096;       // positions per sequence
  int n_seq = 1;          // independent sequences (server slots)
  KvType type = KvType::F16;
  int max_ubatch = 512;   // most tokens of one sequence in one forward call
};

class KvCache {
 public:
  KvCache(std::vector<KvLayerSpec> layers, const KvCacheOptions& opt);

  const KvCacheOptions& options() const { return opt_; }
  int n_layers() const { return int(layers_.size()); }
  const KvLayerSpec& layer(int l) const { return layers_[size_t(l)]; }
  int capacity(int layer) const;  // rows per sequence held for layer's source

  // Number of positions of `seq` that are in the cache (positions 0 .. n_past-1 were written).
  int32_t n_past(int seq) const { return n_past_[size_t(seq)]; }
  void set_n_past(int seq, int32_t n) { n_past_[size_t(seq)] = n; }
  // Forget positions >= n of `seq`. Returns false (and changes nothing) when a sliding-window ring no
  // longer holds what positions < n would need; the caller must then re-evaluate from scratch.
  bool truncate(int seq, int32_t n);
  void clear(int seq) { n_past_[size_t(seq)] = 0; }

  // Encodes and stores the key (and value) row of `layer` (which must own its cache) at `pos`.
  void store(int layer, int seq, int32_t pos, const float* k, const float* v);
  // Encoded rows of the cache `layer` reads (its source), as F32 or F16 depending on the type.
  const void* k_row(int layer, int seq, int32_t pos) const;
  const void* v_row(int layer, int seq, int32_t pos) const;

  // The rows of `seq` in the cache `layer` reads, for the attention kernel.
  kernels::KvView view(int layer, int seq) const;

  // What a cache with this layout and these options allocates, without allocating it.
  static uint64_t estimate_bytes(const std::vector<KvLayerSpec>& layers, const KvCacheOptions& opt);

  size_t bytes() const;  // storage allocated (the upper bound of what is touched)
  size_t row_bytes(int layer) const;

 private:
  struct Store {
    int capacity = 0;
    size_t row_bytes = 0;
    std::unique_ptr<uint8_t[]> k, v;  // [n_seq][capacity][row_bytes]; left untouched until written
  };
  const Store& store_of(int layer) const { return stores_[size_t(layers_[size_t(layer)].source)]; }
  size_t slot(const Store& s, int seq, int32_t pos) const;

  std::vector<KvLayerSpec> layers_;
  KvCacheOptions opt_;
  std::vector<Store> stores_;  // indexed by layer; empty for layers without their own cache
  std::vector<int32_t> n_past_;
};

}  // namespace hearth::models
