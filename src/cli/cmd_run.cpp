// hearth run MODEL: an interactive terminal chat, in process. Answers stream as they are generated;
// thinking shows dimmed (or collapsed to one line with /set thinking hide); tokens/s after each answer.
// Commands: /bye, /set think on|off, /set thinking show|hide, /show thinking, /clear, /help.
// Multi-line input: start with """ and end with """.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <iostream>
#include <string>

#include "chat/engine.h"
#include "cli/commands.h"
#include "cli/common.h"

namespace hearth::cli {

namespace {

struct RunArgs {
  std::string model;
  std::string system;
  int ctx = 4096;
  int threads = 0;
  int max_tokens = 0;
  double temperature = -1;
  int64_t seed = -1;
  bool think = false;
  bool hide_thinking = false;
  bool force = false;
};

std::atomic<bool> g_generating{false};
std::atomic<bool> g_interrupted{false};

extern "C" void on_sigint(int) {
  if (g_generating) {
    g_interrupted = true;  // stops the answer, keeps the chat
  } else {
    const char nl = '\n';
    [[maybe_unused]] ssize_t n = write(STDOUT_FILENO, &nl, 1);
    _exit(0);
  }
}

const char* kHelp =
    "Commands:\n"
    "  /bye                    leave (also Ctrl-D)\n"
    "  /set think on|off       thinking before answering\n"
    "  /set thinking show|hide show thinking as it streams, or collapse it to one line\n"
    "  /show thinking          print the last answer's thinking\n"
    "  /clear                  forget the conversation\n"
    "  \"\"\"                     begin and end a multi-line message\n"
    "  Ctrl-C                  stop the answer being written\n";

// Reads one user message: a line, or the lines between """ and """. False at end of input.
bool read_message(std::string& out, bool tty) {
  out.clear();
  if (tty) std::printf(">>> ");
  std::fflush(stdout);
  std::string line;
  if (!std::getline(std::cin, line)) return false;
  if (line.rfind("\"\"\"", 0) != 0) {
    out = line;
    return true;
  }
  std::string text = line.substr(3);
  if (text.size() >= 3 && text.compare(text.size() - 3, 3, "\"\"\"") == 0) {  // """one line"""
    out = text.substr(0, text.size() - 3);
    return true;
  }
  while (true) {
    if (tty) std::printf("... ");
    std::fflush(stdout);
    if (!std::getline(std::cin, line)) break;
    const size_t end = line.find("\"\"\"");
    if (end != std::string::npos) {
      text += (text.empty() ? "" : "\n") + line.substr(0, end);
      break;
    }
    text += (text.empty() ? "" : "\n") + line;
  }
  out = text;
  return true;
}

int run_run(const RunArgs& a) {
  const bool tty = isatty(STDOUT_FILENO) && isatty(STDIN_FILENO);
  const auto t_load = std::chrono::steady_clock::now();
  const std::string path = resolve_model(a.model);
  check_model_fits(path, a.ctx, 1, "f16", a.force);
  LoadedModel lm = load(path);
  chat::EngineOptions eo;
  eo.session.n_ctx = std::min(a.ctx, lm.model->info().n_ctx_train > 0 ? lm.model->info().n_ctx_train : a.ctx);
  eo.session.n_threads = a.threads;
  chat::ChatEngine engine(*lm.model, *lm.tok, eo);
  std::fprintf(stderr, "hearth run: %s loaded in %.0f ms, context %d. /help for commands, /bye to leave.\n",
               a.model.c_str(), ms_since(t_load), eo.session.n_ctx);

  struct sigaction sa{};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);

  const char* dim = tty ? "\x1b[2m" : "";
  const char* reset = tty ? "\x1b[0m" : "";
  bool think = a.think, hide_thinking = a.hide_thinking;
  std::vector<chat::Message> history;
  if (!a.system.empty()) history.push_back({"system", a.system, {}, "", ""});
  std::string last_reasoning;
  std::string input;
  while (read_message(input, tty)) {
    if (input.empty()) continue;
    if (input == "/bye" || input == "/exit" || input == "/quit") break;
    if (input == "/help" || input == "/?") {
      std::printf("%s", kHelp);
      continue;
    }
    if (input == "/set think on" || input == "/set think off") {
      think = input == "/set think on";
      std::printf("thinking %s\n", think ? "on" : "off");
      continue;
    }
    if (input == "/set thinking show" || input == "/set thinking hide") {
      hide_thinking = input == "/set thinking hide";
      std::printf("thinking %s\n", hide_thinking ? "collapsed" : "shown");
      continue;
    }
    if (input == "/show thinking") {
      std::printf("%s%s%s\n", dim, last_reasoning.empty() ? "(no thinking)" : last_reasoning.c_str(), reset);
      continue;
    }
    if (input == "/clear") {
      history.erase(std::remove_if(history.begin(), history.end(), [](const auto& m) { return m.role != "system"; }),
                    history.end());
      std::printf("conversation cleared\n");
      continue;
    }
    if (input[0] == '/' && input.find(' ') == std::string::npos && input.size() < 16) {
      std::printf("unknown command %s (/help lists them)\n", input.c_str());
      continue;
    }

    history.push_back({"user", input, {}, "", ""});
    chat::ChatRequest req;
    req.messages = history;
    req.think = think;
    if (a.temperature >= 0) req.sampling.temperature = float(a.temperature);
    if (a.seed >= 0) req.sampling.seed = uint64_t(a.seed);
    if (a.max_tokens > 0) req.max_tokens = a.max_tokens;

    bool in_reasoning = false;
    int reasoning_tokens_shown = 0;
    auto on_event = [&](const chat::ChatEvent& ev) {
      using K = chat::ChatEvent::Kind;
      if (ev.kind == K::Reasoning) {
        if (!in_reasoning) {
          in_reasoning = true;
          std::printf("%s%s", dim, hide_thinking ? "Thinking..." : "");
        }
        if (!hide_thinking) std::fwrite(ev.text.data(), 1, ev.text.size(), stdout);
        ++reasoning_tokens_shown;
      } else if (ev.kind != K::Done && ev.kind != K::Error) {
        if (in_reasoning) {
          in_reasoning = false;
          if (hide_thinking && tty) std::printf("\r\x1b[2K%s[thought; /show thinking]%s\n", dim, reset);
          else std::printf("%s\n\n", reset);
        }
        if (ev.kind == K::Content) std::fwrite(ev.text.data(), 1, ev.text.size(), stdout);
        if (ev.kind == K::ToolCall)
          std::printf("[tool call %s(%s)]\n", ev.call.name.c_str(), ev.call.arguments.dump().c_str());
      }
      std::fflush(stdout);
      return !g_interrupted.load();
    };
    g_interrupted = false;
    g_generating = true;
    chat::ChatResult r;
    try {
      r = engine.chat(req, on_event);
    } catch (const Error& e) {
      g_generating = false;
      history.pop_back();
      std::printf("%s\n", reset);
      std::fprintf(stderr, "hearth run: %s\n", e.what());
      continue;
    }
    g_generating = false;
    if (in_reasoning) std::printf("%s", reset);
    std::printf("\n");
    std::fflush(stdout);  // the statistics go to stderr: keep them after the answer
    last_reasoning = r.reasoning;
    chat::Message answer{"assistant", r.content, r.tool_calls, "", ""};
    history.push_back(answer);
    const auto& u = r.usage;
    std::fprintf(stderr, "%s%d tokens%s in %.2f s, %.1f tok/s (prompt %d tokens, %d cached, %.0f tok/s)%s%s\n", dim,
                 u.completion_tokens,
                 u.reasoning_tokens ? (" (" + std::to_string(u.reasoning_tokens) + " thinking)").c_str() : "",
                 u.decode_ms / 1000.0, u.decode_ms > 0 ? u.completion_tokens * 1000.0 / u.decode_ms : 0.0,
                 u.prompt_tokens, u.cached_prompt_tokens,
                 u.prompt_ms > 0 ? (u.prompt_tokens - u.cached_prompt_tokens) * 1000.0 / u.prompt_ms : 0.0,
                 r.finish_reason == "cancelled" ? " [stopped]" : "", reset);
  }
  return 0;
}

}  // namespace

Runner add_run(CLI::App& app) {
  auto a = std::make_shared<RunArgs>();
  auto* sub = app.add_subcommand("run", "Interactive chat with a model in this terminal");
  sub->add_option("model", a->model, "GGUF file or a name from `hearth list`")->required();
  sub->add_flag("--force", a->force, "load even when the memory plan says the model does not fit");
  sub->add_option("-c,--ctx", a->ctx, "context size (tokens)")->capture_default_str();
  sub->add_option("-t,--threads", a->threads, "compute threads (0: one per core)")->capture_default_str();
  sub->add_option("-n,--max-tokens", a->max_tokens, "tokens per answer at most (0: until the context is full)");
  sub->add_option("--temp", a->temperature, "sampling temperature (default: the model's, 1.0)");
  sub->add_option("--seed", a->seed, "sampling seed");
  sub->add_option("--system", a->system, "system prompt");
  sub->add_flag("--think", a->think, "start with thinking on (/set think on|off)");
  sub->add_flag("--hide-thinking", a->hide_thinking, "collapse thinking to one line (/set thinking show|hide)");
  return [a] { return run_run(*a); };
}

}  // namespace hearth::cli
