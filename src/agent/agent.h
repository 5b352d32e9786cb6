// The agent loop: system prompt + tool schemas → model → tool calls → execute → results (or errors, verbatim)
// → model, until the model answers without calling a tool or a budget runs out.
//
// What makes it robust against small local models:
//   - every tool error goes back as the tool's result (the tool writes the failing statement and a hint);
//   - a malformed tool call (arguments that are not JSON, an unknown tool) is fed back as well, never dropped;
//   - a "lazy" first answer (a data question answered without calling any tool) is asked again once with
//     tool_choice "required", so the model has to look before it answers;
//   - an empty or cut-off answer is asked again with a short nudge;
//   - a conversation that outgrows the model's context loses its oldest tool results (replaced by a stub),
//     oldest first, until it fits again;
//   - budgets: model turns (steps), wall time and completion tokens; when one runs out the result says so
//     ("gave up") with the last error, instead of looping forever. The time budget also stops a turn that is
//     still generating (in process), so a model that rambles cannot overrun it by a whole turn.
//
// Every event (the messages sent, each model turn, each tool call with its result and timing, re-asks, the
// end) is a JSON object in AgentResult::transcript and goes to AgentOptions::on_entry as it happens, so the
// CLI can print live progress and write the transcript as JSONL.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/chat_model.h"
#include "agent/tool.h"
#include "chat/types.h"

namespace hearth::agent {

struct AgentBudget {
  int max_steps = 10;              // model turns
  double max_seconds = 600;        // wall time of the whole run
  int max_completion_tokens = 20000;  // generated tokens over all turns (reasoning included)
};

struct AgentOptions {
  AgentBudget budget;
  std::string system_prompt;
  chat::Sampling sampling;           // per turn; seeds advance by one each turn so turns differ
  std::optional<int> max_tokens_per_turn = 1024;
  bool think = false;
  std::optional<int> thinking_budget;
  bool reask_lazy = true;            // re-ask a first answer given without any tool call, tool_choice required
  bool require_tool_every_turn = false;  // tool_choice "required" on every turn: only a budget ends the run
  std::function<void(const json& entry)> on_entry;  // each transcript entry as it happens
  DeltaFn on_delta;                   // streaming reasoning/content deltas of each model turn (false: stop it)
};

struct AgentResult {
  bool answered = false;         // the model gave a final answer; false: it gave up (budget) or failed
  std::string answer;            // the final answer's text
  std::string gave_up_reason;    // when !answered: which budget ran out or what failed, and the last error
  int steps = 0;                 // model turns
  int tool_calls = 0;
  int tool_errors = 0;           // failed tool calls and malformed calls fed back
  int prompt_tokens = 0, completion_tokens = 0;
  double seconds = 0;
  json last_data;                // `data` of the last successful tool call that had any (sql_query's rows), else null
  std::vector<chat::Message> messages;  // the whole conversation, final answer included
  std::vector<json> transcript;
};

AgentResult run_agent(ChatModel& model, ToolRegistry& tools, const std::string& question, const AgentOptions& opt);

}  // namespace hearth::agent
