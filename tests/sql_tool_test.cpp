// The read-only SQL tool: refusals (the database file never changes), reads, limits, formatting, safe_cast,
// strict-cast mode, the three tools, and every dev question's gold SQL on the football database.
#include "agent/sql_tool.h"

#include <sqlite3.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "test_data.h"

namespace fs = std::filesystem;
using hearth::agent::format_sql_result;
using hearth::agent::json;
using hearth::agent::rewrite_strict_casts;
using hearth::agent::SqlDatabase;
using hearth::agent::SqlOptions;
using hearth::agent::SqlResult;
using hearth::agent::ToolOutput;
using hearth::agent::ToolRegistry;

namespace {

std::string football_db() { return hearth::test::testdata("football/football.db"); }

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A fresh directory under the system temp dir, removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "hearth-sql-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

void exec_or_die(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "?";
    sqlite3_free(err);
    throw std::runtime_error("setup SQL failed: " + msg);
  }
}

// A small database built with the C API: a 'teams' table, numbers in TEXT with '-' placeholders, NULLs, a real,
// a blob, invalid UTF-8, an index and a view.
void make_small_db(const std::string& path) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  exec_or_die(db,
              "CREATE TABLE teams(id INTEGER PRIMARY KEY, name TEXT, rating TEXT, x REAL, b BLOB);"
              "INSERT INTO teams VALUES (1, 'Brazil', '7.5', 1.5, x'010203');"
              "INSERT INTO teams VALUES (2, 'Italy', '-', NULL, NULL);"
              "INSERT INTO teams VALUES (3, 'France', '-', 3.0, NULL);"
              "INSERT INTO teams VALUES (4, 'Spain', ' 6 ', 0.1, NULL);"
              "INSERT INTO teams VALUES (5, CAST(x'61ff62' AS TEXT), NULL, NULL, NULL);"
              "CREATE INDEX teams_name ON teams(name);"
              "CREATE VIEW good AS SELECT name FROM teams WHERE rating <> '-';"
              "CREATE TABLE empty_t(a INTEGER, b TEXT);");
  sqlite3_close(db);
}

SqlOptions quick(int timeout_ms = 200) {
  SqlOptions o;
  o.timeout_ms = timeout_ms;
  return o;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

struct Attempt {
  std::string sql;
  std::string expect;  // a substring the (lowercased) error must contain
};

// Runs every attempt, each of which must be refused with a readable message; returns how many were tried.
size_t expect_all_refused(SqlDatabase& db, const TempDir& tmp, const std::string& table) {
  const std::string attach = tmp.file("attached.db"), vac = tmp.file("vacuum.db"), wf = tmp.file("written.txt");
  std::vector<Attempt> attempts = {
      {"INSERT INTO " + table + "(name) VALUES ('x')", "insert into " + table},
      {"UPDATE " + table + " SET name = 'x'", "update of " + table},
      {"DELETE FROM " + table, "delete from " + table},
      {"DROP TABLE " + table, "drop table " + table},
      {"CREATE TABLE evil(x)", "create table evil (it would change the database schema)"},
      {"CREATE TEMP TABLE evil(x)", "create temp table evil"},
      {"CREATE VIEW evil AS SELECT 1", "create view evil"},
      {"CREATE TRIGGER evil AFTER INSERT ON " + table + " BEGIN SELECT 1; END", "create trigger evil"},
      {"CREATE INDEX evil ON " + table + "(name)", "create index evil"},
      {"ALTER TABLE " + table + " ADD COLUMN evil TEXT", "alter table"},
      {"ALTER TABLE " + table + " RENAME TO evil", "alter table"},
      {"REPLACE INTO " + table + "(id, name) VALUES (1, 'x')", "insert into " + table},
      {"INSERT OR IGNORE INTO " + table + "(id) VALUES (1)", "insert into " + table},
      {"WITH x AS (SELECT 1) INSERT INTO " + table + "(id) SELECT * FROM x", "insert into " + table},
      {"WITH x AS (SELECT 1) DELETE FROM " + table + " WHERE id IN (SELECT * FROM x)", "delete from " + table},
      {"ATTACH DATABASE '" + attach + "' AS a", "attach"},
      {"DETACH DATABASE main", "detach"},
      {"PRAGMA writable_schema=1", "pragma writable_schema"},
      {"PRAGMA query_only=0", "pragma query_only"},
      {"PRAGMA journal_mode=delete", "pragma journal_mode"},
      {"PRAGMA user_version=5", "pragma user_version"},
      {"PRAGMA main.user_version = 6", "pragma user_version"},
      {"SELECT load_extension('x')", "load_extension"},
      {"VACUUM", "vacuum"},
      {"VACUUM INTO '" + vac + "'", "vacuum into"},
      {"BEGIN", "transaction"},
      {"BEGIN IMMEDIATE; SELECT 1", "transaction"},
      {"COMMIT", "transaction"},
      {"SAVEPOINT s1", "savepoint"},
      {"REINDEX", "reindex"},
      {"ANALYZE", "analyze"},
      {"SELECT 1; DROP TABLE " + table, "only one statement per call"},
      {"SELECT 1 /* ; */; -- fine\n DELETE FROM " + table, "only one statement per call"},
      {std::string("SELECT 1") + '\0' + "; DROP TABLE " + table, "nul byte"},
      {"SELECT '" + std::string(20000, 'x') + "'", "bytes long"},
      {"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
       "ran longer than 200 ms"},
      {"SELECT writefile('" + wf + "', 'x')", "writefile"},
      {"/* hello */ INSERT/**/INTO\n" + table + "(name) -- comment\n VALUES('x')", "insert into " + table},
      {"  \n\tDELETE\tFROM " + table + " ;", "delete from " + table},
      {"UPDATE sqlite_master SET sql = 'CREATE TABLE x(y)' WHERE name = '" + table + "'", "read-only"},
      {"DELETE FROM sqlite_master", "sqlite_master"},
      {"CREATE VIRTUAL TABLE evil USING fts5(x)", "create virtual table evil"},
      {"DROP INDEX IF EXISTS evil_index", "drop index"},
      {"EXPLAIN INSERT INTO " + table + "(name) VALUES ('x')", "insert into " + table},
      {"PRAGMA journal_mode", "pragma journal_mode"},
  };
  for (const auto& a : attempts) {
    SCOPED_TRACE(a.sql.substr(0, 120));
    SqlResult r = db.query(a.sql);
    EXPECT_FALSE(r.ok);
    EXPECT_NE(lower(r.error).find(a.expect), std::string::npos) << r.error;
    EXPECT_EQ(r.error.find("not authorized"), std::string::npos) << r.error;  // replaced by what was refused
    std::string text = format_sql_result(r, a.sql);
    EXPECT_EQ(text.rfind("Error: ", 0), 0u) << text;
    EXPECT_NE(text.find("\nStatement: "), std::string::npos) << text;
    EXPECT_NO_THROW((void)json(text).dump());
  }
  EXPECT_FALSE(fs::exists(attach));
  EXPECT_FALSE(fs::exists(vac));
  EXPECT_FALSE(fs::exists(wf));
  // Still readable, and nothing was added.
  SqlResult after = db.query("SELECT count(*) FROM sqlite_master WHERE name LIKE 'evil%'");
  EXPECT_TRUE(after.ok) << after.error;
  if (after.ok) {
    EXPECT_EQ(after.rows.at(0).at(0), 0);
  }
  return attempts.size();
}

std::vector<json> load_dev_questions() {
  std::vector<json> out;
  std::ifstream in(hearth::test::testdata("football/questions-dev.jsonl"));
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// The CAST rewriter (strict mode)

TEST(SqlRewrite, NumericCastsBecomeStrictCast) {
  EXPECT_EQ(rewrite_strict_casts("SELECT CAST(x AS REAL) FROM t"), "SELECT strict_cast(x, 'REAL') FROM t");
  EXPECT_EQ(rewrite_strict_casts("select cast ( a.b  as  integer ) from t"), "select strict_cast(a.b, 'integer') from t");
  EXPECT_EQ(rewrite_strict_casts("CAST(x AS DOUBLE   PRECISION)"), "strict_cast(x, 'DOUBLE PRECISION')");
  EXPECT_EQ(rewrite_strict_casts("CAST(x AS DECIMAL(10, 2))"), "strict_cast(x, 'DECIMAL(10, 2)')");
  EXPECT_EQ(rewrite_strict_casts("CAST(NULLIF(rating, '-') AS REAL)"), "strict_cast(NULLIF(rating, '-'), 'REAL')");
  EXPECT_EQ(rewrite_strict_casts("CAST((SELECT max(a) AS m FROM t) AS INTEGER)"),
            "strict_cast((SELECT max(a) AS m FROM t), 'INTEGER')");
  EXPECT_EQ(rewrite_strict_casts("CAST(CASE WHEN a THEN 'x' ELSE b END AS NUMERIC) AS v"),
            "strict_cast(CASE WHEN a THEN 'x' ELSE b END, 'NUMERIC') AS v");
}

TEST(SqlRewrite, NestedCasts) {
  EXPECT_EQ(rewrite_strict_casts("CAST(CAST(a AS REAL) AS INTEGER)"), "strict_cast(strict_cast(a, 'REAL'), 'INTEGER')");
  EXPECT_EQ(rewrite_strict_casts("CAST(CAST(a AS INT) AS TEXT)"), "CAST(strict_cast(a, 'INT') AS TEXT)");
  EXPECT_EQ(rewrite_strict_casts("SUM(CAST(a AS INT)) + CAST(b AS REAL)"),
            "SUM(strict_cast(a, 'INT')) + strict_cast(b, 'REAL')");
}

TEST(SqlRewrite, TextCastsLiteralsCommentsAndLookalikesUntouched) {
  for (std::string s : {
           "SELECT CAST(x AS TEXT), CAST(y AS VARCHAR(10)), CAST(z AS BLOB) FROM t",
           "SELECT 'CAST(x AS REAL)' FROM t",
           "SELECT 'it''s CAST(x AS REAL)' FROM t",
           "SELECT \"CAST(\" FROM t",
           "SELECT [CAST(x AS REAL)], `CAST(y AS INT)` FROM t",
           "SELECT x -- CAST(y AS REAL)\nFROM t",
           "SELECT /* CAST(y AS REAL) */ x FROM t",
           "SELECT podcast(x AS y), mycast(z) FROM t",
           "SELECT CAST(x AS REAL",   // unbalanced: SQLite reports it
           "SELECT CAST x FROM t",
           "SELECT cast FROM t",
       })
    EXPECT_EQ(rewrite_strict_casts(s), s);
}

// ---------------------------------------------------------------------------------------------------------------
// Opening

TEST(SqlDatabase, OpenErrors) {
  TempDir tmp;
  try {
    SqlDatabase db(tmp.file("missing.db"));
    FAIL() << "opened a missing file";
  } catch (const hearth::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no such database file: "), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(tmp.file("missing.db")));  // not created
  {
    std::ofstream(tmp.file("text.db")) << "this is not a database, just some text that is long enough to matter\n";
  }
  try {
    SqlDatabase db(tmp.file("text.db"));
    FAIL() << "opened a text file";
  } catch (const hearth::Error& e) {
    EXPECT_NE(std::string(e.what()).find("is not an SQLite database"), std::string::npos) << e.what();
  }
  std::ofstream(tmp.file("empty.db")).close();
  EXPECT_THROW(SqlDatabase(tmp.file("empty.db")), hearth::Error);
  EXPECT_THROW(SqlDatabase(tmp.path.string()), hearth::Error);  // a directory
}

// ---------------------------------------------------------------------------------------------------------------
// Refusals: nothing can change the file

TEST(SqlRefusals, SmallDatabaseUnchanged) {
  TempDir tmp;
  const std::string path = tmp.file("small.db");
  make_small_db(path);
  const std::string before = read_bytes(path);
  size_t n = 0;
  {
    SqlDatabase db(path, quick());
    n = expect_all_refused(db, tmp, "teams");
  }
  EXPECT_GE(n, 25u);
  EXPECT_EQ(read_bytes(path), before);
  EXPECT_FALSE(fs::exists(path + "-journal"));
  EXPECT_FALSE(fs::exists(path + "-wal"));
}

TEST(SqlRefusals, FootballCopyUnchanged) {
  HEARTH_REQUIRE_FILE(football_db());
  TempDir tmp;
  const std::string path = tmp.file("football.db");
  fs::copy_file(football_db(), path);
  const std::string before = read_bytes(path);
  {
    SqlOptions o = quick();
    o.strict_casts = true;
    SqlDatabase db(path, o);
    EXPECT_GE(expect_all_refused(db, tmp, "teams"), 25u);
  }
  EXPECT_EQ(read_bytes(path), before);
}

TEST(SqlRefusals, MessagesNameWhatWasRefused) {
  TempDir tmp;
  make_small_db(tmp.file("s.db"));
  SqlDatabase db(tmp.file("s.db"), quick());
  SqlResult r = db.query("DELETE FROM teams");
  ASSERT_FALSE(r.ok);
  EXPECT_NE(r.error.find("not allowed: DELETE from teams"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("Hint: this database is read-only: only SELECT / WITH ... SELECT queries are allowed"),
            std::string::npos)
      << r.error;
  std::string text = format_sql_result(r, "DELETE FROM teams");
  EXPECT_EQ(text,
            "Error: not allowed: DELETE from teams.\nStatement: DELETE FROM teams\n"
            "Hint: this database is read-only: only SELECT / WITH ... SELECT queries are allowed.");
}

TEST(SqlRefusals, TimeoutStopsRunawayQuery) {
  TempDir tmp;
  make_small_db(tmp.file("s.db"));
  SqlDatabase db(tmp.file("s.db"), quick(200));
  auto t0 = std::chrono::steady_clock::now();
  SqlResult r = db.query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c");
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(r.ok);
  EXPECT_LT(ms, 5000);
  std::string text = format_sql_result(r, "WITH RECURSIVE ...");
  EXPECT_NE(text.find("Error: the query ran longer than 200 ms and was stopped."), std::string::npos) << text;
  EXPECT_NE(text.find("Hint: Add filters, a LIMIT, or aggregate"), std::string::npos) << text;
  // The next statement gets a fresh budget.
  SqlResult ok = db.query("SELECT count(*) FROM teams");
  EXPECT_TRUE(ok.ok) << ok.error;
}

TEST(SqlRefusals, EmptyStatements) {
  TempDir tmp;
  make_small_db(tmp.file("s.db"));
  SqlDatabase db(tmp.file("s.db"), quick());
  for (std::string s : {"", "   ", " ; ;", "-- nothing\n", "/* nothing */ ;"}) {
    SqlResult r = db.query(s);
    EXPECT_FALSE(r.ok);
    EXPECT_NE(r.error.find("empty statement"), std::string::npos) << r.error;
  }
  // Trailing semicolons and comments are fine; so are leading ones.
  for (std::string s : {"SELECT 1;", "SELECT 1 ;; -- done", "SELECT 1 /* end */", ";SELECT 1"}) {
    SqlResult r = db.query(s);
    EXPECT_TRUE(r.ok) << s << ": " << r.error;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Reads, values, formatting

TEST(SqlRead, ValuesAndFormatting) {
  TempDir tmp;
  make_small_db(tmp.file("s.db"));
  SqlDatabase db(tmp.file("s.db"), quick());
  SqlResult r = db.query("SELECT id, name, rating, x, b FROM teams ORDER BY id");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.columns, (std::vector<std::string>{"id", "name", "rating", "x", "b"}));
  ASSERT_EQ(r.rows.size(), 5u);
  EXPECT_EQ(r.total_rows, 5u);
  EXPECT_FALSE(r.truncated);
  EXPECT_EQ(r.rows[0][0], 1);
  EXPECT_TRUE(r.rows[0][0].is_number_integer());
  EXPECT_EQ(r.rows[0][1], "Brazil");
  EXPECT_EQ(r.rows[0][3], 1.5);
  EXPECT_EQ(r.rows[0][4], "<blob 3 bytes>");
  EXPECT_TRUE(r.rows[1][3].is_null());
  EXPECT_EQ(r.rows[4][1], "a\xEF\xBF\xBD" "b");  // invalid UTF-8 replaced
  EXPECT_NO_THROW((void)json(r.rows).dump());
  std::string text = format_sql_result(r, "SELECT ...");
  EXPECT_EQ(text,
            "id | name | rating | x | b\n"
            "1 | Brazil | 7.5 | 1.5 | <blob 3 bytes>\n"
            "2 | Italy | - | NULL | NULL\n"
            "3 | France | - | 3.0 | NULL\n"
            "4 | Spain |  6  | 0.1 | NULL\n"
            "5 | a\xEF\xBF\xBD" "b | NULL | NULL | NULL\n"
            "(5 rows)");
  SqlResult one = db.query("SELECT 1.0 / 3 AS third, 2.5e-12 AS tiny, 1e20 AS big, -0.25 AS neg");
  ASSERT_TRUE(one.ok) << one.error;
  EXPECT_EQ(format_sql_result(one, ""), "third | tiny | big | neg\n0.3333333333 | 2.5e-12 | 1e+20 | -0.25\n(1 row)");
  SqlResult none = db.query("SELECT * FROM empty_t");
  ASSERT_TRUE(none.ok) << none.error;
  EXPECT_EQ(format_sql_result(none, ""), "a | b\n(0 rows)");
  SqlResult view = db.query("SELECT * FROM good ORDER BY name");
  ASSERT_TRUE(view.ok) << view.error;
  EXPECT_EQ(view.total_rows, 2u);
}

TEST(SqlRead, RowCapAndByteCap) {
  TempDir tmp;
  make_small_db(tmp.file("s.db"));
  SqlOptions o = quick(2000);
  o.max_rows = 10;
  SqlDatabase db(tmp.file("s.db"), o);
  SqlResult r = db.query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 250) SELECT x FROM c");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.rows.size(), 10u);
  EXPECT_EQ(r.total_rows, 250u);
  EXPECT_TRUE(r.truncated);
  std::string text = format_sql_result(r, "");
  EXPECT_NE(text.find("\n10\n(showing 10 of 250 rows; add a LIMIT or aggregate)"), std::string::npos) << text;

  SqlOptions b = quick(2000);
  b.max_result_bytes = 100;
  SqlDatabase small(tmp.file("s.db"), b);
  SqlResult wide = small.query(
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 50) SELECT x, 'abcdefghij' AS s FROM c");
  ASSERT_TRUE(wide.ok) << wide.error;
  EXPECT_EQ(wide.rows.size(), 50u);  // the data keeps max_rows rows; the text is cut
  EXPECT_TRUE(wide.truncated);
  std::string cut = format_sql_result(wide, "");
  size_t notice = cut.find("(showing ");
  ASSERT_NE(notice, std::string::npos) << cut;
  EXPECT_LE(notice, 100u);
  EXPECT_NE(cut.find("of 50 rows; the output was cut at 100 bytes"), std::string::npos) << cut;
}

TEST(SqlRead, CountingStopsAtTheTimeLimit) {
  TempDir tmp;
  make_small_db(tmp.file("s.db"));
  SqlOptions o = quick(200);
  o.max_rows = 5;
  SqlDatabase db(tmp.file("s.db"), o);
  // Endless, but the shown rows are complete: the result is kept, with a lower bound for the count.
  SqlResult r = db.query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.rows.size(), 5u);
  EXPECT_TRUE(r.total_rows_is_lower_bound);
  EXPECT_TRUE(r.truncated);
  EXPECT_NE(format_sql_result(r, "").find("(showing 5 of at least "), std::string::npos);
}

TEST(SqlRead, ErrorsCarryHints) {
  TempDir tmp;
  make_small_db(tmp.file("s.db"));
  SqlDatabase db(tmp.file("s.db"), quick());
  struct Case {
    std::string sql, message, hint;
  };
  for (const Case& c : std::vector<Case>{
           {"SELECT nope FROM teams", "no such column: nope", "describe_table"},
           {"SELECT * FROM nope", "no such table: nope", "list_tables"},
           {"SELECT TOP 3 name FROM teams", "syntax error", "LIMIT"},
           {"SELECT name FROM teams WHERE", "incomplete input", "LIMIT"},
           {"SELECT ILIKE(name, 'b%') FROM teams", "no such function", "safe_cast"},
           {"SELECT safe_cast(rating, 'DATE') FROM teams", "unknown type 'DATE'", ""},
       }) {
    SqlResult r = db.query(c.sql);
    ASSERT_FALSE(r.ok) << c.sql;
    std::string text = format_sql_result(r, c.sql);
    EXPECT_NE(text.find(c.message), std::string::npos) << text;
    EXPECT_NE(text.find("Statement: " + c.sql), std::string::npos) << text;
    if (!c.hint.empty()) {
      EXPECT_NE(text.find("\nHint: "), std::string::npos) << text;
    }
    EXPECT_NE(text.find(c.hint), std::string::npos) << text;
  }
}

TEST(SqlRead, SafeCast) {
  TempDir tmp;
  make_small_db(tmp.file("s.db"));
  SqlDatabase db(tmp.file("s.db"), quick());
  SqlResult r = db.query(
      "SELECT safe_cast('-', 'REAL'), safe_cast(' 7.5 ', 'REAL'), safe_cast(12, 'REAL'), safe_cast(NULL, 'REAL'), "
      "safe_cast('7.6', 'INTEGER'), safe_cast('abc', 'integer'), safe_cast('1e3', 'NUMERIC'), "
      "safe_cast('+42', 'int'), safe_cast(3.9, 'INTEGER'), safe_cast(5, 'TEXT'), safe_cast('', 'REAL'), "
      "safe_cast('0x10', 'INTEGER'), safe_cast('inf', 'REAL'), safe_cast('-.5', 'Double'), "
      "safe_cast('12abc', 'REAL'), safe_cast('99999999999999999999', 'NUMERIC')");
  ASSERT_TRUE(r.ok) << r.error;
  const auto& v = r.rows.at(0);
  EXPECT_TRUE(v[0].is_null());
  EXPECT_EQ(v[1], 7.5);
  EXPECT_TRUE(v[2].is_number_float());
  EXPECT_EQ(v[2], 12.0);
  EXPECT_TRUE(v[3].is_null());
  EXPECT_EQ(v[4], 7);  // truncation, like CAST
  EXPECT_TRUE(v[5].is_null());
  EXPECT_EQ(v[6], 1000);
  EXPECT_TRUE(v[6].is_number_integer());
  EXPECT_EQ(v[7], 42);
  EXPECT_EQ(v[8], 3);
  EXPECT_EQ(v[9], "5");
  EXPECT_TRUE(v[10].is_null());
  EXPECT_TRUE(v[11].is_null());
  EXPECT_TRUE(v[12].is_null());
  EXPECT_EQ(v[13], -0.5);
  EXPECT_TRUE(v[14].is_null());
  EXPECT_TRUE(v[15].is_number_float());
  // Average over the placeholder column: '-' is skipped, not counted as 0.
  SqlResult avg = db.query("SELECT avg(safe_cast(rating, 'REAL')), avg(rating) FROM teams");
  ASSERT_TRUE(avg.ok) << avg.error;
  EXPECT_DOUBLE_EQ(avg.rows[0][0].get<double>(), 6.75);
  EXPECT_DOUBLE_EQ(avg.rows[0][1].get<double>(), 13.5 / 4);  // SQLite's silent 0 for '-' (non-strict)
}

TEST(SqlRead, StrictModeOnSmallDb) {
  TempDir tmp;
  make_small_db(tmp.file("s.db"));
  SqlOptions o = quick();
  o.strict_casts = true;
  SqlDatabase db(tmp.file("s.db"), o);
  SqlResult bad = db.query("SELECT CAST(rating AS INTEGER) FROM teams");
  ASSERT_FALSE(bad.ok);
  EXPECT_NE(bad.error.find("invalid input syntax for type integer: \"-\""), std::string::npos) << bad.error;
  SqlResult dbl = db.query("SELECT CAST(rating AS DOUBLE PRECISION) FROM teams");
  ASSERT_FALSE(dbl.ok);
  EXPECT_NE(dbl.error.find("invalid input syntax for type double precision: \"-\""), std::string::npos) << dbl.error;
  SqlResult sum = db.query("SELECT sum(rating) FROM teams");
  ASSERT_FALSE(sum.ok);
  EXPECT_NE(sum.error.find("invalid input syntax for type numeric: \"-\""), std::string::npos) << sum.error;
  SqlResult total = db.query("SELECT total(rating) FROM teams WHERE rating <> '-'");
  ASSERT_TRUE(total.ok) << total.error;
  EXPECT_DOUBLE_EQ(total.rows[0][0].get<double>(), 13.5);
  // Empty input: sum and avg NULL, total 0.0, as SQLite.
  SqlResult empty = db.query("SELECT sum(a), avg(a), total(a), sum(b) FROM empty_t");
  ASSERT_TRUE(empty.ok) << empty.error;
  EXPECT_TRUE(empty.rows[0][0].is_null());
  EXPECT_TRUE(empty.rows[0][1].is_null());
  EXPECT_EQ(empty.rows[0][2], 0.0);
  // Integer sums stay integers; reals make reals; NULLs are skipped.
  SqlResult ints = db.query("SELECT sum(id), avg(id), sum(x), total(id), sum(CASE WHEN id > 3 THEN id END) FROM teams");
  ASSERT_TRUE(ints.ok) << ints.error;
  EXPECT_TRUE(ints.rows[0][0].is_number_integer());
  EXPECT_EQ(ints.rows[0][0], 15);
  EXPECT_EQ(ints.rows[0][1], 3.0);
  EXPECT_NEAR(ints.rows[0][2].get<double>(), 4.6, 1e-12);
  EXPECT_EQ(ints.rows[0][3], 15.0);
  EXPECT_EQ(ints.rows[0][4], 9);
  SqlResult overflow = db.query("SELECT sum(v) FROM (SELECT 9223372036854775807 AS v UNION ALL SELECT 1)");
  ASSERT_FALSE(overflow.ok);
  EXPECT_NE(overflow.error.find("integer overflow"), std::string::npos);
  // Window use of the replaced aggregates.
  SqlResult win = db.query(
      "SELECT id, sum(id) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW), "
      "avg(id) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM teams ORDER BY id");
  ASSERT_TRUE(win.ok) << win.error;
  ASSERT_EQ(win.rows.size(), 5u);
  EXPECT_EQ(win.rows[0][1], 1);
  EXPECT_EQ(win.rows[4][1], 9);
  EXPECT_EQ(win.rows[4][2], 4.5);
  // Text casts and string contents are untouched.
  SqlResult text = db.query(
      "SELECT CAST(id AS TEXT), 'CAST(x AS REAL)', CAST(' 6 ' AS REAL), CAST('7' AS NUMERIC) FROM teams WHERE id = 1");
  ASSERT_TRUE(text.ok) << text.error;
  EXPECT_EQ(text.rows[0][0], "1");
  EXPECT_EQ(text.rows[0][1], "CAST(x AS REAL)");
  EXPECT_EQ(text.rows[0][2], 6.0);
  EXPECT_EQ(text.rows[0][3], 7);
}

// ---------------------------------------------------------------------------------------------------------------
// The football database

TEST(SqlFootball, Reads) {
  HEARTH_REQUIRE_FILE(football_db());
  SqlDatabase db(football_db());
  SqlResult host = db.query("SELECT host_country FROM tournaments WHERE year = 1986");
  ASSERT_TRUE(host.ok) << host.error;
  ASSERT_EQ(host.rows.size(), 1u);
  EXPECT_EQ(host.rows[0][0], "Mexico");
  EXPECT_EQ(format_sql_result(host, ""), "host_country\nMexico\n(1 row)");

  // Pragma table-valued functions (the authorizer sees PRAGMA table_info with the table name as argument).
  SqlResult assists = db.query(
      "SELECT m.name AS table_name, c.name AS column_name FROM sqlite_master m JOIN pragma_table_info(m.name) c "
      "WHERE m.type = 'table' AND c.name LIKE '%assist%'");
  ASSERT_TRUE(assists.ok) << assists.error;
  EXPECT_EQ(assists.total_rows, 0u);
  SqlResult cols = db.query("SELECT count(*) FROM sqlite_master m JOIN pragma_table_info(m.name) c WHERE m.type = 'table'");
  ASSERT_TRUE(cols.ok) << cols.error;
  EXPECT_GT(cols.rows[0][0].get<int64_t>(), 50);
  SqlResult pragma = db.query("PRAGMA table_info(teams)");
  ASSERT_TRUE(pragma.ok) << pragma.error;
  EXPECT_EQ(pragma.total_rows, 4u);
  SqlResult json_fn = db.query("SELECT count(*) FROM json_each('[1, 2, 3]')");
  ASSERT_TRUE(json_fn.ok) << json_fn.error;
  EXPECT_EQ(json_fn.rows[0][0], 3);

  SqlResult cte = db.query("WITH RECURSIVE y(n) AS (SELECT 1930 UNION ALL SELECT n + 4 FROM y WHERE n < 2022) "
                           "SELECT n FROM y WHERE n NOT IN (SELECT year FROM tournaments) LIMIT 5");
  ASSERT_TRUE(cte.ok) << cte.error;
  EXPECT_EQ(cte.total_rows, 2u);  // 1942 and 1946: no World Cup

  SqlResult players = db.query("SELECT id, name FROM players ORDER BY id");
  ASSERT_TRUE(players.ok) << players.error;
  EXPECT_EQ(players.rows.size(), 100u);
  EXPECT_EQ(players.total_rows, 8448u);
  EXPECT_TRUE(players.truncated);
  EXPECT_NE(format_sql_result(players, "").find("(showing 100 of 8448 rows; add a LIMIT or aggregate)"),
            std::string::npos);

  // Non-strict mode is SQLite: '-' casts to 0.0.
  SqlResult zero = db.query("SELECT CAST('-' AS REAL), CAST(rating AS REAL) FROM player_tournament_stats WHERE rating = '-' LIMIT 1");
  ASSERT_TRUE(zero.ok) << zero.error;
  EXPECT_EQ(zero.rows[0][0], 0.0);
  EXPECT_EQ(zero.rows[0][1], 0.0);
}

TEST(SqlFootball, StrictCasts) {
  HEARTH_REQUIRE_FILE(football_db());
  SqlOptions o;
  o.strict_casts = true;
  SqlDatabase db(football_db(), o);
  const std::string naive = "SELECT AVG(CAST(rating AS REAL)) FROM player_tournament_stats";
  SqlResult r = db.query(naive);
  ASSERT_FALSE(r.ok);
  EXPECT_NE(r.error.find("invalid input syntax for type real: \"-\""), std::string::npos) << r.error;
  std::string text = format_sql_result(r, naive);
  EXPECT_EQ(text.rfind("Error: invalid input syntax for type real: \"-\"\nStatement: " + naive + "\nHint: ", 0), 0u)
      << text;
  EXPECT_NE(text.find("safe_cast(col, 'REAL')"), std::string::npos);
  EXPECT_EQ(text.find("strict_cast"), std::string::npos);  // the model sees its own statement

  SqlResult avg = db.query("SELECT AVG(rating) FROM player_tournament_stats");
  ASSERT_FALSE(avg.ok);
  EXPECT_NE(avg.error.find("invalid input syntax for type numeric: \"-\""), std::string::npos) << avg.error;

  SqlResult safe = db.query("SELECT AVG(safe_cast(rating, 'REAL')), AVG(CAST(NULLIF(rating, '-') AS REAL)) "
                            "FROM player_tournament_stats");
  ASSERT_TRUE(safe.ok) << safe.error;
  EXPECT_NEAR(safe.rows[0][0].get<double>(), safe.rows[0][1].get<double>(), 1e-9);
  EXPECT_GT(safe.rows[0][0].get<double>(), 5.0);

  SqlResult clean = db.query("SELECT CAST(minutes AS INTEGER) FROM player_tournament_stats WHERE minutes <> '-' "
                             "ORDER BY CAST(minutes AS INTEGER) DESC LIMIT 1");
  ASSERT_TRUE(clean.ok) << clean.error;
  EXPECT_TRUE(clean.rows[0][0].is_number_integer());
  SqlResult literal = db.query("SELECT 'CAST(rating AS REAL)' AS s, name FROM teams WHERE name = 'CAST(' OR id = 1");
  ASSERT_TRUE(literal.ok) << literal.error;
  EXPECT_EQ(literal.rows[0][0], "CAST(rating AS REAL)");
  SqlResult sum = db.query("SELECT SUM(home_score + away_score) FROM matches");
  ASSERT_TRUE(sum.ok) << sum.error;
  EXPECT_EQ(sum.rows[0][0], 2720);  // every goal
}

TEST(SqlFootball, GoldSqlRunsInBothModes) {
  HEARTH_REQUIRE_FILE(football_db());
  HEARTH_REQUIRE_FILE(hearth::test::testdata("football/questions-dev.jsonl"));
  std::vector<json> questions = load_dev_questions();
  ASSERT_GE(questions.size(), 15u);
  for (bool strict : {false, true}) {
    SqlOptions o;
    o.strict_casts = strict;
    SqlDatabase db(football_db(), o);
    for (const auto& q : questions) {
      SCOPED_TRACE(q.at("id").get<std::string>() + (strict ? " (strict)" : ""));
      SqlResult r = db.query(q.at("gold_sql").get<std::string>());
      ASSERT_TRUE(r.ok) << r.error;
      EXPECT_EQ(r.total_rows, q.at("row_count").get<size_t>());
      EXPECT_EQ(r.rows.size(), std::min<size_t>(r.total_rows, o.max_rows));
      // Values agree with the gold rows (as multisets; numbers with a small tolerance).
      const auto& gold = q.at("gold_rows");
      if (gold.size() == r.rows.size() && !gold.empty() && gold[0].size() == r.columns.size()) {
        std::vector<bool> used(r.rows.size(), false);
        for (const auto& g : gold) {
          bool found = false;
          for (size_t i = 0; i < r.rows.size() && !found; ++i) {
            if (used[i]) continue;
            bool same = true;
            for (size_t c = 0; c < g.size() && same; ++c) {
              const json &a = r.rows[i][c], &b = g[c];
              if (a.is_number() && b.is_number())
                same = std::fabs(a.get<double>() - b.get<double>()) <= 0.01;
              else
                same = a == b;
            }
            if (same) used[i] = found = true;
          }
          EXPECT_TRUE(found) << "gold row not found: " << g.dump();
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The tools

TEST(SqlTools, RegistryAndSchemas) {
  TempDir tmp;
  make_small_db(tmp.file("s.db"));
  ToolRegistry reg;
  add_sql_tools(reg, std::make_shared<SqlDatabase>(tmp.file("s.db"), quick()));
  EXPECT_EQ(reg.names(), (std::vector<std::string>{"sql_query", "list_tables", "describe_table"}));
  json tools = reg.tools_json();
  ASSERT_EQ(tools.size(), 3u);
  const json& q = tools[0]["function"];
  EXPECT_EQ(q["name"], "sql_query");
  EXPECT_EQ(q["parameters"]["required"], json::array({"query"}));
  EXPECT_EQ(q["parameters"]["properties"]["query"]["type"], "string");
  std::string desc = q["description"];
  EXPECT_NE(desc.find("SQLite"), std::string::npos);
  EXPECT_NE(desc.find("read-only"), std::string::npos);
  EXPECT_NE(desc.find("safe_cast"), std::string::npos);
  EXPECT_EQ(tools[1]["function"]["parameters"]["type"], "object");
  EXPECT_EQ(tools[2]["function"]["parameters"]["required"], json::array({"table"}));
  // The table parameter is an enum of the real names, so constrained decoding cannot misspell one.
  const json names = tools[2]["function"]["parameters"]["properties"]["table"]["enum"];
  ASSERT_TRUE(names.is_array());
  EXPECT_NE(std::find(names.begin(), names.end(), json("teams")), names.end()) << names.dump();
}

TEST(SqlTools, SqlQueryToolOutputAndBadArguments) {
  TempDir tmp;
  make_small_db(tmp.file("s.db"));
  ToolRegistry reg;
  add_sql_tools(reg, std::make_shared<SqlDatabase>(tmp.file("s.db"), quick()));
  ToolOutput out = reg.call("sql_query", {{"query", "SELECT id, name FROM teams WHERE id <= 2 ORDER BY id"}});
  ASSERT_TRUE(out.ok) << out.text;
  EXPECT_EQ(out.text, "id | name\n1 | Brazil\n2 | Italy\n(2 rows)");
  EXPECT_EQ(out.data["columns"], json::array({"id", "name"}));
  EXPECT_EQ(out.data["rows"], json::parse(R"([[1, "Brazil"], [2, "Italy"]])"));
  EXPECT_EQ(out.data["total_rows"], 2);
  // A JSON-encoded argument object is accepted too.
  EXPECT_TRUE(reg.call("sql_query", json("{\"query\": \"SELECT 1\"}")).ok);

  ToolOutput err = reg.call("sql_query", {{"query", "DROP TABLE teams"}});
  EXPECT_FALSE(err.ok);
  EXPECT_EQ(err.text.rfind("Error: not allowed: DROP TABLE teams", 0), 0u) << err.text;
  EXPECT_TRUE(err.data.is_null());

  struct Bad {
    json args;
    std::string expect;
  };
  for (const Bad& b : std::vector<Bad>{
           {json::object(), "missing the required argument \"query\""},
           {{{"query", 5}}, "must be a string"},
           {{{"query", nullptr}}, "must be a string"},
           {json::array({"SELECT 1"}), "must be a JSON object"},
           {json("SELECT 1"), "must be a JSON object"},
           {json(42), "must be a JSON object"},
       }) {
    ToolOutput o = reg.call("sql_query", b.args);
    EXPECT_FALSE(o.ok) << b.args.dump();
    EXPECT_NE(o.text.find(b.expect), std::string::npos) << o.text;
    EXPECT_NE(o.text.find("Hint: call sql_query with {\"query\": "), std::string::npos) << o.text;
  }
  ToolOutput dt = reg.call("describe_table", {{"table", 3}});
  EXPECT_FALSE(dt.ok);
  EXPECT_NE(dt.text.find("must be a string"), std::string::npos) << dt.text;
  ToolOutput unknown = reg.call("describe_table", {{"table", "nope"}});
  EXPECT_FALSE(unknown.ok);
  EXPECT_NE(unknown.text.find("there is no table named 'nope'. The tables are: empty_t, good, teams."),
            std::string::npos)
      << unknown.text;
  // list_tables ignores whatever it is given.
  EXPECT_TRUE(reg.call("list_tables", json::array()).ok);
}

TEST(SqlTools, DescribeSmallTable) {
  TempDir tmp;
  make_small_db(tmp.file("s.db"));
  ToolRegistry reg;
  add_sql_tools(reg, std::make_shared<SqlDatabase>(tmp.file("s.db"), quick()));
  ToolOutput out = reg.call("describe_table", {{"table", "TEAMS"}});
  ASSERT_TRUE(out.ok) << out.text;
  EXPECT_NE(out.text.find("Table teams (5 rows)"), std::string::npos) << out.text;
  EXPECT_NE(out.text.find("- id INTEGER, primary key. Samples: "), std::string::npos) << out.text;
  EXPECT_NE(out.text.find("- rating TEXT. Samples: '-', '7.5', ' 6 '"), std::string::npos) << out.text;
  EXPECT_NE(out.text.find("Note: numbers stored as TEXT; 2 of 4 values are not numbers (e.g. '-')"),
            std::string::npos)
      << out.text;
  EXPECT_NE(out.text.find("- b BLOB. Samples: '<blob 3 bytes>'"), std::string::npos) << out.text;
  EXPECT_NO_THROW((void)json(out.text).dump());
  ToolOutput empty = reg.call("describe_table", {{"table", "empty_t"}});
  ASSERT_TRUE(empty.ok) << empty.text;
  EXPECT_NE(empty.text.find("- a INTEGER. No non-NULL values."), std::string::npos) << empty.text;
}

TEST(SqlTools, FootballListAndDescribe) {
  HEARTH_REQUIRE_FILE(football_db());
  ToolRegistry reg;
  add_sql_tools(reg, std::make_shared<SqlDatabase>(football_db()));
  ToolOutput list = reg.call("list_tables", json::object());
  ASSERT_TRUE(list.ok) << list.text;
  EXPECT_EQ(list.text.rfind("10 tables:\n", 0), 0u) << list.text;
  for (const char* t : {"appearances", "goals", "matches", "meta", "player_tournament_stats", "players", "squads",
                        "teams", "tournament_teams", "tournaments"})
    EXPECT_NE(list.text.find(std::string("\n") + t + " ("), std::string::npos) << t << "\n" << list.text;
  EXPECT_NE(list.text.find("players (8448 rows): id INTEGER"), std::string::npos) << list.text;
  EXPECT_NE(list.text.find("rating TEXT"), std::string::npos);

  ToolOutput pts = reg.call("describe_table", {{"table", "player_tournament_stats"}});
  ASSERT_TRUE(pts.ok) << pts.text;
  size_t rating = pts.text.find("- rating TEXT");
  ASSERT_NE(rating, std::string::npos) << pts.text;
  std::string line = pts.text.substr(rating, pts.text.find('\n', rating) - rating);
  EXPECT_NE(line.find("'-'"), std::string::npos) << line;
  EXPECT_NE(pts.text.find("5757 of 10938 values are not numbers (e.g. '-')"), std::string::npos) << pts.text;
  EXPECT_NE(pts.text.find("(10938 rows)"), std::string::npos);
}
