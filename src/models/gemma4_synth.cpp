#include "models/gemma4_synth.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <thread>

#include "core/error.h"
#include "gguf/quantize.h"

namespace hearth::models {

namespace {

using gguf::GgmlType;

// ---------------------------------------------------------------------------------------- randomness

uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// xoshiro256** with Box-Muller normals.
class Rng {
 public:
  Rng(uint64_t a, uint64_t b, uint64_t c) {
    uint64_t s = a ^ (b * 0x9e3779b97f4a7c15ull) ^ (c * 0xc2b2ae3d27d4eb4full);
    for (auto& x : s_) x = splitmix64(s);
  }
  uint64_t next() {
    const uint64_t r = rotl(s_[1] * 5, 7) * 9, t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return r;
  }
  double uniform() { return double(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  float normal() {
    if (have_spare_) {
      have_spare_ = false;
      return spare_;
    }
    const double u1 = 1.0 - uniform(), u2 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    spare_ = float(r * std::sin(2 * M_PI * u2));
    have_spare_ = true;
    return float(r * std::cos(2 * M_PI * u2));
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
  float spare_ = 0;
  bool have_spare_ = false;
};

// ---------------------------------------------------------------------------------------- tensors

enum class Init { Normal, Norm, AbsNorm, Uniform, Const };

struct Spec {
  Spec(std::string n, std::vector<int64_t> shape, Init i, float pa = 0, float pb = 0, std::vector<float> v = {})
      : name(std::move(n)), ne(std::move(shape)), init(i), a(pa), b(pb), values(std::move(v)) {}
  std::string name;
  std::vector<int64_t> ne;
  Init init;
  float a = 0, b = 0;         // Normal: std; Norm: gain; AbsNorm: sd; Uniform: lo, hi
  std::vector<float> values;  // Const
};

struct Derived {
  std::vector<bool> swa, has_kv, has_v;
  std::vector<int> hd, n_kv, n_ff;
  int kv_start = 0;
};

Derived derive(SynthConfig& c) {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw Error("synth: " + what);
  };
  need(c.layers > 0 && c.layers <= 512, "layers must be 1..512");
  need(c.d_model > 0 && c.heads > 0 && c.kv_heads > 0, "d_model, heads and kv_heads must be positive");
  if (c.kv_heads_full <= 0) c.kv_heads_full = c.kv_heads;
  if (c.head_dim_full <= 0) c.head_dim_full = c.head_dim;
  need(c.head_dim > 0 && c.head_dim % 2 == 0 && c.head_dim_full % 2 == 0, "head dims must be positive and even");
  need(c.heads % c.kv_heads == 0 && c.heads % c.kv_heads_full == 0, "heads must be a multiple of the KV heads");
  need(!c.pattern.empty(), "pattern must not be empty");
  need(c.window > 0 && c.ffn > 0 && c.ctx > 0, "window, ffn and ctx must be positive");
  need(c.k_eq_v == "none" || c.k_eq_v == "full" || c.k_eq_v == "all", "k_eq_v must be none, full or all");
  need(c.kv_shared >= 0 && c.kv_shared < c.layers, "kv_shared must be less than layers");
  need(c.ple_dim >= 0, "ple_dim must not be negative");
  Derived d;
  const int n = c.layers;
  for (int i = 0; i < n; ++i) {
    const char p = char(std::toupper(static_cast<unsigned char>(c.pattern[size_t(i) % c.pattern.size()])));
    need(p == 'S' || p == 'F', "pattern may only use S (sliding window) and F (full attention)");
    d.swa.push_back(p == 'S');
  }
  d.kv_start = n - c.kv_shared;
  for (int i = 0; i < n; ++i) {
    d.has_kv.push_back(i < d.kv_start);
    d.hd.push_back(d.swa[size_t(i)] ? c.head_dim : c.head_dim_full);
    d.n_kv.push_back(d.swa[size_t(i)] ? c.kv_heads : c.kv_heads_full);
    d.n_ff.push_back(c.ffn * (c.double_wide && i >= d.kv_start ? 2 : 1));
    d.has_v.push_back(!(c.k_eq_v == "all" || (c.k_eq_v == "full" && !d.swa[size_t(i)])));
  }
  if (c.kv_shared) {
    const int ks = d.kv_start;
    need(ks >= 2 && d.swa[size_t(ks - 2)] && !d.swa[size_t(ks - 1)],
         "KV sharing reuses layer n_kv_start-2 for sliding and n_kv_start-1 for full layers, so those two must be "
         "S and F (n_kv_start = " + std::to_string(ks) + ")");
  }
  if (c.experts) need(c.experts_used > 0 && c.experts_used <= c.experts && c.expert_ffn > 0, "invalid expert counts");
  return d;
}

std::vector<Spec> tensor_specs(const SynthConfig& c, const Derived& dv) {
  std::vector<Spec> s;
  const int64_t d = c.d_model, n = c.layers, V = c.vocab;
  auto fanin = [&](const std::string& name, std::vector<int64_t> ne) {
    const float std = c.gain / std::sqrt(float(ne[0]));
    s.push_back({name, std::move(ne), Init::Normal, std});
  };
  auto norm = [&](const std::string& name, int64_t len, float gain = 1.0f) {
    s.push_back({name, {len}, Init::Norm, gain});
  };
  if (!std::all_of(dv.swa.begin(), dv.swa.end(), [](bool b) { return b; })) {
    const int half = c.head_dim_full / 2, nrot = int(float(c.head_dim_full) * c.partial_rotary / 2);
    std::vector<float> v(size_t(half), 1e30f);
    std::fill(v.begin(), v.begin() + std::min(nrot, half), 1.0f);
    s.push_back({"rope_freqs.weight", {half}, Init::Const, 0, 0, std::move(v)});
  }
  s.push_back({"token_embd.weight", {d, V}, Init::Normal, 1.0f / std::sqrt(float(d))});
  if (c.ple_dim) {
    const int64_t P = c.ple_dim;
    s.push_back({"per_layer_token_embd.weight", {P * n, V}, Init::Normal, 1.0f / std::sqrt(float(P))});
    fanin("per_layer_model_proj.weight", {d, P * n});
    norm("per_layer_proj_norm.weight", P);
  }
  norm("output_norm.weight", d, c.final_norm_gain);
  if (!c.tied) s.push_back({"output.weight", {d, V}, Init::Normal, 1.0f / std::sqrt(float(d))});
  const int64_t H = c.heads;
  for (int i = 0; i < n; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    const int64_t hd = dv.hd[size_t(i)], nkv = dv.n_kv[size_t(i)], ff = dv.n_ff[size_t(i)];
    const float qk_gain = std::pow(float(hd), -0.25f);
    norm(b + "attn_norm.weight", d);
    fanin(b + "attn_q.weight", {d, H * hd});
    norm(b + "attn_q_norm.weight", hd, qk_gain);
    if (dv.has_kv[size_t(i)]) {
      fanin(b + "attn_k.weight", {d, nkv * hd});
      if (dv.has_v[size_t(i)]) fanin(b + "attn_v.weight", {d, nkv * hd});
      norm(b + "attn_k_norm.weight", hd, qk_gain);
    }
    fanin(b + "attn_output.weight", {H * hd, d});
    norm(b + "post_attention_norm.weight", d, c.post_norm_gain);
    norm(b + "ffn_norm.weight", d);
    fanin(b + "ffn_gate.weight", {d, ff});
    fanin(b + "ffn_up.weight", {d, ff});
    fanin(b + "ffn_down.weight", {ff, d});
    norm(b + "post_ffw_norm.weight", d, c.post_norm_gain);
    if (c.experts) {
      const int64_t E = c.experts, fe = c.expert_ffn;
      s.push_back({b + "ffn_gate_inp.weight", {d, E}, Init::Normal, c.router_std});
      norm(b + "ffn_gate_inp.scale", d);
      norm(b + "pre_ffw_norm_2.weight", d);
      norm(b + "post_ffw_norm_1.weight", d, c.post_norm_gain);
      norm(b + "post_ffw_norm_2.weight", d, c.post_norm_gain);
      if (c.fused_gate_up) {
        fanin(b + "ffn_gate_up_exps.weight", {d, 2 * fe, E});
      } else {
        fanin(b + "ffn_gate_exps.weight", {d, fe, E});
        fanin(b + "ffn_up_exps.weight", {d, fe, E});
      }
      fanin(b + "ffn_down_exps.weight", {fe, d, E});
      if (c.expert_down_scale) s.push_back({b + "ffn_down_exps.scale", {E}, Init::AbsNorm, 0.1f});
    }
    if (c.ple_dim) {
      fanin(b + "inp_gate.weight", {d, c.ple_dim});
      fanin(b + "proj.weight", {c.ple_dim, d});
      norm(b + "post_norm.weight", d, c.post_norm_gain);
    }
    if (c.layer_scale) s.push_back({b + "layer_output_scale.weight", {1}, Init::Uniform, 0.6f, 1.0f});
  }
  return s;
}

GgmlType pick_type(const SynthConfig& c, const Spec& s) {
  if (s.ne.size() < 2) return GgmlType::F32;
  if (s.name.size() >= 19 && s.name.compare(s.name.size() - 19, 19, "ffn_gate_inp.weight") == 0) return c.router_type;
  if (c.embd_type && (s.name == "token_embd.weight" || s.name == "per_layer_token_embd.weight" || s.name == "output.weight"))
    return *c.embd_type;
  return c.wtype;
}

void fill(const Spec& s, Rng& rng, float* x, int64_t n, int64_t first) {
  for (int64_t i = 0; i < n; ++i) {
    switch (s.init) {
      case Init::Normal: x[i] = rng.normal() * s.a; break;
      case Init::Norm: x[i] = (1.0f + 0.05f * rng.normal()) * s.a; break;
      case Init::AbsNorm: x[i] = std::fabs(1.0f + s.a * rng.normal()); break;
      case Init::Uniform: x[i] = float(s.a + (s.b - s.a) * rng.uniform()); break;
      case Init::Const: x[i] = s.values[size_t(first + i)]; break;
    }
  }
}

// Rows per independently seeded chunk: about 1M elements, so chunks can be generated on all threads.
int64_t chunk_rows(int64_t row) { return std::max<int64_t>(1, (int64_t(1) << 20) / std::max<int64_t>(row, 1)); }

}  // namespace

std::vector<std::string> synth_preset_names() {
  return {"tiny-dense", "tiny-moe", "tiny-ple", "e2b", "e4b", "26b-a4b", "31b"};
}

SynthConfig synth_preset(const std::string& name) {
  SynthConfig c;
  c.preset = name;
  auto dims = [&](int L, int d, int H, int kv, int kvf, int hd, int hdf, int ffn, int W, const char* pat, int V, int ctx) {
    c.layers = L, c.d_model = d, c.heads = H, c.kv_heads = kv, c.kv_heads_full = kvf, c.head_dim = hd;
    c.head_dim_full = hdf, c.ffn = ffn, c.window = W, c.pattern = pat, c.vocab = V, c.ctx = ctx;
  };
  if (name == "tiny-dense") {
    dims(6, 256, 4, 2, 1, 64, 128, 512, 16, "SSFSSF", 1024, 8192);
  } else if (name == "tiny-moe") {
    dims(6, 256, 4, 2, 1, 64, 128, 256, 16, "SSFSSF", 1024, 8192);
    c.experts = 16, c.experts_used = 4, c.expert_ffn = 128, c.k_eq_v = "full";
  } else if (name == "tiny-ple") {
    dims(10, 256, 4, 1, 1, 64, 128, 512, 16, "SSSSF", 1024, 8192);
    c.ple_dim = 64, c.kv_shared = 5, c.double_wide = true;
  } else if (name == "e2b") {
    dims(35, 1536, 8, 1, 1, 256, 512, 6144, 512, "SSSSF", 262144, 131072);
    c.ple_dim = 256, c.kv_shared = 20, c.double_wide = true;
  } else if (name == "e4b") {
    dims(42, 2560, 8, 2, 2, 256, 512, 10240, 512, "SSSSSF", 262144, 131072);
    c.ple_dim = 256, c.kv_shared = 18;
  } else if (name == "26b-a4b") {
    dims(30, 2816, 16, 8, 2, 256, 512, 2112, 1024, "SSSSSF", 262144, 262144);
    c.experts = 128, c.experts_used = 8, c.expert_ffn = 704, c.k_eq_v = "full";
  } else if (name == "31b") {
    dims(60, 5376, 32, 16, 4, 256, 512, 21504, 1024, "SSSSSF", 262144, 262144);
    c.k_eq_v = "full";
  } else {
    std::string all;
    for (const auto& p : synth_preset_names()) all += (all.empty() ? "" : ", ") + p;
    throw Error("unknown preset '" + name + "' (presets: " + all + ")");
  }
  return c;
}

SynthSummary synth_gemma4(SynthConfig c, const std::string& path, const VocabWriter& vocab,
                          const SynthProgress& progress, int threads) {
  const Derived dv = derive(c);
  gguf::Writer w;
  const std::string A = "gemma4.";
  const int n = c.layers;
  auto u32 = [&](const std::string& k, int64_t v) { w.set_u32(k, uint32_t(v)); };
  w.set_string("general.architecture", "gemma4");
  w.set_string("general.type", "model");
  w.set_string("general.name", c.name.empty() ? "random-gemma4-" + (c.preset.empty() ? "custom" : c.preset) : c.name);
  w.set_string("general.description", "random weights (seed " + std::to_string(c.seed) +
                                          ") written by hearth synth; not a trained model");
  u32("general.quantization_version", 2);
  static const std::map<GgmlType, uint32_t> ftype = {{GgmlType::F32, 0}, {GgmlType::F16, 1}, {GgmlType::Q4_0, 2},
                                                     {GgmlType::Q8_0, 7}, {GgmlType::BF16, 32}};
  if (!ftype.count(c.wtype)) throw Error(std::string("synth: weight type ") + gguf::type_name(c.wtype) +
                                         " is not supported (F32, F16, BF16, Q8_0, Q4_0)");
  u32("general.file_type", ftype.at(c.wtype));
  u32(A + "context_length", c.ctx);
  u32(A + "embedding_length", c.d_model);
  u32(A + "block_count", n);
  auto per_layer = [&](const std::string& key, const std::vector<int>& v) {
    if (std::all_of(v.begin(), v.end(), [&](int x) { return x == v[0]; }))
      u32(key, v[0]);
    else
      w.set_array_u32(key, std::vector<uint32_t>(v.begin(), v.end()));
  };
  per_layer(A + "feed_forward_length", dv.n_ff);
  u32(A + "attention.head_count", c.heads);
  per_layer(A + "attention.head_count_kv", dv.n_kv);
  u32(A + "attention.key_length", c.head_dim_full);
  u32(A + "attention.value_length", c.head_dim_full);
  u32(A + "attention.key_length_swa", c.head_dim);
  u32(A + "attention.value_length_swa", c.head_dim);
  u32(A + "rope.dimension_count", c.head_dim_full);
  u32(A + "rope.dimension_count_swa", c.head_dim);
  w.set_f32(A + "rope.freq_base", c.rope_base);
  w.set_f32(A + "rope.freq_base_swa", c.rope_base_swa);
  w.set_f32(A + "attention.layer_norm_rms_epsilon", c.rms_eps);
  u32(A + "attention.sliding_window", c.window);
  w.set_array_bool(A + "attention.sliding_window_pattern", dv.swa);
  u32(A + "attention.shared_kv_layers", c.kv_shared);
  u32(A + "embedding_length_per_layer_input", c.ple_dim);
  w.set_f32(A + "final_logit_softcapping", c.softcap);
  if (c.experts) {
    u32(A + "expert_count", c.experts);
    u32(A + "expert_used_count", c.experts_used);
    u32(A + "expert_feed_forward_length", c.expert_ffn);
  }
  c.vocab = vocab(w);
  if (c.vocab <= 0) throw Error("synth: the vocabulary is empty");

  const std::vector<Spec> specs = tensor_specs(c, dv);
  const int n_threads = threads > 0 ? threads : int(std::max(1u, std::thread::hardware_concurrency()));
  SynthSummary sum;
  uint64_t total = 0;
  for (const Spec& s : specs) {
    const GgmlType t = pick_type(c, s);
    const auto& tt = gguf::type_traits(t);
    if (s.ne[0] % tt.block_size)
      throw Error("synth: " + s.name + " has rows of " + std::to_string(s.ne[0]) + " elements, not a multiple of " +
                  std::to_string(tt.block_size) + " as " + tt.name + " needs");
    total += gguf::Writer::tensor_bytes(t, s.ne);
  }
  auto done = std::make_shared<uint64_t>(0);
  for (const Spec& spec : specs) {
    const GgmlType t = pick_type(c, spec);
    int64_t n_el = 1;
    for (int64_t x : spec.ne) n_el *= x;
    sum.n_params += uint64_t(n_el);
    ++sum.n_tensors;
    const uint64_t seed = c.seed;
    w.add_tensor(spec.name, t, spec.ne, [spec, t, seed, n_threads, done, total, progress](const gguf::Writer::Emit& emit) {
      const int64_t row = spec.ne[0];
      int64_t rows = 1;
      for (size_t k = 1; k < spec.ne.size(); ++k) rows *= spec.ne[k];
      const int64_t per = chunk_rows(row);
      const int64_t n_chunks = (rows + per - 1) / per;
      const size_t rb = gguf::row_bytes(t, row);
      const uint64_t name_hash = fnv1a(spec.name);
      std::vector<std::vector<uint8_t>> out(static_cast<size_t>(n_threads));
      auto make_chunk = [&](int64_t k, std::vector<uint8_t>& bytes) {
        const int64_t r0 = k * per, r = std::min(per, rows - r0);
        Rng rng(seed, name_hash, uint64_t(k));
        std::vector<float> x(static_cast<size_t>(row));
        bytes.resize(size_t(r) * rb);
        for (int64_t i = 0; i < r; ++i) {
          fill(spec, rng, x.data(), row, (r0 + i) * row);
          gguf::encode_row(t, x.data(), row, bytes.data() + size_t(i) * rb);
        }
      };
      for (int64_t k0 = 0; k0 < n_chunks; k0 += n_threads) {
        const int64_t m = std::min<int64_t>(n_threads, n_chunks - k0);
        std::vector<std::thread> pool;
        for (int64_t j = 1; j < m; ++j) pool.emplace_back(make_chunk, k0 + j, std::ref(out[size_t(j)]));
        make_chunk(k0, out[0]);
        for (auto& th : pool) th.join();
        for (int64_t j = 0; j < m; ++j) {
          emit(out[size_t(j)].data(), out[size_t(j)].size());
          *done += out[size_t(j)].size();
        }
        if (progress) progress(*done, total);
      }
    });
  }
  w.write(path);
  sum.file_bytes = std::filesystem::file_size(path);
  return sum;
}

}  // namespace hearth::models
