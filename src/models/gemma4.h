// Gemma 4 (general.architecture = "gemma4"): E2B, E4B, 26B-A4B (MoE) and 31B, as specified in
// ../shared/docs/GEMMA4.md and computed by llama.cpp.
#pragma once
#include <memory>
#include <vector>

#include "models/model.h"

namespace hearth::models {

struct Gemma4Hparams {
  int n_layer = 0, n_embd = 0, n_head = 0, n_vocab = 0, n_ctx_train = 0;
  std::vector<int> n_head_kv, head_dim, n_ff;  // per layer
  std::vector<bool> is_swa;                     // per layer: sliding-window attention
  int head_dim_full = 0, head_dim_swa = 0;
  int n_rot_full = 0, n_rot_swa = 0;
  float rope_base = 1e6f, rope_base_swa = 1e4f;
  int window = 0;
  float eps = 1e-6f;
  float softcap = 30.0f;
  int n_embd_per_layer = 0;  // PLE width P (0 = none)
  int n_kv_from_start = 0;   // layers [0, n) write a KV cache; later layers share one
  int n_expert = 0, n_expert_used = 0, n_ff_exp = 0;

  static Gemma4Hparams from_gguf(const gguf::File& f);
  bool owns_kv(int l) const { return l < n_kv_from_start; }
  // The layer whose cache layer l reads (GEMMA4.md §1.1: shared SWA layers read n_kv-2, global n_kv-1).
  int kv_source(int l) const { return owns_kv(l) ? l : n_kv_from_start - (is_swa[size_t(l)] ? 2 : 1); }
};

std::unique_ptr<Model> make_gemma4(std::shared_ptr<const gguf::File> file, const LoadOptions& opt);

}  // namespace hearth::models
