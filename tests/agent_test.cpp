// The agent loop: a scripted model (a test double replaying a recorded trajectory: syntax error → cast error
// in strict mode → safe_cast → answer) in process and behind a real HTTP endpoint, budgets, the lazy-model
// re-ask, malformed and unknown tool calls, the `hearth agent sql` / `hearth eval sql` commands, and the real
// engine on a tiny random model with grammar-forced tool calls. The database is the real football.db, read
// where it lies.
#include <httplib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "agent/agent.h"
#include "agent/chat_model.h"
#include "agent/sql_agent.h"
#include "chat/engine.h"
#include "chat/gemma4_format.h"
#include "core/error.h"
#include "run_command.h"
#include "synth_model.h"
#include "test_data.h"

namespace {

using namespace hearth::agent;
using hearth::chat::ChatRequest;
using hearth::chat::ChatResult;
namespace fs = std::filesystem;

std::string football_db() { return hearth::test::testdata("football/football.db"); }
std::string football_questions() { return hearth::test::testdata("football/questions-dev.jsonl"); }

#define REQUIRE_FOOTBALL() HEARTH_REQUIRE_FILE(football_db())

SqlQuestion question(const std::string& id) {
  for (const auto& q : load_questions(football_questions()))
    if (q.id == id) return q;
  throw std::runtime_error("no question " + id);
}

ChatResult call(const std::string& name, const json& args, int completion_tokens = 20) {
  ChatResult r;
  r.tool_calls.push_back({"", name, args});
  r.finish_reason = "tool_calls";
  r.usage.completion_tokens = completion_tokens;
  return r;
}

ChatResult answer(const std::string& text) {
  ChatResult r;
  r.content = text;
  r.finish_reason = "stop";
  r.usage.completion_tokens = 10;
  return r;
}

// Replays a script of answers (the last one again when the script runs out) and records every request.
class ScriptedModel : public ChatModel {
 public:
  explicit ScriptedModel(std::vector<ChatResult> script) : script_(std::move(script)) {}
  std::string name() const override { return "scripted"; }
  ChatResult complete(const ChatRequest& req, const DeltaFn&) override {
    requests.push_back(req);
    if (delay.count()) std::this_thread::sleep_for(delay);
    return script_[std::min(next_++, script_.size() - 1)];
  }
  std::vector<ChatRequest> requests;
  std::chrono::milliseconds delay{0};

 private:
  std::vector<ChatResult> script_;
  size_t next_ = 0;
};

const char* kArgentinaWhere =
    " FROM player_tournament_stats s JOIN teams tm ON tm.id = s.team_id JOIN tournaments t ON t.id = s.tournament_id"
    " WHERE tm.name = 'Argentina' AND t.year = 2022";

// The recorded trajectory for fb-dev-11 (average rating of Argentina's players in 2022).
std::vector<ChatResult> recovering_trajectory() {
  const std::string where = kArgentinaWhere;
  return {call("sql_query", {{"query", "SELEC ROUND(AVG(CAST(s.rating AS REAL)), 2) AS avg_rating" + where}}),
          call("sql_query", {{"query", "SELECT ROUND(AVG(CAST(s.rating AS REAL)), 2) AS avg_rating" + where}}),
          call("sql_query", {{"query", "SELECT ROUND(AVG(safe_cast(s.rating, 'REAL')), 2) AS avg_rating" + where}}),
          answer("The average rating of Argentina's rated players at the 2022 World Cup was 6.61.")};
}

std::shared_ptr<SqlDatabase> strict_db() {
  SqlOptions o;
  o.strict_casts = true;
  return std::make_shared<SqlDatabase>(football_db(), o);
}

// The text of the last message of a request (what the model reads last).
std::string last_message_text(const ChatRequest& req) {
  const json& c = req.messages.back().content;
  return c.is_string() ? c.get<std::string>() : c.dump();
}

void expect_recovered(const AgentResult& r) {
  ASSERT_TRUE(r.answered) << r.gave_up_reason;
  EXPECT_EQ(r.steps, 4);
  EXPECT_EQ(r.tool_calls, 3);
  EXPECT_EQ(r.tool_errors, 2);
  const Grade g = grade(question("fb-dev-11"), candidate_from(r));
  EXPECT_TRUE(g.correct) << g.reason;
  ASSERT_TRUE(r.last_data.is_object());
  EXPECT_NEAR(r.last_data["rows"][0][0].get<double>(), 6.61, 1e-9);
}

TEST(Agent, RecoversFromSyntaxAndCastErrorsFedBackVerbatim) {
  REQUIRE_FOOTBALL();
  ScriptedModel model(recovering_trajectory());
  std::vector<json> live;
  AgentOptions opt;
  opt.on_entry = [&](const json& e) { live.push_back(e); };
  const AgentResult r = ask_sql(model, strict_db(), question("fb-dev-11").question, opt);
  expect_recovered(r);

  ASSERT_EQ(model.requests.size(), 4u);
  // Turn 1 sees the system prompt with the schema and the tools.
  const ChatRequest& first = model.requests[0];
  ASSERT_GE(first.messages.size(), 2u);
  EXPECT_EQ(first.messages[0].role, "system");
  EXPECT_NE(first.messages[0].content.get<std::string>().find("player_tournament_stats: "), std::string::npos);
  ASSERT_EQ(first.tools.size(), 3u);
  EXPECT_EQ(first.tools[0].name, "sql_query");
  // Each error reaches the next turn as the tool's result, with the failing statement.
  const ChatRequest& second = model.requests[1];
  EXPECT_EQ(second.messages.back().role, "tool");
  EXPECT_EQ(second.messages.back().tool_call_id, r.messages[2].tool_calls[0].id);
  EXPECT_NE(last_message_text(second).find("syntax error"), std::string::npos) << last_message_text(second);
  EXPECT_NE(last_message_text(second).find("SELEC ROUND"), std::string::npos);
  const std::string cast_error = last_message_text(model.requests[2]);
  EXPECT_NE(cast_error.find("invalid input syntax for type real: \"-\""), std::string::npos) << cast_error;
  EXPECT_NE(cast_error.find("safe_cast"), std::string::npos) << "the hint names the fix: " << cast_error;
  EXPECT_NE(last_message_text(model.requests[3]).find("6.61"), std::string::npos);

  // The transcript: start, 4 model turns, 3 tool results, end; live entries are the same.
  ASSERT_EQ(r.transcript.size(), live.size());
  int models = 0, tools = 0;
  for (const json& e : r.transcript) {
    models += e["type"] == "model";
    tools += e["type"] == "tool";
  }
  EXPECT_EQ(models, 4);
  EXPECT_EQ(tools, 3);
  EXPECT_EQ(r.transcript.front()["type"], "start");
  EXPECT_EQ(r.transcript.back()["type"], "end");
  EXPECT_EQ(r.transcript.back()["status"], "answered");
  EXPECT_FALSE(r.transcript[2]["ok"].get<bool>());
}

TEST(Agent, WithoutStrictCastsTheNaiveQueryIsSilentlyWrong) {
  REQUIRE_FOOTBALL();
  // SQLite's own CAST turns '-' into 0: the second query "succeeds" with 3.81, and had the model stopped there
  // the grader would mark it wrong. This is why strict mode exists.
  auto traj = recovering_trajectory();
  traj.erase(traj.begin() + 2);  // stop after the naive query
  traj.back() = answer("3.81");
  ScriptedModel model(traj);
  const AgentResult r = ask_sql(model, std::make_shared<SqlDatabase>(football_db()), "avg rating?", {});
  ASSERT_TRUE(r.answered);
  EXPECT_EQ(r.tool_errors, 1);
  EXPECT_FALSE(grade(question("fb-dev-11"), candidate_from(r)).correct);
}

TEST(Agent, StepBudgetStopsAModelThatNeverAnswers) {
  REQUIRE_FOOTBALL();
  ScriptedModel model({call("sql_query", {{"query", "SELECT nope FROM teams"}})});
  AgentOptions opt;
  opt.budget.max_steps = 3;
  const AgentResult r = ask_sql(model, strict_db(), "anything", opt);
  EXPECT_FALSE(r.answered);
  EXPECT_EQ(r.steps, 3);
  EXPECT_EQ(model.requests.size(), 3u);
  EXPECT_NE(r.gave_up_reason.find("step budget"), std::string::npos) << r.gave_up_reason;
  EXPECT_NE(r.gave_up_reason.find("no such column"), std::string::npos) << "the last error is reported";
  EXPECT_EQ(r.transcript.back()["status"], "gave_up");
  EXPECT_FALSE(grade(question("fb-dev-01"), candidate_from(r)).correct);
}

TEST(Agent, TokenAndTimeBudgets) {
  REQUIRE_FOOTBALL();
  {
    ScriptedModel model({call("list_tables", json::object(), 100)});
    AgentOptions opt;
    opt.budget.max_completion_tokens = 250;
    const AgentResult r = ask_sql(model, strict_db(), "anything", opt);
    EXPECT_FALSE(r.answered);
    EXPECT_EQ(r.steps, 3);
    EXPECT_NE(r.gave_up_reason.find("token budget"), std::string::npos) << r.gave_up_reason;
  }
  {
    ScriptedModel model({call("list_tables", json::object())});
    model.delay = std::chrono::milliseconds(40);
    AgentOptions opt;
    opt.budget.max_steps = 1000;
    opt.budget.max_seconds = 0.2;
    const AgentResult r = ask_sql(model, strict_db(), "anything", opt);
    EXPECT_FALSE(r.answered);
    EXPECT_GE(r.steps, 1);
    EXPECT_LT(r.steps, 1000);
    EXPECT_NE(r.gave_up_reason.find("time budget"), std::string::npos) << r.gave_up_reason;
  }
}

TEST(Agent, LazyAnswerIsAskedAgainWithAToolRequired) {
  REQUIRE_FOOTBALL();
  ScriptedModel model({answer("Mexico, I believe."),
                       call("sql_query", {{"query", "SELECT host_country FROM tournaments WHERE year = 1986"}}),
                       answer("Mexico hosted the 1986 World Cup.")});
  const AgentResult r = ask_sql(model, strict_db(), question("fb-dev-01").question, {});
  ASSERT_TRUE(r.answered);
  ASSERT_EQ(model.requests.size(), 3u);
  EXPECT_EQ(model.requests[0].tool_choice, hearth::chat::ToolChoice::Auto);
  EXPECT_EQ(model.requests[1].tool_choice, hearth::chat::ToolChoice::Required);
  EXPECT_EQ(model.requests[2].tool_choice, hearth::chat::ToolChoice::Auto);
  EXPECT_EQ(model.requests[1].messages.size(), model.requests[0].messages.size()) << "the lazy answer is not kept";
  EXPECT_TRUE(grade(question("fb-dev-01"), candidate_from(r)).correct);
  bool reasked = false;
  for (const json& e : r.transcript) reasked |= e["type"] == "reask";
  EXPECT_TRUE(reasked);

  // Without the re-ask the lazy answer stands (and has no rows to grade).
  ScriptedModel lazy({answer("Mexico, I believe.")});
  AgentOptions opt;
  opt.reask_lazy = false;
  const AgentResult l = ask_sql(lazy, strict_db(), question("fb-dev-01").question, opt);
  EXPECT_TRUE(l.answered);
  EXPECT_FALSE(grade(question("fb-dev-01"), candidate_from(l)).correct);
}

TEST(Agent, MalformedAndUnknownToolCallsAreFedBack) {
  REQUIRE_FOOTBALL();
  ChatResult malformed;
  malformed.errors.push_back("the tool call could not be parsed: call:sql_query{query:<|\"|>SELECT");
  malformed.finish_reason = "length";
  ChatResult empty;
  empty.finish_reason = "length";
  ScriptedModel model({malformed, call("drop_everything", json::object()), call("sql_query", json::array({1, 2})),
                       call("describe_table", {{"table", "no_such_table"}}), empty, answer("done")});
  const AgentResult r = ask_sql(model, strict_db(), "anything", {});
  ASSERT_TRUE(r.answered);
  EXPECT_EQ(r.steps, 6);
  EXPECT_EQ(r.tool_errors, 4);
  EXPECT_EQ(model.requests[1].messages.back().role, "user");
  EXPECT_NE(last_message_text(model.requests[1]).find("could not be used"), std::string::npos);
  EXPECT_NE(last_message_text(model.requests[2]).find("no tool named 'drop_everything'"), std::string::npos);
  EXPECT_NE(last_message_text(model.requests[2]).find("sql_query"), std::string::npos) << "lists the tools";
  EXPECT_EQ(model.requests[3].messages.back().role, "tool");
  EXPECT_EQ(model.requests[4].messages.back().role, "tool");
  EXPECT_NE(last_message_text(model.requests[4]).find("player_tournament_stats"), std::string::npos)
      << "an unknown table lists the tables: " << last_message_text(model.requests[4]);
  EXPECT_NE(last_message_text(model.requests[5]).find("cut off"), std::string::npos);
}

// A model with a small context: refuses (as the engine does) a conversation whose text exceeds `limit` bytes.
class SmallContextModel : public ScriptedModel {
 public:
  SmallContextModel(std::vector<ChatResult> script, size_t limit) : ScriptedModel(std::move(script)), limit_(limit) {}
  ChatResult complete(const ChatRequest& req, const DeltaFn& d) override {
    size_t bytes = 0;
    for (const auto& m : req.messages) bytes += m.content.is_string() ? m.content.get<std::string>().size() : 0;
    if (bytes > limit_) {
      ++refusals;
      throw hearth::Error("the prompt has " + std::to_string(bytes) + " tokens but the context holds " +
                          std::to_string(limit_));
    }
    return ScriptedModel::complete(req, d);
  }
  int refusals = 0;

 private:
  size_t limit_;
};

TEST(Agent, OldToolResultsAreDroppedWhenTheContextIsFull) {
  REQUIRE_FOOTBALL();
  auto db = strict_db();
  const std::string query = "SELECT name FROM players ORDER BY id LIMIT 60";
  ToolRegistry probe;
  add_sql_tools(probe, db);
  const size_t result_bytes = probe.call("sql_query", {{"query", query}}).text.size();
  const std::string system = sql_system_prompt(*db);
  const std::string q = "List players.";
  // Room for the prompt and two and a half results: the third call's result needs the first one dropped.
  SmallContextModel model({call("sql_query", {{"query", query}}), call("sql_query", {{"query", query + " OFFSET 60"}}),
                           call("sql_query", {{"query", query + " OFFSET 120"}}), answer("done")},
                          system.size() + q.size() + result_bytes * 5 / 2);
  const AgentResult r = ask_sql(model, db, q, {});
  ASSERT_TRUE(r.answered) << r.gave_up_reason;
  EXPECT_EQ(r.steps, 4) << "a refused prompt is not a turn";
  EXPECT_GE(model.refusals, 1);
  int elided = 0;
  for (const json& e : r.transcript) elided += e["type"] == "elided";
  EXPECT_EQ(elided, model.refusals);
  const ChatRequest& last = model.requests.back();
  EXPECT_EQ(last.messages[3].role, "tool");
  EXPECT_EQ(last_message_text(last).find("removed to fit the context"), std::string::npos) << "the latest is whole";
  EXPECT_NE(last.messages[3].content.get<std::string>().find("removed to fit the context"), std::string::npos);

  // With nothing left to drop, the run ends with the engine's reason.
  SmallContextModel tiny({call("sql_query", {{"query", query}})}, system.size() + q.size() + 10);
  const AgentResult g = ask_sql(tiny, db, q, {});
  EXPECT_FALSE(g.answered);
  EXPECT_NE(g.gave_up_reason.find("context holds"), std::string::npos) << g.gave_up_reason;
}

// ---- OpenAI wire format ----

TEST(AgentEndpoint, RequestBodyIsOpenAIs) {
  ChatRequest req;
  req.messages.push_back({"user", "q", {}, "", ""});
  req.messages.push_back({"assistant", nullptr, {{"call_1", "sql_query", {{"query", "SELECT 1"}}}}, "", ""});
  req.messages.push_back({"tool", "1\n(1 row)", {}, "call_1", "sql_query"});
  req.tools.push_back({"sql_query", {{"name", "sql_query"}, {"parameters", {{"type", "object"}}}}});
  req.tool_choice = hearth::chat::ToolChoice::Required;
  req.sampling.seed = 7;
  req.max_tokens = 100;
  const json b = openai_request_body(req, "gemma4");
  EXPECT_EQ(b["model"], "gemma4");
  EXPECT_EQ(b["stream"], false);
  EXPECT_EQ(b["tool_choice"], "required");
  EXPECT_EQ(b["messages"][1]["tool_calls"][0]["function"]["arguments"], "{\"query\":\"SELECT 1\"}");
  EXPECT_EQ(b["messages"][1]["tool_calls"][0]["type"], "function");
  EXPECT_EQ(b["messages"][2]["tool_call_id"], "call_1");
  EXPECT_EQ(b["tools"][0]["type"], "function");
  EXPECT_EQ(b["seed"], 7);
  EXPECT_EQ(b["max_tokens"], 100);
  EXPECT_FALSE(b.contains("reasoning_effort")) << "not sent unless thinking is asked for";
}

TEST(AgentEndpoint, ResponsesAreParsedAndBadOnesExplained) {
  const json ok = json::parse(R"({"choices":[{"message":{"role":"assistant","content":null,"reasoning_content":"hm",
    "tool_calls":[{"id":"c1","type":"function","function":{"name":"sql_query","arguments":"{\"query\":\"SELECT 1\"}"}},
                  {"id":"c2","type":"function","function":{"name":"sql_query","arguments":"{not json"}}]},
    "finish_reason":"tool_calls"}],"usage":{"prompt_tokens":50,"completion_tokens":12,
    "completion_tokens_details":{"reasoning_tokens":3}}})");
  const ChatResult r = parse_openai_response(ok);
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_EQ(r.tool_calls[0].arguments["query"], "SELECT 1");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].find("not valid JSON"), std::string::npos);
  EXPECT_EQ(r.reasoning, "hm");
  EXPECT_EQ(r.usage.prompt_tokens, 50);
  EXPECT_EQ(r.usage.reasoning_tokens, 3);
  EXPECT_THROW(parse_openai_response(json::parse(R"({"error":{"message":"model not found"}})")), hearth::Error);
  EXPECT_THROW(parse_openai_response(json::parse(R"({"choices":[]})")), hearth::Error);
  EXPECT_THROW(parse_openai_response(json::array()), hearth::Error);
  EXPECT_THROW(EndpointModel({"ftp://x", "m", "", 10}), hearth::Error);
  EXPECT_THROW(EndpointModel({"http://127.0.0.1:1/v1", "", "", 10}), hearth::Error);
}

json openai_response(const ChatResult& r, int n) {
  json msg = {{"role", "assistant"}, {"content", r.content.empty() ? json() : json(r.content)}};
  if (!r.tool_calls.empty()) {
    msg["tool_calls"] = json::array();
    int i = 0;
    for (const auto& c : r.tool_calls)
      msg["tool_calls"].push_back({{"id", "call_" + std::to_string(n) + "_" + std::to_string(i++)},
                                   {"type", "function"},
                                   {"function", {{"name", c.name}, {"arguments", c.arguments.dump()}}}});
  }
  return {{"id", "chatcmpl-" + std::to_string(n)},
          {"object", "chat.completion"},
          {"choices", json::array({{{"index", 0}, {"message", msg}, {"finish_reason", r.finish_reason}}})},
          {"usage", {{"prompt_tokens", 100}, {"completion_tokens", r.usage.completion_tokens}, {"total_tokens", 110}}}};
}

// A scripted OpenAI-compatible endpoint on loopback: answers /v1/chat/completions from the script, records the
// request bodies, and checks the API key.
class ScriptedEndpoint {
 public:
  explicit ScriptedEndpoint(std::vector<ChatResult> script) : script_(std::move(script)) {
    server_.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu_);
      if (req.get_header_value("Authorization") != "Bearer sekrit") {
        res.status = 401;
        res.set_content(R"({"error":{"message":"Invalid API key","type":"invalid_request_error"}})", "application/json");
        return;
      }
      bodies.push_back(json::parse(req.body));
      const size_t n = next_++;
      res.set_content(openai_response(script_[std::min(n, script_.size() - 1)], int(n)).dump(), "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~ScriptedEndpoint() {
    server_.stop();
    thread_.join();
  }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
  std::vector<json> bodies;

 private:
  httplib::Server server_;
  std::vector<ChatResult> script_;
  size_t next_ = 0;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
};

TEST(AgentEndpoint, SameTrajectoryOverHttp) {
  REQUIRE_FOOTBALL();
  ScriptedEndpoint server(recovering_trajectory());
  EndpointModel model({server.base_url(), "scripted-model", "sekrit", 30});
  const AgentResult r = ask_sql(model, strict_db(), question("fb-dev-11").question, {});
  expect_recovered(r);
  ASSERT_EQ(server.bodies.size(), 4u);
  EXPECT_EQ(server.bodies[0]["model"], "scripted-model");
  EXPECT_EQ(server.bodies[0]["tools"].size(), 3u);
  const json& last = server.bodies[1]["messages"].back();
  EXPECT_EQ(last["role"], "tool");
  EXPECT_EQ(last["tool_call_id"], "call_0_0") << "the endpoint's call id is sent back";
  EXPECT_NE(last["content"].get<std::string>().find("syntax error"), std::string::npos);

  EndpointModel wrong_key({server.base_url(), "scripted-model", "nope", 30});
  const AgentResult denied = ask_sql(wrong_key, strict_db(), "q", {});
  EXPECT_FALSE(denied.answered);
  EXPECT_NE(denied.gave_up_reason.find("401"), std::string::npos) << denied.gave_up_reason;
  EXPECT_NE(denied.gave_up_reason.find("Invalid API key"), std::string::npos) << denied.gave_up_reason;

  EndpointModel nobody({"http://127.0.0.1:1/v1", "m", "", 5});
  const AgentResult unreachable = ask_sql(nobody, strict_db(), "q", {});
  EXPECT_FALSE(unreachable.answered);
  EXPECT_NE(unreachable.gave_up_reason.find("cannot reach"), std::string::npos) << unreachable.gave_up_reason;
}

// ---- the commands ----

TEST(AgentCli, AgentSqlAgainstAnEndpointWritesTheTranscript) {
  REQUIRE_FOOTBALL();
  ScriptedEndpoint server(recovering_trajectory());
  const std::string transcript = ::testing::TempDir() + "/agent-transcript-" + std::to_string(getpid()) + ".jsonl";
  const std::string notes = ::testing::TempDir() + "/agent-notes-" + std::to_string(getpid()) + ".txt";
  std::ofstream(notes) << "rating is a derived performance score from 3 to 10.\n";
  const auto r = hearth::test::run_command(
      "HEARTH_API_KEY=sekrit " + hearth::test::hearth_binary() + " agent sql --endpoint " + server.base_url() +
      " --model scripted --strict-casts --db " + hearth::test::shell_quote(football_db()) + " --transcript " +
      transcript + " --notes " + notes + " " + hearth::test::shell_quote(question("fb-dev-11").question));
  ASSERT_EQ(r.status, 0) << r.output;
  ASSERT_FALSE(server.bodies.empty());
  EXPECT_NE(server.bodies[0]["messages"][0]["content"].get<std::string>().find("derived performance score"),
            std::string::npos)
      << "--notes reach the system prompt";
  fs::remove(notes);
  EXPECT_NE(r.output.find("6.61"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("invalid input syntax for type real"), std::string::npos) << "live progress: " << r.output;
  std::ifstream in(transcript);
  std::string line;
  int lines = 0, tool_errors = 0;
  while (std::getline(in, line)) {
    const json e = json::parse(line);
    ++lines;
    if (e["type"] == "tool" && !e["ok"].get<bool>()) ++tool_errors;
  }
  EXPECT_EQ(lines, 9);  // start, 4 model turns, 3 tool results, end
  EXPECT_EQ(tool_errors, 2);
  fs::remove(transcript);
}

TEST(AgentCli, EvalGradesGoldSqlCorrectAndKnownWrongSqlWrong) {
  REQUIRE_FOOTBALL();
  const std::string common = " --questions " + hearth::test::shell_quote(football_questions()) + " --db " +
                             hearth::test::shell_quote(football_db());
  const auto gold = hearth::test::run_command(hearth::test::hearth_binary() + " eval sql -q --gold" + common);
  ASSERT_EQ(gold.status, 0) << gold.output;
  const size_t n = load_questions(football_questions()).size();
  EXPECT_NE(gold.output.find("accuracy: " + std::to_string(n) + "/" + std::to_string(n)), std::string::npos)
      << gold.output;
  EXPECT_EQ(gold.output.find("WRONG"), std::string::npos) << gold.output;

  const std::string wrong_file = std::string(HEARTH_SOURCE_DIR) + "/tests/data/football-wrong-sql.jsonl";
  const auto wrong = hearth::test::run_command(hearth::test::hearth_binary() + " eval sql -q --sql " +
                                               hearth::test::shell_quote(wrong_file) + common);
  ASSERT_EQ(wrong.status, 0) << wrong.output;
  EXPECT_NE(wrong.output.find("accuracy: 0/"), std::string::npos) << wrong.output;
  EXPECT_EQ(wrong.output.find(" ok "), std::string::npos) << wrong.output;

  const auto bad = hearth::test::run_command(hearth::test::hearth_binary() + " eval sql --questions /nonexistent --db " +
                                             hearth::test::shell_quote(football_db()) + " --gold");
  EXPECT_EQ(bad.status, 1) << bad.output;
}

// ---- the real engine ----

// The real engine on a tiny random-weight Gemma 4 with the real vocabulary. Its sql_query only offers three
// statements (an enum, so a random model completes the call; the grammar forces the call itself): one with a
// syntax error, one that fails in strict-cast mode, one that works. Every error must reach the next turn's
// prompt, and the step budget must end the run cleanly.
class EnumSqlTool : public Tool {
 public:
  explicit EnumSqlTool(std::shared_ptr<SqlDatabase> db) { add_sql_tools(inner_, std::move(db)); }
  std::string name() const override { return "sql_query"; }
  json function() const override {
    return {{"name", "sql_query"},
            {"description", "Run one read-only SQLite query"},
            {"parameters",
             {{"type", "object"},
              {"properties", {{"query", {{"type", "string"}, {"enum", statements()}}}}},
              {"required", {"query"}}}}};
  }
  ToolOutput call(const json& args) override { return inner_.call("sql_query", args); }
  static json statements() {
    return {"SELEC 1", "SELECT AVG(CAST(rating AS REAL)) FROM player_tournament_stats",
            "SELECT host_country FROM tournaments WHERE year = 1986"};
  }

 private:
  ToolRegistry inner_;
};

class RecordingModel : public ChatModel {
 public:
  explicit RecordingModel(ChatModel& inner) : inner_(inner) {}
  std::string name() const override { return inner_.name(); }
  ChatResult complete(const ChatRequest& req, const DeltaFn& d) override {
    requests.push_back(req);
    return inner_.complete(req, d);
  }
  std::vector<ChatRequest> requests;

 private:
  ChatModel& inner_;
};

TEST(AgentEngine, GrammarForcedCallsErrorsReachTheNextTurnBudgetEndsIt) {
  REQUIRE_FOOTBALL();
  const std::string vocab = hearth::test::testdata("vocab/ggml-vocab-gemma-4.gguf");
  HEARTH_REQUIRE_FILE(vocab);
  auto m = hearth::test::synth_model("--preset tiny-dense --d-model 64 --tied true --wtype Q8_0 --embd-type Q4_0", vocab);
  hearth::chat::EngineOptions eo;
  eo.session.n_ctx = 4096;
  eo.session.n_threads = 2;
  hearth::chat::ChatEngine engine(*m->model, *m->tok, eo);
  EngineModel engine_model(engine, "tiny-random");

  int runs_with_errors = 0;
  for (uint64_t seed = 0; seed < 4; ++seed) {
    RecordingModel model(engine_model);
    ToolRegistry tools;
    tools.add(std::make_unique<EnumSqlTool>(strict_db()));
    AgentOptions opt;
    opt.system_prompt = "Answer with the database.";
    opt.require_tool_every_turn = true;
    opt.budget.max_steps = 4;
    opt.max_tokens_per_turn = 200;
    opt.sampling.temperature = 1.0f;
    opt.sampling.seed = seed;
    const AgentResult r = run_agent(model, tools, "Which country hosted the 1986 World Cup?", opt);
    EXPECT_FALSE(r.answered);
    EXPECT_NE(r.gave_up_reason.find("step budget"), std::string::npos) << r.gave_up_reason;
    EXPECT_EQ(r.steps, 4);
    EXPECT_GE(r.tool_calls, 4) << "the grammar forces a valid call (or several) every turn";
    ASSERT_EQ(model.requests.size(), 4u);
    // Every tool result of turn k (errors included) is in turn k+1's messages and in its rendered prompt.
    int turn = 0;
    for (const json& e : r.transcript) {
      if (e["type"] == "model") ++turn;
      if (e["type"] != "tool" || turn >= 4) continue;
      const ChatRequest& next = model.requests[size_t(turn)];
      const std::string text = e["result"].get<std::string>();
      bool found = false;
      for (const auto& msg : next.messages) found |= msg.role == "tool" && msg.content == text;
      EXPECT_TRUE(found) << "turn " << turn << " result missing from the next request: " << text;
      const std::string first_line = text.substr(0, text.find('\n'));
      EXPECT_NE(hearth::chat::render_gemma4(next).find(first_line), std::string::npos) << first_line;
    }
    if (r.tool_errors > 0) ++runs_with_errors;
  }
  EXPECT_GT(runs_with_errors, 0) << "two of the three statements fail; some run must have hit one";

  // The time budget stops a turn that is still generating: free text, no end in sight (random weights).
  RecordingModel model(engine_model);
  ToolRegistry tools;
  tools.add(std::make_unique<EnumSqlTool>(strict_db()));
  AgentOptions opt;
  opt.reask_lazy = false;
  opt.max_tokens_per_turn = 3000;
  opt.budget.max_seconds = 0.3;
  opt.sampling.temperature = 1.0f;
  opt.sampling.seed = 1;
  const AgentResult r = run_agent(model, tools, "Tell me a long story.", opt);
  EXPECT_FALSE(r.answered);
  EXPECT_NE(r.gave_up_reason.find("time budget"), std::string::npos) << r.gave_up_reason;
  EXPECT_LT(r.completion_tokens, 3000) << "stopped mid-turn";
}

}  // namespace
