// hearth serve: the OpenAI- and Ollama-compatible HTTP server over one model (src/server/).
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "chat/service.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "server/server.h"

namespace hearth::cli {

namespace {

struct ServeArgs {
  std::string model;
  server::ServerOptions sopt;
  int parallel = 1;
  int ctx = 4096;
  int threads = 0;
  std::string kv_type = "f16";
  std::string api_key;
  bool force = false;
};

int run_serve(ServeArgs a) {
  if (a.model.empty()) throw Error("hearth serve needs a model: hearth serve FILE.gguf or a name from `hearth list`");
  if (a.parallel < 1 || a.parallel > 256) throw Error("--parallel must be between 1 and 256");
  if (a.ctx < 16) throw Error("--ctx must be at least 16");
  if (a.api_key.empty())
    if (const char* env = std::getenv("HEARTH_API_KEY"); env && *env) a.api_key = env;
  a.sopt.api_key = a.api_key;

  // SIGINT/SIGTERM are taken by one thread (sigwait) that stops the server; every other thread, started
  // below, inherits the blocked mask. A write to a gone client must not kill the process.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  const std::string path = resolve_model(a.model);
  check_model_fits(path, a.ctx, a.parallel, a.kv_type, a.force);
  const auto t_load = std::chrono::steady_clock::now();
  LoadedModel lm = load(path);
  const models::ModelInfo& info = lm.model->info();
  chat::ServiceOptions so;
  so.parallel = a.parallel;
  so.n_ctx = std::min(a.ctx, info.n_ctx_train > 0 ? info.n_ctx_train : a.ctx);
  so.n_threads = a.threads;
  so.kv_type = models::kv_type_from_name(a.kv_type);
  auto service = std::make_unique<chat::ChatService>(*lm.model, *lm.tok, so);
  server::ServedModel served = server::describe_model(path, *lm.file, info);
  if (path != a.model) served.id = a.model;  // a store name is the model's id
  std::fprintf(stderr, "hearth serve: loaded %s (%s, %s, %s) in %.0f ms; %d slot%s x %d tokens of context\n",
               a.model.c_str(), info.arch.c_str(), served.quantization.c_str(), system::format_bytes(served.file_bytes).c_str(),
               ms_since(t_load), so.parallel, so.parallel == 1 ? "" : "s", so.n_ctx);

  server::Server srv(*service, served, a.sopt);
  const int port = srv.bind();
  std::atomic<bool> finished{false};
  std::thread signals([&] {
    const timespec tick{0, 200 * 1000 * 1000};
    while (!finished) {
      const int sig = sigtimedwait(&stop_signals, nullptr, &tick);
      if (sig == SIGINT || sig == SIGTERM) {
        std::fprintf(stderr, "hearth serve: stopping (%s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
        srv.stop();
        return;
      }
    }
  });
  const std::string host = a.sopt.host.find(':') != std::string::npos ? "[" + a.sopt.host + "]" : a.sopt.host;
  std::printf("hearth serve: listening on http://%s:%d (model \"%s\"%s)\n", host.c_str(), port, served.id.c_str(),
              a.sopt.api_key.empty() ? "" : ", API key required");
  std::printf("  OpenAI: http://%s:%d/v1   Ollama: http://%s:%d   metrics: /metrics\n", host.c_str(), port, host.c_str(),
              port);
  std::fflush(stdout);
  const bool ok = srv.run();
  finished = true;
  signals.join();
  service.reset();  // cancels what is still queued or running, joins the engine threads
  return ok ? 0 : 1;
}

}  // namespace

Runner add_serve(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  auto* sub = app.add_subcommand("serve", "OpenAI- and Ollama-compatible HTTP server (default 127.0.0.1:12434)");
  sub->add_option("model", a->model, "GGUF file (its stem is the model id in the API) or a name from `hearth list`");
  sub->add_flag("--force", a->force, "load even when the memory plan says the model does not fit");
  sub->add_option("-m,--model-file", a->model, "GGUF file (same as the positional argument)");
  sub->add_option("--host", a->sopt.host, "address to bind (127.0.0.1: this machine only)")->capture_default_str();
  sub->add_option("--port", a->sopt.port, "port (0: any free port, printed at start)")->capture_default_str();
  sub->add_option("--parallel", a->parallel, "requests decoded together (engine slots, each with its own KV cells)")
      ->capture_default_str();
  sub->add_option("-c,--ctx", a->ctx, "context size per slot (tokens; at most the model's training context)")
      ->capture_default_str();
  sub->add_option("-t,--threads", a->threads, "compute threads in all (0: one per core)")->capture_default_str();
  sub->add_option("--kv-type", a->kv_type, "KV cache type: f16 or f32")->capture_default_str();
  sub->add_option("--api-key", a->api_key, "require `Authorization: Bearer KEY` (default: $HEARTH_API_KEY)");
  sub->add_option("--cors-origin", a->sopt.cors_origins, "allow browser requests from this origin (repeatable; * for any)");
  sub->add_option("--max-body", a->sopt.max_body, "request body limit in bytes (larger: 413)")->capture_default_str();
  sub->add_option("--http-threads", a->sopt.http_threads, "HTTP connections served at once")->capture_default_str();
  return [a] { return run_serve(*a); };
}

}  // namespace hearth::cli
