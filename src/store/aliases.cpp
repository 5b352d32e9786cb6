// The short names hearth knows. Edit this table (or $HEARTH_MODELS/aliases.txt, which wins) to point an alias
// at another GGUF repository or mirror.
#include <fstream>
#include <sstream>

#include "store/reference.h"

namespace hearth::store {

namespace {
const std::pair<const char*, const char*> kBuiltin[] = {
    {"gemma4:e2b", "hf.co/ggml-org/gemma-4-E2B-it-GGUF:Q4_K_M"},
    {"gemma4:e4b", "hf.co/ggml-org/gemma-4-E4B-it-GGUF:Q4_K_M"},
    {"gemma4:26b", "hf.co/ggml-org/gemma-4-26B-A4B-it-GGUF:Q4_K_M"},
    {"gemma4:31b", "hf.co/ggml-org/gemma-4-31B-it-GGUF:Q4_K_M"},
};
}  // namespace

std::vector<std::pair<std::string, std::string>> aliases(const std::string& store_root) {
  std::vector<std::pair<std::string, std::string>> out;
  std::ifstream in(store_root + "/aliases.txt");
  std::string line;
  while (std::getline(in, line)) {
    if (const size_t h = line.find('#'); h != std::string::npos) line.resize(h);
    std::istringstream ls(line);
    std::string a, t;
    if (ls >> a >> t) out.emplace_back(a, t);
  }
  for (const auto& [a, t] : kBuiltin) out.emplace_back(a, t);
  return out;
}

}  // namespace hearth::store
