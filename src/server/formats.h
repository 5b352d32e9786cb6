// Wire formats: engine results and events (chat/types.h, chat/engine.h) → OpenAI JSON and SSE chunks, and
// Ollama JSON and NDJSON lines; Ollama request bodies → ChatRequest. Pure functions and small state
// machines, no I/O: the server feeds them events and writes what they return.
#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "chat/engine.h"
#include "chat/types.h"

namespace hearth::server {

using json = nlohmann::json;

// ---- OpenAI ----

struct ResponseMeta {
  std::string id;       // chatcmpl-..., cmpl-...
  std::string model;    // the served model id
  int64_t created = 0;  // unix seconds
};

// {"prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details": {"cached_tokens"},
//  "completion_tokens_details": {"reasoning_tokens"}}
json usage_json(const chat::Usage& u);
// llama.cpp's timings object: prompt_n, prompt_ms, prompt_per_token_ms, prompt_per_second, predicted_n,
// predicted_ms, predicted_per_token_ms, predicted_per_second, cache_n.
json timings_json(const chat::Usage& u);

// "data: <json>\n\n"; dump() replaces invalid UTF-8 instead of throwing.
std::string sse_data(const json& j);
inline constexpr const char* kSseDone = "data: [DONE]\n\n";
std::string dump_json(const json& j);  // compact, invalid UTF-8 replaced

// tool call → {"id", "type": "function", "function": {"name", "arguments": "<JSON text>"}}
json openai_tool_call(const chat::ToolCall& c);

// A whole chat.completion object.
// logprobs: the request asked for them (choices[0].logprobs.content, OpenAI's shape); else null.
json chat_completion_json(const ResponseMeta& meta, const chat::ChatResult& r, bool logprobs = false);
json logprobs_json(const std::vector<chat::TokenLogprob>& lps);
// A whole text_completion object (/v1/completions).
json text_completion_json(const ResponseMeta& meta, const chat::ChatResult& r);

// Streams chat.completion.chunk objects: a role chunk first, then one chunk per content / reasoning /
// tool-call delta, a finish chunk (empty delta, finish_reason), the usage chunk when include_usage, and
// `data: [DONE]`. With include_usage every other chunk carries "usage": null, as OpenAI sends it.
class ChatChunker {
 public:
  ChatChunker(ResponseMeta meta, bool include_usage) : meta_(std::move(meta)), include_usage_(include_usage) {}
  std::string begin();
  // The SSE text for one engine event (empty for events that have no wire form). After Done it returns
  // the finish chunk, the usage chunk and [DONE]; done() is then true.
  std::string event(const chat::ChatEvent& ev);
  // A fatal error after the stream began: an SSE event holding the error object (the SDKs throw it).
  std::string error(const std::string& message, const std::string& type = "server_error");
  bool done() const { return done_; }
  int tool_calls() const { return n_tool_calls_; }

 private:
  json chunk(json delta, const json& finish_reason = nullptr) const;
  ResponseMeta meta_;
  bool include_usage_;
  bool done_ = false;
  int n_tool_calls_ = 0;
};

// Streams text_completion chunks for /v1/completions (content deltas only).
class CompletionChunker {
 public:
  CompletionChunker(ResponseMeta meta, bool include_usage) : meta_(std::move(meta)), include_usage_(include_usage) {}
  std::string event(const chat::ChatEvent& ev);
  std::string error(const std::string& message, const std::string& type = "server_error");
  bool done() const { return done_; }

 private:
  json chunk(const std::string& text, const json& finish_reason) const;
  ResponseMeta meta_;
  bool include_usage_;
  bool done_ = false;
};

// OpenAI's finish_reason for the engine's ("cancelled" never reaches a client; it maps to "stop").
std::string openai_finish_reason(const std::string& engine_reason);

// ---- Ollama ----

// An Ollama /api/chat or /api/generate body, mapped onto the engine's request.
struct OllamaRequest {
  std::string model;
  chat::ChatRequest req;
  bool stream = true;
  std::optional<int> num_ctx;   // options.num_ctx: the context this request may use
  bool num_predict_fill = false;  // num_predict -1 / -2 (or absent): generate until the context is full
  bool load_only = false;       // /api/generate with an empty prompt: Ollama's "load the model" request
  std::vector<std::string> notes;  // what was accepted but ignored (images), for the log
};

// Throws ApiError (400) naming the offending field.
OllamaRequest parse_ollama_chat(const json& body);
OllamaRequest parse_ollama_generate(const json& body);

// RFC 3339 with nanoseconds in UTC, as Ollama writes created_at.
std::string rfc3339_now();

// NDJSON lines for /api/chat (chat = true) or /api/generate (chat = false).
class OllamaChunker {
 public:
  OllamaChunker(std::string model, bool chat, std::chrono::steady_clock::time_point start)
      : model_(std::move(model)), chat_(chat), start_(start) {}
  std::string event(const chat::ChatEvent& ev);  // one line per delta; the final `done: true` line on Done
  std::string error(const std::string& message);  // {"error": "..."} line
  bool done() const { return done_; }
  // The non-streaming answer: one object holding the whole message and the final statistics.
  json whole(const chat::ChatResult& r) const;

 private:
  json base() const;
  json final_fields(const chat::Usage& u, const std::string& finish_reason) const;
  std::string model_;
  bool chat_;
  std::chrono::steady_clock::time_point start_;
  bool done_ = false;
};

// Ollama's tool call shape: {"function": {"index", "name", "arguments": {...}}} (arguments an object).
json ollama_tool_call(const chat::ToolCall& c, int index);

// Base64 (standard alphabet, padded) of raw bytes: OpenAI's encoding_format "base64" for embeddings.
std::string base64_encode(const void* data, size_t n);

}  // namespace hearth::server
