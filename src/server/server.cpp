#include "server/server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <deque>
#include <filesystem>
#include <map>
#include <optional>
#include <random>

#include "chat/generation.h"
#include "chat/request_json.h"
#include "core/error.h"
#include "gguf/types.h"
#include "server/api_error.h"
#include "server/formats.h"

namespace hearth::server {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kOpenAIRoutes[] = {"/v1/models", "/v1/chat/completions", "/v1/completions", "/v1/embeddings"};
constexpr const char* kOllamaRoutes[] = {"/api/chat",  "/api/generate", "/api/tags",  "/api/show",   "/api/ps",
                                         "/api/version", "/api/pull",   "/api/embed", "/api/embeddings"};
constexpr const char* kOpsRoutes[] = {"/health", "/metrics"};

bool is_ollama_path(const std::string& path) { return path.rfind("/api/", 0) == 0; }

std::string random_id(const char* prefix) {
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  uint64_t a, b;
  {
    std::lock_guard lk(mu);
    a = rng();
    b = rng();
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s%016llx%08llx", prefix, static_cast<unsigned long long>(a),
                static_cast<unsigned long long>(b & 0xffffffffu));
  return buf;
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string rfc3339(int64_t unix_seconds) {
  const std::time_t t = std::time_t(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void send_json(httplib::Response& res, int status, const json& j) {
  res.status = status;
  res.set_content(dump_json(j), "application/json");
}

void send_error(const httplib::Request& req, httplib::Response& res, const ApiError& e) {
  // A streaming response's provider may already be set; an error replaces it.
  res.status = e.status;
  const json body = is_ollama_path(req.path) ? ollama_error_json(e.what()) : openai_error_json(e);
  res.set_content(dump_json(body), "application/json");
}

json parse_body(const httplib::Request& req) {
  if (req.body.empty()) throw bad_request("the request body is empty (send a JSON object)", "invalid_json");
  json j = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    throw bad_request("the request body is not valid JSON (" + std::to_string(req.body.size()) + " bytes)",
                      "invalid_json");
  if (!j.is_object()) throw bad_request("the request body must be a JSON object", "invalid_json");
  return j;
}

const json* field(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

bool bool_field(const json& obj, const char* key, bool dflt) {
  const json* v = field(obj, key);
  if (!v) return dflt;
  if (!v->is_boolean()) throw bad_request(std::string(key) + " must be a boolean");
  return v->get<bool>();
}

// Constant-time string comparison (API keys); the length is not secret.
bool same_secret(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= unsigned(uint8_t(a[i]) ^ uint8_t(b[i]));
  return diff == 0;
}

// OpenAI fields hearth does not implement: rejected with a clear message instead of silently ignored.
// (Chat completions support logprobs; the legacy completions API's integer logprobs are not supported.)
void reject_unsupported_openai(const json& body) {
  if (const json* v = field(body, "logprobs")) {
    if (!v->is_boolean() && !v->is_number_integer()) throw bad_request("logprobs must be a boolean");
    if ((v->is_boolean() && v->get<bool>()) || (v->is_number_integer() && v->get<int64_t>() != 0))
      throw bad_request("logprobs are not supported by hearth yet", "unsupported_parameter");
  }
  if (const json* v = field(body, "top_logprobs"); v && !(v->is_number_integer() && v->get<int64_t>() == 0))
    throw bad_request("top_logprobs is not supported by hearth yet", "unsupported_parameter");
}

// The socket of a request's connection. httplib 0.11 does not hand it to handlers, so it is found among
// this process's descriptors by the connection's addresses (the remote address and port are unique among
// the connections to our port). -1 when not found.
int connection_socket(const httplib::Request& req) {
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return -1;
  int found = -1;
  while (const dirent* e = readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end) continue;
    sockaddr_storage local{}, peer{};
    socklen_t ll = sizeof local, pl = sizeof peer;
    if (getsockname(int(fd), reinterpret_cast<sockaddr*>(&local), &ll) != 0 ||
        getpeername(int(fd), reinterpret_cast<sockaddr*>(&peer), &pl) != 0)
      continue;
    char host[INET6_ADDRSTRLEN] = {};
    int local_port = -1, peer_port = -1;
    if (peer.ss_family == AF_INET) {
      const auto* p4 = reinterpret_cast<const sockaddr_in*>(&peer);
      inet_ntop(AF_INET, &p4->sin_addr, host, sizeof host);
      peer_port = ntohs(p4->sin_port);
      local_port = ntohs(reinterpret_cast<const sockaddr_in*>(&local)->sin_port);
    } else if (peer.ss_family == AF_INET6) {
      const auto* p6 = reinterpret_cast<const sockaddr_in6*>(&peer);
      inet_ntop(AF_INET6, &p6->sin6_addr, host, sizeof host);
      peer_port = ntohs(p6->sin6_port);
      local_port = ntohs(reinterpret_cast<const sockaddr_in6*>(&local)->sin6_port);
    } else {
      continue;
    }
    if (peer_port == req.remote_port && local_port == req.local_port && req.remote_addr == host) {
      found = int(fd);
      break;
    }
  }
  closedir(dir);
  return found;
}

// True once the client has closed (or reset) its side of the connection.
bool peer_closed(int fd) {
  if (fd < 0) return false;
  pollfd p{fd, POLLRDHUP, 0};
  return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

// The engine builds its grammars on its own thread, where an unsupported response schema would fail the
// request after a stream's 200 went out: checked here first, it is a 400. (Tool schemas never fail: the
// engine enforces what it can of them.)
void validate_constraints(const chat::ChatRequest& req) {
  try {
    chat::check_constraints(req);
  } catch (const hearth::Error& e) {
    throw bad_request(e.what(), "unsupported_schema");
  }
}

}  // namespace

// ---- the served model ----

bool ServedModel::matches(const std::string& name) const {
  if (name == id || name == id + ":latest" || name == path) return true;
  return name == std::filesystem::path(path).filename().string();
}

ServedModel describe_model(const std::string& path, const gguf::File& file, const models::ModelInfo& info) {
  ServedModel m;
  m.path = path;
  m.id = std::filesystem::path(path).stem().string();
  m.file_bytes = file.file_size();
  struct stat st{};
  if (::stat(path.c_str(), &st) == 0) m.modified = int64_t(st.st_mtime);
  m.family = info.arch;
  m.n_params = info.n_params;
  m.n_ctx_train = info.n_ctx_train;
  std::map<std::string, uint64_t> bytes_by_type;
  for (const auto& t : file.tensors()) bytes_by_type[gguf::type_name(t.type)] += t.n_bytes;
  uint64_t best = 0;
  for (const auto& [name, n] : bytes_by_type)
    if (n > best) {
      best = n;
      m.quantization = name;
    }
  // Scalar metadata (and the lengths of arrays, not their contents: the vocabulary alone is megabytes).
  for (const auto& [key, v] : file.metadata()) {
    try {
      using VT = gguf::ValueType;
      if (v.is_array()) {
        m.model_info[key] = json::array();  // Ollama shows arrays as empty lists in model_info too
      } else if (v.type == VT::STRING) {
        std::string s(v.as_string(key));
        if (s.size() > 4096) s = s.substr(0, 4096) + "...";
        m.model_info[key] = s;
      } else if (v.type == VT::BOOL) {
        m.model_info[key] = v.as_bool(key);
      } else if (v.is_float()) {
        m.model_info[key] = v.as_float(key);
      } else {
        m.model_info[key] = v.as_int(key);
      }
    } catch (const hearth::Error&) {
      // a value that does not convert is left out
    }
  }
  m.model_info["general.parameter_count"] = info.n_params;
  return m;
}

// ---- a generation request in flight: the queue between the engine thread and the HTTP thread ----

struct Server::Generation {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<chat::ChatEvent> events;
  bool client_gone = false;
  bool first_token_seen = false;
  Clock::time_point start = Clock::now();
  std::shared_ptr<Metrics> metrics;
  std::shared_ptr<chat::ChatService::Job> job;
  int fd = -1;  // the client's connection while the request runs (-1: unknown or done with)

  // Engine thread. False once the HTTP side is gone (the engine then cancels the request): a failed write,
  // or the client's connection closed, checked here at every token so the slot frees at once.
  bool push(const chat::ChatEvent& ev) {
    using K = chat::ChatEvent::Kind;
    {
      std::lock_guard lk(mu);
      if (!client_gone && ev.kind != K::Done && peer_closed(fd)) client_gone = true;
      if (client_gone) return false;
      if (!first_token_seen && (ev.kind == K::Content || ev.kind == K::Reasoning || ev.kind == K::ToolCall)) {
        first_token_seen = true;
        metrics->observe_ttft(std::chrono::duration<double>(Clock::now() - start).count());
      }
      if (ev.kind == K::Done) metrics->observe_request(std::chrono::duration<double>(Clock::now() - start).count());
      events.push_back(ev);
    }
    cv.notify_all();
    return true;
  }

  void gone() {
    {
      std::lock_guard lk(mu);
      client_gone = true;
      fd = -1;
    }
    if (job) job->cancel();
  }

  // The HTTP side is done with the connection (httplib may close and reuse the descriptor).
  void release_fd() {
    std::lock_guard lk(mu);
    fd = -1;
  }

  // Waits up to `timeout` for events and takes them all.
  std::deque<chat::ChatEvent> take(std::chrono::milliseconds timeout) {
    std::unique_lock lk(mu);
    cv.wait_for(lk, timeout, [&] { return !events.empty(); });
    std::deque<chat::ChatEvent> out;
    out.swap(events);
    return out;
  }
};

// ---- server ----

Server::Server(chat::ChatService& service, ServedModel model, ServerOptions opt)
    : service_(service), model_(std::move(model)), opt_(std::move(opt)), http_(std::make_unique<httplib::Server>()),
      metrics_(std::make_shared<Metrics>()) {
  started_ = unix_now();
  const int threads = std::max(4, opt_.http_threads);
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  http_->set_payload_max_length(opt_.max_body);
  http_->set_keep_alive_max_count(1000);
  http_->set_tcp_nodelay(true);
  // httplib's default sets SO_REUSEPORT, which lets a second server bind the same port and silently take
  // half of its connections. SO_REUSEADDR only: a restart can rebind at once, a second server cannot.
  http_->set_socket_options([](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });  // small writes (tokens, short JSON) go out at once, not after a delayed ACK
  http_->set_read_timeout(30, 0);
  http_->set_write_timeout(10, 0);
  install_routes();
}

Server::~Server() = default;

std::string Server::route_label(const std::string& path) {
  for (const char* r : kOpenAIRoutes)
    if (path == r) return r;
  for (const char* r : kOllamaRoutes)
    if (path == r) return r;
  for (const char* r : kOpsRoutes)
    if (path == r) return r;
  if (path.rfind("/v1/models/", 0) == 0) return "/v1/models/{id}";
  return "other";
}

int Server::bind() {
  if (opt_.port == 0) {
    port_ = http_->bind_to_any_port(opt_.host);
    if (port_ < 0) throw Error("cannot listen on " + opt_.host + " (any port)");
  } else {
    if (!http_->bind_to_port(opt_.host, opt_.port))
      throw Error("cannot listen on " + opt_.host + ":" + std::to_string(opt_.port) +
                  " (is another server using it? choose another with --port)");
    port_ = opt_.port;
  }
  return port_;
}

bool Server::run() { return http_->listen_after_bind(); }

void Server::stop() {
  stopping_ = true;
  http_->stop();
}

bool Server::pre_route(const httplib::Request& req, httplib::Response& res) {
  const std::string origin = req.get_header_value("Origin");
  bool cors = false;
  if (!origin.empty()) {
    for (const auto& o : opt_.cors_origins) cors |= o == "*" || o == origin;
    if (cors) {
      const bool any = std::find(opt_.cors_origins.begin(), opt_.cors_origins.end(), "*") != opt_.cors_origins.end();
      res.set_header("Access-Control-Allow-Origin", any ? "*" : origin);
      res.set_header("Vary", "Origin");
    }
  }
  if (req.method == "OPTIONS") {  // CORS preflight: answered here, never authenticated
    if (cors) {
      res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      const std::string want = req.get_header_value("Access-Control-Request-Headers");
      res.set_header("Access-Control-Allow-Headers", want.empty() ? "Authorization, Content-Type" : want);
      res.set_header("Access-Control-Max-Age", "600");
    }
    res.status = 204;
    return true;
  }
  if (!opt_.api_key.empty() && req.path != "/health") {
    const std::string auth = req.get_header_value("Authorization");
    std::string token;
    if (auth.size() > 7) {
      std::string scheme = auth.substr(0, 7);
      std::transform(scheme.begin(), scheme.end(), scheme.begin(), [](unsigned char c) { return std::tolower(c); });
      if (scheme == "bearer ") token = auth.substr(7);
    }
    if (token.empty() || !same_secret(token, opt_.api_key)) {
      // The body (if any) is not read: the connection closes after this answer.
      res.set_header("WWW-Authenticate", "Bearer");
      res.set_header("Connection", "close");
      send_error(req, res,
                 ApiError(401, "authentication_error", "invalid_api_key",
                          auth.empty() ? "Missing API key: send the header `Authorization: Bearer <key>` "
                                         "(the key given to hearth serve --api-key or HEARTH_API_KEY)"
                                       : "Incorrect API key provided"));
      return true;
    }
  }
  return false;
}

void Server::install_routes() {
  using httplib::Request;
  using httplib::Response;
  auto wrap = [this](void (Server::*fn)(const Request&, Response&)) {
    return [this, fn](const Request& req, Response& res) {
      try {
        (this->*fn)(req, res);
      } catch (const ApiError& e) {
        send_error(req, res, e);
      } catch (const hearth::Error& e) {
        send_error(req, res, bad_request(e.what()));
      } catch (const std::exception& e) {
        send_error(req, res, ApiError(500, "server_error", "internal_error", std::string("internal error: ") + e.what()));
      }
    };
  };

  http_->set_pre_routing_handler([this](const Request& req, Response& res) {
    return pre_route(req, res) ? httplib::Server::HandlerResponse::Handled
                               : httplib::Server::HandlerResponse::Unhandled;
  });
  // Errors httplib answers itself (unknown route, body too large, malformed HTTP) get a JSON body; a
  // route that exists under another method answers 405.
  http_->set_error_handler(httplib::Server::HandlerWithResponse([](const Request& req, Response& res) {
    if (!res.body.empty() || res.status < 400) return httplib::Server::HandlerResponse::Unhandled;
    std::string msg;
    std::string code;
    if (res.status == 404 && route_label(req.path) != "other") {
      res.status = 405;
      res.set_header("Allow", req.path == "/v1/models" || req.path.rfind("/v1/models/", 0) == 0 ||
                                      req.path == "/api/tags" || req.path == "/api/ps" || req.path == "/api/version" ||
                                      req.path == "/health" || req.path == "/metrics"
                                  ? "GET"
                                  : "POST");
      msg = "Method " + req.method + " is not allowed on " + req.path + " (allowed: " + res.get_header_value("Allow") + ")";
      code = "method_not_allowed";
    } else if (res.status == 404) {
      msg = "Invalid URL (" + req.method + " " + req.path + ")";
      code = "unknown_url";
    } else if (res.status == 413) {
      msg = "The request body is too large (the limit is set with hearth serve --max-body)";
      code = "request_too_large";
    } else {
      msg = "Bad request";
      code = "bad_request";
    }
    send_error(req, res, ApiError(res.status, error_type_for_status(res.status), code, msg));
    return httplib::Server::HandlerResponse::Handled;
  }));
  http_->set_exception_handler([](const Request& req, Response& res, std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    send_error(req, res, ApiError(500, "server_error", "internal_error", "internal error: " + what));
  });
  auto metrics = metrics_;
  http_->set_logger([metrics](const Request& req, const Response& res) {
    metrics->count_request(route_label(req.path), res.status);
    if (res.status >= 400 && res.status != 404)
      std::fprintf(stderr, "hearth serve: %s %s -> %d\n", req.method.c_str(), req.path.c_str(), res.status);
  });

  http_->Get("/health", [this](const Request&, Response& res) {
    const chat::ServiceStats s = service_.stats();
    send_json(res, 200,
              {{"status", "ok"},
               {"model", model_.id},
               {"slots_idle", s.slots - s.busy_slots},
               {"slots_processing", s.busy_slots},
               {"queued", s.queued}});
  });
  http_->Get("/metrics", wrap(&Server::metrics));
  http_->Get("/v1/models", wrap(&Server::models_list));
  http_->Get("/v1/models/(.+)", wrap(&Server::model_get));
  http_->Post("/v1/chat/completions", wrap(&Server::chat_completions));
  http_->Post("/v1/completions", wrap(&Server::completions));
  http_->Post("/v1/embeddings", wrap(&Server::embeddings));
  http_->Post("/api/chat", wrap(&Server::ollama_chat_route));
  http_->Post("/api/generate", wrap(&Server::ollama_generate_route));
  http_->Post("/api/embed", wrap(&Server::ollama_embed_route));
  http_->Post("/api/embeddings", wrap(&Server::ollama_embeddings_route));
  http_->Get("/api/tags", wrap(&Server::ollama_tags));
  http_->Post("/api/show", wrap(&Server::ollama_show));
  http_->Get("/api/ps", wrap(&Server::ollama_ps));
  http_->Get("/api/version", [this](const Request&, Response& res) { send_json(res, 200, {{"version", opt_.version}}); });
  http_->Post("/api/pull", wrap(&Server::ollama_pull));
}

void Server::check_model(const json& body, bool required) const {
  const json* m = field(body, "model");
  if (!m) {
    if (required) throw bad_request("model is missing (this server serves \"" + model_.id + "\")");
    return;
  }
  if (!m->is_string()) throw bad_request("model must be a string");
  const std::string name = m->get<std::string>();
  if (name.empty()) return;
  if (!model_.matches(name)) throw model_not_found(name);
}

json Server::model_details() const {
  char params[32];
  const double p = double(model_.n_params);
  if (p >= 1e9) std::snprintf(params, sizeof params, "%.1fB", p / 1e9);
  else if (p >= 1e6) std::snprintf(params, sizeof params, "%.1fM", p / 1e6);
  else std::snprintf(params, sizeof params, "%.0fK", p / 1e3);
  return {{"parent_model", ""},
          {"format", "gguf"},
          {"family", model_.family},
          {"families", json::array({model_.family})},
          {"parameter_size", params},
          {"quantization_level", model_.quantization}};
}

// ---- routes ----

void Server::metrics(const httplib::Request&, httplib::Response& res) {
  res.status = 200;
  res.set_content(metrics_->render(service_.stats()), "text/plain; version=0.0.4; charset=utf-8");
}

void Server::models_list(const httplib::Request&, httplib::Response& res) {
  json m = {{"id", model_.id}, {"object", "model"}, {"created", model_.modified}, {"owned_by", "hearth"}};
  send_json(res, 200, {{"object", "list"}, {"data", json::array({m})}});
}

void Server::model_get(const httplib::Request& req, httplib::Response& res) {
  const std::string name = req.matches.size() > 1 ? std::string(req.matches[1]) : "";
  if (!model_.matches(name)) throw model_not_found(name);
  send_json(res, 200, {{"id", model_.id}, {"object", "model"}, {"created", model_.modified}, {"owned_by", "hearth"}});
}

void Server::chat_completions(const httplib::Request& req, httplib::Response& res) {
  const json body = parse_body(req);
  check_model(body, false);
  const bool stream = bool_field(body, "stream", false);
  bool include_usage = false;
  if (const json* so = field(body, "stream_options")) {
    if (!so->is_object()) throw bad_request("stream_options must be an object");
    include_usage = bool_field(*so, "include_usage", false);
  }
  chat::ChatRequest r;
  try {
    r = chat::parse_openai_request(body);
  } catch (const hearth::Error& e) {
    throw bad_request(e.what());
  }
  generate(Api::OpenAIChat, std::move(r), stream, include_usage, std::nullopt, req, res);
}

void Server::completions(const httplib::Request& req, httplib::Response& res) {
  json body = parse_body(req);
  check_model(body, false);
  reject_unsupported_openai(body);
  const bool stream = bool_field(body, "stream", false);
  bool include_usage = false;
  if (const json* so = field(body, "stream_options")) {
    if (!so->is_object()) throw bad_request("stream_options must be an object");
    include_usage = bool_field(*so, "include_usage", false);
  }
  if (bool_field(body, "echo", false)) throw bad_request("echo is not supported", "unsupported_parameter");
  if (const json* s = field(body, "suffix"); s && !(s->is_string() && s->get<std::string>().empty()))
    throw bad_request("suffix is not supported", "unsupported_parameter");
  if (const json* b = field(body, "best_of"); b && !(b->is_number_integer() && b->get<int64_t>() == 1))
    throw bad_request("best_of must be 1");
  std::string prompt;
  const json* p = field(body, "prompt");
  if (!p) throw bad_request("prompt is missing");
  if (p->is_string()) {
    prompt = p->get<std::string>();
  } else if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) {
    prompt = (*p)[0].get<std::string>();
  } else if (p->is_array() && !p->empty() && (*p)[0].is_string()) {
    throw bad_request("prompt: one prompt per request (hearth returns one choice)");
  } else {
    throw bad_request("prompt must be a string (token-id prompts are not supported)");
  }
  // The sampling fields are validated by the chat parser; only the prompt differs.
  json shaped = body;
  shaped.erase("prompt");
  for (const char* k : {"tools", "tool_choice", "response_format", "think", "reasoning_effort", "thinking_budget"})
    shaped.erase(k);
  shaped["messages"] = json::array({{{"role", "user"}, {"content", ""}}});
  if (!field(body, "max_tokens")) shaped["max_tokens"] = 16;  // OpenAI's default for completions
  chat::ChatRequest r;
  try {
    r = chat::parse_openai_request(shaped);
  } catch (const hearth::Error& e) {
    throw bad_request(e.what());
  }
  r.messages.clear();
  r.raw_prompt = prompt;
  generate(Api::OpenAICompletion, std::move(r), stream, include_usage, std::nullopt, req, res);
}

void Server::ollama_chat_route(const httplib::Request& req, httplib::Response& res) { ollama_chat(req, res, true); }
void Server::ollama_generate_route(const httplib::Request& req, httplib::Response& res) {
  ollama_chat(req, res, false);
}
void Server::ollama_embed_route(const httplib::Request& req, httplib::Response& res) { ollama_embed(req, res, false); }
void Server::ollama_embeddings_route(const httplib::Request& req, httplib::Response& res) {
  ollama_embed(req, res, true);
}

void Server::ollama_chat(const httplib::Request& req, httplib::Response& res, bool chat) {
  const json body = parse_body(req);
  check_model(body, true);
  OllamaRequest o = chat ? parse_ollama_chat(body) : parse_ollama_generate(body);
  for (const auto& note : o.notes) std::fprintf(stderr, "hearth serve: %s: %s\n", req.path.c_str(), note.c_str());
  if (o.load_only) {
    json j = {{"model", o.model}, {"created_at", rfc3339_now()}, {"done", true}, {"done_reason", "load"}};
    if (chat) j["message"] = {{"role", "assistant"}, {"content", ""}};
    else j["response"] = "";
    send_json(res, 200, j);
    return;
  }
  generate(chat ? Api::OllamaChat : Api::OllamaGenerate, std::move(o.req), o.stream, false, o.num_ctx, req, res);
}

void Server::generate(Api api, chat::ChatRequest req, bool stream, bool include_usage, std::optional<int> num_ctx,
                      const httplib::Request& http_req, httplib::Response& res) {
  const bool want_logprobs = req.logprobs >= 0;
  const Clock::time_point start = Clock::now();
  const int slot_ctx = service_.options().n_ctx;
  const int ctx = num_ctx ? std::min(*num_ctx, slot_ctx) : slot_ctx;
  validate_constraints(req);
  const int n_prompt = service_.count_prompt_tokens(req);
  if (n_prompt >= ctx) {
    std::string msg = "The prompt has " + std::to_string(n_prompt) + " tokens but the context holds " +
                      std::to_string(ctx) + " (at least one more is needed to answer). ";
    msg += num_ctx && *num_ctx < slot_ctx ? "Raise options.num_ctx (the server's context is " + std::to_string(slot_ctx) + ")."
                                          : "Shorten the messages, or start hearth serve with a larger --ctx.";
    throw ApiError(400, "invalid_request_error", "context_length_exceeded", msg);
  }
  if (req.max_tokens && *req.max_tokens > ctx)
    throw ApiError(400, "invalid_request_error", "context_length_exceeded",
                   "max_tokens is " + std::to_string(*req.max_tokens) + " but the context holds " + std::to_string(ctx) +
                       " tokens, " + std::to_string(n_prompt) + " of them taken by the prompt (at most " +
                       std::to_string(ctx - n_prompt) + " can be generated)");
  if (num_ctx && ctx < slot_ctx) {
    const int room = ctx - n_prompt;  // the request's own context ends generation
    req.max_tokens = req.max_tokens ? std::min(*req.max_tokens, room) : room;
  }

  auto gen = std::make_shared<Generation>();
  gen->start = start;
  gen->metrics = metrics_;
  const int fd = connection_socket(http_req);
  gen->fd = fd;
  std::weak_ptr<Generation> weak = gen;
  try {
    gen->job = service_.submit(std::move(req), [weak](const chat::ChatEvent& ev) {
      auto g = weak.lock();
      return g && g->push(ev);
    });
  } catch (const hearth::Error& e) {
    throw ApiError(400, "invalid_request_error", "context_length_exceeded", e.what());
  }

  const std::string model = model_.id;
  if (!stream) {
    // Wait for the engine; a client that closes its connection, or a stopping server, cancels the request.
    while (!gen->job->finished()) {
      {
        std::unique_lock lk(gen->mu);
        gen->cv.wait_for(lk, std::chrono::milliseconds(20));
        gen->events.clear();  // the result comes from the job
      }
      if (stopping_ || peer_closed(fd)) gen->gone();
    }
    gen->release_fd();
    chat::ChatResult r;
    try {
      r = gen->job->wait();
    } catch (const hearth::Error& e) {
      const std::string what = e.what();
      if (what.rfind("internal", 0) == 0) throw ApiError(500, "server_error", "internal_error", what);
      throw bad_request(what);
    }
    for (const auto& err : r.errors) std::fprintf(stderr, "hearth serve: engine note: %s\n", err.c_str());
    switch (api) {
      case Api::OpenAIChat:
        send_json(res, 200, chat_completion_json({random_id("chatcmpl-"), model, unix_now()}, r, want_logprobs));
        break;
      case Api::OpenAICompletion:
        send_json(res, 200, text_completion_json({random_id("cmpl-"), model, unix_now()}, r));
        break;
      case Api::OllamaChat:
      case Api::OllamaGenerate:
        send_json(res, 200, OllamaChunker(model, api == Api::OllamaChat, start).whole(r));
        break;
    }
    return;
  }

  // Streaming: the provider runs on this HTTP thread after the handler returns, pulling the events the
  // engine thread queued. A failed write (client gone) cancels the request at the engine's next token.
  struct Format {
    Api api;
    ChatChunker chat;
    CompletionChunker completion;
    OllamaChunker ollama;
    bool begun = false;
    Clock::time_point last_write = Clock::now();
    std::string event(const chat::ChatEvent& ev) {
      if (api == Api::OpenAIChat) return chat.event(ev);
      if (api == Api::OpenAICompletion) return completion.event(ev);
      return ollama.event(ev);
    }
    std::string error(const std::string& msg) {
      if (api == Api::OpenAIChat) return chat.error(msg);
      if (api == Api::OpenAICompletion) return completion.error(msg);
      return ollama.error(msg);
    }
    bool sse() const { return api == Api::OpenAIChat || api == Api::OpenAICompletion; }
  };
  auto fmt = std::make_shared<Format>(Format{api,
                                             ChatChunker({random_id("chatcmpl-"), model, unix_now()}, include_usage),
                                             CompletionChunker({random_id("cmpl-"), model, unix_now()}, include_usage),
                                             OllamaChunker(model, api == Api::OllamaChat, start)});
  const bool sse = fmt->sse();
  res.status = 200;
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  metrics_->stream_started();
  auto metrics = metrics_;
  auto pump = [this, gen, fmt, fd](httplib::DataSink& sink) -> bool {
    std::string out;
    if (!fmt->begun) {
      fmt->begun = true;
      if (fmt->api == Api::OpenAIChat) out += fmt->chat.begin();
    }
    const bool finished = gen->job->finished();  // before take(): then every event is already queued
    bool done = false;
    for (const auto& ev : gen->take(std::chrono::milliseconds(out.empty() ? 100 : 0))) {
      out += fmt->event(ev);
      if (ev.kind == chat::ChatEvent::Kind::Done) {
        done = true;
        break;
      }
    }
    if (!done && finished) {
      std::string msg = "the request ended without an answer";
      try {
        gen->job->wait();
      } catch (const std::exception& e) {
        msg = e.what();
      }
      out += fmt->error(msg);
      done = true;
    }
    if (!done && stopping_) {
      gen->gone();
      return false;
    }
    if (out.empty() && peer_closed(fd)) {  // gone while queued or during prefill: nothing was written
      gen->gone();
      return false;
    }
    if (out.empty() && fmt->sse() && Clock::now() - fmt->last_write > std::chrono::seconds(5))
      out = ": keep-alive\n\n";  // SSE comment: lets a long prefill or queue wait notice a gone client
    if (!out.empty()) {
      if (!sink.write(out.data(), out.size())) {
        gen->gone();
        return false;
      }
      fmt->last_write = Clock::now();
    }
    if (done) {
      gen->release_fd();
      sink.done();
    }
    return true;
  };
  res.set_chunked_content_provider(
      sse ? "text/event-stream" : "application/x-ndjson",
      [gen, pump](size_t, httplib::DataSink& sink) -> bool {
        try {
          return pump(sink);
        } catch (const std::exception& e) {  // never let an exception unwind through httplib's writer
          std::fprintf(stderr, "hearth serve: stream aborted: %s\n", e.what());
          gen->gone();
          return false;
        }
      },
      [gen, metrics](bool success) {
        if (!success) gen->gone();
        gen->release_fd();
        metrics->stream_ended();
      });
}

void Server::embeddings(const httplib::Request& req, httplib::Response& res) {
  const json body = parse_body(req);
  check_model(body, false);
  const json* input = field(body, "input");
  if (!input) throw bad_request("input is missing");
  std::vector<std::string> texts;
  if (input->is_string()) {
    texts.push_back(input->get<std::string>());
  } else if (input->is_array() && !input->empty() && std::all_of(input->begin(), input->end(), [](const json& x) {
               return x.is_string();
             })) {
    for (const json& x : *input) texts.push_back(x.get<std::string>());
  } else if (input->is_array() && !input->empty() && ((*input)[0].is_number_integer() || (*input)[0].is_array())) {
    throw bad_request(
        "input as token ids is not supported (they would be another tokenizer's ids): send text "
        "(LangChain: OpenAIEmbeddings(check_embedding_ctx_length=False))");
  } else {
    throw bad_request("input must be a string or a non-empty array of strings");
  }
  if (texts.size() > 2048) throw bad_request("input holds more than 2048 texts");
  std::string encoding = "float";
  if (const json* e = field(body, "encoding_format")) {
    if (!e->is_string() || (e->get<std::string>() != "float" && e->get<std::string>() != "base64"))
      throw bad_request("encoding_format must be \"float\" or \"base64\"");
    encoding = e->get<std::string>();
  }
  const int n_embd = int(model_.model_info.value(model_.family + ".embedding_length", int64_t(0)));
  if (const json* d = field(body, "dimensions")) {
    if (!d->is_number_integer() || (n_embd > 0 && d->get<int64_t>() != n_embd))
      throw bad_request("dimensions must be " + std::to_string(n_embd) + " (this model's embedding size)");
  }
  json data = json::array();
  int64_t tokens = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    if (texts[i].empty()) throw bad_request("input[" + std::to_string(i) + "] is empty");
    tokens += int64_t(service_.tokenizer().encode_prompt(texts[i], false).size());
    const std::vector<float> v = service_.embed(texts[i]);
    json item = {{"object", "embedding"}, {"index", i}};
    if (encoding == "base64") item["embedding"] = base64_encode(v.data(), v.size() * sizeof(float));
    else item["embedding"] = v;
    data.push_back(item);
  }
  send_json(res, 200,
            {{"object", "list"},
             {"data", data},
             {"model", model_.id},
             {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}});
}

void Server::ollama_embed(const httplib::Request& req, httplib::Response& res, bool legacy) {
  const json body = parse_body(req);
  check_model(body, true);
  const Clock::time_point start = Clock::now();
  std::vector<std::string> texts;
  const json* input = field(body, legacy ? "prompt" : "input");
  if (!input) throw bad_request(legacy ? "prompt is missing" : "input is missing");
  if (input->is_string()) {
    texts.push_back(input->get<std::string>());
  } else if (!legacy && input->is_array() && std::all_of(input->begin(), input->end(), [](const json& x) {
               return x.is_string();
             })) {
    for (const json& x : *input) texts.push_back(x.get<std::string>());
  } else {
    throw bad_request(legacy ? "prompt must be a string" : "input must be a string or an array of strings");
  }
  json vecs = json::array();
  int64_t tokens = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    if (texts[i].empty()) throw bad_request("input[" + std::to_string(i) + "] is empty");
    tokens += int64_t(service_.tokenizer().encode_prompt(texts[i], false).size());
    vecs.push_back(service_.embed(texts[i]));
  }
  if (legacy) {
    send_json(res, 200, {{"embedding", vecs.empty() ? json::array() : vecs[0]}});
    return;
  }
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
  send_json(res, 200,
            {{"model", model_.id},
             {"embeddings", vecs},
             {"total_duration", int64_t(ns)},
             {"load_duration", 0},
             {"prompt_eval_count", tokens}});
}

void Server::ollama_tags(const httplib::Request&, httplib::Response& res) {
  json m = {{"name", model_.id},
            {"model", model_.id},
            {"modified_at", rfc3339(model_.modified)},
            {"size", model_.file_bytes},
            {"digest", ""},
            {"details", model_details()}};
  send_json(res, 200, {{"models", json::array({m})}});
}

void Server::ollama_show(const httplib::Request& req, httplib::Response& res) {
  const json body = parse_body(req);
  // Ollama's clients send `model` (older ones `name`).
  const json* m = field(body, "model");
  if (!m) m = field(body, "name");
  if (!m) throw bad_request("model is missing");
  if (!m->is_string()) throw bad_request("model must be a string");
  if (!model_.matches(m->get<std::string>())) throw model_not_found(m->get<std::string>());
  json info = model_.model_info;
  send_json(res, 200,
            {{"license", info.value("general.license", "")},
             {"modelfile", "# hearth serves " + model_.path + "\nFROM " + model_.path + "\n"},
             {"parameters", ""},
             {"template", "(hearth renders the Gemma 4 chat format natively; see GET /api/show details)"},
             {"details", model_details()},
             {"model_info", info},
             {"capabilities", json::array({"completion", "tools", "thinking", "embedding"})},
             {"modified_at", rfc3339(model_.modified)}});
}

namespace {

// A `hearth pull REF --progress-json` child: its stdout lines are Ollama's pull progress objects; its stderr
// (the error message, if any) is read when it ends.
struct PullChild {
  pid_t pid = -1;
  int out = -1, err = -1;
  std::string buf;

  explicit PullChild(const std::string& model) {
    int o[2], e[2];
    if (pipe(o) != 0 || pipe(e) != 0) throw Error("internal: cannot create a pipe for the puller");
    pid = fork();
    if (pid < 0) throw Error("internal: cannot start the puller");
    if (pid == 0) {
      sigset_t none;  // the server blocks SIGINT/SIGTERM in its threads; the puller must not inherit that
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      dup2(o[1], 1);
      dup2(e[1], 2);
      ::close(o[0]), ::close(o[1]), ::close(e[0]), ::close(e[1]);
      const char* argv[] = {"hearth", "pull", model.c_str(), "--progress-json", "--no-progress", nullptr};
      execv("/proc/self/exe", const_cast<char* const*>(argv));
      _exit(127);
    }
    ::close(o[1]), ::close(e[1]);
    out = o[0], err = e[0];
  }
  ~PullChild() {
    if (pid > 0) {
      ::kill(pid, SIGTERM);  // a client that went away stops the download; its .partial stays for next time
      waitpid(pid, nullptr, 0);
    }
    if (out >= 0) ::close(out);
    if (err >= 0) ::close(err);
  }
  // The next progress line, or nullopt at the end of the child's output.
  std::optional<std::string> line() {
    while (true) {
      if (const size_t nl = buf.find('\n'); nl != std::string::npos) {
        std::string l = buf.substr(0, nl);
        buf.erase(0, nl + 1);
        return l;
      }
      char tmp[4096];
      const ssize_t n = ::read(out, tmp, sizeof tmp);
      if (n <= 0) return std::nullopt;
      buf.append(tmp, size_t(n));
    }
  }
  // Waits for the child; "" when it succeeded, else its error message.
  std::string finish() {
    std::string msg;
    char tmp[4096];
    ssize_t n;
    while ((n = ::read(err, tmp, sizeof tmp)) > 0) msg.append(tmp, size_t(n));
    int status = 0;
    waitpid(pid, &status, 0);
    pid = -1;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
    // Keep the last "hearth: error: ..." line, without the prefix.
    std::string last;
    size_t pos = 0;
    while (pos < msg.size()) {
      const size_t nl = msg.find('\n', pos);
      std::string l = msg.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
      if (l.starts_with("hearth: error: ")) last = l.substr(15);
      pos = nl == std::string::npos ? msg.size() : nl + 1;
    }
    return last.empty() ? "the download failed" : last;
  }
};

}  // namespace

// Ollama /api/pull: the store's puller (resume, verification, per-blob lock) runs in a child process whose
// progress lines are relayed as NDJSON; the HTTP thread only copies bytes. The served model does not change.
void Server::ollama_pull(const httplib::Request& req, httplib::Response& res) {
  const json body = parse_body(req);
  const json* m = field(body, "model");
  if (!m) m = field(body, "name");
  if (!m) throw bad_request("model is missing");
  if (!m->is_string() || m->get<std::string>().empty()) throw bad_request("model must be a non-empty string");
  const std::string model = m->get<std::string>();
  if (model.find('\0') != std::string::npos || model.starts_with("-")) throw bad_request("invalid model reference");
  const bool stream = bool_field(body, "stream", true);
  auto child = std::make_shared<PullChild>(model);
  if (!stream) {
    json last = {{"status", "success"}};
    while (auto l = child->line()) {
      json j = json::parse(*l, nullptr, false);
      if (!j.is_discarded()) last = j;
    }
    const std::string err = child->finish();
    if (!err.empty()) throw ApiError(400, "invalid_request_error", "pull_failed", err);
    send_json(res, 200, last);
    return;
  }
  res.set_chunked_content_provider("application/x-ndjson", [child](size_t, httplib::DataSink& sink) -> bool {
    if (auto l = child->line()) {
      const std::string out = *l + "\n";
      return sink.write(out.data(), out.size());
    }
    const std::string err = child->finish();
    if (!err.empty()) {
      const std::string out = json{{"error", err}}.dump() + "\n";
      sink.write(out.data(), out.size());
    }
    sink.done();
    return true;
  });
}

void Server::ollama_ps(const httplib::Request&, httplib::Response& res) {
  const chat::ServiceStats s = service_.stats();
  const uint64_t rss = Metrics::resident_bytes();
  json m = {{"name", model_.id},
            {"model", model_.id},
            {"size", rss},
            {"digest", ""},
            {"details", model_details()},
            {"expires_at", "9999-12-31T23:59:59Z"},
            {"size_vram", 0},
            {"context_length", service_.options().n_ctx},
            {"hearth",
             {{"path", model_.path},
              {"file_bytes", model_.file_bytes},
              {"resident_bytes", rss},
              {"slots", s.slots},
              {"busy_slots", s.busy_slots},
              {"queued", s.queued},
              {"kv_cells_used", s.kv_cells_used},
              {"kv_cells_total", s.kv_cells_total},
              {"requests_done", s.requests_done},
              {"started_at", rfc3339(started_)}}}};
  send_json(res, 200, {{"models", json::array({m})}});
}

}  // namespace hearth::server
