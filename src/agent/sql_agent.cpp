#include "agent/sql_agent.h"

namespace hearth::agent {

namespace {

constexpr const char* kRules = R"(You answer questions about an SQLite database by querying it with your tools.

How to work:
- Never answer a question about the data from memory: query the database first (sql_query runs one read-only SQLite statement per call).
- If a query fails, read the error and its hint, fix the statement and run it again.
- Use describe_table to see a table's columns and sample values before you rely on a column you have not seen.
- Some numeric-looking columns are TEXT and use '-' (or other text) for "no value". SQLite silently turns such text into 0 when it casts, sums or averages, which gives wrong answers. Use safe_cast(column, 'REAL') or safe_cast(column, 'INTEGER'), which return NULL for non-numeric text, whenever you compare, sort, sum or average such a column.
- Match names with LIKE (spellings, accents and case vary).
- If the database does not hold the data a question asks for (the table or column does not exist, or the query returns no rows), say so plainly; do not guess and do not answer 0.
- When you have the result, give a short final answer that states the names and numbers from your last query.
)";

}  // namespace

std::string sql_system_prompt(SqlDatabase& db, const std::string& notes) {
  std::string prompt = kRules;
  const SqlResult schema = db.query(
      "SELECT m.name, group_concat(c.name || ' ' || c.type, ', ') FROM sqlite_master m "
      "JOIN pragma_table_info(m.name) c WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite_%' "
      "GROUP BY m.name ORDER BY m.name");
  if (schema.ok && !schema.rows.empty()) {
    prompt += "\nThe database's tables (name: columns):\n";
    for (const auto& row : schema.rows)
      if (row.size() == 2 && row[0].is_string() && row[1].is_string())
        prompt += "- " + row[0].get<std::string>() + ": " + row[1].get<std::string>() + "\n";
  }
  if (!notes.empty()) prompt += "\nNotes about this database:\n" + notes + (notes.back() == '\n' ? "" : "\n");
  return prompt;
}

AgentResult ask_sql(ChatModel& model, std::shared_ptr<SqlDatabase> db, const std::string& question, AgentOptions opt) {
  ToolRegistry tools;
  if (opt.system_prompt.empty()) opt.system_prompt = sql_system_prompt(*db);
  add_sql_tools(tools, std::move(db));
  return run_agent(model, tools, question, opt);
}

namespace {
void fill_rows(Candidate& c, const json& data) {
  if (!data.is_object() || !data.contains("columns") || !data["columns"].is_array()) return;
  std::vector<std::string> cols;
  for (const json& name : data["columns"]) cols.push_back(name.is_string() ? name.get<std::string>() : name.dump());
  c.columns = std::move(cols);
  if (data.contains("rows") && data["rows"].is_array())
    for (const json& row : data["rows"])
      if (row.is_array()) c.rows.push_back(row.get<std::vector<json>>());
}
}  // namespace

Candidate candidate_from(const AgentResult& r) {
  Candidate c;
  c.answered = r.answered;
  c.reply = r.answer;
  fill_rows(c, r.last_data);
  return c;
}

Candidate candidate_from_rows(const SqlResult& r) {
  Candidate c;
  if (!r.ok) return c;  // a failing statement answers nothing
  c.answered = true;
  c.columns = r.columns;
  c.rows = r.rows;
  c.reply = reply_for_rows(r.columns, r.rows);
  return c;
}

}  // namespace hearth::agent
