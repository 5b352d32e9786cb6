// The read-only SQL tool's database: opening, the authorizer, running one statement with its limits, and the
// model-facing rendering of results and errors (see sql_tool.h for the safety layers). The SQL functions live
// in sql_functions.cpp, the lexer and CAST rewriter in sql_text.cpp, the tools in sql_tools.cpp.
#include "agent/sql_tool.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string_view>

#include "agent/sql_detail.h"
#include "core/error.h"

namespace hearth::agent {

namespace sql_detail {

std::string format_value(const json& v) {
  if (v.is_null()) return "NULL";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.10g", d);
    std::string s = buf;
    // Keep reals recognisable as reals (3.0, not 3), as SQLite's shell prints them.
    if (std::isfinite(d) && s.find_first_of(".eE") == std::string::npos) s += ".0";
    return s;
  }
  if (v.is_number()) return v.dump();
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string json_text(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace sql_detail

using namespace sql_detail;

namespace {

using Clock = std::chrono::steady_clock;

// Rows counted (not kept) past max_rows before we stop and report "at least N rows".
constexpr size_t kMaxCountedRows = 1000000;
// The progress handler runs every this many VM instructions; cheap enough, and fine-grained enough to stop
// a runaway statement within a few milliseconds of its deadline.
constexpr int kProgressOps = 1000;
// Longest string or blob a statement may build (randomblob(1e9) and friends).
constexpr int kMaxValueBytes = 64 << 20;

const char* const kReadOnlyHint =
    "Hint: this database is read-only: only SELECT / WITH ... SELECT queries are allowed.";
const char* const kTimeoutHint =
    "Hint: Add filters, a LIMIT, or aggregate (COUNT/SUM/AVG with GROUP BY) so the query finishes sooner; "
    "check that every JOIN has an ON condition.";
const char* const kCastHint =
    "Hint: the column holds text that is not a number (placeholders such as '-'); use safe_cast(col, 'REAL') "
    "(NULL for non-numbers) or CAST(NULLIF(col, '-') AS REAL), and skip the NULLs.";

// ------------------------------------------------------------------------------------------------------------
// Model-facing error messages

const char* const kSchemaChange = "<schema change>";

// What an authorizer denial refused, for "not allowed: ..." messages.
std::string describe_denial(int code, const char* a1, const char* a2) {
  std::string x = a1 ? a1 : "", y = a2 ? a2 : "";
  switch (code) {
    case SQLITE_INSERT:
    case SQLITE_DELETE:
      // CREATE, DROP and ANALYZE are first authorized as a write to the schema table, and stop there: the
      // caller names the statement instead.
      if (iequals(x, "sqlite_master") || iequals(x, "sqlite_temp_master")) return kSchemaChange;
      return (code == SQLITE_INSERT ? "INSERT into " : "DELETE from ") + x;
    case SQLITE_UPDATE: return "UPDATE of " + x + (y.empty() ? "" : "." + y);
    case SQLITE_CREATE_INDEX: case SQLITE_CREATE_TEMP_INDEX: return "CREATE INDEX " + x;
    case SQLITE_CREATE_TABLE: case SQLITE_CREATE_TEMP_TABLE: return "CREATE TABLE " + x;
    case SQLITE_CREATE_TRIGGER: case SQLITE_CREATE_TEMP_TRIGGER: return "CREATE TRIGGER " + x;
    case SQLITE_CREATE_VIEW: case SQLITE_CREATE_TEMP_VIEW: return "CREATE VIEW " + x;
    case SQLITE_CREATE_VTABLE: return "CREATE VIRTUAL TABLE " + x;
    case SQLITE_DROP_INDEX: case SQLITE_DROP_TEMP_INDEX: return "DROP INDEX " + x;
    case SQLITE_DROP_TABLE: case SQLITE_DROP_TEMP_TABLE: return "DROP TABLE " + x;
    case SQLITE_DROP_TRIGGER: case SQLITE_DROP_TEMP_TRIGGER: return "DROP TRIGGER " + x;
    case SQLITE_DROP_VIEW: case SQLITE_DROP_TEMP_VIEW: return "DROP VIEW " + x;
    case SQLITE_DROP_VTABLE: return "DROP VIRTUAL TABLE " + x;
    case SQLITE_ALTER_TABLE: return "ALTER TABLE " + y;
    case SQLITE_ATTACH:
      return x.empty() ? "VACUUM (or ATTACH)" : "ATTACH / VACUUM INTO of the file '" + x + "'";
    case SQLITE_DETACH: return "DETACH " + x;
    case SQLITE_TRANSACTION: return "transaction control (" + x + ")";
    case SQLITE_SAVEPOINT: return "SAVEPOINT / RELEASE " + y;
    case SQLITE_REINDEX: return "REINDEX";
    case SQLITE_ANALYZE: return "ANALYZE";
    case SQLITE_PRAGMA: return "PRAGMA " + x + (y.empty() ? "" : " = " + y);
    case SQLITE_FUNCTION: return "the function " + y + "()";
    default: return "this kind of statement (SQLite action " + std::to_string(code) + ")";
  }
}

bool contains(std::string_view s, std::string_view what) { return s.find(what) != std::string_view::npos; }

// The hint line for one of SQLite's messages, or "" when none helps.
std::string hint_for(std::string_view msg) {
  if (contains(msg, "invalid input syntax for type")) return kCastHint;
  if (contains(msg, "no such column"))
    return "Hint: check the column names with describe_table; in joins, qualify columns with their table alias "
           "(alias.column).";
  if (contains(msg, "no such table"))
    return "Hint: use list_tables to see the tables there are (and describe_table for their columns).";
  if (contains(msg, "ambiguous column name"))
    return "Hint: the column exists in more than one joined table: qualify it with its table alias.";
  if (contains(msg, "no such function"))
    return "Hint: this is SQLite: use its functions (substr, instr, strftime, ifnull, || for concatenation); "
           "safe_cast(value, 'REAL') converts numeric text and gives NULL for non-numbers.";
  if (contains(msg, "syntax error") || contains(msg, "incomplete input") || contains(msg, "unrecognized token"))
    return "Hint: check the syntax; this is SQLite: use LIMIT n (not TOP n), single quotes for strings, double "
           "quotes for identifiers, || to concatenate.";
  if (contains(msg, "misuse of aggregate") || contains(msg, "GROUP BY"))
    return "Hint: aggregates (COUNT, SUM, AVG, ...) belong in SELECT / HAVING with a GROUP BY, not in WHERE.";
  if (contains(msg, "readonly") || contains(msg, "read-only") || contains(msg, "may not be modified"))
    return kReadOnlyHint;
  return "";
}

std::string with_hint(std::string msg, const std::string& hint) { return hint.empty() ? msg : msg + "\n" + hint; }

// ------------------------------------------------------------------------------------------------------------
// Rendering

std::string join_row(const std::vector<json>& row) {
  std::string line;
  for (size_t i = 0; i < row.size(); ++i) {
    if (i) line += " | ";
    line += format_value(row[i]);
  }
  return line;
}

std::string header_line(const std::vector<std::string>& columns) {
  std::string line;
  for (size_t i = 0; i < columns.size(); ++i) line += (i ? " | " : "") + columns[i];
  return line;
}

// How many of r.rows fit in max_bytes together with the header (at least none, all when they fit).
size_t rows_that_fit(const SqlResult& r, size_t max_bytes) {
  size_t used = header_line(r.columns).size() + 1;
  for (size_t i = 0; i < r.rows.size(); ++i) {
    used += join_row(r.rows[i]).size() + 1;
    if (used > max_bytes) return i;
  }
  return r.rows.size();
}


}  // namespace

// ------------------------------------------------------------------------------------------------------------
// Callbacks that need the database's private state

struct SqlDatabase::Callbacks {
  // Allowed: reading. Denied: everything that writes or reaches outside the one database.
  static int authorize(void* user, int code, const char* a1, const char* a2, const char* /*db_name*/,
                       const char* /*trigger*/) {
    auto* self = static_cast<SqlDatabase*>(user);
    switch (code) {
      case SQLITE_SELECT:
      case SQLITE_READ:
      case SQLITE_RECURSIVE:
        return SQLITE_OK;
      case SQLITE_FUNCTION: {
        std::string f = a2 ? upper(a2) : "";
        // load_extension is also off at the C level; the others exist only in some builds (the shell's
        // readfile/writefile/edit) and would reach the file system; fts3_tokenizer can take a C pointer.
        if (f == "LOAD_EXTENSION" || f == "WRITEFILE" || f == "READFILE" || f == "EDIT" || f == "FTS3_TOKENIZER")
          return self->deny(code, a1, a2);
        return SQLITE_OK;
      }
      case SQLITE_PRAGMA:
        return pragma_allowed(a1 ? a1 : "", a2) ? SQLITE_OK : self->deny(code, a1, a2);
      case SQLITE_UPDATE:
        // Using an eponymous virtual table (json_each, pragma_table_info, ...) makes SQLite authorize an UPDATE
        // of the schema table's columns while it declares the table; that update never runs. IGNORE lets the
        // declaration proceed (for a real UPDATE it would mean "leave the column unchanged", and SQLite refuses
        // to modify sqlite_master anyway; the statement would also fail the read-only checks).
        if (a1 && (iequals(a1, "sqlite_master") || iequals(a1, "sqlite_temp_master") ||
                   iequals(a1, "sqlite_schema") || iequals(a1, "sqlite_temp_schema")))
          return SQLITE_IGNORE;
        return self->deny(code, a1, a2);
      default:
        return self->deny(code, a1, a2);
    }
  }

  // Read-only pragmas. SELECT ... FROM pragma_table_info(m.name) runs "PRAGMA table_info(<name>)" when stepped,
  // and the authorizer sees that with the table name as the argument, so pragmas that take an object name
  // accept any argument; the others are only allowed without one (an argument would be an assignment).
  static bool pragma_allowed(const std::string& name, const char* arg) {
    static const char* const with_name[] = {"table_info",  "table_xinfo", "table_list",      "index_list",
                                            "index_info",  "index_xinfo", "foreign_key_list"};
    static const char* const no_arg[] = {"database_list", "collation_list", "function_list", "module_list",
                                         "pragma_list",   "user_version",   "schema_version", "application_id",
                                         "encoding",      "foreign_keys",   "compile_options"};
    for (const char* p : with_name)
      if (iequals(name, p)) return true;
    if (arg) return false;
    for (const char* p : no_arg)
      if (iequals(name, p)) return true;
    return false;
  }

  static int progress(void* user) {
    auto* self = static_cast<SqlDatabase*>(user);
    if (Clock::now().time_since_epoch().count() > self->deadline_) {
      self->interrupted_ = true;
      return 1;
    }
    return 0;
  }
};

int SqlDatabase::deny(int code, const char* a1, const char* a2) {
  if (refusal_.empty()) refusal_ = describe_denial(code, a1, a2);
  return SQLITE_DENY;
}

SqlDatabase::SqlDatabase(const std::string& path, SqlOptions opt) : path_(path), opt_(opt) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw Error("no such database file: " + path);
  if (!std::filesystem::is_regular_file(path, ec)) throw Error(path + " is not an SQLite database (not a file)");
  if (std::filesystem::file_size(path, ec) == 0) throw Error(path + " is not an SQLite database (empty file)");

  // Read-only, no mutex (one connection used by one caller at a time, serialised by mu_), private cache; URI
  // filenames stay off, so the path is only ever a path.
  int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_PRIVATECACHE,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error("cannot open database " + path + ": " + msg);
  }
  auto fail = [&](const std::string& what) {
    std::string msg = sqlite3_errmsg(db_);
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error(what + ": " + msg);
  };
  sqlite3_extended_result_codes(db_, 1);
  // Opening is lazy: the header is only read here, so this is where a non-database file shows.
  if (sqlite3_exec(db_, "SELECT count(*) FROM sqlite_master", nullptr, nullptr, nullptr) != SQLITE_OK)
    fail(path + " is not an SQLite database");
  if (sqlite3_exec(db_, "PRAGMA query_only=1", nullptr, nullptr, nullptr) != SQLITE_OK)
    fail("cannot make " + path + " query-only");

  sqlite3_db_config(db_, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, nullptr);
  sqlite3_db_config(db_, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  // Functions with side effects are not run from inside the schema (views, triggers) of the file.
  sqlite3_db_config(db_, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
  sqlite3_limit(db_, SQLITE_LIMIT_ATTACHED, 0);
  // Strict-mode rewriting makes a statement a little longer than what we checked against max_sql_bytes.
  size_t sql_limit = std::min<size_t>(opt_.max_sql_bytes * 2 + 1024, 1000000000);
  sqlite3_limit(db_, SQLITE_LIMIT_SQL_LENGTH, static_cast<int>(sql_limit));
  sqlite3_limit(db_, SQLITE_LIMIT_LENGTH, kMaxValueBytes);

  sql_detail::register_sql_functions(db_, opt_.strict_casts);

  deadline_ = std::numeric_limits<int64_t>::max();
  sqlite3_progress_handler(db_, kProgressOps, &Callbacks::progress, this);
  sqlite3_set_authorizer(db_, &Callbacks::authorize, this);
}

SqlDatabase::~SqlDatabase() { sqlite3_close_v2(db_); }

SqlResult SqlDatabase::query(const std::string& sql) { return run(sql, opt_.max_rows, opt_.strict_casts); }

SqlResult SqlDatabase::query_all(const std::string& sql, size_t max_rows) { return run(sql, max_rows, false); }

SqlResult SqlDatabase::run(const std::string& sql, size_t max_rows, bool rewrite) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto t0 = Clock::now();
  SqlResult r;
  r.max_result_bytes = opt_.max_result_bytes;
  auto finish = [&](SqlResult& res) -> SqlResult {
    res.ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    return std::move(res);
  };
  auto fail = [&](std::string msg) -> SqlResult {
    r = SqlResult{};
    r.max_result_bytes = opt_.max_result_bytes;
    r.error = std::move(msg);
    return finish(r);
  };

  if (sql.size() > opt_.max_sql_bytes)
    return fail("the statement is " + std::to_string(sql.size()) + " bytes long; the limit is " +
                std::to_string(opt_.max_sql_bytes) + " bytes.\nHint: write a shorter query (no long literal lists; " +
                "join or filter instead).");
  if (sql.find('\0') != std::string::npos) return fail("the statement contains a NUL byte.");
  if (is_blank_sql(sql))
    return fail("empty statement: there is no SQL to run.\nHint: send one SELECT statement in \"query\".");

  const std::string text = rewrite ? rewrite_strict_casts(sql) : sql;
  refusal_.clear();
  interrupted_ = false;
  const int64_t budget_ns = static_cast<int64_t>(std::max(opt_.timeout_ms, 1)) * 1000000;
  deadline_ = (t0 + std::chrono::nanoseconds(budget_ns)).time_since_epoch().count();
  struct ResetDeadline {  // no deadline outside a statement
    int64_t& d;
    ~ResetDeadline() { d = std::numeric_limits<int64_t>::max(); }
  } reset{deadline_};

  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v3(db_, text.c_str(), static_cast<int>(text.size()), 0, &stmt, &tail);
  struct Finalize {
    sqlite3_stmt*& s;
    ~Finalize() { sqlite3_finalize(s); }
  } finalize{stmt};

  auto refused = [&]() {
    std::string what = refusal_ == kSchemaChange ? statement_head(sql) + " (it would change the database schema)"
                                                 : refusal_;
    return fail("not allowed: " + valid_utf8(what) + ".\n" + kReadOnlyHint);
  };
  if (rc != SQLITE_OK) {
    if (!refusal_.empty()) return refused();
    std::string msg = sqlite3_errmsg(db_);
    return fail(with_hint(msg, hint_for(msg)));
  }
  if (!stmt) return fail("empty statement: there is no SQL to run.\nHint: send one SELECT statement in \"query\".");
  if (tail && !is_blank_sql(tail))
    return fail("only one statement per call: the text after the first ';' was not run (and neither was the "
                "first statement).\nHint: send each statement in its own sql_query call.");
  if (!sqlite3_stmt_readonly(stmt))  // VACUUM, for one, is only refused here (its checks run when stepped)
    return fail("not allowed: " + valid_utf8(statement_head(sql)) + " (the statement writes).\n" + kReadOnlyHint);

  const int ncol = sqlite3_column_count(stmt);
  for (int c = 0; c < ncol; ++c) {
    const char* name = sqlite3_column_name(stmt, c);
    r.columns.push_back(valid_utf8(name ? name : ""));
  }
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    ++r.total_rows;
    if (r.rows.size() < max_rows) {
      std::vector<json> row;
      row.reserve(static_cast<size_t>(ncol));
      for (int c = 0; c < ncol; ++c) {
        switch (sqlite3_column_type(stmt, c)) {
          case SQLITE_INTEGER:
            row.emplace_back(static_cast<int64_t>(sqlite3_column_int64(stmt, c)));
            break;
          case SQLITE_FLOAT:
            row.emplace_back(sqlite3_column_double(stmt, c));
            break;
          case SQLITE_TEXT: {
            const unsigned char* t = sqlite3_column_text(stmt, c);
            int n = sqlite3_column_bytes(stmt, c);
            row.emplace_back(valid_utf8(std::string_view(reinterpret_cast<const char*>(t), static_cast<size_t>(n))));
            break;
          }
          case SQLITE_BLOB:
            row.emplace_back("<blob " + std::to_string(sqlite3_column_bytes(stmt, c)) + " bytes>");
            break;
          default:
            row.emplace_back(nullptr);
        }
      }
      r.rows.push_back(std::move(row));
    } else if (r.total_rows >= kMaxCountedRows) {
      r.total_rows_is_lower_bound = true;  // enough counting: the rows past max_rows are not shown anyway
      break;
    }
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    if (interrupted_ && r.rows.size() >= max_rows && max_rows > 0) {
      // The rows the model sees are complete; only the counting of the rest ran out of time.
      r.total_rows_is_lower_bound = true;
    } else if (interrupted_) {
      return fail("the query ran longer than " + std::to_string(opt_.timeout_ms) + " ms and was stopped.\n" +
                  kTimeoutHint);
    } else if (!refusal_.empty()) {
      return refused();
    } else {
      std::string msg = sqlite3_errmsg(db_);
      return fail(with_hint(msg, hint_for(msg)));
    }
  }
  r.ok = true;
  r.truncated = r.rows.size() < r.total_rows || rows_that_fit(r, r.max_result_bytes) < r.rows.size();
  return finish(r);
}

std::vector<std::string> SqlDatabase::table_names() {
  SqlResult r = query_all(
      "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
      "ORDER BY name",
      std::numeric_limits<size_t>::max());
  std::vector<std::string> out;
  for (const auto& row : r.rows)
    if (!row.empty() && row[0].is_string()) out.push_back(row[0].get<std::string>());
  return out;
}

std::string format_sql_result(const SqlResult& r, const std::string& sql) {
  if (!r.ok) {
    // "Error: <first line>", the statement (as the caller sent it, not the strict-mode rewrite), the hints.
    std::string msg = r.error.empty() ? "the query failed" : r.error;
    std::string first = msg, rest;
    if (size_t nl = msg.find('\n'); nl != std::string::npos) first = msg.substr(0, nl), rest = msg.substr(nl + 1);
    std::string shown = std::string(trim(sql));
    if (shown.size() > 600) shown = shown.substr(0, 600) + " ...";
    std::string out = "Error: " + first + "\nStatement: " + valid_utf8(shown);
    if (!rest.empty()) out += "\n" + rest;
    return out;
  }
  std::string out = header_line(r.columns) + "\n";
  size_t fit = rows_that_fit(r, r.max_result_bytes);
  for (size_t i = 0; i < fit; ++i) out += join_row(r.rows[i]) + "\n";
  const std::string total = (r.total_rows_is_lower_bound ? "at least " : "") + std::to_string(r.total_rows);
  if (fit < r.rows.size()) {
    out += "(showing " + std::to_string(fit) + " of " + total + " rows; the output was cut at " +
           std::to_string(r.max_result_bytes) + " bytes: add a LIMIT, select fewer columns, or aggregate)";
  } else if (r.rows.size() < r.total_rows) {
    out += "(showing " + std::to_string(r.rows.size()) + " of " + total + " rows; add a LIMIT or aggregate)";
  } else {
    out += "(" + total + (r.total_rows == 1 ? " row)" : " rows)");
  }
  return out;
}

}  // namespace hearth::agent
