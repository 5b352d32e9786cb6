// hearth: one program for local models. Subcommands live in cmd_*.cpp.
#include <cstdio>
#include <map>
#include <string>

#include "cli/commands.h"
#include "core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"hearth - run Gemma 4 and friends locally"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("hearth 0.1.0"));
  std::map<CLI::App*, hearth::cli::Runner> runners;
  auto add = [&](hearth::cli::Runner (*fn)(CLI::App&)) {
    const size_t before = app.get_subcommands({}).size();
    hearth::cli::Runner r = fn(app);
    runners[app.get_subcommands({})[before]] = std::move(r);
  };
  add(hearth::cli::add_inspect);
  add(hearth::cli::add_generate);
  add(hearth::cli::add_logits);
  add(hearth::cli::add_tokenize);
  add(hearth::cli::add_synth);
  add(hearth::cli::add_bench);
  add(hearth::cli::add_render);
  add(hearth::cli::add_chat);
  add(hearth::cli::add_fit);
  add(hearth::cli::add_import);
  add(hearth::cli::add_list);
  add(hearth::cli::add_show);
  add(hearth::cli::add_rm);
  add(hearth::cli::add_pull);
  add(hearth::cli::add_serve);
  add(hearth::cli::add_run);
  add(hearth::cli::add_ps);
  add(hearth::cli::add_agent);
  add(hearth::cli::add_eval);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (auto& [sub, run] : runners)
      if (sub->parsed()) return run();
  } catch (const hearth::Error& e) {
    std::fprintf(stderr, "hearth: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hearth: internal error: %s\n", e.what());
    return 2;
  }
  return 0;
}
