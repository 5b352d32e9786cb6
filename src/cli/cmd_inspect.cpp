// hearth inspect: metadata, tensor types and sizes, and the memory the model needs.
#include <cstdio>
#include <map>
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "models/kv_cache.h"

namespace hearth::cli {

namespace {
struct InspectArgs {
  std::string file;
  bool tensors = false;
  int ctx = 0;
};

std::string value_summary(const std::string& key, const gguf::Value& v) {
  using gguf::ValueType;
  switch (v.type) {
    case ValueType::STRING: {
      std::string s(v.as_string(key));
      if (s.size() > 120) s = s.substr(0, 117) + "... (" + std::to_string(s.size()) + " bytes)";
      for (char& c : s)
        if (c == '\n') c = ' ';
      return "\"" + s + "\"";
    }
    case ValueType::ARRAY: {
      std::string out = std::string(gguf::value_type_name(v.elem_type)) + "[" + std::to_string(v.count) + "]";
      if (v.elem_type == ValueType::STRING) {
        auto a = v.string_array(key);
        out += " {";
        for (size_t i = 0; i < std::min<size_t>(a.size(), 5); ++i) out += (i ? ", \"" : "\"") + std::string(a[i]) + "\"";
        return out + (a.size() > 5 ? ", ...}" : "}");
      }
      if (v.elem_type == ValueType::ARRAY) return out;
      const bool ints = v.elem_type != ValueType::F32 && v.elem_type != ValueType::F64;
      const std::vector<double> a = ints ? [&] {
        std::vector<double> d;
        for (int64_t x : v.int_array(key)) d.push_back(double(x));
        return d;
      }()
                                         : v.float_array(key);
      out += " {";
      char buf[32];
      for (size_t i = 0; i < std::min<size_t>(a.size(), 8); ++i) {
        std::snprintf(buf, sizeof buf, "%s%g", i ? ", " : "", a[i]);
        out += buf;
      }
      return out + (a.size() > 8 ? ", ...}" : "}");
    }
    case ValueType::F32:
    case ValueType::F64: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%g", v.as_float(key));
      return buf;
    }
    case ValueType::BOOL: return v.as_bool(key) ? "true" : "false";
    default: return std::to_string(v.as_int(key));
  }
}

int run_inspect(const InspectArgs& a) {
  auto file = std::make_shared<const gguf::File>(gguf::File::open(a.file));
  std::printf("file: %s\nGGUF v%u, %s, %zu metadata keys, %zu tensors, alignment %llu\n\n", a.file.c_str(),
              file->version(), system::format_bytes(file->file_size()).c_str(), file->metadata().size(), file->tensors().size(),
              static_cast<unsigned long long>(file->alignment()));
  std::printf("metadata:\n");
  for (const auto& [key, v] : file->metadata()) std::printf("  %-48s %s\n", key.c_str(), value_summary(key, v).c_str());

  std::map<std::string, std::pair<size_t, uint64_t>> by_type;
  uint64_t total = 0;
  int64_t params = 0;
  for (const gguf::TensorInfo& t : file->tensors()) {
    auto& e = by_type[gguf::type_name(t.type)];
    e.first++;
    e.second += t.n_bytes;
    total += t.n_bytes;
    params += t.n_elements();
  }
  std::printf("\ntensors: %zu, %.3f B parameters, %s\n", file->tensors().size(), double(params) / 1e9,
              system::format_bytes(total).c_str());
  for (const auto& [name, e] : by_type)
    std::printf("  %-8s %5zu tensors %12s\n", name.c_str(), e.first, system::format_bytes(e.second).c_str());
  if (a.tensors) {
    std::printf("\n");
    for (const gguf::TensorInfo& t : file->tensors())
      std::printf("  %-40s %-7s %-24s %12s\n", t.name.c_str(), gguf::type_name(t.type), t.shape_string().c_str(),
                  system::format_bytes(t.n_bytes).c_str());
  }

  if (file->tensors().empty()) {
    std::printf("\n(no tensors: a vocabulary-only file)\n");
    return 0;
  }
  try {
    std::unique_ptr<models::Model> m = models::load_model(file);
    const models::ModelInfo& info = m->info();
    std::printf("\nmodel: %s, %d layers, width %d, vocabulary %d, trained context %d\n", info.arch.c_str(),
                info.n_layer, info.n_embd, info.n_vocab, info.n_ctx_train);
    std::printf("memory (weights are memory-mapped; KV cache F16, one sequence):\n");
    std::vector<int> ctxs = a.ctx ? std::vector<int>{a.ctx} : std::vector<int>{4096, 32768, info.n_ctx_train};
    for (int ctx : ctxs) {
      if (ctx > info.n_ctx_train) continue;
      models::KvCacheOptions ko;
      ko.n_ctx = ctx;
      ko.type = models::KvType::F16;
      const uint64_t kv = models::KvCache::estimate_bytes(m->kv_layout(), ko);
      std::printf("  ctx %7d: weights %s + KV cache %s = %s\n", ctx, system::format_bytes(total).c_str(),
                  system::format_bytes(kv).c_str(), system::format_bytes(total + kv).c_str());
    }
  } catch (const Error& e) {
    std::printf("\nmodel: cannot be loaded: %s\n", e.what());
  }
  return 0;
}
}  // namespace

Runner add_inspect(CLI::App& app) {
  auto a = std::make_shared<InspectArgs>();
  CLI::App* c = app.add_subcommand("inspect", "Show a GGUF file's metadata, tensors and memory needs");
  c->add_option("file", a->file, "GGUF file")->required();
  c->add_flag("--tensors", a->tensors, "List every tensor");
  c->add_option("-c,--ctx", a->ctx, "Context size for the memory estimate");
  return [a] { return run_inspect(*a); };
}

}  // namespace hearth::cli
