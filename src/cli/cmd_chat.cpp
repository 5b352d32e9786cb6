// hearth chat: answer one OpenAI chat-completions request body in process, streaming the answer.
// Plain output prints reasoning (dimmed on a terminal) and content as they come, tool calls as JSON lines;
// --jsonl prints one JSON event per line and a final {"result": ...} line, for scripts and tests.
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "chat/engine.h"
#include "chat/request_json.h"
#include "cli/commands.h"
#include "cli/common.h"

namespace hearth::cli {

namespace {
struct ChatArgs {
  std::string model, request;
  int threads = 0, ctx = 4096;
  int64_t seed = -1;
  bool jsonl = false;
};

nlohmann::json usage_json(const chat::Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"cached_prompt_tokens", u.cached_prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"reasoning_tokens", u.reasoning_tokens},
          {"prompt_ms", u.prompt_ms},
          {"decode_ms", u.decode_ms}};
}

nlohmann::json call_json(const chat::ToolCall& c) {
  return {{"id", c.id}, {"name", c.name}, {"arguments", c.arguments}};
}

void print_line(const nlohmann::json& j) {
  std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  std::fflush(stdout);
}

int run_chat(const ChatArgs& a) {
  chat::ChatRequest req = chat::parse_openai_request(read_json_file(a.request));
  if (a.seed >= 0) req.sampling.seed = uint64_t(a.seed);
  LoadedModel lm = load(a.model);
  chat::EngineOptions eo;
  eo.session.n_ctx = std::min(a.ctx, lm.model->info().n_ctx_train);
  eo.session.n_threads = a.threads;
  chat::ChatEngine engine(*lm.model, *lm.tok, eo);
  const bool tty = isatty(fileno(stdout));
  bool in_reasoning = false;
  auto on_event = [&](const chat::ChatEvent& ev) {
    using K = chat::ChatEvent::Kind;
    if (a.jsonl) {
      switch (ev.kind) {
        case K::Reasoning: print_line({{"reasoning", ev.text}}); break;
        case K::Content: print_line({{"content", ev.text}}); break;
        case K::ToolCall: print_line({{"tool_call", call_json(ev.call)}, {"index", ev.index}}); break;
        case K::Error: print_line({{"error", ev.text}}); break;
        case K::Done: break;
      }
      return true;
    }
    if (ev.kind == K::Reasoning && !in_reasoning && tty) std::printf("\x1b[2m");
    if (ev.kind != K::Reasoning && in_reasoning && tty) std::printf("\x1b[0m\n");
    in_reasoning = ev.kind == K::Reasoning;
    if (ev.kind == K::Reasoning || ev.kind == K::Content) std::fwrite(ev.text.data(), 1, ev.text.size(), stdout);
    if (ev.kind == K::ToolCall) print_line({{"tool_call", call_json(ev.call)}});
    if (ev.kind == K::Error) std::fprintf(stderr, "hearth: %s\n", ev.text.c_str());
    std::fflush(stdout);
    return true;
  };
  const chat::ChatResult r = engine.chat(req, on_event);
  if (a.jsonl) {
    nlohmann::json calls = nlohmann::json::array();
    for (const auto& c : r.tool_calls) calls.push_back(call_json(c));
    print_line({{"result",
                 {{"reasoning", r.reasoning}, {"content", r.content}, {"tool_calls", calls}, {"errors", r.errors},
                  {"finish_reason", r.finish_reason}, {"usage", usage_json(r.usage)}}}});
  } else {
    if (in_reasoning && tty) std::printf("\x1b[0m");
    std::printf("\n");
    const auto& u = r.usage;
    std::fprintf(stderr, "finish: %s; prompt %d tokens (%d cached) in %.0f ms; %d tokens (%d reasoning) in %.0f ms (%.1f tok/s)\n",
                 r.finish_reason.c_str(), u.prompt_tokens, u.cached_prompt_tokens, u.prompt_ms, u.completion_tokens,
                 u.reasoning_tokens, u.decode_ms, u.completion_tokens * 1000.0 / std::max(u.decode_ms, 1e-3));
  }
  return 0;
}
}  // namespace

Runner add_chat(CLI::App& app) {
  auto a = std::make_shared<ChatArgs>();
  CLI::App* c = app.add_subcommand("chat", "Answer one chat-completions request body in process");
  c->add_option("-m,--model", a->model, "GGUF model file")->required();
  c->add_option("request", a->request, "Request body JSON file (- for stdin)")->required();
  c->add_option("-t,--threads", a->threads, "Threads (default: all hardware threads)");
  c->add_option("-c,--ctx", a->ctx, "Context size in tokens")->capture_default_str();
  c->add_option("--seed", a->seed, "Sampling seed (overrides the request's)");
  c->add_flag("--jsonl", a->jsonl, "Print JSON events, one per line, then the result");
  return [a] { return run_chat(*a); };
}

}  // namespace hearth::cli
