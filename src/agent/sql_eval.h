// Grading text-to-SQL answers by execution accuracy (`hearth eval sql`).
//
// Questions come as JSONL (../shared/testdata/football/questions-dev.jsonl): id, question, gold_sql,
// gold_columns, gold_rows, order_matters, expected_behavior ("answer" | "no_answer"), difficulty, category.
//
// An "answer" question is graded on the rows of the agent's last successful query:
//   - the agent must have given a final answer ("no final answer") and run a query ("no query result");
//   - the row count must equal the gold row count ("2 rows, expected 3"); zero gold rows: zero rows is right;
//   - every gold column must match a distinct candidate column (found by value, names are ignored), so
//     extra columns and any column order are fine: candidate columns whose values equal a gold column's as a
//     multiset are its options, then a backtracking search over the assignments checks whole rows;
//   - rows compare as multisets (a maximum bipartite matching, since a tolerance is not transitive), or in
//     order when order_matters ("order differs" when only the order is wrong);
//   - values: numbers (and text that is a number, "7.63"; booleans as 0/1) compare with tolerance
//     |a − b| ≤ max(0.01, 1e-4·|b|), so 6.6094 matches a gold 6.61 rounded to two decimals; text compares
//     trimmed, case-insensitively and with Latin-1 accents folded ("Pelé" = "pele"); a number and text that
//     is not a number compare as text; NULL matches only NULL (not 0, not "").
// A "no_answer" question (the data is not there) is graded on the reply alone, by a heuristic: it is right
// when the agent answered and the reply contains a word that says something is absent: "not", "no", "none",
// "nothing", "never", "cannot", "unavailable", "missing", "absent", "unknown", any "...n't" (also typed
// without the apostrophe). So "Italy did not take part" and "The database has no assists column" are right,
// "Italy scored 0 goals." (a plain answer, no such word) is wrong. The rows are not used: listing the schema
// is a fair way to show that a column is absent. Known limits: "Messi had no assists" passes although it
// claims a value of zero, and a reply that answers wrongly but mentions "not" somewhere passes too.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hearth::agent {

using json = nlohmann::json;

struct SqlQuestion {
  std::string id, question, gold_sql, category;
  std::vector<std::string> gold_columns;
  std::vector<std::vector<json>> gold_rows;
  bool order_matters = false;
  bool expect_answer = true;  // expected_behavior == "answer"
  int difficulty = 0;
};

// Throws hearth::Error naming the file, the line and the field for malformed input.
std::vector<SqlQuestion> load_questions(const std::string& path);

// What one run produced, as the grader sees it.
struct Candidate {
  bool answered = false;                      // the agent gave a final answer (did not give up)
  std::string reply;                          // its final answer text
  std::optional<std::vector<std::string>> columns;  // the last successful query's result, when there was one
  std::vector<std::vector<json>> rows;
};

struct Grade {
  bool correct = false;
  std::string reason;  // why not (or "ok"), one line: "3 rows, expected 1", "no column matches gold column 'goals'"
};

Grade grade(const SqlQuestion& q, const Candidate& c);

// Value comparison used by grade(): numeric tolerance, trimmed case-insensitive text, NULL only with NULL.
bool values_match(const json& candidate, const json& gold);

// The reply written for a query result when there is no model (`hearth eval sql --gold` / `--sql FILE`): the
// rows as text (a line of column names, then up to 20 rows, values " | " separated, "NULL" for null), or
// "No rows: the database has no data for this question." for an empty result. A result whose values are all
// NULL gets a last line saying that the database has no data, so that a no_answer gold query returning NULL
// reads as the right reply too.
std::string reply_for_rows(const std::vector<std::string>& columns, const std::vector<std::vector<json>>& rows);

struct EvalRow {
  std::string id;
  Grade grade;
  int rounds = 0;       // model turns
  int tool_calls = 0;
  int tool_errors = 0;
  double seconds = 0;
};

// The report: one line per question (id, ok/WRONG, rounds, tool calls, tool errors, seconds, reason), then
// the line "accuracy: K/N".
std::string format_report(const std::vector<EvalRow>& rows);

}  // namespace hearth::agent
