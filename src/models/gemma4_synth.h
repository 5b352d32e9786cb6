// `hearth synth`: random-weight Gemma 4 GGUF files with the real architectures' shapes (tiny test models,
// E2B, E4B, 26B-A4B, 31B) that hearth and llama.cpp both load. Weights are deterministic for a given seed
// (generated in independently seeded chunks, so any thread count writes the same bytes) and streamed to
// disk, so a 15 GB file needs little memory. Initialisation follows ../shared/tools/make_gemma4.py (scales
// chosen so activations stay O(1) and the final soft-cap is exercised); the random numbers differ.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "gguf/types.h"
#include "gguf/writer.h"

namespace hearth::models {

struct SynthConfig {
  std::string preset;
  int layers = 6, d_model = 256, heads = 4, kv_heads = 2, kv_heads_full = 0, head_dim = 64, head_dim_full = 0;
  int ffn = 512, window = 16;
  std::string pattern = "SSF";  // S = sliding window, F = full attention, repeated over the layers
  int vocab = 1024, ctx = 8192;
  int experts = 0, experts_used = 0, expert_ffn = 0;
  bool fused_gate_up = true, expert_down_scale = true;
  int ple_dim = 0, kv_shared = 0;
  bool double_wide = false;
  std::string k_eq_v = "none";  // none | full | all: layers whose V is K (no attn_v tensor)
  float rope_base = 1e6f, rope_base_swa = 1e4f, partial_rotary = 0.25f, rms_eps = 1e-6f, softcap = 30.0f;
  bool layer_scale = true, tied = true;
  uint64_t seed = 1234;
  float gain = 1.0f, router_std = 2.0f, final_norm_gain = 4.0f, post_norm_gain = 2.0f;
  gguf::GgmlType wtype = gguf::GgmlType::F32;
  std::optional<gguf::GgmlType> embd_type;  // token/per-layer embeddings and untied output; default wtype
  gguf::GgmlType router_type = gguf::GgmlType::F32;
  std::string name;  // general.name; default "random-gemma4-<preset>"
};

// Presets: tiny-dense, tiny-moe, tiny-ple, e2b, e4b, 26b-a4b, 31b. Throws hearth::Error for others.
SynthConfig synth_preset(const std::string& name);
std::vector<std::string> synth_preset_names();

// Writes the tokenizer.* keys and returns the vocabulary size (which then overrides config.vocab).
using VocabWriter = std::function<int(gguf::Writer&)>;
// Called with bytes written so far and the total.
using SynthProgress = std::function<void(uint64_t done, uint64_t total)>;

struct SynthSummary {
  uint64_t file_bytes = 0, n_params = 0;
  size_t n_tensors = 0;
};

// Validates the configuration (clear errors for impossible shapes) and writes the file (PATH.tmp, then
// renamed). threads <= 0: all hardware threads.
SynthSummary synth_gemma4(SynthConfig config, const std::string& path, const VocabWriter& vocab,
                          const SynthProgress& progress = {}, int threads = 0);

}  // namespace hearth::models
