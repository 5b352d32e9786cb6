// chat(request) → a stream of events, in process: renders the Gemma 4 prompt, reuses the KV cache of the
// previous request's common prefix, samples with grammar constraints (JSON schema, json_object, tool
// calls as tool_choice demands), bounds thinking, and parses the output into reasoning, content and
// tool calls. One request at a time; the server's scheduler serialises requests onto it.
//
// Thinking (request.think): the answer opens with the thought channel (`<|channel>thought\n`, forced so
// a budget always applies), reasoning tokens are counted, and the channel is closed by the engine —
// after a one-line wrap-up — when the budget is spent, when max_tokens would leave no room for the
// answer, or when the reasoning loops (the same token pattern repeating). After the channel the first
// answer token must be visible text (or a tool call), so an answer is never empty.
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "chat/gemma4_parser.h"
#include "chat/generation.h"
#include "chat/types.h"
#include "models/model.h"
#include "runtime/session.h"
#include "tokenizer/tokenizer.h"

namespace hearth::chat {

struct EngineOptions {
  runtime::SessionOptions session;
  int default_thinking_budget = 8192;  // when thinking is on and the request names no budget
  int loop_window = 64;                // reasoning tokens inspected by the repetition watchdog
};

class ChatEngine {
 public:
  ChatEngine(models::Model& model, const tokenizer::Tokenizer& tok, const EngineOptions& opt);
  ~ChatEngine();

  // Runs one request; `on_event` receives each delta and finally a Done event. Returning false from
  // on_event cancels the request (finish_reason "cancelled"). Throws hearth::Error for a request that
  // cannot run (for example a prompt longer than the context), before generating anything.
  ChatResult chat(const ChatRequest& req, const std::function<bool(const ChatEvent&)>& on_event = {});

  std::vector<int32_t> prompt_tokens(const ChatRequest& req) const;
  // Mean-pooled, L2-normalised final hidden state of `text` (replaces the cached conversation).
  std::vector<float> embed(const std::string& text);
  const std::vector<int32_t>& cached_tokens() const { return cached_; }
  int64_t kv_cells_used() const { return n_cached_.load(std::memory_order_relaxed); }  // any thread
  int n_ctx() const { return session_.n_ctx(); }
  const tokenizer::Tokenizer& tokenizer() const { return tok_; }
  const models::Model& model() const { return model_; }

 private:
  void set_cached(std::vector<int32_t> tokens);

  models::Model& model_;
  const tokenizer::Tokenizer& tok_;
  EngineOptions opt_;
  GenerationShared shared_;
  runtime::Session session_;
  std::vector<int32_t> cached_;  // the tokens whose keys and values are in session_
  std::atomic<int64_t> n_cached_{0};  // cached_.size(), readable from other threads (metrics)
  uint64_t n_requests_ = 0;
};

}  // namespace hearth::chat
