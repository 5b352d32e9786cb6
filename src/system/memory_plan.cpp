#include "system/memory_plan.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "core/error.h"
#include "system/hardware.h"

namespace hearth::system {

namespace {
std::vector<int64_t> per_layer(const gguf::File& f, const std::string& key, int n_layer, std::optional<int64_t> def) {
  const gguf::Value* v = f.find(key);
  if (!v) {
    if (!def) throw Error(f.path() + ": metadata key '" + key + "' is missing");
    return std::vector<int64_t>(size_t(n_layer), *def);
  }
  std::vector<int64_t> out;
  if (v->is_array()) {
    out = v->int_array(key);
    if (int64_t(out.size()) != n_layer)
      throw Error(f.path() + ": '" + key + "' has " + std::to_string(out.size()) + " entries for " +
                  std::to_string(n_layer) + " layers");
  } else {
    out.assign(size_t(n_layer), v->as_int(key));
  }
  for (int64_t x : out)
    if (x < 0 || x > (int64_t(1) << 24)) throw Error(f.path() + ": '" + key + "' has invalid value " + std::to_string(x));
  return out;
}

int checked(const gguf::File& f, const std::string& key, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) throw Error(f.path() + ": metadata key '" + key + "' has invalid value " + std::to_string(v));
  return int(v);
}
}  // namespace

ModelShape ModelShape::from_gguf(const std::vector<const gguf::File*>& parts) {
  if (parts.empty()) throw Error("no GGUF file given");
  const gguf::File& f = *parts[0];
  ModelShape m;
  m.arch = std::string(f.get_string("general.architecture"));
  m.name = std::string(f.opt_string("general.name").value_or(""));
  const std::string A = m.arch + ".";
  m.n_layer = checked(f, A + "block_count", f.get_int(A + "block_count"), 1, 4096);
  m.n_embd = checked(f, A + "embedding_length", f.get_int(A + "embedding_length"), 1, 1 << 24);
  m.n_ctx_train = f.opt_int(A + "context_length").value_or(4096);
  if (m.n_ctx_train <= 0 || m.n_ctx_train > (int64_t(1) << 32)) throw Error(f.path() + ": invalid context_length");
  const auto heads = per_layer(f, A + "attention.head_count", m.n_layer, std::nullopt);
  m.n_head = checked(f, A + "attention.head_count", *std::max_element(heads.begin(), heads.end()), 1, 1 << 16);
  const auto heads_kv = per_layer(f, A + "attention.head_count_kv", m.n_layer, m.n_head);
  const int64_t kdim = f.opt_int(A + "attention.key_length").value_or(m.n_embd / m.n_head);
  const int64_t vdim = f.opt_int(A + "attention.value_length").value_or(kdim);
  const int64_t kdim_swa = f.opt_int(A + "attention.key_length_swa").value_or(kdim);
  const int64_t vdim_swa = f.opt_int(A + "attention.value_length_swa").value_or(kdim_swa);
  for (auto [k, v] : {std::pair{"key_length", kdim}, {"value_length", vdim}, {"key_length_swa", kdim_swa},
                      {"value_length_swa", vdim_swa}})
    checked(f, A + "attention." + k, v, 1, 1 << 16);
  const auto ffn = per_layer(f, A + "feed_forward_length", m.n_layer, 0);
  m.ffn_max = int(*std::max_element(ffn.begin(), ffn.end()));
  m.ffn_max = std::max<int>(m.ffn_max, int(f.opt_int(A + "expert_feed_forward_length").value_or(0) *
                                           std::max<int64_t>(1, f.opt_int(A + "expert_used_count").value_or(1))));
  m.n_embd_per_layer = checked(f, A + "embedding_length_per_layer_input",
                               f.opt_int(A + "embedding_length_per_layer_input").value_or(0), 0, 1 << 20);
  m.shared_kv_layers = checked(f, A + "attention.shared_kv_layers",
                               f.opt_int(A + "attention.shared_kv_layers").value_or(0), 0, m.n_layer - 1);

  std::vector<bool> swa(size_t(m.n_layer), false);
  if (const gguf::Value* pat = f.find(A + "attention.sliding_window_pattern"); pat && pat->is_array()) {
    const auto p = pat->int_array(A + "attention.sliding_window_pattern");
    if (int64_t(p.size()) != m.n_layer)
      throw Error(f.path() + ": attention.sliding_window_pattern has " + std::to_string(p.size()) + " entries for " +
                  std::to_string(m.n_layer) + " layers");
    for (size_t i = 0; i < p.size(); ++i) swa[i] = p[i] != 0;
  }
  const bool any_swa = std::find(swa.begin(), swa.end(), true) != swa.end();
  if (any_swa)
    m.window = checked(f, A + "attention.sliding_window", f.get_int(A + "attention.sliding_window"), 1, 1 << 24);

  // Tensors of every part: weights, and which layers have attn_k without attn_v (K = V).
  std::set<std::string, std::less<>> names;
  for (const gguf::File* p : parts) {
    for (const gguf::TensorInfo& t : p->tensors()) {
      auto& e = m.weights_by_type[gguf::type_name(t.type)];
      e.first++;
      e.second += t.n_bytes;
      m.weight_bytes += t.n_bytes;
      m.n_params += t.n_elements();
      names.insert(t.name);
      if (t.name == "token_embd.weight") {
        m.tied_embd_bytes = t.n_bytes, m.tied_embd_type = t.type;  // tied unless output.weight turns up
        if (t.n_dims == 2) m.n_vocab = int(std::min<int64_t>(t.ne[1], 1 << 30));
      }
    }
  }
  if (names.count("output.weight")) m.tied_embd_bytes = 0;
  if (!m.n_vocab) {
    if (const gguf::Value* tok = f.find("tokenizer.ggml.tokens"); tok && tok->is_array())
      m.n_vocab = int(std::min<uint64_t>(tok->count, 1 << 30));
  }

  const int kv_from_start = m.n_layer - m.shared_kv_layers;
  for (int l = 0; l < m.n_layer; ++l) {
    LayerShape s;
    s.swa = swa[size_t(l)];
    s.n_head_kv = int(heads_kv[size_t(l)]);
    s.key_dim = int(s.swa ? kdim_swa : kdim);
    s.value_dim = int(s.swa ? vdim_swa : vdim);
    s.owns_kv = l < kv_from_start;
    const std::string b = "blk." + std::to_string(l) + ".";
    s.k_eq_v = names.count(b + "attn_k.weight") && !names.count(b + "attn_v.weight");
    m.layers.push_back(s);
  }
  return m;
}

gguf::GgmlType kv_type_from_name(const std::string& name) {
  std::string n;
  for (char c : name) n += char(std::tolower(static_cast<unsigned char>(c)));
  if (n == "f32") return gguf::GgmlType::F32;
  if (n == "f16") return gguf::GgmlType::F16;
  if (n == "bf16") return gguf::GgmlType::BF16;
  if (n == "q8_0") return gguf::GgmlType::Q8_0;
  if (n == "q4_0") return gguf::GgmlType::Q4_0;
  throw Error("unknown KV cache type '" + name + "' (use f16, f32, bf16, q8_0 or q4_0)");
}

uint64_t kv_bytes_per_position(const LayerShape& l, gguf::GgmlType kv_type) {
  if (!l.owns_kv) return 0;
  const gguf::TypeTraits& tt = gguf::type_traits(kv_type);
  auto row = [&](int64_t n) { return uint64_t((n + tt.block_size - 1) / tt.block_size) * uint64_t(tt.type_size); };
  const uint64_t k = row(int64_t(l.n_head_kv) * l.key_dim);
  const uint64_t v = row(int64_t(l.n_head_kv) * l.value_dim);
  return k + v;
}

namespace {
int64_t positions(const ModelShape& m, const LayerShape& l, int64_t ctx) {
  return l.swa ? std::min<int64_t>(ctx, m.window) : ctx;
}
}  // namespace

uint64_t kv_cache_bytes(const ModelShape& m, int64_t ctx, gguf::GgmlType kv_type) {
  uint64_t total = 0;
  for (const LayerShape& l : m.layers) total += uint64_t(positions(m, l, ctx)) * kv_bytes_per_position(l, kv_type);
  return total;
}

MemoryPlan make_plan(const ModelShape& m, const PlanOptions& opt) {
  if (opt.ctx <= 0) throw Error("the context length must be positive");
  if (opt.parallel <= 0) throw Error("the number of parallel sequences must be positive");
  if (opt.ubatch <= 0) throw Error("the batch size must be positive");
  MemoryPlan p;
  p.ctx = opt.ctx;
  p.parallel = opt.parallel;
  p.ubatch = opt.ubatch;
  p.kv_type = opt.kv_type;
  p.weights = m.weight_bytes;
  const uint64_t par = uint64_t(opt.parallel);
  for (const LayerShape& l : m.layers) {
    const uint64_t per_pos = kv_bytes_per_position(l, opt.kv_type);
    const uint64_t b = uint64_t(positions(m, l, opt.ctx)) * per_pos;
    p.kv_per_layer.push_back(b);
    p.kv += b * par;
    if (l.swa && l.owns_kv) {
      const int64_t ring = std::min<int64_t>(opt.ctx, int64_t(m.window) - 1 + opt.ubatch);
      p.ring += uint64_t(std::max<int64_t>(0, ring - positions(m, l, opt.ctx))) * per_pos * par;
    }
  }
  int64_t q_dim = 0;
  for (const LayerShape& l : m.layers) q_dim = std::max<int64_t>(q_dim, int64_t(m.n_head) * std::max(l.key_dim, l.value_dim));
  const uint64_t ub = uint64_t(std::min<int64_t>(opt.ubatch, opt.ctx));
  p.compute = 4 * (ub * uint64_t(4 * int64_t(m.n_embd) + 2 * q_dim + 3 * int64_t(m.ffn_max) +
                                 int64_t(m.n_embd_per_layer) * m.n_layer) +
                   par * uint64_t(m.n_vocab) + uint64_t(m.n_head) * uint64_t(opt.ctx)) +
              (uint64_t(64) << 20);
  if (m.tied_embd_bytes && opt.packs_at_load && opt.packs_at_load(m.tied_embd_type, m.n_vocab))
    p.packed = m.tied_embd_bytes;  // the packed layouts hold exactly the source's bytes
  for (const auto& [what, bytes] : opt.extras) p.extras += bytes;
  p.total = p.weights + p.kv + p.ring + p.compute + p.packed + p.extras;
  return p;
}

uint64_t safety_margin(uint64_t usable) { return std::max<uint64_t>(uint64_t(256) << 20, usable / 20); }

FitResult check_fit(const ModelShape& m, const PlanOptions& opt, uint64_t usable) {
  FitResult r;
  r.plan = make_plan(m, opt);
  r.usable = usable;
  r.margin = safety_margin(usable);
  r.budget = usable > r.margin ? usable - r.margin : 0;
  r.fits = r.plan.total <= r.budget;
  // The plan grows with ctx: binary search for the largest context that fits.
  auto fits_at = [&](int64_t c) {
    PlanOptions o = opt;
    o.ctx = c;
    return make_plan(m, o).total <= r.budget;
  };
  const int64_t hi_limit = std::max<int64_t>(m.n_ctx_train, 1);
  if (fits_at(1)) {
    int64_t lo = 1, hi = hi_limit;
    if (fits_at(hi)) {
      lo = hi;
    } else {
      while (hi - lo > 1) {
        const int64_t mid = lo + (hi - lo) / 2;
        (fits_at(mid) ? lo : hi) = mid;
      }
    }
    r.largest_ctx = lo >= 256 ? lo / 256 * 256 : lo;
  }
  return r;
}

std::string smaller_quant_that_fits(const FitResult& r, const std::map<std::string, uint64_t>& quant_sizes) {
  std::string best;
  uint64_t best_size = 0;
  const uint64_t rest = r.plan.total - r.plan.weights;
  for (const auto& [q, size] : quant_sizes) {
    if (size >= r.plan.weights || rest + size > r.budget) continue;
    if (size > best_size) best = q, best_size = size;
  }
  return best;
}

FitResult require_fit(const ModelShape& m, const PlanOptions& opt, uint64_t usable, const std::string& usable_source,
                      bool force) {
  FitResult r = check_fit(m, opt, usable);
  if (r.fits || force) return r;
  std::string msg = "the model does not fit in memory at context " + std::to_string(opt.ctx) +
                    (opt.parallel > 1 ? " x " + std::to_string(opt.parallel) + " sequences" : "") + ": it needs " +
                    format_bytes(r.plan.total) + " (weights " + format_bytes(r.plan.weights) + ", KV cache " +
                    format_bytes(r.plan.kv + r.plan.ring) + ", compute " + format_bytes(r.plan.compute) +
                    (r.plan.packed ? ", packed LM head " + format_bytes(r.plan.packed) : "") +
                    (r.plan.extras ? ", extras " + format_bytes(r.plan.extras) : "") + "), the budget is " +
                    format_bytes(r.budget) + " (" + format_bytes(usable) + " usable from " + usable_source +
                    ", minus a " + format_bytes(r.margin) + " margin). ";
  if (r.largest_ctx > 0) msg += "The largest context that fits is " + std::to_string(r.largest_ctx) + " (use --ctx " +
                                std::to_string(r.largest_ctx) + "), or pass --force to load anyway.";
  else msg += "It does not fit at any context: use a smaller quantisation, or pass --force to load anyway.";
  throw Error(msg);
}

FitResult require_fit_file(const std::string& path, const PlanOptions& opt, bool force) {
  std::vector<gguf::File> files;
  files.push_back(gguf::File::open(path));
  // FILE-00001-of-0000N.gguf: the other parts hold the rest of the weights.
  const size_t n = path.size();
  if (n > 20 && path.compare(n - 5, 5, ".gguf") == 0 && path.compare(n - 20, 7, "-00001-") == 0 &&
      path.compare(n - 14, 4, "-of-") == 0) {
    const int count = std::min(999, std::atoi(path.substr(n - 10, 5).c_str()));
    for (int i = 2; i <= count; ++i) {
      char part[16];
      std::snprintf(part, sizeof part, "%05d", i);
      files.push_back(gguf::File::open(path.substr(0, n - 19) + part + path.substr(n - 14)));
    }
  }
  std::vector<const gguf::File*> parts;
  for (const gguf::File& f : files) parts.push_back(&f);
  const ModelShape m = ModelShape::from_gguf(parts);
  const Hardware hw = probe();
  return require_fit(m, opt, hw.usable, hw.usable_source, force);
}

}  // namespace hearth::system
