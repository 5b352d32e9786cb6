// hearth synth: write a random-weight Gemma 4 GGUF (test models, and real-model shapes for speed work).
#include <chrono>
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "core/error.h"
#include "gguf/reader.h"
#include "models/gemma4_synth.h"
#include "tokenizer/toy_vocab.h"

namespace hearth::cli {

namespace {

struct SynthArgs {
  std::string preset = "tiny-dense", out, vocab, tokenizer = "bpe", wtype = "F32", embd_type, router_type = "F32";
  models::SynthConfig o;  // overrides; fields left at their sentinel are taken from the preset
  int threads = 0;
  bool quiet = false;
};

gguf::GgmlType parse_type(const std::string& s) {
  auto t = gguf::type_from_name(s);
  if (!t) throw Error("unknown tensor type '" + s + "'");
  return *t;
}

int run_synth(const SynthArgs& a, const CLI::App& cmd) {
  models::SynthConfig c = models::synth_preset(a.preset);
  // Every override given on the command line replaces the preset's value.
  auto set = [&](const char* opt, auto& field, const auto& value) {
    if (cmd.count(opt)) field = value;
  };
  set("--layers", c.layers, a.o.layers);
  set("--d-model", c.d_model, a.o.d_model);
  set("--heads", c.heads, a.o.heads);
  set("--kv-heads", c.kv_heads, a.o.kv_heads);
  set("--kv-heads-full", c.kv_heads_full, a.o.kv_heads_full);
  set("--head-dim", c.head_dim, a.o.head_dim);
  set("--head-dim-full", c.head_dim_full, a.o.head_dim_full);
  set("--ffn", c.ffn, a.o.ffn);
  set("--window", c.window, a.o.window);
  set("--pattern", c.pattern, a.o.pattern);
  set("--n-vocab", c.vocab, a.o.vocab);
  set("--ctx", c.ctx, a.o.ctx);
  set("--experts", c.experts, a.o.experts);
  set("--experts-used", c.experts_used, a.o.experts_used);
  set("--expert-ffn", c.expert_ffn, a.o.expert_ffn);
  set("--fused-gate-up", c.fused_gate_up, a.o.fused_gate_up);
  set("--expert-down-scale", c.expert_down_scale, a.o.expert_down_scale);
  set("--ple-dim", c.ple_dim, a.o.ple_dim);
  set("--kv-shared", c.kv_shared, a.o.kv_shared);
  set("--double-wide", c.double_wide, a.o.double_wide);
  set("--k-eq-v", c.k_eq_v, a.o.k_eq_v);
  set("--softcap", c.softcap, a.o.softcap);
  set("--tied", c.tied, a.o.tied);
  set("--seed", c.seed, a.o.seed);
  set("--name", c.name, a.o.name);
  c.wtype = parse_type(a.wtype);
  c.router_type = parse_type(a.router_type);
  if (!a.embd_type.empty()) c.embd_type = parse_type(a.embd_type);

  std::unique_ptr<gguf::File> vocab_file;
  if (!a.vocab.empty()) vocab_file = std::make_unique<gguf::File>(gguf::File::open(a.vocab));
  if (a.tokenizer != "bpe" && a.tokenizer != "spm") throw Error("--tokenizer must be bpe or spm");
  const auto kind = a.tokenizer == "bpe" ? tokenizer::ToyKind::Bpe : tokenizer::ToyKind::Spm;
  const int n_vocab = c.vocab;
  auto vocab = [&](gguf::Writer& w) {
    return vocab_file ? tokenizer::copy_vocab(w, *vocab_file) : tokenizer::write_toy_vocab(w, n_vocab, kind);
  };
  const auto t0 = std::chrono::steady_clock::now();
  int last_pct = -1;
  auto progress = [&](uint64_t done, uint64_t total) {
    const int pct = total ? int(done * 100 / total) : 100;
    if (a.quiet || pct == last_pct || total < (64u << 20)) return;
    last_pct = pct;
    std::fprintf(stderr, "\rsynth: %3d%% of %.2f GB", pct, double(total) / 1e9);
    std::fflush(stderr);
  };
  const models::SynthSummary s = models::synth_gemma4(c, a.out, vocab, progress, a.threads);
  if (last_pct >= 0) std::fprintf(stderr, "\n");
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!a.quiet)
    std::printf("wrote %s: %.1f MB, %zu tensors, %.3f B parameters, %.1f s\n", a.out.c_str(), double(s.file_bytes) / 1e6,
                s.n_tensors, double(s.n_params) / 1e9, secs);
  return 0;
}

}  // namespace

Runner add_synth(CLI::App& app) {
  auto a = std::make_shared<SynthArgs>();
  CLI::App* c = app.add_subcommand("synth", "Write a random-weight Gemma 4 GGUF (test models; real shapes for speed work)");
  std::string presets;
  for (const auto& p : models::synth_preset_names()) presets += (presets.empty() ? "" : ", ") + p;
  c->add_option("--preset", a->preset, "Model shape: " + presets)->capture_default_str();
  c->add_option("-o,--out", a->out, "Output .gguf path")->required();
  c->add_option("--wtype", a->wtype, "Matrix type: F32, F16, BF16, Q8_0, Q4_0")->capture_default_str();
  c->add_option("--embd-type", a->embd_type, "Type of the embedding tables (default: --wtype)");
  c->add_option("--router-type", a->router_type, "Type of the MoE router matrix")->capture_default_str();
  c->add_option("--vocab", a->vocab, "Copy the tokenizer of this GGUF (e.g. the real Gemma 4 vocabulary)");
  c->add_option("--tokenizer", a->tokenizer, "Built-in toy tokenizer when --vocab is not given: bpe or spm")
      ->capture_default_str();
  c->add_option("--threads", a->threads, "Threads for weight generation (default: all)");
  c->add_flag("-q,--quiet", a->quiet, "No output");
  auto& o = a->o;
  c->add_option("--layers", o.layers);
  c->add_option("--d-model", o.d_model);
  c->add_option("--heads", o.heads);
  c->add_option("--kv-heads", o.kv_heads);
  c->add_option("--kv-heads-full", o.kv_heads_full);
  c->add_option("--head-dim", o.head_dim);
  c->add_option("--head-dim-full", o.head_dim_full);
  c->add_option("--ffn", o.ffn);
  c->add_option("--window", o.window);
  c->add_option("--pattern", o.pattern, "Layer pattern of S (sliding) and F (full), repeated");
  c->add_option("--n-vocab", o.vocab, "Size of the built-in vocabulary");
  c->add_option("--ctx", o.ctx);
  c->add_option("--experts", o.experts);
  c->add_option("--experts-used", o.experts_used);
  c->add_option("--expert-ffn", o.expert_ffn);
  c->add_option("--fused-gate-up", o.fused_gate_up,
                "Experts' gate and up in one tensor (ffn_gate_up_exps) or two (ffn_gate_exps, ffn_up_exps)");
  c->add_option("--expert-down-scale", o.expert_down_scale, "Write the per-expert ffn_down_exps.scale");
  c->add_option("--ple-dim", o.ple_dim, "Per-layer embedding width (0: none)");
  c->add_option("--kv-shared", o.kv_shared, "Trailing layers that reuse earlier layers' KV");
  c->add_option("--double-wide", o.double_wide, "Double the MLP width of KV-shared layers");
  c->add_option("--k-eq-v", o.k_eq_v, "none, full or all: layers without attn_v (V = K)");
  c->add_option("--softcap", o.softcap, "Final logit soft-cap (0: none)");
  c->add_option("--tied", o.tied, "Tie the output head to the token embeddings");
  c->add_option("--seed", o.seed);
  c->add_option("--name", o.name, "general.name");
  return [a, c] { return run_synth(*a, *c); };
}

}  // namespace hearth::cli
