// hearth pull: download a model into the store (store/puller.h), and the remote half of hearth fit: only the
// GGUF header, fetched with a few Range requests.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/fit_report.h"
#include "core/error.h"
#include "store/discover.h"
#include "store/puller.h"
#include "store/remote.h"
#include "store/store.h"
#include "system/hardware.h"
#include "system/memory_plan.h"

namespace hearth::cli {

namespace {
struct RemoteArgs {
  std::string registry;
  int stall_timeout = 30;
};

store::RemoteOptions remote_options(const RemoteArgs& a) {
  store::RemoteOptions o = store::RemoteOptions::from_env();
  if (!a.registry.empty()) o.registry = a.registry;
  else if (const char* r = std::getenv("HEARTH_REGISTRY"); r && *r) o.registry = r;
  o.stall_timeout_s = a.stall_timeout;
  return o;
}

FitSource header_of(const store::RemoteModel& rm, int stall) {
  FitSource src;
  src.description = rm.ref.canonical();
  src.http_requests = rm.requests;
  src.quant_sizes = rm.quant_sizes;
  for (const store::RemoteFile& f : rm.files) {
    if (f.role == "mmproj") src.extras.push_back({"vision projector " + f.name, f.size});
    if (f.role != "model") continue;
    // Later split parts carry only their tensor directory: start smaller.
    store::RemoteHeader h = store::fetch_header(f.url, rm.headers, f.size, stall, src.files.empty() ? 2u << 20 : 256u << 10);
    src.http_requests += h.requests;
    src.bytes_fetched += h.fetched;
    src.buffers.push_back(std::move(h.bytes));
    src.files.push_back(std::move(*h.file));
  }
  return src;
}

struct PullArgs : RemoteArgs {
  std::string ref;
  int retries = 8;
  int connections = 1;
  bool quiet = false, no_progress = false, json = false, progress_json = false;
  int64_t ctx = 4096;
  std::string mem_limit;
};

int run_pull(const PullArgs& a) {
  store::Store st;
  const store::Reference ref = store::parse_reference(a.ref);
  if (ref.kind == store::RefKind::Path) throw Error("'" + a.ref + "' is a file: use `hearth import` for local files");
  const store::RemoteOptions ro = remote_options(a);
  store::PullOptions po;
  po.stall_timeout_s = a.stall_timeout;
  po.max_retries = a.retries;
  po.connections = std::max(1, std::min(a.connections, 16));
  po.progress_bar = !a.quiet && !a.no_progress && !a.progress_json && ::isatty(2);
  if (a.progress_json) {
    // One JSON object per line, shaped like Ollama's /api/pull stream.
    po.on_progress = [](const store::ProgressEvent& e) {
      nlohmann::json j{{"status", e.status == "downloading" ? "pulling " + e.digest : e.status},
                       {"digest", e.digest}, {"name", e.name}, {"total", e.total}, {"completed", e.done},
                       {"rate", uint64_t(e.rate)}};
      std::printf("%s\n", j.dump().c_str());
      std::fflush(stdout);
    };
  }
  store::PullStats total;
  for (int attempt = 0;; ++attempt) {
    const store::RemoteModel rm = store::resolve_remote(ref, ro);
    total.requests += rm.requests;
    if (attempt == 0) {
      // Will it fit? Only a warning here: the user may be pulling for another machine.
      try {
        FitSource src = header_of(rm, a.stall_timeout);
        total.requests += src.http_requests - rm.requests;
        std::vector<const gguf::File*> parts;
        for (const gguf::File& f : src.files) parts.push_back(&f);
        const system::ModelShape shape = system::ModelShape::from_gguf(parts);
        system::PlanOptions opt = machine_plan_options();
        opt.ctx = std::min<int64_t>(a.ctx, shape.n_ctx_train);
        std::optional<uint64_t> limit;
        if (!a.mem_limit.empty()) limit = system::parse_size(a.mem_limit);
        const system::Hardware hw = system::probe({}, limit);
        const system::FitResult fr = system::check_fit(shape, opt, hw.usable);
        if (!fr.fits)
          std::fprintf(stderr,
                       "warning: %s will not fit this machine at context %lld (needs %s, budget %s); largest context "
                       "that fits: %lld. Downloading anyway.\n",
                       rm.ref.canonical().c_str(), static_cast<long long>(opt.ctx),
                       system::format_bytes(fr.plan.total).c_str(), system::format_bytes(fr.budget).c_str(),
                       static_cast<long long>(fr.largest_ctx));
      } catch (const Error& e) {
        std::fprintf(stderr, "warning: cannot plan memory before the download: %s\n", e.what());
      }
    }
    uint64_t size = 0;
    for (const auto& f : rm.files) size += f.size;
    if (!a.quiet)
      std::fprintf(stderr, "pulling %s: %zu file%s, %s\n", rm.ref.canonical().c_str(), rm.files.size(),
                   rm.files.size() == 1 ? "" : "s", system::format_bytes(size).c_str());
    uint64_t missing = 0;
    for (const store::RemoteFile& f : rm.files) {
      if (st.has_blob(f.digest)) continue;
      std::error_code ec;
      const uint64_t have = std::filesystem::exists(st.partial_path(f.digest), ec)
                                ? std::filesystem::file_size(st.partial_path(f.digest), ec) : 0;
      missing += f.size - std::min(f.size, have);
    }
    if (missing > st.free_space())
      throw Error("not enough disk space for " + rm.ref.canonical() + " in " + st.root() + ": " +
                  system::format_bytes(missing) + " needed, " + system::format_bytes(st.free_space()) + " free");
    try {
      for (const store::RemoteFile& f : rm.files) {
        store::BlobSource bs{f.name, f.url, rm.headers, f.digest, f.size};
        const store::PullStats s = store::download_blob(st, bs, po);
        total.bytes_received += s.bytes_received;
        total.requests += s.requests;
        total.retries += s.retries;
        if (s.resumed_from) total.resumed_from += s.resumed_from;
        if (s.already_present && !a.quiet) std::fprintf(stderr, "%s: already in the store\n", f.name.c_str());
      }
    } catch (const store::RemoteChanged& e) {
      if (attempt >= 2) throw;
      std::fprintf(stderr, "%s; resolving %s again\n", e.what(), rm.ref.canonical().c_str());
      continue;
    }
    store::Manifest m;
    m.reference = rm.ref.canonical();
    m.source = rm.source;
    m.created = std::time(nullptr);
    for (const store::RemoteFile& f : rm.files) m.files.push_back({f.role, f.name, f.digest, f.size});
    st.write_manifest(rm.ref, m);
    if (a.progress_json) {
      std::printf("%s\n", nlohmann::json{{"status", "success"}, {"name", m.reference}}.dump().c_str());
    } else if (a.json) {
      nlohmann::json j{{"name", m.reference}, {"size", size}, {"bytes_received", total.bytes_received},
                       {"resumed_from", total.resumed_from}, {"requests", total.requests}, {"retries", total.retries},
                       {"path", st.blob_path(m.files[0].digest)}};
      std::printf("%s\n", j.dump().c_str());
    } else if (!a.quiet) {
      std::printf("pulled %s (%s; %s received, %d retries)\n", m.reference.c_str(), system::format_bytes(size).c_str(),
                  system::format_bytes(total.bytes_received).c_str(), total.retries);
    }
    return 0;
  }
}
}  // namespace

FitSource fetch_remote_header(const std::string& ref_text, const std::string& registry) {
  // A model another tool downloaded (Ollama, the Hugging Face cache): read in place.
  if (ref_text.rfind("ollama/", 0) == 0 || ref_text.rfind("hf-cache/", 0) == 0) {
    for (const auto& x : store::discover_external())
      if (x.name == ref_text) {
        FitSource src;
        src.description = x.name + " (" + x.path + ")";
        src.files.push_back(gguf::File::open(x.path));
        return src;
      }
  }
  const store::Reference ref = store::parse_reference(ref_text);
  if (ref.kind == store::RefKind::Path) throw Error("'" + ref_text + "': no such file");
  // Already in the store: read the local blobs.
  const store::Store st;
  if (auto m = st.find(ref_text)) {
    FitSource src;
    src.description = m->ref.canonical();
    for (const auto& f : m->manifest.files)
      if (f.role == "model") src.files.push_back(gguf::File::open(st.blob_path(f.digest)));
    return src;
  }
  RemoteArgs a;
  a.registry = registry;
  if (const char* s = std::getenv("HEARTH_STALL_TIMEOUT"); s && *s) a.stall_timeout = std::max(1, std::atoi(s));
  const store::RemoteModel rm = store::resolve_remote(ref, remote_options(a));
  return header_of(rm, a.stall_timeout);
}

Runner add_pull(CLI::App& app) {
  auto a = std::make_shared<PullArgs>();
  CLI::App* c = app.add_subcommand("pull", "Download a model into the store (resumes after any interruption)");
  c->add_option("model", a->ref, "hf.co/ORG/REPO[:QUANT], ai/gemma4:e2b, gemma4:e2b, ...")->required();
  c->add_option("--registry", a->registry, "OCI registry base URL (default https://HOST of the reference)");
  c->add_option("--stall-timeout", a->stall_timeout, "Seconds without a byte before a retry");
  c->add_option("--retries", a->retries, "Attempts without progress before giving up");
  c->add_option("--connections", a->connections, "Parallel ranged connections per file (1-16)");
  c->add_option("-c,--ctx", a->ctx, "Context length for the will-it-fit warning");
  c->add_option("--mem-limit", a->mem_limit, "Pretend the machine has this much usable memory (e.g. 8G)");
  c->add_flag("-q,--quiet", a->quiet, "No output but errors");
  c->add_flag("--no-progress", a->no_progress, "No progress bar");
  c->add_flag("--json", a->json, "Print a JSON summary");
  c->add_flag("--progress-json", a->progress_json, "Progress as JSON lines on stdout (Ollama /api/pull style)");
  return [a] { return run_pull(*a); };
}

}  // namespace hearth::cli
