// One chat request being answered, as a step machine that does not own a model: a driver evaluates the
// tokens it asks for and hands back the logits. ChatEngine drives one on its own session; a batching
// scheduler can drive many in one forward pass.
//
// Each step: the next token is forced (thought-channel header, thinking wrap-up, channel close) or
// sampled from the logits after penalties and masks (grammar, thinking rules, tool_choice); then it is
// parsed into events, checked against stop strings, max_tokens and budgets.
#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "chat/gemma4_parser.h"
#include "chat/types.h"
#include "runtime/grammar.h"
#include "runtime/sampler.h"
#include "tokenizer/tokenizer.h"

namespace hearth::chat {

// Vocabulary tables the constraints need, built on first use (the token index takes ~0.1 s on a 262k
// vocabulary) and then shared by every generation of the model. Thread-safe.
class VocabTables {
 public:
  explicit VocabTables(const tokenizer::Tokenizer& tok) : tok_(tok) {}
  std::shared_ptr<const runtime::TokenIndex> token_index();
  const std::vector<uint8_t>& visible_tokens();  // id → its text has a visible (non-space) character

 private:
  const tokenizer::Tokenizer& tok_;
  std::mutex mu_;
  std::shared_ptr<const runtime::TokenIndex> index_;
  std::vector<uint8_t> visible_;
};

// What all generations of one model share.
struct GenerationShared {
  const tokenizer::Tokenizer* tok = nullptr;
  Gemma4Tokens ids;
  int default_thinking_budget = 8192;  // when thinking is on and the request names no budget
  int loop_window = 64;                // reasoning tokens inspected by the repetition watchdog
  std::shared_ptr<VocabTables> tables;
};
// Throws hearth::Error when the vocabulary lacks the Gemma 4 chat markers.
GenerationShared make_generation_shared(const tokenizer::Tokenizer& tok);

class Generation {
 public:
  using EventFn = std::function<bool(const ChatEvent&)>;

  // Prepares the request: thinking budget (thinking turns off when the budget cannot hold the channel's
  // markers), prompt tokens, grammars. Throws hearth::Error for a request that cannot run.
  Generation(const ChatRequest& req, const GenerationShared& shared, EventFn on_event, std::string call_id_prefix);

  const std::vector<int32_t>& prompt() const { return prompt_; }

  // Given the logits after the last evaluated token (the prompt first), picks the next token and
  // processes it. Returns the token to evaluate next, or nothing when the answer is finished.
  std::optional<int32_t> step(const float* logits);

  // Ends the answer early (the driver ran out of context: "length"; the client went away: "cancelled").
  void stop(const std::string& finish_reason);

  // Releases held text, reports an unterminated tool call, sends Done. Call once, after the last step.
  ChatResult finish(const Usage& timing);

  bool finished() const { return !finish_.empty(); }

 private:
  int32_t choose(const float* logits);
  void deliver(ChatEvent ev);

  ChatRequest req_;
  const GenerationShared& sh_;
  EventFn on_event_;
  std::vector<int32_t> prompt_, header_, wrap_up_;
  int budget_ = 0;
  bool tools_allowed_ = false;
  std::shared_ptr<const runtime::Grammar> answer_grammar_, tool_grammar_;
  std::optional<runtime::GrammarMatcher> matcher_;
  bool matcher_live_ = false;  // the grammar governs the next token
  runtime::Sampler sampler_;
  std::map<int32_t, int> counts_;  // presence / frequency penalties
  std::vector<float> work_;
  Gemma4OutputParser parser_;
  std::string stop_buf_;          // content held back while it may be the start of a stop string
  std::deque<int32_t> forced_;
  bool in_thought_ = false, close_scheduled_ = false, answer_started_ = false, first_answer_token_ = true;
  std::vector<int32_t> thought_;  // reasoning tokens, for the loop watchdog
  std::string finish_;
  ChatResult res_;
  std::vector<ChatEvent> events_;
  std::optional<TokenLogprob> sampled_lp_;  // of the token choose() just sampled (logprobs requested)
  std::vector<TokenLogprob> pending_lp_;    // content tokens whose text has not been delivered yet
};

// The request as it will run: completions drop thinking and tools; thinking turns off when its budget
// (reduced so that max_tokens keeps room for an answer) cannot hold the channel's markers.
ChatRequest effective_request(const ChatRequest& req, const GenerationShared& sh, int* budget = nullptr);
// The prompt's tokens (rendered Gemma 4 conversation, or the raw completion prompt with BOS).
std::vector<int32_t> prompt_tokens(const ChatRequest& effective_req, const tokenizer::Tokenizer& tok);

// Throws hearth::Error when the request's response_format schema cannot be enforced (unsupported keywords),
// before anything runs. Tool schemas never fail: what the grammar cannot enforce is left out (see
// enforceable_tool_schema).
void check_constraints(const ChatRequest& req);

// A tool's parameter schema as the tool-call grammar enforces it: unchanged when it compiles; else without
// the keywords the grammar does not support (pattern, numeric bounds, ...); else any object. Agents send
// such schemas and must not be refused for them; the call is still a well-formed call of that tool.
json enforceable_tool_schema(const std::string& name, const json& parameters);

// True when the last `window` tokens of `seq` repeat one pattern (period up to window/4).
bool is_looping(const std::vector<int32_t>& seq, int window);

}  // namespace hearth::chat
