// The read-only SQL tool over SQLite: the agent's window onto a database, safe by construction.
//
// Safety (every layer holds on its own):
//   - the file is opened SQLITE_OPEN_READONLY (URI mode off, no shared cache), with `PRAGMA query_only`;
//   - an authorizer allows only reading (SELECT, READ, FUNCTION, and read-only PRAGMA table-valued
//     functions such as pragma_table_info) and denies writes, DDL, ATTACH/DETACH, PRAGMA assignments,
//     transactions, savepoints and everything else; `load_extension` is disabled at the C level;
//   - exactly one statement per call (text after the first statement, other than whitespace, comments
//     and a trailing ';', is refused);
//   - statements longer than max_sql_bytes are refused; a progress handler stops a statement after
//     timeout_ms; results are capped at max_rows rows and max_result_bytes bytes, with a notice saying how
//     many rows there were.
//
// Functions added to SQL:
//   - safe_cast(value, type): type 'INTEGER' | 'REAL' | 'NUMERIC' | 'TEXT' (case-insensitive); returns NULL
//     for text that is not a number (e.g. '-', '', 'n/a') instead of SQLite's silent 0.
//     Numbers pass through converted; text is trimmed and must be a whole decimal number ("7.5", "-3", "1e3";
//     no hex, no "inf"); INTEGER truncates toward zero like CAST ('7.6' → 7). safe_cast(x, 'TEXT') is text.
//   - strict-cast mode (SqlOptions::strict_casts): CAST(x AS INTEGER/REAL/NUMERIC/...) of text that is not
//     a number raises an error, like PostgreSQL's `invalid input syntax for type real: "-"`, and so do
//     SUM/AVG/TOTAL over such text. SQLite itself casts '-' to 0 silently; strict mode makes the failure
//     visible so the agent's "cast error → safe cast" recovery works here as on strict engines.
//     CAST is syntax, not a function, so the statement text is rewritten before it is prepared: numeric
//     CASTs become strict_cast(x, 'type') (rewrite_strict_casts); text/blob CASTs stay as they are. Errors
//     show the statement as sent, not the rewrite.
//
// One SqlDatabase serves one call at a time (calls are serialised by a mutex).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/tool.h"

struct sqlite3;

namespace hearth::agent {

struct SqlOptions {
  bool strict_casts = false;
  int timeout_ms = 10000;           // per statement
  size_t max_rows = 100;            // rows shown to the model; the rest are counted, not shown
  size_t max_result_bytes = 16384;  // bytes of the rendered result shown to the model
  size_t max_sql_bytes = 16384;     // longer statements are refused
  int sample_values = 5;            // describe_table: distinct sample values per column
};

struct SqlResult {
  bool ok = false;
  std::string error;                    // !ok: SQLite's message or the refusal, then "Hint: ..." when one helps
  std::vector<std::string> columns;
  std::vector<std::vector<json>> rows;  // values: null, integer, real, string; blobs as "<blob N bytes>"
  size_t total_rows = 0;                // rows the statement produced (all of them, also past max_rows)
  bool truncated = false;               // rows or bytes were cut
  bool total_rows_is_lower_bound = false;  // counting past max_rows stopped (time limit or 1,000,000 rows)
  size_t max_result_bytes = 16384;      // format_sql_result's byte budget (query() copies SqlOptions')
  double ms = 0;
};

class SqlDatabase {
 public:
  // Throws hearth::Error when the file does not exist or is not an SQLite database.
  SqlDatabase(const std::string& path, SqlOptions opt = {});
  ~SqlDatabase();
  SqlDatabase(const SqlDatabase&) = delete;
  SqlDatabase& operator=(const SqlDatabase&) = delete;

  // Runs one read-only statement. Never throws for bad SQL: the error is in the result.
  SqlResult query(const std::string& sql);
  // query() for the tools' own schema queries: its own row cap, and no strict-mode rewriting. The same
  // read-only guards and time limit apply.
  SqlResult query_all(const std::string& sql, size_t max_rows);
  // Tables and views (not sqlite_* internals), sorted by name.
  std::vector<std::string> table_names();
  const SqlOptions& options() const { return opt_; }
  const std::string& path() const { return path_; }

 private:
  struct Callbacks;  // the authorizer and the progress handler (sql_tool.cpp)
  SqlResult run(const std::string& sql, size_t max_rows, bool rewrite);
  int deny(int code, const char* arg1, const char* arg2);

  std::string path_;
  SqlOptions opt_;
  sqlite3* db_ = nullptr;
  std::mutex mu_;
  // State of the running statement, shared with the callbacks.
  std::string refusal_;      // what the authorizer refused first ("INSERT into teams"), for the error message
  int64_t deadline_ = 0;     // steady_clock time (in its ticks) after which the progress handler interrupts
  bool interrupted_ = false;
};

// Strict mode's rewrite: CAST(expr AS INTEGER|REAL|NUMERIC|...) → strict_cast(expr, 'type'), nested casts
// included; string literals, quoted identifiers and comments are left alone, as are text/blob casts.
std::string rewrite_strict_casts(const std::string& sql);

// The result as the model reads it: a header line of column names, one line per row (values separated by
// " | ", NULL as NULL), then "(N rows)" or the truncation notice "(showing K of N rows; add a LIMIT or
// aggregate)"; rows past r.max_result_bytes are left out with a notice saying so. Errors: "Error: <message>",
// "Statement: <sql>" and the hint lines.
std::string format_sql_result(const SqlResult& r, const std::string& sql);

// The three SQL tools over one database, registered in this order:
//   sql_query {"query": string}       → one read-only SQL statement; data = {"columns", "rows", "total_rows"}
//   list_tables {}                    → every table with its row count and columns
//   describe_table {"table": string}  → columns (name, declared type, primary key), row count, and up to
//                                       sample_values distinct non-NULL sample values per column, so
//                                       placeholders like '-' in numeric-looking TEXT columns are visible
void add_sql_tools(ToolRegistry& registry, std::shared_ptr<SqlDatabase> db);

}  // namespace hearth::agent
