// hearth fit: will this model fit this machine? From the GGUF header alone (a local file, or a remote one
// read with a few HTTP Range requests), before download and before load.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/fit_report.h"
#include "core/error.h"
#include "gguf/reader.h"
#include "store/remote.h"
#include "system/hardware.h"
#include "system/memory_plan.h"

namespace hearth::cli {

namespace {
struct FitArgs {
  std::string ref;
  int64_t ctx = 0;
  int parallel = 1;
  std::string kv_type = "f16";
  int ubatch = 512;
  std::string mem_limit;
  std::string mmproj, draft, registry;
  bool json = false;
};

// FILE-00001-of-00003.gguf -> every part, in order (the parts must all exist).
std::vector<std::string> split_parts(const std::string& path) {
  const auto sp = store::parse_split_name(path);
  if (!sp || sp->index != 1) return {path};
  if (sp->count > 999) throw Error(path + ": invalid split count");
  std::vector<std::string> out;
  for (int i = 1; i <= sp->count; ++i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "-%05d-of-%05d.gguf", i, sp->count);
    out.push_back(sp->prefix + buf);
    if (!std::filesystem::exists(out.back())) throw Error("split part '" + out.back() + "' is missing");
  }
  return out;
}

uint64_t weights_of(const std::string& path) {
  const gguf::File f = gguf::File::open(path);
  uint64_t n = 0;
  for (const auto& t : f.tensors()) n += t.n_bytes;
  return n;
}
}  // namespace

int run_fit(const FitArgs& a) {
  system::PlanOptions opt = machine_plan_options();
  opt.parallel = a.parallel;
  opt.kv_type = system::kv_type_from_name(a.kv_type);
  opt.ubatch = a.ubatch;
  if (!a.mmproj.empty()) opt.extras.push_back({"vision projector", weights_of(a.mmproj)});
  if (!a.draft.empty()) opt.extras.push_back({"draft model", weights_of(a.draft)});
  std::optional<uint64_t> limit;
  if (!a.mem_limit.empty()) limit = system::parse_size(a.mem_limit);
  const system::Hardware hw = system::probe({}, limit);

  FitSource src;
  if (std::filesystem::exists(a.ref)) {
    for (const std::string& p : split_parts(a.ref)) src.files.push_back(gguf::File::open(p));
    src.description = a.ref;
  } else {
    src = fetch_remote_header(a.ref, a.registry);
  }
  for (const auto& e : src.extras) opt.extras.push_back(e);
  std::vector<const gguf::File*> parts;
  for (const gguf::File& f : src.files) parts.push_back(&f);
  const system::ModelShape shape = system::ModelShape::from_gguf(parts);
  opt.ctx = a.ctx > 0 ? a.ctx : std::min<int64_t>(shape.n_ctx_train, 4096);
  const system::FitResult r = system::check_fit(shape, opt, hw.usable);
  if (a.json) {
    std::printf("%s\n", fit_json(shape, r, hw, src).dump(2).c_str());
  } else {
    print_fit(shape, r, hw, src);
  }
  return r.fits ? 0 : 3;
}

Runner add_fit(CLI::App& app) {
  auto a = std::make_shared<FitArgs>();
  CLI::App* c = app.add_subcommand(
      "fit", "Will a model fit this machine? Memory plan from the GGUF header only (exit 0: fits, 3: does not)");
  c->add_option("model", a->ref, "A .gguf file, or a reference (hf.co/ORG/REPO:QUANT, gemma4:e2b, ...)")->required();
  c->add_option("-c,--ctx", a->ctx, "Context length per sequence (default: 4096, or the trained context if smaller)");
  c->add_option("--parallel", a->parallel, "Parallel sequences (server slots), each with its own KV cache");
  c->add_option("--kv-type", a->kv_type, "KV cache type: f16, f32, bf16, q8_0, q4_0");
  c->add_option("--ubatch", a->ubatch, "Tokens per forward pass (prompt batch)");
  c->add_option("--mem-limit", a->mem_limit, "Pretend the machine has this much usable memory (e.g. 8G)");
  c->add_option("--mmproj", a->mmproj, "Vision projector GGUF to include");
  c->add_option("--draft", a->draft, "Draft model GGUF to include");
  c->add_option("--registry", a->registry, "OCI registry base URL for OCI references");
  c->add_flag("--json", a->json, "Machine-readable output");
  return [a] { return run_fit(*a); };
}

}  // namespace hearth::cli

namespace hearth::cli {

namespace {
std::string kv_summary(const system::ModelShape& m) {
  int swa = 0, global = 0, shared = 0, kv_only = 0;
  for (const auto& l : m.layers) {
    if (!l.owns_kv) {
      ++shared;
      continue;
    }
    (l.swa ? swa : global)++;
    if (l.k_eq_v) ++kv_only;
  }
  char buf[256];
  std::snprintf(buf, sizeof buf, "%d layers own a KV cache (%d sliding-window W=%d, %d global; %d with K=V projections), %d share",
                swa + global, swa, m.window, global, kv_only, shared);
  return buf;
}
}  // namespace

void print_fit(const system::ModelShape& m, const system::FitResult& r, const system::Hardware& hw,
               const FitSource& src) {
  using system::format_bytes;
  const system::MemoryPlan& p = r.plan;
  std::printf("model: %s (%s), %d layers, width %d, trained context %lld\n", src.description.c_str(),
              m.arch.c_str(), m.n_layer, m.n_embd, static_cast<long long>(m.n_ctx_train));
  if (src.http_requests)
    std::printf("header: %d HTTP range request%s, %s fetched\n", src.http_requests, src.http_requests == 1 ? "" : "s",
                format_bytes(src.bytes_fetched).c_str());
  std::printf("KV: %s\n\n", kv_summary(m).c_str());
  std::printf("memory plan (ctx %lld x %d sequence%s, KV %s):\n", static_cast<long long>(p.ctx), p.parallel,
              p.parallel == 1 ? "" : "s", gguf::type_name(p.kv_type));
  std::printf("  weights      %12s", format_bytes(p.weights).c_str());
  for (const auto& [type, e] : m.weights_by_type) std::printf("  %s %s", type.c_str(), format_bytes(e.second).c_str());
  std::printf("\n  KV cache     %12s\n", format_bytes(p.kv).c_str());
  if (p.ring) std::printf("  SWA batch    %12s  (sliding-window rows for a %d-token batch)\n", format_bytes(p.ring).c_str(), p.ubatch);
  std::printf("  compute      %12s  (estimate)\n", format_bytes(p.compute).c_str());
  if (p.packed)
    std::printf("  packed head  %12s  (packed copy of the tied embedding table for the LM head)\n",
                format_bytes(p.packed).c_str());
  if (p.extras) std::printf("  extras       %12s\n", format_bytes(p.extras).c_str());
  std::printf("  total        %12s\n\n", format_bytes(p.total).c_str());
  std::printf("machine: %d cores, usable memory %s (%s), margin %s -> budget %s\n", hw.cores,
              format_bytes(r.usable).c_str(), hw.usable_source.c_str(), format_bytes(r.margin).c_str(),
              format_bytes(r.budget).c_str());
  if (r.fits) {
    std::printf("fits: yes (%s to spare); largest context that fits: %lld\n",
                format_bytes(r.budget - p.total).c_str(), static_cast<long long>(r.largest_ctx));
  } else if (r.largest_ctx > 0) {
    std::printf("fits: NO (needs %s more); largest context that fits: %lld\n",
                format_bytes(p.total - r.budget).c_str(), static_cast<long long>(r.largest_ctx));
  } else {
    std::printf("fits: NO (needs %s more); the weights alone do not fit at any context\n",
                format_bytes(p.total - r.budget).c_str());
  }
  if (!r.fits) {
    const std::string q = system::smaller_quant_that_fits(r, src.quant_sizes);
    if (!q.empty())
      std::printf("a smaller quant that fits at this context: %s (%s)\n", q.c_str(),
                  format_bytes(src.quant_sizes.at(q)).c_str());
  }
}

nlohmann::json fit_json(const system::ModelShape& m, const system::FitResult& r, const system::Hardware& hw,
                        const FitSource& src) {
  const system::MemoryPlan& p = r.plan;
  nlohmann::json j;
  j["model"] = {{"source", src.description}, {"arch", m.arch}, {"name", m.name}, {"layers", m.n_layer},
                {"ctx_train", m.n_ctx_train}, {"window", m.window}, {"shared_kv_layers", m.shared_kv_layers}};
  nlohmann::json wt = nlohmann::json::object();
  for (const auto& [type, e] : m.weights_by_type) wt[type] = {{"tensors", e.first}, {"bytes", e.second}};
  j["weights_by_type"] = wt;
  j["plan"] = {{"ctx", p.ctx},         {"parallel", p.parallel},   {"kv_type", gguf::type_name(p.kv_type)},
               {"weights", p.weights}, {"kv_cache", p.kv},         {"kv_per_layer", p.kv_per_layer},
               {"swa_batch", p.ring},  {"compute", p.compute},     {"extras", p.extras},
               {"packed_lm_head", p.packed}, {"total", p.total}};
  j["machine"] = {{"cores", hw.cores},           {"mem_total", hw.mem_total}, {"mem_available", hw.mem_available},
                  {"usable", r.usable},          {"usable_source", hw.usable_source},
                  {"margin", r.margin},          {"budget", r.budget}};
  if (hw.cgroup_limit) j["machine"]["cgroup_limit"] = *hw.cgroup_limit;
  j["fits"] = r.fits;
  j["largest_ctx"] = r.largest_ctx;
  j["smaller_quant"] = r.fits ? "" : system::smaller_quant_that_fits(r, src.quant_sizes);
  j["http_requests"] = src.http_requests;
  j["bytes_fetched"] = src.bytes_fetched;
  return j;
}

}  // namespace hearth::cli
