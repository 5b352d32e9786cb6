// hearth ps: what a running hearth server has loaded (GET /api/ps), its memory and slots.
#include <httplib.h>

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"

namespace hearth::cli {

namespace {

struct PsArgs {
  std::string host = "127.0.0.1";
  int port = 12434;
  std::string api_key;
  bool json = false;
};

int run_ps(PsArgs a) {
  if (a.api_key.empty())
    if (const char* env = std::getenv("HEARTH_API_KEY"); env && *env) a.api_key = env;
  httplib::Client cli(a.host, a.port);
  cli.set_connection_timeout(3, 0);
  cli.set_read_timeout(10, 0);
  httplib::Headers headers;
  if (!a.api_key.empty()) headers.emplace("Authorization", "Bearer " + a.api_key);
  auto res = cli.Get("/api/ps", headers);
  const std::string where = "http://" + a.host + ":" + std::to_string(a.port);
  if (!res)
    throw Error("no hearth server at " + where + " (" + httplib::to_string(res.error()) +
                "); start one with: hearth serve MODEL.gguf");
  if (res->status != 200) throw Error(where + "/api/ps answered " + std::to_string(res->status) + ": " + res->body);
  nlohmann::json j = nlohmann::json::parse(res->body, nullptr, false);
  if (j.is_discarded() || !j.contains("models") || !j["models"].is_array())
    throw Error(where + "/api/ps did not answer an Ollama ps object");
  if (a.json) {
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("%-24s %-8s %-10s %-10s %-8s %-12s %-7s %s\n", "NAME", "QUANT", "MEMORY", "FILE", "CONTEXT", "SLOTS BUSY",
              "QUEUED", "KV CELLS USED");
  for (const auto& m : j["models"]) {
    const nlohmann::json h = m.value("hearth", nlohmann::json::object());
    const nlohmann::json d = m.value("details", nlohmann::json::object());
    const std::string slots = std::to_string(h.value("busy_slots", 0)) + "/" + std::to_string(h.value("slots", 0));
    const std::string kv =
        std::to_string(h.value("kv_cells_used", int64_t(0))) + "/" + std::to_string(h.value("kv_cells_total", int64_t(0)));
    std::printf("%-24s %-8s %-10s %-10s %-8d %-12s %-7d %s\n", m.value("name", "?").c_str(),
                d.value("quantization_level", "").c_str(), system::format_bytes(m.value("size", uint64_t(0))).c_str(),
                system::format_bytes(h.value("file_bytes", uint64_t(0))).c_str(), m.value("context_length", 0), slots.c_str(),
                h.value("queued", 0), kv.c_str());
  }
  return 0;
}

}  // namespace

Runner add_ps(CLI::App& app) {
  auto a = std::make_shared<PsArgs>();
  auto* sub = app.add_subcommand("ps", "Show what a running hearth server has loaded (its /api/ps)");
  sub->add_option("--host", a->host, "server address")->capture_default_str();
  sub->add_option("--port", a->port, "server port")->capture_default_str();
  sub->add_option("--api-key", a->api_key, "API key (default: $HEARTH_API_KEY)");
  sub->add_flag("--json", a->json, "print the server's JSON");
  return [a] { return run_ps(*a); };
}

}  // namespace hearth::cli
