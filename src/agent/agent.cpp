#include "agent/agent.h"

#include <cctype>
#include <chrono>

#include "core/error.h"

namespace hearth::agent {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

json call_json(const chat::ToolCall& c) { return {{"id", c.id}, {"name", c.name}, {"arguments", c.arguments}}; }

json message_json(const chat::Message& m) {
  json j = {{"role", m.role}, {"content", m.content}};
  if (!m.tool_calls.empty()) {
    j["tool_calls"] = json::array();
    for (const auto& c : m.tool_calls) j["tool_calls"].push_back(call_json(c));
  }
  if (!m.tool_call_id.empty()) j["tool_call_id"] = m.tool_call_id;
  if (!m.name.empty()) j["name"] = m.name;
  return j;
}

class Run {
 public:
  Run(ChatModel& model, ToolRegistry& tools, const AgentOptions& opt) : model_(model), tools_(tools), opt_(opt) {
    // The schemas do not change during a run (describe_table's lists the tables with a query): build them once.
    for (const json& t : tools_.tools_json())
      tool_list_.push_back({t["function"]["name"].get<std::string>(), t["function"]});
  }

  AgentResult go(const std::string& question) {
    if (!opt_.system_prompt.empty()) r_.messages.push_back({"system", opt_.system_prompt, {}, "", ""});
    r_.messages.push_back({"user", question, {}, "", ""});
    json msgs = json::array();
    for (const auto& m : r_.messages) msgs.push_back(message_json(m));
    emit({{"type", "start"},
          {"model", model_.name()},
          {"question", question},
          {"tools", tools_.names()},
          {"budget",
           {{"max_steps", opt_.budget.max_steps},
            {"max_seconds", opt_.budget.max_seconds},
            {"max_completion_tokens", opt_.budget.max_completion_tokens}}},
          {"messages", msgs}});
    while (!finished_) step();
    r_.seconds = seconds_since(start_);
    json end = {{"type", "end"},         {"status", r_.answered ? "answered" : "gave_up"},
                {"steps", r_.steps},     {"tool_calls", r_.tool_calls},
                {"tool_errors", r_.tool_errors}, {"prompt_tokens", r_.prompt_tokens},
                {"completion_tokens", r_.completion_tokens}, {"seconds", r_.seconds}};
    if (r_.answered) end["answer"] = r_.answer;
    else end["reason"] = r_.gave_up_reason;
    emit(std::move(end));
    return std::move(r_);
  }

 private:
  void emit(json entry) {
    entry["t"] = seconds_since(start_);
    if (opt_.on_entry) opt_.on_entry(entry);
    r_.transcript.push_back(std::move(entry));
  }

  void give_up(const std::string& why) {
    r_.answered = false;
    r_.gave_up_reason = why;
    if (!last_error_.empty()) r_.gave_up_reason += "; last error: " + last_error_;
    finished_ = true;
  }

  // Which budget is spent, or "" when another model turn may run.
  std::string spent() const {
    const AgentBudget& b = opt_.budget;
    if (r_.steps >= b.max_steps) return "step budget spent (" + std::to_string(b.max_steps) + " model turns)";
    if (seconds_since(start_) >= b.max_seconds)
      return "time budget spent (" + std::to_string(int(b.max_seconds)) + " s)";
    if (r_.completion_tokens >= b.max_completion_tokens)
      return "token budget spent (" + std::to_string(b.max_completion_tokens) + " generated tokens)";
    return "";
  }

  chat::ChatRequest request() const {
    chat::ChatRequest req;
    req.messages = r_.messages;
    req.tools = tool_list_;
    req.tool_choice = force_tool_ || opt_.require_tool_every_turn ? chat::ToolChoice::Required : chat::ToolChoice::Auto;
    req.sampling = opt_.sampling;
    if (req.sampling.seed) *req.sampling.seed += uint64_t(r_.steps);  // each turn its own draw
    req.max_tokens = opt_.max_tokens_per_turn;
    req.think = opt_.think;
    req.thinking_budget = opt_.thinking_budget;
    return req;
  }

  void step() {
    if (const std::string why = spent(); !why.empty()) return give_up(why);
    const chat::ChatRequest req = request();
    const bool forced = force_tool_ || opt_.require_tool_every_turn;
    force_tool_ = false;
    const Clock::time_point t0 = Clock::now();
    chat::ChatResult res;
    try {
      res = model_.complete(req, [&](const chat::ChatEvent& ev) {
        const bool go_on = !opt_.on_delta || opt_.on_delta(ev);
        return go_on && seconds_since(start_) < opt_.budget.max_seconds;
      });
    } catch (const Error& e) {
      // A conversation that outgrew the context: drop the oldest tool result and ask again (not a new turn).
      if (mentions_context(e.what()) && elide_oldest_result()) {
        force_tool_ = forced && !opt_.require_tool_every_turn;
        return;
      }
      return give_up(std::string("the model could not answer: ") + e.what());
    }
    ++r_.steps;
    r_.prompt_tokens += res.usage.prompt_tokens;
    r_.completion_tokens += res.usage.completion_tokens;
    if (res.finish_reason == "cancelled") {  // stopped mid-answer: a partial answer is no answer
      emit({{"type", "model"}, {"step", r_.steps}, {"finish_reason", "cancelled"}, {"content", res.content},
            {"tool_calls", json::array()}, {"errors", json::array()},
            {"completion_tokens", res.usage.completion_tokens}, {"ms", seconds_since(t0) * 1000}});
      const std::string why = spent();
      return give_up(why.empty() ? "the answer was stopped" : why);
    }
    for (size_t i = 0; i < res.tool_calls.size(); ++i)  // ids tie results to calls; some endpoints omit them
      if (res.tool_calls[i].id.empty())
        res.tool_calls[i].id = "call_" + std::to_string(r_.steps) + "_" + std::to_string(i);
    json calls = json::array();
    for (const auto& c : res.tool_calls) calls.push_back(call_json(c));
    emit({{"type", "model"},
          {"step", r_.steps},
          {"tool_choice", forced ? "required" : "auto"},
          {"content", res.content},
          {"reasoning", res.reasoning},
          {"tool_calls", calls},
          {"errors", res.errors},
          {"finish_reason", res.finish_reason},
          {"prompt_tokens", res.usage.prompt_tokens},
          {"completion_tokens", res.usage.completion_tokens},
          {"ms", seconds_since(t0) * 1000}});

    if (!res.tool_calls.empty()) return run_tools(res);
    if (!res.errors.empty()) return feed_back_malformed(res);

    const std::string answer = trim(res.content);
    if (answer.empty()) {
      nudge(res.finish_reason == "length"
                ? "Your answer was cut off before it said anything. Answer now, briefly."
                : "Your answer was empty. Use the tools if you need data, then answer the question.");
      return;
    }
    if (opt_.reask_lazy && !reasked_ && r_.tool_calls == 0 && !tool_list_.empty()) {
      // Answered from memory: ask the same question again, this time the model must call a tool first.
      reasked_ = true;
      force_tool_ = true;
      emit({{"type", "reask"}, {"step", r_.steps}, {"reason", "answered without calling a tool"}, {"answer", answer}});
      return;
    }
    r_.messages.push_back({"assistant", answer, {}, "", ""});
    r_.answered = true;
    r_.answer = answer;
    finished_ = true;
  }

  void run_tools(const chat::ChatResult& res) {
    chat::Message m{"assistant", res.content.empty() ? json() : json(res.content), res.tool_calls, "", ""};
    r_.messages.push_back(m);
    for (const auto& c : res.tool_calls) {
      const Clock::time_point t0 = Clock::now();
      ToolOutput out = tools_.call(c.name, c.arguments);
      const double ms = seconds_since(t0) * 1000;
      ++r_.tool_calls;
      if (!out.ok) {
        ++r_.tool_errors;
        last_error_ = out.text.substr(0, 300);
      } else if (!out.data.is_null()) {
        r_.last_data = out.data;
      }
      r_.messages.push_back({"tool", out.text, {}, c.id, c.name});
      emit({{"type", "tool"},
            {"step", r_.steps},
            {"id", c.id},
            {"name", c.name},
            {"arguments", c.arguments},
            {"ok", out.ok},
            {"result", out.text},
            {"ms", ms}});
    }
  }

  void feed_back_malformed(const chat::ChatResult& res) {
    std::string what;
    for (const auto& e : res.errors) what += (what.empty() ? "" : "\n") + e;
    r_.tool_errors += int(res.errors.size());
    last_error_ = what.substr(0, 300);
    nudge("Your tool call could not be used:\n" + what +
          "\nCall the tool again with a JSON object of arguments that matches its parameters.");
  }

  static bool mentions_context(const std::string& what) {
    std::string w = what;
    for (char& c : w) c = char(std::tolower(static_cast<unsigned char>(c)));
    return w.find("context") != std::string::npos;
  }

  // Replaces the oldest tool result that is not from the latest turn with a one-line stub, so the model still
  // sees that the call happened. False when there is nothing left to elide.
  bool elide_oldest_result() {
    size_t last_assistant = 0;
    for (size_t i = 0; i < r_.messages.size(); ++i)
      if (r_.messages[i].role == "assistant") last_assistant = i;
    for (size_t i = 0; i < last_assistant; ++i) {
      chat::Message& m = r_.messages[i];
      if (m.role != "tool" || m.content == kElided) continue;
      m.content = kElided;
      emit({{"type", "elided"}, {"step", r_.steps}, {"tool_call_id", m.tool_call_id}, {"name", m.name}});
      return true;
    }
    return false;
  }
  static constexpr const char* kElided = "[result removed to fit the context; run the call again if you need it]";

  void nudge(const std::string& text) {
    r_.messages.push_back({"user", text, {}, "", ""});
    emit({{"type", "nudge"}, {"step", r_.steps}, {"message", text}});
  }

  ChatModel& model_;
  ToolRegistry& tools_;
  std::vector<chat::Tool> tool_list_;
  const AgentOptions& opt_;
  AgentResult r_;
  Clock::time_point start_ = Clock::now();
  bool finished_ = false, reasked_ = false, force_tool_ = false;
  std::string last_error_;
};

}  // namespace

AgentResult run_agent(ChatModel& model, ToolRegistry& tools, const std::string& question, const AgentOptions& opt) {
  return Run(model, tools, opt).go(question);
}

}  // namespace hearth::agent
