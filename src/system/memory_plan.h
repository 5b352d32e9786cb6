// The memory a model needs, from its GGUF header alone (no tensor data: a local file's header, or the first
// megabytes of a remote file fetched with HTTP Range requests), and whether that fits the machine.
//
// The plan, for a context of `ctx` positions per sequence and `parallel` sequences (server slots):
//
//   weights  = sum of every tensor's bytes (all parts of a split model), listed by tensor type; the vision
//              projector and a draft model are added as extra files when used.
//   KV cache = parallel x sum over the layers that own a cache (shared-KV layers own nothing) of
//                positions(l) x n_head_kv(l) x (key_dim(l) + value_dim(l)) x bytes per element
//              positions(l) = min(ctx, W) on sliding-window layers, ctx on global layers;
//              K=V layers (attn_k but no attn_v) still cache both: K is normed with a weight and roped, V is
//              not (GEMMA4.md §4.4), so only the projection is shared; element bytes: F32 4, F16 2,
//              Q8_0 34/32, Q4_0 18/32 (rows rounded up to whole blocks).
//   ring     = what hearth's runtime holds beyond the window so that a batch of `ubatch` tokens sees its whole
//              window: parallel x (min(ctx, W - 1 + ubatch) - min(ctx, W)) positions per sliding layer.
//   compute  = an estimate of the runtime's buffers (documented, not measured):
//              4 B x [ubatch x (4 d + 2 q_dim + 3 ffn_max + P x L)   activations of one batch
//                     + parallel x n_vocab                            one row of logits per slot
//                     + n_head x ctx]                                 attention scores of a query row
//              + 64 MiB (thread stacks, tokenizer tables, allocator slack).
//   packed   = a packed copy of a tied embedding table (no output.weight: the LM head is token_embd), when the
//              runtime packs that type on this machine (PlanOptions::packs_at_load): the LM head is read
//              from the copy, while the table's own rows stay mapped for token lookups. Other packed
//              matrices replace their source pages and add nothing.
//   total    = weights + KV cache + ring + compute + packed + extras.
//
// It fits when total <= usable - margin, margin = max(256 MiB, 5 % of usable).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "gguf/reader.h"
#include "gguf/types.h"

namespace hearth::system {

struct LayerShape {
  bool swa = false;
  int n_head_kv = 0;
  int key_dim = 0;
  int value_dim = 0;
  bool owns_kv = true;  // false: a shared-KV layer reading an earlier layer's cache
  bool k_eq_v = false;  // one projection feeds K and V (26B/31B global layers); both are still cached
};

struct ModelShape {
  std::string arch, name;
  int n_layer = 0, n_embd = 0, n_head = 0, n_vocab = 0, window = 0, ffn_max = 0, n_embd_per_layer = 0;
  int64_t n_ctx_train = 0;
  int shared_kv_layers = 0;
  std::vector<LayerShape> layers;
  uint64_t weight_bytes = 0;
  int64_t n_params = 0;
  std::map<std::string, std::pair<size_t, uint64_t>> weights_by_type;  // type -> (tensors, bytes)
  // The token embedding table when the LM head is tied to it (no output.weight); 0 bytes otherwise.
  uint64_t tied_embd_bytes = 0;
  gguf::GgmlType tied_embd_type = gguf::GgmlType::F32;

  // `parts`: every file of a (split) model, header-only parses are enough. Throws hearth::Error.
  static ModelShape from_gguf(const std::vector<const gguf::File*>& parts);
  static ModelShape from_gguf(const gguf::File& f) { return from_gguf(std::vector<const gguf::File*>{&f}); }
};

struct PlanOptions {
  int64_t ctx = 4096;
  int parallel = 1;
  gguf::GgmlType kv_type = gguf::GgmlType::F16;
  int ubatch = 512;
  std::vector<std::pair<std::string, uint64_t>> extras;  // ("vision projector", bytes), ("draft model", bytes)
  // Whether the runtime keeps a packed copy of a matrix of this type and row count (kernels::packs_at_load,
  // passed in by the caller: this layer does not see the kernels). Empty: nothing is packed.
  std::function<bool(gguf::GgmlType, int64_t n_rows)> packs_at_load;
};

// "f16", "f32", "bf16", "q8_0", "q4_0" (any case). Throws hearth::Error.
gguf::GgmlType kv_type_from_name(const std::string& name);

struct MemoryPlan {
  int64_t ctx = 0;
  int parallel = 1;
  int ubatch = 512;
  gguf::GgmlType kv_type = gguf::GgmlType::F16;
  uint64_t weights = 0;
  uint64_t kv = 0;            // all slots
  std::vector<uint64_t> kv_per_layer;  // one slot
  uint64_t ring = 0;
  uint64_t compute = 0;
  uint64_t packed = 0;  // packed copy of a tied embedding table (see above)
  uint64_t extras = 0;
  uint64_t total = 0;
};

// Bytes of one position of layer `l`'s cache (0 for layers without their own cache).
uint64_t kv_bytes_per_position(const LayerShape& l, gguf::GgmlType kv_type);
// The KV cache of one sequence of `ctx` positions (the formula above, without the ring).
uint64_t kv_cache_bytes(const ModelShape& m, int64_t ctx, gguf::GgmlType kv_type);
MemoryPlan make_plan(const ModelShape& m, const PlanOptions& opt);

uint64_t safety_margin(uint64_t usable);

struct FitResult {
  MemoryPlan plan;
  uint64_t usable = 0, margin = 0, budget = 0;
  bool fits = false;
  // The largest context (per slot, a multiple of 256 when >= 256, at most the trained context) whose plan
  // fits the budget; 0 when not even one position fits.
  int64_t largest_ctx = 0;
};
FitResult check_fit(const ModelShape& m, const PlanOptions& opt, uint64_t usable);

// Other quantisations of the same model (name -> bytes of its files): the largest whose weights, with the rest
// of this plan unchanged, fit the budget. Empty when none does (or none is smaller).
std::string smaller_quant_that_fits(const FitResult& r, const std::map<std::string, uint64_t>& quant_sizes);

// What loaders (`serve`, `run`) call before loading: throws hearth::Error with the plan and the nearest option
// that fits (the largest context, or nothing fits) unless `force`. `usable` comes from system::probe().
FitResult require_fit(const ModelShape& m, const PlanOptions& opt, uint64_t usable, const std::string& usable_source,
                      bool force);
// The same for a local GGUF file (all split parts are read when FILE is part 1 of N); probes the machine
// (HEARTH_MEM_LIMIT honoured).
FitResult require_fit_file(const std::string& path, const PlanOptions& opt, bool force);

}  // namespace hearth::system
