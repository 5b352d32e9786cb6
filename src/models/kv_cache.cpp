#include "models/kv_cache.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "kernels/matmul.h"

namespace hearth::models {

const char* kv_type_name(KvType t) { return t == KvType::F32 ? "f32" : "f16"; }

KvType kv_type_from_name(const std::string& name) {
  if (name == "f32" || name == "F32") return KvType::F32;
  if (name == "f16" || name == "F16") return KvType::F16;
  throw Error("unknown KV cache type '" + name + "' (use f16 or f32)");
}

namespace {
int ring_capacity(const KvLayerSpec& s, const KvCacheOptions& opt) {
  return s.window > 0 ? std::min(opt.n_ctx, s.window - 1 + opt.max_ubatch) : opt.n_ctx;
}
}  // namespace

uint64_t KvCache::estimate_bytes(const std::vector<KvLayerSpec>& layers, const KvCacheOptions& opt) {
  const uint64_t elem = opt.type == KvType::F32 ? 4 : 2;
  uint64_t total = 0;
  for (size_t l = 0; l < layers.size(); ++l) {
    const KvLayerSpec& s = layers[l];
    if (s.source != int(l)) continue;
    const uint64_t n = uint64_t(opt.n_seq) * uint64_t(ring_capacity(s, opt)) * uint64_t(s.n_head_kv) *
                       uint64_t(s.head_dim) * elem;
    total += s.has_v ? 2 * n : n;
  }
  return total;
}

KvCache::KvCache(std::vector<KvLayerSpec> layers, const KvCacheOptions& opt)
    : layers_(std::move(layers)), opt_(opt), stores_(layers_.size()), n_past_(size_t(std::max(1, opt.n_seq)), 0) {
  if (opt_.n_ctx <= 0 || opt_.n_seq <= 0 || opt_.max_ubatch <= 0) throw Error("invalid KV cache options");
  const size_t elem = opt_.type == KvType::F32 ? 4 : 2;
  for (size_t l = 0; l < layers_.size(); ++l) {
    const KvLayerSpec& s = layers_[l];
    if (s.source < 0 || size_t(s.source) >= layers_.size() || layers_[size_t(s.source)].source != s.source)
      throw Error("KV layer " + std::to_string(l) + " reads from a layer that has no cache of its own");
    if (s.source != int(l)) continue;
    Store& st = stores_[l];
    st.capacity = ring_capacity(s, opt_);
    st.row_bytes = size_t(s.n_head_kv) * size_t(s.head_dim) * elem;
    const size_t n = size_t(opt_.n_seq) * size_t(st.capacity) * st.row_bytes;
    st.k.reset(new uint8_t[n]);
    if (s.has_v) st.v.reset(new uint8_t[n]);
  }
}

int KvCache::capacity(int layer) const { return store_of(layer).capacity; }
size_t KvCache::row_bytes(int layer) const { return store_of(layer).row_bytes; }

size_t KvCache::slot(const Store& s, int seq, int32_t pos) const {
  return (size_t(seq) * size_t(s.capacity) + size_t(pos % s.capacity)) * s.row_bytes;
}

bool KvCache::truncate(int seq, int32_t n) {
  const int32_t old = n_past_[size_t(seq)];
  if (n >= old) return true;
  if (n < 0) n = 0;
  for (size_t l = 0; l < layers_.size(); ++l) {
    const KvLayerSpec& s = layers_[l];
    if (s.source != int(l) || s.window == 0) continue;
    // Oldest position still in the ring vs oldest position that position n-1 (and later ones) need.
    const int32_t oldest_held = std::max<int32_t>(0, old - stores_[l].capacity);
    const int32_t oldest_needed = std::max<int32_t>(0, n - s.window + 1);
    if (n > 0 && oldest_needed < oldest_held) return false;
  }
  n_past_[size_t(seq)] = n;
  return true;
}

void KvCache::store(int layer, int seq, int32_t pos, const float* k, const float* v) {
  const KvLayerSpec& s = layers_[size_t(layer)];
  if (s.source != layer) throw Error("KV layer " + std::to_string(layer) + " has no cache of its own");
  if (pos < 0 || pos >= opt_.n_ctx || seq < 0 || seq >= opt_.n_seq)
    throw Error("KV position " + std::to_string(pos) + " of sequence " + std::to_string(seq) + " is out of range");
  Store& st = stores_[size_t(layer)];
  const size_t off = slot(st, seq, pos);
  const size_t n = size_t(s.n_head_kv) * size_t(s.head_dim);
  auto put = [&](uint8_t* dst, const float* src) {
    if (opt_.type == KvType::F32) {
      std::memcpy(dst, src, n * 4);
    } else {
      kernels::best_quantize(kernels::ActType::F16)(src, dst, int64_t(n));
    }
  };
  put(st.k.get() + off, k);
  if (st.v) put(st.v.get() + off, v);
}

const void* KvCache::k_row(int layer, int seq, int32_t pos) const {
  const Store& st = store_of(layer);
  return st.k.get() + slot(st, seq, pos);
}

const void* KvCache::v_row(int layer, int seq, int32_t pos) const {
  const Store& st = store_of(layer);
  return (st.v ? st.v.get() : st.k.get()) + slot(st, seq, pos);
}

kernels::KvView KvCache::view(int layer, int seq) const {
  const Store& st = store_of(layer);
  const size_t base = size_t(seq) * size_t(st.capacity) * st.row_bytes;
  kernels::KvView v;
  v.k = st.k.get() + base;
  v.v = (st.v ? st.v.get() : st.k.get()) + base;
  v.row_bytes = st.row_bytes;
  v.capacity = st.capacity;
  v.f16 = opt_.type == KvType::F16;
  return v;
}

size_t KvCache::bytes() const {
  size_t total = 0;
  for (const Store& s : stores_) {
    const size_t n = size_t(opt_.n_seq) * size_t(s.capacity) * s.row_bytes;
    total += (s.k ? n : 0) + (s.v ? n : 0);
  }
  return total;
}

}  // namespace hearth::models
