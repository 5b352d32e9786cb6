// Errors the HTTP layer answers with: a status and OpenAI's error object
// {"error": {"message", "type", "code"}}. Ollama routes answer with Ollama's own shape {"error": "message"}
// (the ollama clients read `error` as a string), same status.
#pragma once
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace hearth::server {

struct ApiError : std::runtime_error {
  int status;
  std::string type;  // invalid_request_error, authentication_error, not_found_error, server_error, ...
  std::string code;  // machine-readable: invalid_json, invalid_value, model_not_found, context_length_exceeded...
  ApiError(int status_, std::string type_, std::string code_, const std::string& message)
      : std::runtime_error(message), status(status_), type(std::move(type_)), code(std::move(code_)) {}
};

inline ApiError bad_request(const std::string& message, const std::string& code = "invalid_value") {
  return ApiError(400, "invalid_request_error", code, message);
}

inline ApiError model_not_found(const std::string& model) {
  return ApiError(404, "invalid_request_error", "model_not_found",
                  "The model `" + model + "` does not exist (this server serves one model; GET /v1/models lists it)");
}

// The error type OpenAI uses for an HTTP status.
inline std::string error_type_for_status(int status) {
  switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 405: return "invalid_request_error";
    case 413: return "invalid_request_error";
    case 429: return "rate_limit_error";
    case 501: return "not_implemented_error";
    case 503: return "server_unavailable_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

inline nlohmann::json openai_error_json(const std::string& message, const std::string& type, const std::string& code) {
  nlohmann::json err = {{"message", message}, {"type", type}, {"param", nullptr}, {"code", nullptr}};
  if (!code.empty()) err["code"] = code;
  return {{"error", err}};
}
inline nlohmann::json openai_error_json(const ApiError& e) { return openai_error_json(e.what(), e.type, e.code); }

inline nlohmann::json ollama_error_json(const std::string& message) { return {{"error", message}}; }

}  // namespace hearth::server
