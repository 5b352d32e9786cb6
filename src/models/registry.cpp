#include "core/error.h"
#include "models/gemma4.h"
#include "models/model.h"

namespace hearth::models {

const std::vector<ArchEntry>& architectures() {
  static const std::vector<ArchEntry> archs = {
      {"gemma4", &make_gemma4},
  };
  return archs;
}

std::unique_ptr<Model> load_model(std::shared_ptr<const gguf::File> file, const LoadOptions& opt) {
  const std::string arch(file->get_string("general.architecture"));
  for (const ArchEntry& a : architectures())
    if (arch == a.arch) return a.make(std::move(file), opt);
  std::string known;
  for (const ArchEntry& a : architectures()) known += std::string(known.empty() ? "" : ", ") + a.arch;
  throw Error(file->path() + ": architecture '" + arch + "' is not supported (supported: " + known + ")");
}

}  // namespace hearth::models
