// Shared pieces of the CLI commands: loading a model file with its tokenizer, timing.
#pragma once
#include <chrono>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "gguf/reader.h"
#include "models/model.h"
#include "system/hardware.h"
#include "system/memory_plan.h"
#include "tokenizer/tokenizer.h"

namespace hearth::cli {

struct LoadedModel {
  std::shared_ptr<const gguf::File> file;
  std::unique_ptr<models::Model> model;
  std::unique_ptr<tokenizer::Tokenizer> tok;
};

inline LoadedModel load(const std::string& path, bool need_tokenizer = true) {
  LoadedModel lm;
  lm.file = std::make_shared<const gguf::File>(gguf::File::open(path));
  lm.model = models::load_model(lm.file);
  if (need_tokenizer) lm.tok = tokenizer::Tokenizer::from_gguf(*lm.file);
  return lm;
}

inline double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

std::string read_text_file(const std::string& path);   // "-" reads stdin; throws hearth::Error
nlohmann::json read_json_file(const std::string& path);

// MODEL as users type it: a GGUF path, a name in the store (`hearth list`), or a GGUF discovered in an Ollama
// store or the Hugging Face cache. Returns the file to open; throws hearth::Error naming what was tried.
std::string resolve_model(const std::string& model);

// Plan options for this machine: what the loader will pack (kernels::packs_at_load), defaults otherwise.
system::PlanOptions machine_plan_options();

// Before loading for `serve`/`run`: refuses (hearth::Error with the memory plan and the largest context that
// fits) a model whose weights + KV cache for ctx x parallel do not fit this machine, unless `force`.
void check_model_fits(const std::string& path, int64_t ctx, int parallel, const std::string& kv_type, bool force);  // "-" reads stdin; throws hearth::Error
std::vector<int32_t> parse_id_list(const std::string& s);  // "2,10,20" -> {2, 10, 20}

}  // namespace hearth::cli
