// Placeholder until hearth synth lands.
#include "cli/commands.h"
#include "core/error.h"

namespace hearth::cli {
Runner add_synth(CLI::App& app) {
  app.add_subcommand("synth", "Write a random-weight Gemma 4 GGUF (not implemented yet)");
  return [] { throw Error("synth is not implemented yet"); return 1; };
}
}  // namespace hearth::cli
