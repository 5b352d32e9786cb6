// Header-only GGUF files with the real Gemma 4 shapes (GEMMA4.md §1): metadata and the full tensor directory,
// no tensor data. hearth's memory plan needs nothing else, so tests can use E2B..31B without gigabytes.
// (gguf::Writer always streams tensor data, hence this small serializer of the same GGUF v3 layout.)
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "gguf/types.h"

namespace hearth::test {

class HeaderWriter {
 public:
  void u32(const std::string& k, uint32_t v) { key(k, 4), put(v); ++n_kv_; }
  void f32(const std::string& k, float v) { key(k, 6), put(v); ++n_kv_; }
  void str(const std::string& k, const std::string& v) { key(k, 8), s(v); ++n_kv_; }
  void arr_i32(const std::string& k, const std::vector<int32_t>& v) {
    key(k, 9), put<uint32_t>(5), put<uint64_t>(v.size());
    for (int32_t x : v) put(x);
    ++n_kv_;
  }
  void arr_bool(const std::string& k, const std::vector<bool>& v) {
    key(k, 9), put<uint32_t>(7), put<uint64_t>(v.size());
    for (bool x : v) put<uint8_t>(x ? 1 : 0);
    ++n_kv_;
  }
  void arr_str(const std::string& k, const std::vector<std::string>& v) {
    key(k, 9), put<uint32_t>(8), put<uint64_t>(v.size());
    for (const std::string& x : v) s(x);
    ++n_kv_;
  }
  void tensor(const std::string& name, gguf::GgmlType t, std::vector<int64_t> ne) {
    const gguf::TypeTraits& tt = gguf::type_traits(t);
    uint64_t n = 1;
    for (int64_t x : ne) n *= uint64_t(x);
    tensors_.push_back({name, t, ne, n / uint64_t(tt.block_size) * uint64_t(tt.type_size)});
  }
  // The header (padded to 32 bytes); data_size receives the size of the data section that would follow.
  std::vector<uint8_t> bytes(uint64_t* data_size = nullptr) const {
    std::vector<uint8_t> out;
    auto put_raw = [&](const void* p, size_t n) {
      const uint8_t* b = static_cast<const uint8_t*>(p);
      out.insert(out.end(), b, b + n);
    };
    put_raw("GGUF", 4);
    const uint32_t ver = 3;
    put_raw(&ver, 4);
    const uint64_t nt = tensors_.size(), nk = n_kv_;
    put_raw(&nt, 8);
    put_raw(&nk, 8);
    out.insert(out.end(), kv_.begin(), kv_.end());
    uint64_t off = 0;
    for (const auto& t : tensors_) {
      const uint64_t len = t.name.size();
      put_raw(&len, 8);
      put_raw(t.name.data(), t.name.size());
      const uint32_t nd = uint32_t(t.ne.size());
      put_raw(&nd, 4);
      for (int64_t x : t.ne) put_raw(&x, 8);
      const uint32_t type = uint32_t(t.type);
      put_raw(&type, 4);
      put_raw(&off, 8);
      off += (t.bytes + 31) / 32 * 32;
    }
    out.resize((out.size() + 31) / 32 * 32, 0);
    if (data_size) *data_size = off;
    return out;
  }
  uint64_t weight_bytes() const {
    uint64_t n = 0;
    for (const auto& t : tensors_) n += t.bytes;
    return n;
  }

 private:
  struct T {
    std::string name;
    gguf::GgmlType type;
    std::vector<int64_t> ne;
    uint64_t bytes;
  };
  template <class V>
  void put(V v) {
    const uint8_t* b = reinterpret_cast<const uint8_t*>(&v);
    kv_.insert(kv_.end(), b, b + sizeof v);
  }
  void s(const std::string& v) {
    put<uint64_t>(v.size());
    kv_.insert(kv_.end(), v.begin(), v.end());
  }
  void key(const std::string& k, uint32_t type) { s(k), put(type); }
  std::vector<uint8_t> kv_;
  uint64_t n_kv_ = 0;
  std::vector<T> tensors_;
};

// GEMMA4.md §1.1, one row per released variant.
struct Gemma4Variant {
  const char* name;
  int layers, d, heads, kv_swa, kv_global, window, ffn, ffn_wide, experts, expert_ffn, ple, shared_kv;
  int global_every;  // global iff l % global_every == global_every - 1
  bool k_eq_v;
  int ctx_train;
};
inline const Gemma4Variant kGemma4Variants[] = {
    {"E2B", 35, 1536, 8, 1, 1, 512, 6144, 12288, 0, 0, 256, 20, 5, false, 131072},
    {"E4B", 42, 2560, 8, 2, 2, 512, 10240, 10240, 0, 0, 256, 18, 6, false, 131072},
    {"26B-A4B", 30, 2816, 16, 8, 2, 1024, 2112, 2112, 128, 704, 0, 0, 6, true, 262144},
    {"31B", 60, 5376, 32, 16, 4, 1024, 21504, 21504, 0, 0, 0, 0, 6, true, 262144},
};

// Metadata as conversion/gemma.py writes it and a tensor directory with the real shapes (weights `wtype`).
inline HeaderWriter gemma4_header(const Gemma4Variant& v, gguf::GgmlType wtype = gguf::GgmlType::Q8_0) {
  using gguf::GgmlType;
  HeaderWriter w;
  const std::string A = "gemma4.";
  w.str("general.architecture", "gemma4");
  w.str("general.name", std::string("header-only Gemma 4 ") + v.name);
  w.u32(A + "context_length", uint32_t(v.ctx_train));
  w.u32(A + "embedding_length", uint32_t(v.d));
  w.u32(A + "block_count", uint32_t(v.layers));
  std::vector<bool> swa;
  std::vector<int32_t> kvh, ffn;
  for (int l = 0; l < v.layers; ++l) {
    const bool g = l % v.global_every == v.global_every - 1;
    swa.push_back(!g);
    kvh.push_back(g ? v.kv_global : v.kv_swa);
    ffn.push_back(l >= v.layers - v.shared_kv ? v.ffn_wide : v.ffn);
  }
  w.arr_i32(A + "feed_forward_length", ffn);
  w.u32(A + "attention.head_count", uint32_t(v.heads));
  if (v.kv_swa == v.kv_global) w.u32(A + "attention.head_count_kv", uint32_t(v.kv_swa));
  else w.arr_i32(A + "attention.head_count_kv", kvh);
  w.u32(A + "attention.key_length", 512);
  w.u32(A + "attention.value_length", 512);
  w.u32(A + "attention.key_length_swa", 256);
  w.u32(A + "attention.value_length_swa", 256);
  w.u32(A + "rope.dimension_count", 512);
  w.u32(A + "rope.dimension_count_swa", 256);
  w.f32(A + "rope.freq_base", 1e6f);
  w.f32(A + "rope.freq_base_swa", 1e4f);
  w.f32(A + "attention.layer_norm_rms_epsilon", 1e-6f);
  w.u32(A + "attention.sliding_window", uint32_t(v.window));
  w.arr_bool(A + "attention.sliding_window_pattern", swa);
  w.u32(A + "attention.shared_kv_layers", uint32_t(v.shared_kv));
  w.u32(A + "embedding_length_per_layer_input", uint32_t(v.ple));
  w.f32(A + "final_logit_softcapping", 30.0f);
  if (v.experts) {
    w.u32(A + "expert_count", uint32_t(v.experts));
    w.u32(A + "expert_used_count", 8);
    w.u32(A + "expert_feed_forward_length", uint32_t(v.expert_ffn));
  }
  const int64_t V = 262144, d = v.d;
  w.tensor("token_embd.weight", wtype, {d, V});
  if (v.ple) {
    w.tensor("per_layer_token_embd.weight", wtype, {int64_t(v.ple) * v.layers, V});
    w.tensor("per_layer_model_proj.weight", wtype, {d, int64_t(v.ple) * v.layers});
  }
  w.tensor("output_norm.weight", GgmlType::F32, {d});
  for (int l = 0; l < v.layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    const int64_t hd = swa[size_t(l)] ? 256 : 512, nkv = kvh[size_t(l)];
    w.tensor(b + "attn_norm.weight", GgmlType::F32, {d});
    w.tensor(b + "attn_q.weight", wtype, {d, v.heads * hd});
    w.tensor(b + "attn_k.weight", wtype, {d, nkv * hd});
    if (!(v.k_eq_v && !swa[size_t(l)])) w.tensor(b + "attn_v.weight", wtype, {d, nkv * hd});
    w.tensor(b + "attn_output.weight", wtype, {v.heads * hd, d});
    w.tensor(b + "ffn_gate.weight", wtype, {d, ffn[size_t(l)]});
    w.tensor(b + "ffn_up.weight", wtype, {d, ffn[size_t(l)]});
    w.tensor(b + "ffn_down.weight", wtype, {ffn[size_t(l)], d});
    if (v.experts) {
      w.tensor(b + "ffn_gate_up_exps.weight", wtype, {d, 2 * int64_t(v.expert_ffn), v.experts});
      w.tensor(b + "ffn_down_exps.weight", wtype, {int64_t(v.expert_ffn), d, v.experts});
      w.tensor(b + "ffn_gate_inp.weight", GgmlType::F32, {d, v.experts});
    }
  }
  return w;
}

}  // namespace hearth::test
