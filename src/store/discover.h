// GGUF files that other tools already downloaded: the Ollama store ($OLLAMA_MODELS or ~/.ollama/models) and
// the Hugging Face cache ($HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub). hearth offers them by
// name and reads them in place (or `hearth import` hard-links them): nothing is downloaded twice.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace hearth::store {

struct ExternalModel {
  std::string name;    // "ollama/library/gemma4:e2b", "hf-cache/org/repo/file.gguf"
  std::string source;  // "ollama", "hf-cache"
  std::string path;    // the GGUF file, inside its tool's directory
  uint64_t size = 0;
};

std::string ollama_root();    // $OLLAMA_MODELS or $HOME/.ollama/models
std::string hf_cache_root();  // $HF_HUB_CACHE, $HF_HOME/hub or $HOME/.cache/huggingface/hub

// Every GGUF found. Manifests and paths are validated: nothing outside those directories is ever named.
std::vector<ExternalModel> discover_external(const std::string& ollama = ollama_root(),
                                             const std::string& hf_cache = hf_cache_root());

}  // namespace hearth::store
