// Gemma 4 forward pass. Read it beside GEMMA4.md §4: the load step binds every tensor by its GGUF name
// and checks its shape; forward() follows §4.2-§4.6 top to bottom.
#include "models/gemma4.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <optional>

#include "core/error.h"
#include "core/huge_pages.h"
#include "kernels/attention.h"
#include "kernels/ggml_order.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "models/debug_dump.h"

namespace hearth::models {

using kernels::Matrix;
using kernels::ThreadPool;

namespace {

std::string S(int64_t v) { return std::to_string(v); }

// Scratch buffers only ever grow: their sizes change from layer to layer (FFN width against the PLE width,
// head size of global against local layers, tokens per expert), and resize() down then up again zero-fills
// the difference every time (12 MB per E2B layer for a 512-token prompt, 2 % of its prompt time).
template <class V>
void grow(V& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

// A key that may be a scalar (broadcast) or a per-layer array of exactly n_layer integers.
std::vector<int> per_layer(const gguf::File& f, const std::string& key, int n_layer, std::optional<int> def) {
  const gguf::Value* v = f.find(key);
  if (!v) {
    if (!def) throw Error(f.path() + ": required metadata key '" + key + "' is missing");
    return std::vector<int>(size_t(n_layer), *def);
  }
  std::vector<int> out;
  if (v->is_array()) {
    std::vector<int64_t> a = v->int_array(key);
    if (int64_t(a.size()) != n_layer)
      throw Error(f.path() + ": metadata key '" + key + "' has " + S(int64_t(a.size())) + " elements, expected " +
                  S(n_layer) + " (one per layer)");
    for (int64_t x : a) {
      if (x < 0 || x > (1 << 24)) throw Error(f.path() + ": metadata key '" + key + "' has invalid value " + S(x));
      out.push_back(int(x));
    }
  } else {
    const int64_t x = v->as_int(key);
    if (x < 0 || x > (1 << 24)) throw Error(f.path() + ": metadata key '" + key + "' has invalid value " + S(x));
    out.assign(size_t(n_layer), int(x));
  }
  return out;
}

int positive(const gguf::File& f, const std::string& key, int64_t v, int64_t max = int64_t(1) << 24) {
  if (v <= 0 || v > max) throw Error(f.path() + ": metadata key '" + key + "' has invalid value " + S(v));
  return int(v);
}

}  // namespace

Gemma4Hparams Gemma4Hparams::from_gguf(const gguf::File& f) {
  const std::string A = std::string(f.get_string("general.architecture")) + ".";
  Gemma4Hparams h;
  h.n_layer = positive(f, A + "block_count", f.get_int(A + "block_count"), 4096);
  h.n_embd = positive(f, A + "embedding_length", f.get_int(A + "embedding_length"));
  h.n_ctx_train = positive(f, A + "context_length", f.get_int(A + "context_length"), int64_t(1) << 30);
  const std::vector<int> heads = per_layer(f, A + "attention.head_count", h.n_layer, std::nullopt);
  if (std::adjacent_find(heads.begin(), heads.end(), std::not_equal_to<>()) != heads.end())
    throw Error(f.path() + ": per-layer attention.head_count is not supported");
  h.n_head = positive(f, A + "attention.head_count", heads[0]);
  h.n_head_kv = per_layer(f, A + "attention.head_count_kv", h.n_layer, h.n_head);
  h.head_dim_full = int(f.opt_int(A + "attention.key_length").value_or(h.n_embd / h.n_head));
  if (f.opt_int(A + "attention.value_length").value_or(h.head_dim_full) != h.head_dim_full)
    throw Error(f.path() + ": attention.key_length and value_length differ");
  h.head_dim_swa = int(f.get_int(A + "attention.key_length_swa"));
  if (f.opt_int(A + "attention.value_length_swa").value_or(h.head_dim_swa) != h.head_dim_swa)
    throw Error(f.path() + ": attention.key_length_swa and value_length_swa differ");
  positive(f, A + "attention.key_length", h.head_dim_full, 8192);
  positive(f, A + "attention.key_length_swa", h.head_dim_swa, 8192);
  h.n_rot_full = int(f.opt_int(A + "rope.dimension_count").value_or(h.head_dim_full));
  h.n_rot_swa = int(f.opt_int(A + "rope.dimension_count_swa").value_or(h.n_rot_full));
  h.rope_base = float(f.opt_float(A + "rope.freq_base").value_or(10000.0));
  h.rope_base_swa = float(f.opt_float(A + "rope.freq_base_swa").value_or(10000.0));
  h.eps = float(f.get_float(A + "attention.layer_norm_rms_epsilon"));
  h.softcap = float(f.opt_float(A + "final_logit_softcapping").value_or(30.0));
  h.n_embd_per_layer = int(f.opt_int(A + "embedding_length_per_layer_input").value_or(0));
  const int64_t shared = f.opt_int(A + "attention.shared_kv_layers").value_or(0);
  if (shared < 0 || shared >= h.n_layer) throw Error(f.path() + ": attention.shared_kv_layers is invalid");
  h.n_kv_from_start = h.n_layer - int(shared);
  h.n_ff = per_layer(f, A + "feed_forward_length", h.n_layer, std::nullopt);
  h.n_expert = int(f.opt_int(A + "expert_count").value_or(0));
  h.n_expert_used = int(f.opt_int(A + "expert_used_count").value_or(0));
  h.n_ff_exp = int(f.opt_int(A + "expert_feed_forward_length").value_or(0));

  const gguf::Value* pat = f.find(A + "attention.sliding_window_pattern");
  if (!pat || !pat->is_array())
    throw Error(f.path() + ": metadata key '" + A + "attention.sliding_window_pattern' (per-layer array) is missing");
  const std::vector<int64_t> p = pat->int_array(A + "attention.sliding_window_pattern");
  if (int64_t(p.size()) != h.n_layer)
    throw Error(f.path() + ": attention.sliding_window_pattern has " + S(int64_t(p.size())) + " entries for " +
                S(h.n_layer) + " layers");
  for (int64_t x : p) h.is_swa.push_back(x != 0);
  if (std::any_of(h.is_swa.begin(), h.is_swa.end(), [](bool b) { return b; }))
    h.window = positive(f, A + "attention.sliding_window", f.get_int(A + "attention.sliding_window"), 1 << 24);

  for (int l = 0; l < h.n_layer; ++l) {
    const int hd = h.is_swa[size_t(l)] ? h.head_dim_swa : h.head_dim_full;
    h.head_dim.push_back(hd);
    const int kvh = h.n_head_kv[size_t(l)];
    if (kvh <= 0 || h.n_head % kvh != 0)
      throw Error(f.path() + ": layer " + S(l) + " has " + S(kvh) + " KV heads for " + S(h.n_head) + " query heads");
    if (h.n_ff[size_t(l)] <= 0) throw Error(f.path() + ": layer " + S(l) + " has no feed_forward_length");
  }
  for (int nr : {h.n_rot_full, h.n_rot_swa})
    if (nr <= 0 || nr % 2) throw Error(f.path() + ": invalid rope.dimension_count " + S(nr));
  if (h.n_rot_full > h.head_dim_full || h.n_rot_swa > h.head_dim_swa)
    throw Error(f.path() + ": rope.dimension_count exceeds the head dimension");
  if (shared > 0) {
    const int ks = h.n_kv_from_start;
    if (ks < 2 || !h.is_swa[size_t(ks - 2)] || h.is_swa[size_t(ks - 1)])
      throw Error(f.path() + ": KV sharing needs the last two KV layers to be [sliding, global]");
  }
  if (h.n_expert) {
    if (h.n_expert_used <= 0 || h.n_expert_used > h.n_expert || h.n_ff_exp <= 0)
      throw Error(f.path() + ": invalid expert_count / expert_used_count / expert_feed_forward_length");
  }
  const gguf::TensorInfo& emb = f.tensor("token_embd.weight");
  if (emb.n_dims != 2 || emb.ne[0] != h.n_embd || emb.ne[1] <= 0 || emb.ne[1] > (int64_t(1) << 24))
    throw Error(f.path() + ": tensor 'token_embd.weight' has shape " + emb.shape_string() + ", expected [" +
                S(h.n_embd) + ", n_vocab]");
  h.n_vocab = int(emb.ne[1]);
  return h;
}

namespace {

struct Layer {
  std::vector<float> attn_norm, q_norm, k_norm, post_attn_norm, ffn_norm, post_ffw_norm;
  Matrix wq, wk, wv, wo;
  Matrix gate, up, down;
  // MoE
  Matrix router;
  std::vector<float> router_scale, pre_ffw_norm_2, post_ffw_norm_1, post_ffw_norm_2, exp_down_scale;
  const gguf::TensorInfo* gate_up_exps = nullptr;
  const gguf::TensorInfo* gate_exps = nullptr;
  const gguf::TensorInfo* up_exps = nullptr;
  const gguf::TensorInfo* down_exps = nullptr;
  std::vector<uint8_t> expert_seen;  // experts whose pages were already asked for (moe_block)
  // Each expert's slices as matrices (mul_mat_id), [expert]; gate_up_e or gate_e + up_e.
  std::vector<Matrix> gate_up_e, gate_e, up_e, down_e;
  // PLE
  Matrix inp_gate, proj;
  std::vector<float> post_norm;
  float out_scale = 1.0f;
};

class Gemma4 final : public Model {
 public:
  Gemma4(std::shared_ptr<const gguf::File> file, const LoadOptions&) : file_(std::move(file)) {
    const gguf::File& f = *file_;
    if (f.header_only()) throw Error(f.path() + ": cannot run a model from a header-only read");
    hp_ = Gemma4Hparams::from_gguf(f);
    const Gemma4Hparams& h = hp_;
    info_.arch = std::string(f.get_string("general.architecture"));
    info_.name = std::string(f.opt_string("general.name").value_or(f.path()));
    info_.n_vocab = h.n_vocab;
    info_.n_embd = h.n_embd;
    info_.n_layer = h.n_layer;
    info_.n_ctx_train = h.n_ctx_train;
    for (const gguf::TensorInfo& t : f.tensors()) {
      info_.n_params += t.n_elements();
      info_.weight_bytes += t.n_bytes;
    }
    const int d = h.n_embd, H = h.n_head, L = h.n_layer, P = h.n_embd_per_layer;

    tok_embd_ = mat("token_embd.weight", d, h.n_vocab);
    lm_head_ = f.find_tensor("output.weight") ? mat("output.weight", d, h.n_vocab) : tok_embd_;
    output_norm_ = vec("output_norm.weight", d);
    if (std::find(h.is_swa.begin(), h.is_swa.end(), false) != h.is_swa.end() && f.find_tensor("rope_freqs.weight"))
      rope_freqs_ = vec("rope_freqs.weight", h.n_rot_full / 2);
    if (P > 0) {
      ple_tok_ = mat("per_layer_token_embd.weight", int64_t(P) * L, h.n_vocab);
      ple_proj_ = mat("per_layer_model_proj.weight", d, int64_t(P) * L);
      ple_proj_norm_ = vec("per_layer_proj_norm.weight", P);
    }
    layers_.resize(size_t(L));
    for (int l = 0; l < L; ++l) {
      Layer& y = layers_[size_t(l)];
      const std::string b = "blk." + S(l) + ".";
      const int hd = h.head_dim[size_t(l)], kvh = h.n_head_kv[size_t(l)], ff = h.n_ff[size_t(l)];
      y.attn_norm = vec(b + "attn_norm.weight", d);
      y.wq = mat(b + "attn_q.weight", d, int64_t(H) * hd);
      y.q_norm = vec(b + "attn_q_norm.weight", hd);
      if (h.owns_kv(l)) {
        y.wk = mat(b + "attn_k.weight", d, int64_t(kvh) * hd);
        if (f.find_tensor(b + "attn_v.weight")) y.wv = mat(b + "attn_v.weight", d, int64_t(kvh) * hd);
        y.k_norm = vec(b + "attn_k_norm.weight", hd);
      }
      y.wo = mat(b + "attn_output.weight", int64_t(H) * hd, d);
      y.post_attn_norm = vec(b + "post_attention_norm.weight", d);
      y.ffn_norm = vec(b + "ffn_norm.weight", d);
      y.gate = mat(b + "ffn_gate.weight", d, ff);
      y.up = mat(b + "ffn_up.weight", d, ff);
      y.down = mat(b + "ffn_down.weight", ff, d);
      y.post_ffw_norm = vec(b + "post_ffw_norm.weight", d);
      if (f.find_tensor(b + "ffn_gate_inp.weight")) {
        if (!h.n_expert) throw Error(f.path() + ": tensor '" + b + "ffn_gate_inp.weight' present but expert_count is 0");
        const int E = h.n_expert, fe = h.n_ff_exp;
        y.router = mat(b + "ffn_gate_inp.weight", d, E);
        y.router_scale = vec(b + "ffn_gate_inp.scale", d);
        y.pre_ffw_norm_2 = vec(b + "pre_ffw_norm_2.weight", d);
        y.post_ffw_norm_1 = vec(b + "post_ffw_norm_1.weight", d);
        y.post_ffw_norm_2 = vec(b + "post_ffw_norm_2.weight", d);
        if (f.find_tensor(b + "ffn_gate_up_exps.weight")) {
          y.gate_up_exps = tensor3(b + "ffn_gate_up_exps.weight", d, 2 * fe, E);
        } else {
          y.gate_exps = tensor3(b + "ffn_gate_exps.weight", d, fe, E);
          y.up_exps = tensor3(b + "ffn_up_exps.weight", d, fe, E);
        }
        y.down_exps = tensor3(b + "ffn_down_exps.weight", fe, d, E);
        auto slices = [E](const gguf::TensorInfo* t) {
          std::vector<Matrix> v;
          for (int e = 0; t && e < E; ++e) {
            v.push_back(Matrix::of(*t, e));
            v.back().mul_mat_id = true;
          }
          return v;
        };
        y.gate_up_e = slices(y.gate_up_exps);
        y.gate_e = slices(y.gate_exps);
        y.up_e = slices(y.up_exps);
        y.down_e = slices(y.down_exps);
        if (f.find_tensor(b + "ffn_down_exps.scale"))
          y.exp_down_scale = vec(b + "ffn_down_exps.scale", E);
        else
          y.exp_down_scale.assign(size_t(E), 1.0f);
      }
      if (P > 0) {
        y.inp_gate = mat(b + "inp_gate.weight", d, P);
        y.proj = mat(b + "proj.weight", P, d);
        y.post_norm = vec(b + "post_norm.weight", d);
      }
      if (f.find_tensor(b + "layer_output_scale.weight")) y.out_scale = vec(b + "layer_output_scale.weight", 1)[0];
    }
    // Fast-kernel copies of the weights that this machine packs (kernels::packs_at_load: by default Q4_0 on AMD
    // x86; Intel decodes faster from the rows as stored); the embedding table stays readable by row for token
    // lookups even when the LM head is tied to it (that copy is extra memory, which the memory plan counts).
    std::vector<Matrix*> ms = {&lm_head_, &ple_proj_};
    for (Layer& y : layers_)
      for (Matrix* m : {&y.wq, &y.wk, &y.wv, &y.wo, &y.gate, &y.up, &y.down, &y.router, &y.inp_gate, &y.proj})
        ms.push_back(m);
    packed_.pack(ms, {&tok_embd_});
  }

  const ModelInfo& info() const override { return info_; }

  std::vector<KvLayerSpec> kv_layout() const override {
    std::vector<KvLayerSpec> out;
    for (int l = 0; l < hp_.n_layer; ++l) {
      KvLayerSpec s;
      s.n_head_kv = hp_.n_head_kv[size_t(l)];
      s.head_dim = hp_.head_dim[size_t(l)];
      s.window = hp_.is_swa[size_t(l)] ? hp_.window : 0;
      s.source = hp_.kv_source(l);
      out.push_back(s);
    }
    return out;
  }

  void forward(const Batch& batch, KvCache& kv, ForwardOutput& out, ThreadPool& pool) override;

 private:
  // ---- binding helpers: every tensor's shape is checked against the hyperparameters
  const gguf::TensorInfo& expect(const std::string& name, std::initializer_list<int64_t> ne) const {
    const gguf::TensorInfo& t = file_->tensor(name);
    bool ok = t.n_dims == int(ne.size());
    size_t i = 0;
    for (int64_t x : ne) ok = ok && t.ne[i++] == x;
    if (!ok) {
      std::string want = "[";
      for (int64_t x : ne) want += (want.size() > 1 ? ", " : "") + S(x);
      throw Error(file_->path() + ": tensor '" + name + "' has shape " + t.shape_string() + ", expected " + want + "]");
    }
    return t;
  }
  Matrix mat(const std::string& name, int64_t n_in, int64_t n_out) const {
    const gguf::TensorInfo& t = expect(name, {n_in, n_out});
    kernels::dot_type_of(t.type, name.c_str());
    return Matrix::of(t);
  }
  const gguf::TensorInfo* tensor3(const std::string& name, int64_t a, int64_t b, int64_t c) const {
    const gguf::TensorInfo& t = expect(name, {a, b, c});
    kernels::dot_type_of(t.type, name.c_str());
    return &t;
  }
  std::vector<float> vec(const std::string& name, int64_t n) const {
    const gguf::TensorInfo& t = expect(name, {n});
    const gguf::TypeTraits& tt = gguf::type_traits(t.type);
    if (!tt.dequantize) throw Error(file_->path() + ": tensor '" + name + "' has unsupported type " + tt.name);
    std::vector<float> v(static_cast<size_t>(n));
    tt.dequantize(t.data, v.data(), n);
    return v;
  }

  void check_batch(const Batch& batch, const KvCache& kv) const;
  void forward_chunk(const Batch& batch, size_t begin, size_t end, KvCache& kv, ForwardOutput& out, int& out_row,
                     ThreadPool& pool);
  void attention_block(int l, const Batch& batch, size_t begin, int T, KvCache& kv, ThreadPool& pool);
  void moe_block(int l, int T, ThreadPool& pool);
  void rms_rows(const float* x, const std::vector<float>& w, float* y, int T, int n, ThreadPool& pool) const;

  std::shared_ptr<const gguf::File> file_;
  Gemma4Hparams hp_;
  ModelInfo info_;
  Matrix tok_embd_, lm_head_, ple_tok_, ple_proj_;
  kernels::PackedWeights packed_;
  std::vector<float> output_norm_, rope_freqs_, ple_proj_norm_;
  std::vector<Layer> layers_;

  // Scratch buffers, sized per chunk (no allocation once they have grown).
  // Activations of up to a ubatch of tokens (12 MB for an E2B FFN output at 512 tokens): on huge pages.
  using Scratch = std::vector<float, HugePageAllocator<float>>;
  Scratch x_, a_, q_, k_, v_, attn_, o_, g_, u_, f_, m_, ple_, ple_t_, exp_in_, exp_gu_, exp_h_, exp_y_;
  std::vector<float> router_logits_, scores_;
  std::vector<int> sel_;
  std::vector<float> sel_w_;
  kernels::EncodedActs acts_;
  DebugDump dbg_;
};

void Gemma4::rms_rows(const float* x, const std::vector<float>& w, float* y, int T, int n, ThreadPool& pool) const {
  const float eps = hp_.eps;
  const float* wp = w.empty() ? nullptr : w.data();
  pool.parallel_for(T, [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) kernels::rms_norm(x + t * n, wp, y + t * n, n, eps);
  });
}

void Gemma4::check_batch(const Batch& batch, const KvCache& kv) const {
  const size_t n = batch.tokens.size();
  if (batch.pos.size() != n || batch.seq.size() != n || batch.want_logits.size() != n)
    throw Error("batch arrays have different lengths");
  std::vector<int32_t> next(size_t(kv.options().n_seq));
  for (int s = 0; s < kv.options().n_seq; ++s) next[size_t(s)] = kv.n_past(s);
  for (size_t i = 0; i < n; ++i) {
    const int32_t tok = batch.tokens[i], s = batch.seq[i], p = batch.pos[i];
    if (tok < 0 || tok >= hp_.n_vocab)
      throw Error("token id " + S(tok) + " is outside the vocabulary (0.." + S(hp_.n_vocab - 1) + ")");
    if (s < 0 || s >= kv.options().n_seq) throw Error("sequence id " + S(s) + " is out of range");
    if (p != next[size_t(s)])
      throw Error("position " + S(p) + " of sequence " + S(s) + " does not continue its cache (expected " +
                  S(next[size_t(s)]) + ")");
    if (p >= kv.options().n_ctx)
      throw Error("position " + S(p) + " exceeds the context size " + S(kv.options().n_ctx));
    ++next[size_t(s)];
  }
}

void Gemma4::forward(const Batch& batch, KvCache& kv, ForwardOutput& out, ThreadPool& pool) {
  check_batch(batch, kv);
  dbg_.next_step();
  const int n_out = int(std::count(batch.want_logits.begin(), batch.want_logits.end(), 1));
  out.n_rows = n_out;
  out.logits.resize(size_t(n_out) * size_t(hp_.n_vocab));
  if (out.want_hidden) out.hidden.resize(size_t(n_out) * size_t(hp_.n_embd));
  int out_row = 0;
  const size_t ub = size_t(kv.options().max_ubatch);
  for (size_t b = 0; b < batch.size(); b += ub) forward_chunk(batch, b, std::min(batch.size(), b + ub), kv, out, out_row, pool);
}

void Gemma4::forward_chunk(const Batch& batch, size_t begin, size_t end, KvCache& kv, ForwardOutput& out,
                           int& out_row, ThreadPool& pool) {
  const Gemma4Hparams& h = hp_;
  const int T = int(end - begin);
  const int d = h.n_embd, P = h.n_embd_per_layer, L = h.n_layer;
  const size_t Td = size_t(T) * size_t(d);
  grow(x_, Td);
  grow(a_, Td);
  grow(o_, Td);
  grow(f_, Td);
  grow(m_, Td);

  // §4.2 input embedding, scaled by sqrt(d) in f32.
  const float emb_scale = std::sqrt(float(d));
  pool.parallel_for(T, [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) {
      float* xr = x_.data() + t * d;
      kernels::dequantize_row(tok_embd_, batch.tokens[begin + size_t(t)], xr);
      for (int i = 0; i < d; ++i) xr[i] *= emb_scale;
    }
  });

  dbg_.dump("inp_scaled", -1, x_.data(), Td);

  // §4.3 per-layer embeddings: ple[t][l] = (RMSNorm_w(proj(x)/sqrt(d))[l] + sqrt(P)·table[tok][l]) / sqrt(2)
  if (P > 0) {
    const size_t PL = size_t(P) * size_t(L);
    grow(ple_, size_t(T) * PL);
    grow(ple_t_, size_t(T) * PL);
    kernels::matmul(ple_proj_, x_.data(), T, d, ple_.data(), int64_t(PL), pool, acts_);
    const float proj_scale = 1.0f / std::sqrt(float(d));
    const float tok_scale = std::sqrt(float(P));
    const float mix_scale = 1.0f / std::sqrt(2.0f);
    pool.parallel_for(T, [&](int64_t b, int64_t e, int) {
      for (int64_t t = b; t < e; ++t) {
        float* c = ple_.data() + size_t(t) * PL;
        float* tt = ple_t_.data() + size_t(t) * PL;
        kernels::dequantize_row(ple_tok_, batch.tokens[begin + size_t(t)], tt);
        for (size_t i = 0; i < PL; ++i) c[i] *= proj_scale;
        for (int l = 0; l < L; ++l) kernels::rms_norm(c + l * P, ple_proj_norm_.data(), c + l * P, P, h.eps);
        for (size_t i = 0; i < PL; ++i) c[i] = (c[i] + tt[i] * tok_scale) * mix_scale;
      }
    });
  }

  for (int l = 0; l < L; ++l) {
    Layer& y = layers_[size_t(l)];
    // §4.4 attention: x = x + RMSNorm_w(Wo · attend(...), post_attention_norm)
    rms_rows(x_.data(), y.attn_norm, a_.data(), T, d, pool);
    dbg_.dump("attn_norm", l, a_.data(), Td);
    attention_block(l, batch, begin, T, kv, pool);
    dbg_.dump("kqv_out", l, attn_.data(), size_t(T) * size_t(y.wo.n_in));
    kernels::matmul(y.wo, attn_.data(), T, y.wo.n_in, o_.data(), d, pool, acts_);
    rms_rows(o_.data(), y.post_attn_norm, o_.data(), T, d, pool);
    dbg_.dump("attn_post_norm", l, o_.data(), Td);
    for (size_t i = 0; i < Td; ++i) x_[i] += o_[i];
    dbg_.dump("attn_out", l, x_.data(), Td);

    // §4.5 feed-forward: dense GeGLU MLP (the shared branch on MoE layers)
    const int ff = h.n_ff[size_t(l)];
    grow(g_, size_t(T) * size_t(ff));
    grow(u_, size_t(T) * size_t(ff));
    rms_rows(x_.data(), y.ffn_norm, a_.data(), T, d, pool);
    dbg_.dump("ffn_norm", l, a_.data(), Td);
    kernels::encode_acts(kernels::dot_type_of(y.gate.type), a_.data(), T, d, d, acts_, pool);
    if (kernels::dot_type_of(y.up.type) == acts_.type) {
      kernels::matmul_many({{y.gate, &acts_, 0, T, g_.data(), ff}, {y.up, &acts_, 0, T, u_.data(), ff}}, pool);
    } else {
      kernels::matmul(y.gate, acts_, g_.data(), ff, pool);
      kernels::matmul(y.up, a_.data(), T, d, u_.data(), ff, pool, acts_);
    }
    dbg_.dump("ffn_gate", l, g_.data(), size_t(T) * size_t(ff));
    dbg_.dump("ffn_up", l, u_.data(), size_t(T) * size_t(ff));
    pool.parallel_for(int64_t(T) * ff, [&](int64_t b, int64_t e, int) {
      kernels::geglu(g_.data() + b, u_.data() + b, g_.data() + b, e - b);
    }, 256, 4);
    dbg_.dump("ffn_geglu", l, g_.data(), size_t(T) * size_t(ff));
    kernels::matmul(y.down, g_.data(), T, ff, f_.data(), d, pool, acts_);
    dbg_.dump("ffn_out", l, f_.data(), Td);
    if (y.router) {
      rms_rows(f_.data(), y.post_ffw_norm_1, f_.data(), T, d, pool);
      moe_block(l, T, pool);  // writes the normalised expert mixture into m_
      for (size_t i = 0; i < Td; ++i) f_[i] += m_[i];
    }
    rms_rows(f_.data(), y.post_ffw_norm, f_.data(), T, d, pool);
    dbg_.dump("ffn_post_norm", l, f_.data(), Td);
    for (size_t i = 0; i < Td; ++i) x_[i] += f_[i];

    // PLE injection: x += RMSNorm_w(proj · (gelu(inp_gate · x) ⊙ ple[l]), post_norm)
    if (P > 0) {
      grow(g_, size_t(T) * size_t(P));
      kernels::matmul(y.inp_gate, x_.data(), T, d, g_.data(), P, pool, acts_);
      const size_t PL = size_t(P) * size_t(L);
      pool.parallel_for(T, [&](int64_t b, int64_t e, int) {
        for (int64_t t = b; t < e; ++t) {
          float* gr = g_.data() + size_t(t) * size_t(P);
          const float* pl = ple_.data() + size_t(t) * PL + size_t(l) * size_t(P);
          for (int i = 0; i < P; ++i) gr[i] = kernels::gelu(gr[i]) * pl[i];
        }
      });
      kernels::matmul(y.proj, g_.data(), T, P, o_.data(), d, pool, acts_);
      rms_rows(o_.data(), y.post_norm, o_.data(), T, d, pool);
      for (size_t i = 0; i < Td; ++i) x_[i] += o_[i];
    }
    // Layer scalar multiplies the whole residual stream.
    if (y.out_scale != 1.0f)
      for (size_t i = 0; i < Td; ++i) x_[i] *= y.out_scale;
    dbg_.dump("l_out", l, x_.data(), Td);
  }

  // Sequences advance only once the whole chunk is in the cache.
  for (int t = 0; t < T; ++t) {
    const size_t i = begin + size_t(t);
    kv.set_n_past(batch.seq[i], batch.pos[i] + 1);
  }

  // §4.6 output: final norm, tied LM head, soft-cap; only for the rows that asked for logits.
  std::vector<int> rows;
  for (int t = 0; t < T; ++t)
    if (batch.want_logits[begin + size_t(t)]) rows.push_back(t);
  if (rows.empty()) return;
  const int R = int(rows.size());
  for (int r = 0; r < R; ++r)
    kernels::rms_norm(x_.data() + size_t(rows[size_t(r)]) * size_t(d), output_norm_.data(),
                      a_.data() + size_t(r) * size_t(d), d, h.eps);
  dbg_.dump("result_norm", -1, a_.data(), size_t(R) * size_t(d));
  if (out.want_hidden)
    std::memcpy(out.hidden.data() + size_t(out_row) * size_t(d), a_.data(), size_t(R) * size_t(d) * sizeof(float));
  float* logits = out.logits.data() + size_t(out_row) * size_t(h.n_vocab);
  kernels::matmul(lm_head_, a_.data(), R, d, logits, h.n_vocab, pool, acts_);
  if (h.softcap > 0.0f) {
    pool.parallel_for(int64_t(R) * h.n_vocab, [&](int64_t b, int64_t e, int) {
      kernels::softcap(logits + b, e - b, h.softcap);
    }, 4096, 20);
  }
  dbg_.dump("result_output", -1, logits, size_t(R) * size_t(h.n_vocab));
  out_row += R;
}

void Gemma4::attention_block(int l, const Batch& batch, size_t begin, int T, KvCache& kv, ThreadPool& pool) {
  const Gemma4Hparams& h = hp_;
  Layer& y = layers_[size_t(l)];
  const bool swa = h.is_swa[size_t(l)];
  const int H = h.n_head, hd = h.head_dim[size_t(l)], kvh = h.n_head_kv[size_t(l)], d = h.n_embd;
  const int n_rot = swa ? h.n_rot_swa : h.n_rot_full;
  const float base = swa ? h.rope_base_swa : h.rope_base;
  const float* ff = (!swa && !rope_freqs_.empty()) ? rope_freqs_.data() : nullptr;
  const int qw = H * hd, kw = kvh * hd;
  grow(q_, size_t(T) * size_t(qw));
  grow(attn_, size_t(T) * size_t(qw));

  // Q, K and V read the same normalised input: encode it once, and run the products of that encoding together.
  const kernels::ActType at = kernels::dot_type_of(y.wq.type);
  kernels::encode_acts(at, a_.data(), T, d, d, acts_, pool);
  std::vector<kernels::MatmulJob> jobs = {{y.wq, &acts_, 0, T, q_.data(), qw}};
  auto mm = [&](const Matrix& w, float* out, int n_out) {
    if (kernels::dot_type_of(w.type) == at) {
      jobs.push_back({w, &acts_, 0, T, out, n_out});
    } else {  // (mixed-type files) its own encoding
      kernels::EncodedActs tmp;
      kernels::matmul(w, a_.data(), T, d, out, n_out, pool, tmp);
    }
  };
  if (h.owns_kv(l)) {
    grow(k_, size_t(T) * size_t(kw));
    grow(v_, size_t(T) * size_t(kw));
    mm(y.wk, k_.data(), kw);
    if (y.wv) mm(y.wv, v_.data(), kw);
  }
  kernels::matmul_many(jobs, pool);
  // K = V: one projection feeds both (26B/31B globals)
  if (h.owns_kv(l) && !y.wv) std::copy_n(k_.begin(), size_t(T) * size_t(kw), v_.begin());

  dbg_.dump("Qcur", l, q_.data(), size_t(T) * size_t(qw));
  if (h.owns_kv(l)) {
    dbg_.dump("Kcur", l, k_.data(), size_t(T) * size_t(kw));
    dbg_.dump("Vcur", l, v_.data(), size_t(T) * size_t(kw));
  }
  pool.parallel_for(T, [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) {
      const int32_t pos = batch.pos[begin + size_t(t)];
      float* q = q_.data() + size_t(t) * size_t(qw);
      for (int hh = 0; hh < H; ++hh) kernels::rms_norm(q + hh * hd, y.q_norm.data(), q + hh * hd, hd, h.eps);
      kernels::rope_neox(q, H, hd, n_rot, pos, base, ff);
      if (h.owns_kv(l)) {
        float* k = k_.data() + size_t(t) * size_t(kw);
        float* v = v_.data() + size_t(t) * size_t(kw);
        for (int g = 0; g < kvh; ++g) {
          kernels::rms_norm(k + g * hd, y.k_norm.data(), k + g * hd, hd, h.eps);
          kernels::rms_norm(v + g * hd, nullptr, v + g * hd, hd, h.eps);  // V norm has no weight
        }
        kernels::rope_neox(k, kvh, hd, n_rot, pos, base, ff);
      }
    }
  });
  dbg_.dump("Qcur_pos", l, q_.data(), size_t(T) * size_t(qw));
  if (h.owns_kv(l)) {
    dbg_.dump("Kcur_pos", l, k_.data(), size_t(T) * size_t(kw));
    dbg_.dump("Vcur_normed", l, v_.data(), size_t(T) * size_t(kw));
    for (int t = 0; t < T; ++t) {
      const size_t i = begin + size_t(t);
      kv.store(l, batch.seq[i], batch.pos[i], k_.data() + size_t(t) * size_t(kw), v_.data() + size_t(t) * size_t(kw));
    }
  }

  // Attend: query head hh of token t over positions [lo, pos] of its own sequence.
  const int src_kvh = h.n_head_kv[size_t(h.kv_source(l))];
  const int group = H / src_kvh;
  int32_t max_span = 1;
  for (int t = 0; t < T; ++t) max_span = std::max(max_span, batch.pos[begin + size_t(t)] + 1);
  if (swa) max_span = std::min(max_span, h.window);
  // Work items of `heads` query heads that share a KV head (each cache row is then read once for all of
  // them), split finer only when there would be too few items for the threads (decode).
  int heads = group;
  while (heads % 2 == 0 && int64_t(T) * (H / heads) < int64_t(pool.size())) heads /= 2;
  grow(scores_, size_t(pool.size()) * size_t(heads) * size_t(max_span));
  pool.parallel_for(int64_t(T) * (H / heads), [&](int64_t b, int64_t e, int thread) {
    float* sc = scores_.data() + size_t(thread) * size_t(heads) * size_t(max_span);
    for (int64_t i = b; i < e; ++i) {
      // Head-major order, and within a head the tokens zig-zag (first, last, second, second last, ...), so
      // that each thread's contiguous share mixes short and long causal spans even with a single KV group.
      const int z = int(i % T), hh = int(i / T) * heads;
      const int t = z % 2 == 0 ? z / 2 : T - 1 - z / 2;
      const size_t bi = begin + size_t(t);
      const int32_t pos = batch.pos[bi];
      const int32_t lo = swa ? std::max<int32_t>(0, pos - h.window + 1) : 0;
      const kernels::KvView view = kv.view(l, batch.seq[bi]);
      kernels::attend_heads(q_.data() + size_t(t) * size_t(qw) + size_t(hh) * size_t(hd), heads, hh / group, hd, view,
                            lo, pos, attn_.data() + size_t(t) * size_t(qw) + size_t(hh) * size_t(hd), sc, T > 1);
    }
  }, 1, int64_t(max_span) * hd * 2 * heads);
}

// §4.5 MoE: softmax router over rmsnorm(x)/sqrt(d)·scale, top-k, renormalise; each selected expert's
// GeGLU output is scaled by its per-expert scale and its routing weight; the mixture is RMSNorm'd.
// Tokens are grouped by expert so that each expert's weights are read once per chunk.
void Gemma4::moe_block(int l, int T, ThreadPool& pool) {
  const Gemma4Hparams& h = hp_;
  Layer& y = layers_[size_t(l)];
  const int d = h.n_embd, E = h.n_expert, K = h.n_expert_used, fe = h.n_ff_exp;

  // Router input and logits.
  rms_rows(x_.data(), {}, a_.data(), T, d, pool);
  const float rs = 1.0f / std::sqrt(float(d));
  for (int t = 0; t < T; ++t) {
    float* r = a_.data() + size_t(t) * size_t(d);
    for (int i = 0; i < d; ++i) r[i] = r[i] * rs * y.router_scale[size_t(i)];
  }
  grow(router_logits_, size_t(T) * size_t(E));
  kernels::matmul(y.router, a_.data(), T, d, router_logits_.data(), E, pool, acts_);
  grow(sel_, size_t(T) * size_t(K));
  grow(sel_w_, size_t(T) * size_t(K));
  std::vector<int> order(static_cast<size_t>(E));
  for (int t = 0; t < T; ++t) {
    float* p = router_logits_.data() + size_t(t) * size_t(E);
    kernels::ggml::softmax(p, E);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[a] > p[b]; });
    double sum = 0;
    for (int k = 0; k < K; ++k) sum += double(p[order[size_t(k)]]);
    const float denom = std::max(float(sum), 6.103515625e-5f);
    for (int k = 0; k < K; ++k) {
      sel_[size_t(t) * size_t(K) + size_t(k)] = order[size_t(k)];
      sel_w_[size_t(t) * size_t(K) + size_t(k)] = p[order[size_t(k)]] / denom;
    }
  }

  // Expert input, then per expert: gather its tokens, run gate/up, GeGLU, down; keep each (token, k) output.
  rms_rows(x_.data(), y.pre_ffw_norm_2, a_.data(), T, d, pool);
  grow(exp_y_, size_t(T) * size_t(K) * size_t(d));
  std::vector<std::vector<int>> slots(static_cast<size_t>(E));  // (t*K + k) indices per expert
  for (int i = 0; i < T * K; ++i) slots[size_t(sel_[size_t(i)])].push_back(i);
  // The first time an expert is chosen, ask the kernel to read its weights ahead: on a cold page cache all
  // of this layer's new experts then load in parallel, not one page fault at a time (a 26B-A4B file's first
  // token waited ~10 s on faults). Each expert is asked for once, so warm runs pay nothing.
  y.expert_seen.resize(size_t(E));
  for (int e = 0; e < E; ++e) {
    if (slots[size_t(e)].empty() || y.expert_seen[size_t(e)]) continue;
    y.expert_seen[size_t(e)] = 1;
    for (const std::vector<Matrix>* v : {&y.gate_up_e, &y.gate_e, &y.up_e, &y.down_e})
      if (!v->empty()) kernels::will_need((*v)[size_t(e)]);
  }
  // The expert input rows of slots s (slot t*K + k reads token t) into dst, stride d.
  auto gather = [&](const std::vector<int>& s, float* dst) {
    for (size_t j = 0; j < s.size(); ++j)
      std::memcpy(dst + j * size_t(d), a_.data() + size_t(s[j] / K) * size_t(d), size_t(d) * sizeof(float));
  };
  // GeGLU of the first n rows of exp_gu_ (gate half, up half) into exp_h_.
  auto geglu_rows = [&](int n) {
    grow(exp_h_, size_t(n) * size_t(fe));
    for (int r = 0; r < n; ++r) {
      const float* gu = exp_gu_.data() + size_t(r) * size_t(2 * fe);
      kernels::geglu(gu, gu + fe, exp_h_.data() + size_t(r) * size_t(fe), fe);
    }
  };
  // Expert e's outputs for its slots s (rows of out, stride d), scaled, into exp_y_ at their slots.
  auto scatter = [&](int e, const std::vector<int>& s, const float* out) {
    const float scale = y.exp_down_scale[size_t(e)];
    for (size_t j = 0; j < s.size(); ++j) {
      const float w = sel_w_[size_t(s[j])];
      const float* src = out + j * size_t(d);
      float* dst = exp_y_.data() + size_t(s[j]) * size_t(d);
      for (int i = 0; i < d; ++i) dst[i] = (src[i] * scale) * w;
    }
  };
  size_t most = 0;
  for (const std::vector<int>& s : slots) most = std::max(most, s.size());
  // (gate and up as separate tensors must share a dot type: they read one encoding of the inputs)
  const bool one_encoding =
      y.gate_up_exps || kernels::dot_type_of(y.gate_exps->type) == kernels::dot_type_of(y.up_exps->type);
  if (int64_t(most) < kernels::kTileMinTokens && one_encoding) {
    // Few tokens per expert (decode): every selected expert's gate/up in one hand-off to the pool, then every
    // down projection in another, instead of two matmuls (two barriers) per expert. Rows in expert order.
    const int rows = T * K;
    grow(exp_in_, size_t(rows) * size_t(d));
    std::vector<int> first(size_t(E) + 1, 0);  // expert e's rows: [first[e], first[e + 1])
    for (int e = 0; e < E; ++e) {
      gather(slots[size_t(e)], exp_in_.data() + size_t(first[size_t(e)]) * size_t(d));
      first[size_t(e) + 1] = first[size_t(e)] + int(slots[size_t(e)].size());
    }
    const gguf::TensorInfo* gu_t = y.gate_up_exps ? y.gate_up_exps : y.gate_exps;
    kernels::encode_acts(kernels::dot_type_of(gu_t->type), exp_in_.data(), rows, d, d, acts_, pool);
    grow(exp_gu_, size_t(rows) * size_t(2 * fe));
    std::vector<kernels::MatmulJob> jobs;
    for (int e = 0; e < E; ++e) {
      const int r0 = first[size_t(e)], n = first[size_t(e) + 1] - r0;
      if (!n) continue;
      float* gu = exp_gu_.data() + size_t(r0) * size_t(2 * fe);
      if (y.gate_up_exps) {
        jobs.push_back({y.gate_up_e[size_t(e)], &acts_, r0, n, gu, 2 * fe});
      } else {
        jobs.push_back({y.gate_e[size_t(e)], &acts_, r0, n, gu, 2 * fe});
        jobs.push_back({y.up_e[size_t(e)], &acts_, r0, n, gu + fe, 2 * fe});
      }
    }
    kernels::matmul_many(jobs, pool);
    geglu_rows(rows);
    kernels::encode_acts(kernels::dot_type_of(y.down_exps->type), exp_h_.data(), rows, fe, fe, acts_, pool);
    jobs.clear();
    for (int e = 0; e < E; ++e) {
      const int r0 = first[size_t(e)], n = first[size_t(e) + 1] - r0;
      if (n) jobs.push_back({y.down_e[size_t(e)], &acts_, r0, n, exp_in_.data() + size_t(r0) * size_t(d), d});
    }
    kernels::matmul_many(jobs, pool);  // exp_in_'s inputs are encoded: its rows take the outputs
    for (int e = 0; e < E; ++e)
      if (!slots[size_t(e)].empty())
        scatter(e, slots[size_t(e)], exp_in_.data() + size_t(first[size_t(e)]) * size_t(d));
  } else {
    for (int e = 0; e < E; ++e) {
      const std::vector<int>& s = slots[size_t(e)];
      if (s.empty()) continue;
      const int n = int(s.size());
      grow(exp_in_, size_t(n) * size_t(d));
      gather(s, exp_in_.data());
      grow(exp_gu_, size_t(n) * size_t(2 * fe));
      if (y.gate_up_exps) {
        kernels::matmul(y.gate_up_e[size_t(e)], exp_in_.data(), n, d, exp_gu_.data(), 2 * fe, pool, acts_);
      } else if (one_encoding) {  // encode (and tile) the inputs once for both halves
        kernels::encode_acts(kernels::dot_type_of(y.gate_exps->type), exp_in_.data(), n, d, d, acts_, pool);
        float* gu = exp_gu_.data();
        kernels::matmul_many({{y.gate_e[size_t(e)], &acts_, 0, n, gu, 2 * fe},
                              {y.up_e[size_t(e)], &acts_, 0, n, gu + fe, 2 * fe}},
                             pool);
      } else {
        kernels::matmul(y.gate_e[size_t(e)], exp_in_.data(), n, d, exp_gu_.data(), 2 * fe, pool, acts_);
        kernels::matmul(y.up_e[size_t(e)], exp_in_.data(), n, d, exp_gu_.data() + fe, 2 * fe, pool, acts_);
      }
      geglu_rows(n);
      kernels::matmul(y.down_e[size_t(e)], exp_h_.data(), n, fe, exp_in_.data(), d, pool, acts_);
      scatter(e, s, exp_in_.data());
    }
  }
  // Sum the K expert outputs of each token in selection order, then normalise.
  for (int t = 0; t < T; ++t) {
    float* mr = m_.data() + size_t(t) * size_t(d);
    const float* src = exp_y_.data() + size_t(t) * size_t(K) * size_t(d);
    std::memcpy(mr, src, size_t(d) * sizeof(float));
    for (int k = 1; k < K; ++k)
      for (int i = 0; i < d; ++i) mr[i] += src[size_t(k) * size_t(d) + size_t(i)];
  }
  rms_rows(m_.data(), y.post_ffw_norm_2, m_.data(), T, d, pool);
}

}  // namespace

std::unique_ptr<Model> make_gemma4(std::shared_ptr<const gguf::File> file, const LoadOptions& opt) {
  return std::make_unique<Gemma4>(std::move(file), opt);
}

}  // namespace hearth::models
