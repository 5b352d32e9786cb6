#include "cli/common.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>

#include "kernels/matmul.h"
#include "store/discover.h"
#include "store/store.h"
#include "system/memory_plan.h"

namespace hearth::cli {

std::vector<int32_t> parse_id_list(const std::string& s) {
  std::vector<int32_t> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    const std::string item = s.substr(i, j - i);
    try {
      size_t used = 0;
      const long v = std::stol(item, &used);
      if (used != item.size() || v < 0 || v > INT32_MAX) throw std::invalid_argument(item);
      out.push_back(int32_t(v));
    } catch (const std::exception&) {
      throw Error("'" + item + "' is not a token id (expected a comma-separated list such as 2,10,20)");
    }
    i = j + 1;
  }
  return out;
}

std::string read_text_file(const std::string& path) {
  std::string text;
  if (path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error("cannot open " + path);
    text.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  return text;
}

nlohmann::json read_json_file(const std::string& path) {
  const std::string text = read_text_file(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(path + " is not valid JSON: " + e.what());
  }
}

std::string resolve_model(const std::string& model) {
  if (std::filesystem::is_regular_file(model)) return model;
  const store::Store s;
  if (auto m = s.find(model))
    for (const store::ManifestFile& f : m->manifest.files)
      if (f.role == "model") return s.blob_path(f.digest);
  for (const store::ExternalModel& x : store::discover_external())
    if (x.name == model) return x.path;
  throw Error("no model '" + model + "': not a file, not in the store (" + s.root() +
              "; see `hearth list`), not in an Ollama store or the Hugging Face cache; `hearth pull " + model +
              "` downloads it");
}

system::PlanOptions machine_plan_options() {
  system::PlanOptions po;
  po.packs_at_load = [](gguf::GgmlType t, int64_t n_rows) { return kernels::packs_at_load(t, n_rows); };
  return po;
}

void check_model_fits(const std::string& path, int64_t ctx, int parallel, const std::string& kv_type, bool force) {
  system::PlanOptions po = machine_plan_options();
  po.ctx = ctx;
  po.parallel = parallel;
  po.kv_type = system::kv_type_from_name(kv_type);
  const system::FitResult r = system::require_fit_file(path, po, force);
  if (!r.fits)
    std::fprintf(stderr, "hearth: warning: the model may not fit this machine (loading anyway: --force)\n");
}

}  // namespace hearth::cli
