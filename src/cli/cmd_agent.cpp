// hearth agent sql --db FILE "question": the SQL agent (read-only tools over an SQLite file) on the in-process
// engine (-m MODEL) or any OpenAI-compatible endpoint (--endpoint URL --model NAME). Live progress on stderr,
// the answer on stdout, the whole transcript as JSONL with --transcript.
//
// hearth eval sql --questions FILE.jsonl --db FILE: runs the agent on every question and grades execution
// accuracy (agent/sql_eval.h); --gold grades each question's gold SQL and --sql FILE.jsonl ({"id", "sql"} per
// line) grades given SQL, both without a model (sanity checks of the grader and the questions).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>

#include "agent/chat_model.h"
#include "agent/sql_agent.h"
#include "chat/engine.h"
#include "cli/commands.h"
#include "cli/common.h"

namespace hearth::cli {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct AgentArgs {
  // the model
  std::string model, endpoint, api_key;
  int threads = 0, ctx = 8192;
  bool force = false;
  // the run
  double temperature = 0.0;
  int64_t seed = 0;
  bool think = false;
  int thinking_budget = 0;
  int max_tokens = 0;  // per turn; 0: 1024, or 4096 with thinking
  int max_steps = 10;
  double max_seconds = 600;
  int max_total_tokens = 20000;
  bool no_reask = false;
  // the database
  std::string db, notes_file;
  bool strict_casts = false;
  int sql_timeout_ms = 10000;
  int max_rows = 100;
  // output
  std::string transcript;
  bool quiet = false;
  // agent sql
  std::string question;
  // eval sql
  std::string questions, sql_file, transcripts_dir;
  bool gold = false;
  std::vector<std::string> ids;
};

void add_model_options(CLI::App* c, AgentArgs& a) {
  c->add_option("-m,--model", a.model,
                "In process: a GGUF file or store name. With --endpoint: the model name the endpoint serves");
  c->add_option("--endpoint", a.endpoint, "OpenAI base URL of a server to use instead (e.g. http://127.0.0.1:12434/v1)");
  c->add_option("--api-key", a.api_key, "Bearer key for --endpoint (default: $HEARTH_API_KEY, then $OPENAI_API_KEY)");
  c->add_option("-t,--threads", a.threads, "Threads for the in-process engine (default: all)");
  c->add_option("-c,--ctx", a.ctx, "Context size of the in-process engine")->capture_default_str();
  c->add_flag("--force", a.force, "Load the model even if the memory check says it does not fit");
  c->add_option("--temperature", a.temperature, "Sampling temperature")->capture_default_str();
  c->add_option("--seed", a.seed, "Sampling seed (each model turn uses seed + turn)")->capture_default_str();
  c->add_flag("--think", a.think, "Let the model think before each turn");
  c->add_option("--thinking-budget", a.thinking_budget, "Reasoning tokens per turn at most (with --think)");
  c->add_option("--max-tokens", a.max_tokens, "Generated tokens per model turn (default 1024, 4096 with --think)");
  c->add_option("--max-steps", a.max_steps, "Model turns at most")->capture_default_str();
  c->add_option("--max-seconds", a.max_seconds, "Wall time at most, per question")->capture_default_str();
  c->add_option("--max-total-tokens", a.max_total_tokens, "Generated tokens at most, per question")->capture_default_str();
  c->add_flag("--no-reask", a.no_reask, "Accept an answer given without any query (default: ask once more, tool required)");
  c->add_option("--db", a.db, "SQLite database file (opened read-only)")->required();
  c->add_option("--notes", a.notes_file, "A text file about the database (meanings, units, quirks) for the system prompt");
  c->add_flag("--strict-casts", a.strict_casts,
              "CAST of non-numeric text (and SUM/AVG over it) raises an error, as on PostgreSQL");
  c->add_option("--sql-timeout-ms", a.sql_timeout_ms, "Time limit per SQL statement")->capture_default_str();
  c->add_option("--max-rows", a.max_rows, "Result rows shown to the model per query")->capture_default_str();
  c->add_flag("-q,--quiet", a.quiet, "No live progress on stderr");
}

// The model behind the agent: an endpoint, or a model loaded in process (kept alive here).
struct OpenedModel {
  LoadedModel lm;
  std::unique_ptr<chat::ChatEngine> engine;
  std::unique_ptr<agent::ChatModel> model;
};

OpenedModel open_model(const AgentArgs& a) {
  OpenedModel m;
  if (!a.endpoint.empty()) {
    agent::EndpointOptions eo;
    eo.base_url = a.endpoint;
    eo.model = a.model;
    eo.api_key = a.api_key;
    if (eo.api_key.empty())
      for (const char* var : {"HEARTH_API_KEY", "OPENAI_API_KEY"})
        if (const char* v = std::getenv(var); v && *v && eo.api_key.empty()) eo.api_key = v;
    eo.timeout_s = int(std::max(60.0, a.max_seconds));
    m.model = std::make_unique<agent::EndpointModel>(eo);
    return m;
  }
  if (a.model.empty())
    throw Error("give -m MODEL (a GGUF file or a store name) for the in-process engine, or --endpoint URL --model NAME");
  const std::string path = resolve_model(a.model);
  check_model_fits(path, a.ctx, 1, "f16", a.force);
  m.lm = load(path);
  chat::EngineOptions eo;
  const int train = m.lm.model->info().n_ctx_train;
  eo.session.n_ctx = train > 0 ? std::min(a.ctx, train) : a.ctx;
  eo.session.n_threads = a.threads;
  m.engine = std::make_unique<chat::ChatEngine>(*m.lm.model, *m.lm.tok, eo);
  m.model = std::make_unique<agent::EngineModel>(*m.engine, fs::path(path).filename().string());
  return m;
}

std::shared_ptr<agent::SqlDatabase> open_db(const AgentArgs& a) {
  agent::SqlOptions so;
  so.strict_casts = a.strict_casts;
  so.timeout_ms = a.sql_timeout_ms;
  so.max_rows = size_t(std::max(1, a.max_rows));
  return std::make_shared<agent::SqlDatabase>(a.db, so);
}

std::string one_line(std::string s, size_t max) {
  for (char& c : s)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  if (s.size() > max) s = s.substr(0, max) + "...";
  return s;
}

// Live progress: one line per model turn's calls, tool results (first lines), re-asks and the end.
void print_progress(const json& e, bool tty) {
  const std::string type = e.value("type", "");
  const char* dim = tty ? "\x1b[2m" : "";
  const char* red = tty ? "\x1b[31m" : "";
  const char* reset = tty ? "\x1b[0m" : "";
  if (type == "model") {
    for (const json& c : e.value("tool_calls", json::array())) {
      const json& args = c["arguments"];
      std::string shown = args.is_object() && args.contains("query") && args["query"].is_string()
                              ? args["query"].get<std::string>()
                              : args.dump();
      std::fprintf(stderr, "[%d] %s %s\n", e.value("step", 0), c.value("name", "").c_str(), one_line(shown, 300).c_str());
    }
    for (const json& err : e.value("errors", json::array()))
      std::fprintf(stderr, "[%d] %smalformed tool call: %s%s\n", e.value("step", 0), red,
                   one_line(err.get<std::string>(), 300).c_str(), reset);
  } else if (type == "tool") {
    const std::string text = e.value("result", "");
    const bool ok = e.value("ok", false);
    size_t pos = 0;
    for (int line = 0; line < (ok ? 4 : 3) && pos < text.size(); ++line) {
      size_t nl = text.find('\n', pos);
      if (nl == std::string::npos) nl = text.size();
      std::fprintf(stderr, "    %s%s%s\n", ok ? dim : red, one_line(text.substr(pos, nl - pos), 200).c_str(), reset);
      pos = nl + 1;
    }
  } else if (type == "reask") {
    std::fprintf(stderr, "[%d] answered without querying; asking again with a tool call required\n", e.value("step", 0));
  } else if (type == "nudge") {
    std::fprintf(stderr, "[%d] %s\n", e.value("step", 0), one_line(e.value("message", ""), 200).c_str());
  } else if (type == "end") {
    std::fprintf(stderr, "%s%s after %d turns, %d tool calls (%d failed), %d tokens generated, %.1f s%s\n", dim,
                 e.value("status", "") == "answered" ? "answered" : "gave up", e.value("steps", 0),
                 e.value("tool_calls", 0), e.value("tool_errors", 0), e.value("completion_tokens", 0),
                 e.value("seconds", 0.0), reset);
  }
}

// Options for every question; the system prompt (rules, schema, --notes) is the same for all of them.
agent::AgentOptions agent_options(const AgentArgs& a, agent::SqlDatabase& db) {
  agent::AgentOptions o;
  o.system_prompt = agent::sql_system_prompt(db, a.notes_file.empty() ? "" : read_text_file(a.notes_file));
  o.budget.max_steps = a.max_steps;
  o.budget.max_seconds = a.max_seconds;
  o.budget.max_completion_tokens = a.max_total_tokens;
  o.sampling.temperature = float(a.temperature);
  if (a.seed >= 0) o.sampling.seed = uint64_t(a.seed);
  o.think = a.think;
  if (a.thinking_budget > 0) o.thinking_budget = a.thinking_budget;
  o.max_tokens_per_turn = a.max_tokens > 0 ? a.max_tokens : a.think ? 4096 : 1024;
  o.reask_lazy = !a.no_reask;
  return o;
}

// Writes transcript entries as JSONL lines (flushed each, so a cut-off run keeps what happened).
class TranscriptFile {
 public:
  explicit TranscriptFile(const std::string& path) {
    if (path.empty()) return;
    out_.open(path, std::ios::binary | std::ios::trunc);
    if (!out_) throw Error("cannot write the transcript file " + path);
  }
  void write(const json& e) {
    if (!out_.is_open()) return;
    out_ << e.dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
    out_.flush();
  }

 private:
  std::ofstream out_;
};

int run_agent_sql(const AgentArgs& a) {
  auto db = open_db(a);
  OpenedModel m = open_model(a);
  TranscriptFile transcript(a.transcript);
  agent::AgentOptions o = agent_options(a, *db);
  const bool tty = isatty(fileno(stderr));
  o.on_entry = [&](const json& e) {
    transcript.write(e);
    if (!a.quiet) print_progress(e, tty);
  };
  const agent::AgentResult r = agent::ask_sql(*m.model, db, a.question, o);
  if (!r.answered) {
    std::fprintf(stderr, "hearth: the agent gave up: %s\n", r.gave_up_reason.c_str());
    return 3;
  }
  std::printf("%s\n", r.answer.c_str());
  return 0;
}

// {"id": "...", "sql": "..."} per line → id → sql.
std::map<std::string, std::string> read_sql_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot read " + path);
  std::map<std::string, std::string> out;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("id") || !j["id"].is_string() || !j.contains("sql") ||
        !j["sql"].is_string())
      throw Error(path + ":" + std::to_string(n) + ": expected {\"id\": string, \"sql\": string}");
    out[j["id"].get<std::string>()] = j["sql"].get<std::string>();
  }
  return out;
}

int run_eval_sql(const AgentArgs& a) {
  std::vector<agent::SqlQuestion> questions = agent::load_questions(a.questions);
  if (!a.ids.empty()) {
    const std::set<std::string> want(a.ids.begin(), a.ids.end());
    std::erase_if(questions, [&](const agent::SqlQuestion& q) { return !want.count(q.id); });
  }
  if (questions.empty()) throw Error("no questions to run");
  auto db = open_db(a);
  const bool model_free = a.gold || !a.sql_file.empty();
  std::map<std::string, std::string> given_sql;
  if (!a.sql_file.empty()) given_sql = read_sql_file(a.sql_file);
  OpenedModel m;
  if (!model_free) m = open_model(a);
  if (!a.transcripts_dir.empty()) fs::create_directories(a.transcripts_dir);
  const agent::AgentOptions base = model_free ? agent::AgentOptions{} : agent_options(a, *db);  // same for every question
  const bool tty = isatty(fileno(stderr));

  std::vector<agent::EvalRow> rows;
  for (const auto& q : questions) {
    agent::EvalRow row;
    row.id = q.id;
    if (!a.quiet) std::fprintf(stderr, "== %s: %s\n", q.id.c_str(), q.question.c_str());
    if (model_free) {
      const auto it = given_sql.find(q.id);
      if (!a.gold && it == given_sql.end()) continue;  // --sql grades the questions it has SQL for
      const std::string sql = a.gold ? q.gold_sql : it->second;
      const agent::SqlResult res = db->query(sql);
      row.tool_calls = 1;
      row.tool_errors = res.ok ? 0 : 1;
      row.seconds = res.ms / 1000;
      if (!res.ok && !a.quiet) std::fprintf(stderr, "    %s\n", one_line(res.error, 300).c_str());
      row.grade = agent::grade(q, agent::candidate_from_rows(res));
    } else {
      TranscriptFile transcript(a.transcripts_dir.empty() ? "" : a.transcripts_dir + "/" + q.id + ".jsonl");
      agent::AgentOptions o = base;
      o.on_entry = [&](const json& e) {
        transcript.write(e);
        if (!a.quiet) print_progress(e, tty);
      };
      const agent::AgentResult r = agent::ask_sql(*m.model, db, q.question, o);
      if (!a.quiet && r.answered) std::fprintf(stderr, "    answer: %s\n", one_line(r.answer, 300).c_str());
      row.rounds = r.steps;
      row.tool_calls = r.tool_calls;
      row.tool_errors = r.tool_errors;
      row.seconds = r.seconds;
      row.grade = agent::grade(q, agent::candidate_from(r));
    }
    if (!a.quiet) std::fprintf(stderr, "    %s %s\n", row.grade.correct ? "ok" : "WRONG", row.grade.reason.c_str());
    rows.push_back(row);
  }
  std::printf("%s", agent::format_report(rows).c_str());
  return 0;
}

}  // namespace

Runner add_agent(CLI::App& app) {
  auto a = std::make_shared<AgentArgs>();
  CLI::App* agent = app.add_subcommand("agent", "Agents that use tools (sql: questions about an SQLite database)");
  agent->require_subcommand(1);
  CLI::App* c = agent->add_subcommand("sql", "Answer a question about an SQLite database with read-only SQL tools");
  add_model_options(c, *a);
  c->add_option("question", a->question, "The question")->required();
  c->add_option("--transcript", a->transcript, "Write every message, call, result and timing here as JSONL");
  return [a] { return run_agent_sql(*a); };
}

Runner add_eval(CLI::App& app) {
  auto a = std::make_shared<AgentArgs>();
  CLI::App* eval = app.add_subcommand("eval", "Measure a model on graded questions (sql: text-to-SQL accuracy)");
  eval->require_subcommand(1);
  CLI::App* c = eval->add_subcommand("sql", "Run the SQL agent on every question and grade execution accuracy");
  add_model_options(c, *a);
  c->add_option("--questions", a->questions, "Questions as JSONL (id, question, gold_sql, gold_rows, ...)")->required();
  c->add_flag("--gold", a->gold, "Grade each question's gold SQL instead of running a model (sanity check)");
  c->add_option("--sql", a->sql_file, "Grade the SQL in this JSONL file ({\"id\", \"sql\"} per line) instead of a model");
  c->add_option("--ids", a->ids, "Only these question ids")->delimiter(',');
  c->add_option("--transcripts", a->transcripts_dir, "Write each question's transcript to DIR/ID.jsonl");
  return [a] { return run_eval_sql(*a); };
}

}  // namespace hearth::cli
