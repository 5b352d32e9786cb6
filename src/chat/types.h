// What a chat request and its answer are, independent of any wire format. The server (OpenAI / Ollama
// JSON) and the CLI fill a ChatRequest; the engine answers with a stream of ChatEvents.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace hearth::chat {

using json = nlohmann::json;

struct ToolCall {
  std::string id;
  std::string name;
  // A JSON object as clients send it (OpenAI sends a JSON string; it is parsed when it holds an object,
  // otherwise kept as the string so the prompt shows exactly what the client sent).
  json arguments = json::object();
};

struct Message {
  std::string role;             // system, developer, user, assistant, tool (other names pass through)
  json content;                 // null, a string, or an array of OpenAI content parts
  std::vector<ToolCall> tool_calls;
  std::string tool_call_id;     // role tool
  std::string name;             // role tool: the function's name, when the client gives it
};

struct Tool {
  std::string name;
  json function;                // the OpenAI `function` object: name, description, parameters (, response)
  json parameters() const { return function.contains("parameters") ? function["parameters"] : json(); }
};

enum class ToolChoice { Auto, None, Required, Function };

enum class ResponseFormat { Text, JsonObject, JsonSchema };

struct Sampling {
  float temperature = 1.0f;  // Gemma 4's generation_config: temperature 1.0, top_k 64, top_p 0.95
  int top_k = 64;
  float top_p = 0.95f;
  float min_p = 0.0f;
  std::optional<uint64_t> seed;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  std::vector<std::pair<int32_t, float>> logit_bias;  // OpenAI logit_bias: token id → added to its logit
  // llama.cpp's ignore_eos: free-text answers never end with an end-of-generation token, only at max_tokens
  // or a stop string (benchmarks, load tests). Grammar-constrained output still ends where its grammar does.
  bool ignore_eos = false;
};

struct ChatRequest {
  std::vector<Message> messages;
  // Completions API: this text (special tokens parsed, BOS added) instead of rendered messages; the output
  // is all content (no thinking channel, no tool calls).
  std::optional<std::string> raw_prompt;
  std::vector<Tool> tools;
  ToolChoice tool_choice = ToolChoice::Auto;
  std::string tool_choice_function;  // ToolChoice::Function
  bool parallel_tool_calls = true;

  ResponseFormat response_format = ResponseFormat::Text;
  json json_schema;                  // ResponseFormat::JsonSchema: the schema itself

  bool think = false;                 // thinking channel on/off
  std::optional<int> thinking_budget; // reasoning tokens at most (from reasoning_effort or thinking_budget)

  Sampling sampling;
  std::optional<int> max_tokens;      // completion tokens (reasoning included), as OpenAI counts them
  std::vector<std::string> stop;
  int logprobs = -1;                  // -1: off; else the number of alternatives per content token (0-20)
};

struct Usage {
  int prompt_tokens = 0;
  int cached_prompt_tokens = 0;  // reused from the previous request's KV cache
  int completion_tokens = 0;     // everything generated, reasoning included
  int reasoning_tokens = 0;
  double prompt_ms = 0, decode_ms = 0;
};

// The log-probability of one sampled content token (from the distribution it was drawn from, after
// penalties and constraints, before temperature), with the most likely alternatives.
struct TokenLogprob {
  std::string token;
  float logprob = 0;
  std::vector<std::pair<std::string, float>> top;
};

struct ChatEvent {
  enum class Kind { Reasoning, Content, ToolCall, Error, Done };
  Kind kind = Kind::Content;
  std::string text;          // Reasoning / Content delta, or the Error message
  ToolCall call;             // ToolCall: one complete call
  int index = 0;             // ToolCall: position among this answer's calls
  std::vector<TokenLogprob> logprobs;  // Content, when requested: the tokens this delta's text came from
  std::string finish_reason; // Done: stop, length, tool_calls
  Usage usage;               // Done
};

// The whole answer, as the events added up.
struct ChatResult {
  std::string reasoning, content;
  std::vector<ToolCall> tool_calls;
  std::vector<std::string> errors;  // malformed tool calls the model wrote (reported, never leaked)
  std::string finish_reason;        // stop, length, tool_calls, cancelled
  Usage usage;
  std::vector<TokenLogprob> logprobs;  // content tokens, when requested
};

}  // namespace hearth::chat
