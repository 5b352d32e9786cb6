// The model an agent talks to, behind one interface: the in-process engine (default) or any
// OpenAI-compatible endpoint (`--endpoint http://127.0.0.1:12434/v1 --model NAME`: hearth serve, llama.cpp's
// server, Ollama, vLLM, a hosted API). Both take the same ChatRequest and answer with a ChatResult, so the
// agent loop cannot tell them apart.
#pragma once
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "chat/engine.h"
#include "chat/types.h"

namespace hearth::agent {

using json = nlohmann::json;

// Streaming deltas (reasoning and content) while an answer is generated, for live progress. Returning false
// stops the answer (the in-process engine ends it with finish_reason "cancelled"; an endpoint's answer arrives
// whole, so there it only stops the callbacks).
using DeltaFn = std::function<bool(const chat::ChatEvent&)>;

class ChatModel {
 public:
  virtual ~ChatModel() = default;
  virtual std::string name() const = 0;
  // One model turn. Throws hearth::Error when the model cannot answer at all (endpoint unreachable, HTTP
  // error, prompt longer than the context); malformed tool calls come back in ChatResult::errors.
  virtual chat::ChatResult complete(const chat::ChatRequest& req, const DeltaFn& on_delta = {}) = 0;
};

// The in-process engine (the caller owns it and its model).
class EngineModel : public ChatModel {
 public:
  EngineModel(chat::ChatEngine& engine, std::string name) : engine_(engine), name_(std::move(name)) {}
  std::string name() const override { return name_; }
  chat::ChatResult complete(const chat::ChatRequest& req, const DeltaFn& on_delta) override;

 private:
  chat::ChatEngine& engine_;
  std::string name_;
};

struct EndpointOptions {
  std::string base_url;  // OpenAI base URL, e.g. http://127.0.0.1:12434/v1 (POSTs go to base_url + /chat/completions)
  std::string model;     // the `model` field of each request
  std::string api_key;   // sent as "Authorization: Bearer ..." when not empty
  int timeout_s = 600;   // whole request, generation included
};

// An OpenAI-compatible /chat/completions endpoint, non-streaming requests over libcurl.
class EndpointModel : public ChatModel {
 public:
  explicit EndpointModel(EndpointOptions opt);
  std::string name() const override { return opt_.model; }
  chat::ChatResult complete(const chat::ChatRequest& req, const DeltaFn& on_delta) override;

 private:
  EndpointOptions opt_;
};

// The request as OpenAI's JSON body: messages (tool calls with their arguments as JSON text), tools,
// tool_choice, parallel_tool_calls, temperature, top_p, seed, max_tokens, stop; response_format; the thinking
// switch as `reasoning_effort` ("none" when thinking is off) only when the request turns thinking on or
// bounds it, so endpoints that do not know it are not sent it otherwise.
json openai_request_body(const chat::ChatRequest& req, const std::string& model);

// A chat.completion object → ChatResult (content, reasoning_content / reasoning, tool_calls with arguments
// parsed from JSON text, finish_reason, usage). Arguments that are not valid JSON become an entry of
// `errors` naming the call, so the agent can feed the mistake back. Throws hearth::Error for a body that is
// not a chat.completion (or is an error object: its message).
chat::ChatResult parse_openai_response(const json& body);

}  // namespace hearth::agent
