// Each `hearth` subcommand registers itself on the CLI11 app and returns the callback that runs it.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>

namespace hearth::cli {

using Runner = std::function<int()>;

Runner add_inspect(CLI::App& app);
Runner add_generate(CLI::App& app);
Runner add_logits(CLI::App& app);
Runner add_tokenize(CLI::App& app);
Runner add_synth(CLI::App& app);
Runner add_bench(CLI::App& app);
Runner add_render(CLI::App& app);
Runner add_chat(CLI::App& app);
Runner add_fit(CLI::App& app);
Runner add_import(CLI::App& app);
Runner add_list(CLI::App& app);
Runner add_show(CLI::App& app);
Runner add_rm(CLI::App& app);
Runner add_pull(CLI::App& app);
Runner add_serve(CLI::App& app);
Runner add_run(CLI::App& app);
Runner add_ps(CLI::App& app);
Runner add_agent(CLI::App& app);
Runner add_eval(CLI::App& app);

}  // namespace hearth::cli
