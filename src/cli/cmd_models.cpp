// hearth import | list | show | rm: the local model store (store/store.h).
#include <cstdio>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <memory>
#include <optional>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/fit_report.h"
#include "core/error.h"
#include "gguf/reader.h"
#include "store/discover.h"
#include "store/store.h"
#include "system/hardware.h"
#include "system/memory_plan.h"

namespace hearth::cli {

namespace {
std::string quant_of(const std::string& path) {
  try {
    const gguf::File f = gguf::File::open(path);
    // The most common matrix type by bytes is what people call the quant.
    std::map<std::string, uint64_t> by;
    for (const auto& t : f.tensors())
      if (t.n_dims >= 2) by[gguf::type_name(t.type)] += t.n_bytes;
    std::string best = "?";
    uint64_t most = 0;
    for (const auto& [k, v] : by)
      if (v > most) most = v, best = k;
    return best;
  } catch (const Error&) {
    return "?";
  }
}

std::string when(int64_t t) {
  char buf[32];
  const std::time_t tt = std::time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
  return buf;
}

store::StoredModel require(const store::Store& s, const std::string& name) {
  auto m = s.find(name);
  if (!m) throw Error("'" + name + "' is not in the store (" + s.root() + "); see `hearth list`");
  return *m;
}
}  // namespace

Runner add_import(CLI::App& app) {
  struct A {
    std::string file, name;
  };
  auto a = std::make_shared<A>();
  CLI::App* c = app.add_subcommand("import", "Add a local GGUF file to the store (hard link when possible, no copy)");
  c->add_option("file", a->file, "GGUF file")->required();
  c->add_option("--name", a->name, "Name in the store (default: the file name without .gguf)");
  return [a] {
    if (!std::filesystem::exists(a->file))
      for (const auto& x : store::discover_external())
        if (x.name == a->file) {
          if (a->name.empty()) {
            a->name = x.name.substr(x.name.rfind('/') + 1);
            if (const size_t dot = a->name.rfind(".gguf"); dot != std::string::npos) a->name.resize(dot);
          }
          a->file = x.path;
          break;
        }
    gguf::File::open(a->file);  // must be a GGUF
    std::string name = a->name;
    if (name.empty()) {
      name = std::filesystem::path(a->file).stem().string();
      for (char& ch : name)
        if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '-' || ch == '_')) ch = '_';
    }
    store::Store s;
    std::string how;
    const store::StoredModel m = s.import_file(a->file, name, &how);
    std::printf("imported %s as %s (%s, %s)\n", a->file.c_str(), m.ref.canonical().c_str(),
                system::format_bytes(m.size).c_str(), how.c_str());
    return 0;
  };
}

Runner add_list(CLI::App& app) {
  auto json = std::make_shared<bool>(false);
  CLI::App* c = app.add_subcommand("list", "Models in the store");
  c->add_flag("--json", *json, "Machine-readable output");
  return [json] {
    store::Store s;
    const auto models = s.list();
    const auto external = store::discover_external();
    auto mtime = [](const std::string& p) {
      std::error_code ec;
      const auto t = std::filesystem::last_write_time(p, ec);
      return ec ? int64_t(0)
                : int64_t(std::chrono::duration_cast<std::chrono::seconds>(
                              t.time_since_epoch() - (std::filesystem::file_time_type::clock::now().time_since_epoch() -
                                                      std::chrono::system_clock::now().time_since_epoch()))
                              .count());
    };
    if (*json) {
      nlohmann::json j = nlohmann::json::array();
      for (const auto& m : models)
        j.push_back({{"name", m.ref.canonical()}, {"size", m.size}, {"quant", quant_of(s.model_path(m))},
                     {"modified", m.modified}, {"files", m.manifest.files.size()}, {"source", "store"}});
      for (const auto& x : external)
        j.push_back({{"name", x.name}, {"size", x.size}, {"quant", quant_of(x.path)}, {"modified", mtime(x.path)},
                     {"files", 1}, {"source", x.source}, {"path", x.path}});
      std::printf("%s\n", j.dump(2).c_str());
      return 0;
    }
    std::printf("%-56s %12s %-8s %s\n", "NAME", "SIZE", "QUANT", "MODIFIED");
    for (const auto& m : models)
      std::printf("%-56s %12s %-8s %s\n", m.ref.canonical().c_str(), system::format_bytes(m.size).c_str(),
                  quant_of(s.model_path(m)).c_str(), when(m.modified).c_str());
    if (!external.empty()) {
      std::printf("\nfound elsewhere (used in place; `hearth import NAME` adds one to the store without copying):\n");
      for (const auto& x : external)
        std::printf("%-56s %12s %-8s %s\n", x.name.c_str(), system::format_bytes(x.size).c_str(),
                    quant_of(x.path).c_str(), when(mtime(x.path)).c_str());
    }
    return 0;
  };
}

Runner add_show(CLI::App& app) {
  struct A {
    std::string name;
    int64_t ctx = 4096;
  };
  auto a = std::make_shared<A>();
  CLI::App* c = app.add_subcommand("show", "Metadata, chat template and memory plan of a stored model");
  c->add_option("model", a->name, "Name or reference")->required();
  c->add_option("-c,--ctx", a->ctx, "Context length for the memory plan");
  return [a] {
    store::Store s;
    FitSource src;
    std::optional<store::StoredModel> stored = s.find(a->name);
    if (!stored) {  // a model another tool downloaded (hearth list shows them), read in place
      for (const auto& x : store::discover_external())
        if (x.name == a->name) {
          std::printf("name: %s\nsource: %s (used in place)\nfile: %s %s\n", x.name.c_str(), x.source.c_str(),
                      x.path.c_str(), system::format_bytes(x.size).c_str());
          src.description = x.name;
          src.files.push_back(gguf::File::open(x.path));
        }
      if (src.files.empty()) require(s, a->name);  // throws "not in the store"
    } else {
      const store::StoredModel& m = *stored;
      std::printf("name: %s\nsource: %s\n", m.ref.canonical().c_str(), m.manifest.source.c_str());
      for (const auto& f : m.manifest.files)
        std::printf("file: %-8s %s %s %s\n", f.role.c_str(), f.name.c_str(), f.digest.c_str(),
                    system::format_bytes(f.size).c_str());
      src.description = m.ref.canonical();
      for (const auto& f : m.manifest.files)
        if (f.role == "model") src.files.push_back(gguf::File::open(s.blob_path(f.digest)));
        else if (f.role == "mmproj") src.extras.push_back({"vision projector", f.size});
    }
    const gguf::File& g = src.files.at(0);
    for (const char* k : {"general.architecture", "general.name", "general.file_type"})
      if (const gguf::Value* v = g.find(k))
        std::printf("%s: %s\n", k, v->type == gguf::ValueType::STRING ? std::string(v->as_string(k)).c_str()
                                                                        : std::to_string(v->as_int(k)).c_str());
    if (auto t = g.opt_string("tokenizer.chat_template")) {
      std::string tpl(*t);
      if (tpl.size() > 600) tpl = tpl.substr(0, 600) + "\n... (" + std::to_string(t->size()) + " bytes)";
      std::printf("chat template:\n%s\n", tpl.c_str());
    } else {
      std::printf("chat template: (none)\n");
    }
    std::printf("\n");
    std::vector<const gguf::File*> parts;
    for (const gguf::File& f : src.files) parts.push_back(&f);
    const system::ModelShape shape = system::ModelShape::from_gguf(parts);
    system::PlanOptions opt = machine_plan_options();
    opt.ctx = std::min<int64_t>(a->ctx, shape.n_ctx_train);
    opt.extras = src.extras;
    const system::Hardware hw = system::probe();
    print_fit(shape, system::check_fit(shape, opt, hw.usable), hw, src);
    return 0;
  };
}

Runner add_rm(CLI::App& app) {
  auto names = std::make_shared<std::vector<std::string>>();
  CLI::App* c = app.add_subcommand("rm", "Remove models from the store (blobs no other model uses are deleted)");
  c->add_option("model", *names, "Names or references")->required();
  return [names] {
    store::Store s;
    for (const std::string& n : *names) {
      const store::StoredModel m = require(s, n);
      const uint64_t freed = s.remove(m);
      std::printf("removed %s (%s freed)\n", m.ref.canonical().c_str(), system::format_bytes(freed).c_str());
    }
    return 0;
  };
}

}  // namespace hearth::cli
