// The HTTP server: OpenAI- and Ollama-compatible routes over one ChatService. HTTP threads parse,
// validate, submit to the service and write what its engine threads deliver (through a per-request queue);
// they never compute.
//
// OpenAI:  GET /v1/models, GET /v1/models/{id}, POST /v1/chat/completions, /v1/completions, /v1/embeddings
// Ollama:  POST /api/chat, /api/generate, /api/show, /api/embed, /api/embeddings; GET /api/tags, /api/ps,
//          /api/version; POST /api/pull (501 until the model store lands)
// Ops:     GET /health, GET /metrics (Prometheus)
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "chat/service.h"
#include "server/metrics.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace hearth::server {

// What the API says about the served model.
struct ServedModel {
  std::string id;            // the file stem ("demo" for out/demo.gguf): the `model` clients send
  std::string path;          // the GGUF file
  uint64_t file_bytes = 0;
  int64_t modified = 0;      // unix seconds (the file's mtime)
  std::string family;        // general.architecture
  std::string quantization;  // the weight type holding most of the bytes ("Q8_0")
  int64_t n_params = 0;
  int n_ctx_train = 0;
  nlohmann::json model_info = nlohmann::json::object();  // GGUF scalar metadata, for /api/show
  // True for the names a client may use: the id, "id:latest", the file name, the path.
  bool matches(const std::string& name) const;
};

// Fills ServedModel from a loaded GGUF (metadata scalars, the dominant tensor type, sizes).
ServedModel describe_model(const std::string& path, const gguf::File& file, const models::ModelInfo& info);

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 12434;                      // 0: any free port (bound_port() tells which)
  std::string api_key;                   // empty: no authentication
  std::vector<std::string> cors_origins; // "*" allows any origin
  size_t max_body = 8u << 20;            // bytes; larger bodies get 413
  int http_threads = 64;                 // connections served at once (streams hold one each)
  std::string version = "0.1.0";
};

class Server {
 public:
  Server(chat::ChatService& service, ServedModel model, ServerOptions opt);
  ~Server();

  // Binds the listening socket; throws hearth::Error when it cannot. Returns the port.
  int bind();
  int bound_port() const { return port_; }
  // Serves until stop() (from any thread). Returns false when the server failed.
  bool run();
  void stop();

  // Route label for metrics: the route pattern a path belongs to, or "other".
  static std::string route_label(const std::string& path);

 private:
  void install_routes();
  // Pre-routing: CORS headers, authentication. Returns true when the request was answered.
  bool pre_route(const httplib::Request& req, httplib::Response& res);

  void models_list(const httplib::Request& req, httplib::Response& res);
  void model_get(const httplib::Request& req, httplib::Response& res);
  void chat_completions(const httplib::Request& req, httplib::Response& res);
  void completions(const httplib::Request& req, httplib::Response& res);
  void embeddings(const httplib::Request& req, httplib::Response& res);
  void ollama_chat(const httplib::Request& req, httplib::Response& res, bool chat);
  void ollama_chat_route(const httplib::Request& req, httplib::Response& res);
  void ollama_generate_route(const httplib::Request& req, httplib::Response& res);
  void ollama_embed(const httplib::Request& req, httplib::Response& res, bool legacy);
  void ollama_embed_route(const httplib::Request& req, httplib::Response& res);
  void ollama_embeddings_route(const httplib::Request& req, httplib::Response& res);
  void ollama_tags(const httplib::Request& req, httplib::Response& res);
  void ollama_show(const httplib::Request& req, httplib::Response& res);
  void ollama_ps(const httplib::Request& req, httplib::Response& res);
  void ollama_pull(const httplib::Request& req, httplib::Response& res);
  void metrics(const httplib::Request& req, httplib::Response& res);

  struct Generation;
  // Validates the context, submits, and answers (streaming or whole). `api` selects the wire format.
  enum class Api { OpenAIChat, OpenAICompletion, OllamaChat, OllamaGenerate };
  void generate(Api api, chat::ChatRequest req, bool stream, bool include_usage, std::optional<int> num_ctx,
                const httplib::Request& http_req, httplib::Response& res);
  void check_model(const nlohmann::json& body, bool required) const;
  nlohmann::json model_details() const;

  chat::ChatService& service_;
  ServedModel model_;
  ServerOptions opt_;
  std::unique_ptr<httplib::Server> http_;
  std::shared_ptr<Metrics> metrics_;  // shared with streams that outlive a handler call
  std::atomic<bool> stopping_{false};
  int port_ = 0;
  int64_t started_ = 0;
};

}  // namespace hearth::server
