// The SQL agent (the football statistics agent is this with football.db): the read-only SQL tools over one
// database, a system prompt that carries the schema and the rules that matter for small models, and the
// bridge from an agent run to what `hearth eval sql` grades.
#pragma once
#include <memory>
#include <string>

#include "agent/agent.h"
#include "agent/sql_eval.h"
#include "agent/sql_tool.h"

namespace hearth::agent {

// The system prompt: what the tools are for, how to recover from errors, the '-' placeholder trap and
// safe_cast, "say so when the data is not there", the schema (every table with its columns and types), and
// the user's `notes` about this database when given (what a column means, units, known quirks).
std::string sql_system_prompt(SqlDatabase& db, const std::string& notes = "");

// Asks `question` about `db`: registers the SQL tools, sets the system prompt (unless opt has one) and runs
// the agent loop.
AgentResult ask_sql(ChatModel& model, std::shared_ptr<SqlDatabase> db, const std::string& question,
                    AgentOptions opt);

// What the grader sees of a run: its final answer and the rows of its last successful query.
Candidate candidate_from(const AgentResult& r);

// A query result's data object ({"columns", "rows"}) as a candidate answer with a reply written from the
// rows (the model-free modes `--gold` and `--sql FILE`).
Candidate candidate_from_rows(const SqlResult& r);

}  // namespace hearth::agent
