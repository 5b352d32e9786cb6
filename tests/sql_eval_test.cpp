// The text-to-SQL grader: value comparison, column/row matching, no_answer replies, the question loader and
// the report, checked against the real football dev questions (gold rows, gold SQL executed, and a fixture of
// plausible but wrong SQL that must grade WRONG).
#include "agent/sql_eval.h"

#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "test_data.h"

namespace {

using hearth::agent::Candidate;
using hearth::agent::EvalRow;
using hearth::agent::grade;
using hearth::agent::json;
using hearth::agent::load_questions;
using hearth::agent::reply_for_rows;
using hearth::agent::SqlQuestion;
using hearth::agent::values_match;
using Rows = std::vector<std::vector<json>>;

std::string football(const std::string& rel) { return hearth::test::testdata("football/" + rel); }

std::string wrong_sql_fixture() { return std::string(HEARTH_SOURCE_DIR) + "/tests/data/football-wrong-sql.jsonl"; }

std::vector<SqlQuestion> dev_questions() { return load_questions(football("questions-dev.jsonl")); }

const SqlQuestion& find(const std::vector<SqlQuestion>& qs, const std::string& id) {
  for (const auto& q : qs)
    if (q.id == id) return q;
  throw std::runtime_error("no question " + id);
}

// What `--gold` would hand the grader: the rows of a query, with the reply written for them.
Candidate candidate_for(const std::vector<std::string>& columns, const Rows& rows) {
  Candidate c;
  c.answered = true;
  c.columns = columns;
  c.rows = rows;
  c.reply = reply_for_rows(columns, rows);
  return c;
}

Candidate gold_candidate(const SqlQuestion& q) { return candidate_for(q.gold_columns, q.gold_rows); }

Candidate reply_only(const std::string& reply) {
  Candidate c;
  c.answered = true;
  c.reply = reply;
  return c;
}

struct QueryResult {
  std::vector<std::string> columns;
  Rows rows;
};

// Runs one statement on the database opened read-only; values typed as SQLite returns them.
QueryResult run_query(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    throw std::runtime_error("open " + db_path + ": " + msg);
  }
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    std::string msg = sqlite3_errmsg(db);
    sqlite3_close(db);
    throw std::runtime_error("prepare: " + msg + " in: " + sql);
  }
  QueryResult out;
  const int n = sqlite3_column_count(st);
  for (int i = 0; i < n; ++i) out.columns.push_back(sqlite3_column_name(st, i));
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    std::vector<json> row;
    for (int i = 0; i < n; ++i) {
      switch (sqlite3_column_type(st, i)) {
        case SQLITE_INTEGER: row.emplace_back(static_cast<long long>(sqlite3_column_int64(st, i))); break;
        case SQLITE_FLOAT: row.emplace_back(sqlite3_column_double(st, i)); break;
        case SQLITE_TEXT: row.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, i))); break;
        case SQLITE_NULL: row.emplace_back(nullptr); break;
        default: row.emplace_back("<blob>"); break;
      }
    }
    out.rows.push_back(std::move(row));
  }
  std::string msg = sqlite3_errmsg(db);
  sqlite3_finalize(st);
  sqlite3_close(db);
  if (rc != SQLITE_DONE) throw std::runtime_error("step: " + msg + " in: " + sql);
  return out;
}

std::string write_temp(const std::string& name, const std::string& text) {
  const std::string path = testing::TempDir() + "/sql_eval_test_" + name;
  std::ofstream(path) << text;
  return path;
}

std::string load_error(const std::string& path) {
  try {
    load_questions(path);
  } catch (const hearth::Error& e) {
    return e.what();
  }
  return "";
}

// ---------------------------------------------------------------------------------------------------------
// Values

TEST(SqlEvalValues, NumbersWithTolerance) {
  EXPECT_TRUE(values_match(json(6.6094), json(6.61)));
  EXPECT_FALSE(values_match(json(3.81), json(6.61)));
  EXPECT_TRUE(values_match(json(172), json(172.0)));
  EXPECT_FALSE(values_match(json(170), json(172)));
  EXPECT_TRUE(values_match(json(50283), json(50281.0)));   // 1e-4 relative: 5.03 allowed
  EXPECT_FALSE(values_match(json(50290), json(50281.0)));
  EXPECT_FALSE(values_match(json(6.63), json(6.61)));
}

TEST(SqlEvalValues, NumericTextIsANumber) {
  EXPECT_TRUE(values_match(json("7.63"), json(7.63)));
  EXPECT_TRUE(values_match(json(" 7.63 "), json(7.63)));
  EXPECT_TRUE(values_match(json(623), json("623")));
  EXPECT_TRUE(values_match(json("1e3"), json(1000)));
  EXPECT_FALSE(values_match(json("-"), json(0)));  // the placeholder is not a zero
  EXPECT_FALSE(values_match(json("7.63 points"), json(7.63)));
  EXPECT_FALSE(values_match(json("inf"), json(1e308)));
  EXPECT_FALSE(values_match(json("0x10"), json(16)));
}

TEST(SqlEvalValues, BooleansAreZeroOne) {
  EXPECT_TRUE(values_match(json(true), json(1)));
  EXPECT_TRUE(values_match(json(0), json(false)));
  EXPECT_FALSE(values_match(json(true), json(0)));
}

TEST(SqlEvalValues, NullOnlyMatchesNull) {
  EXPECT_TRUE(values_match(json(nullptr), json(nullptr)));
  EXPECT_FALSE(values_match(json(0), json(nullptr)));
  EXPECT_FALSE(values_match(json(nullptr), json(0)));
  EXPECT_FALSE(values_match(json(""), json(nullptr)));
  EXPECT_FALSE(values_match(json("NULL"), json(nullptr)));
}

TEST(SqlEvalValues, TextTrimmedCaseAndAccentInsensitive) {
  EXPECT_TRUE(values_match(json("  mexico\t"), json("Mexico")));
  EXPECT_TRUE(values_match(json("SZYMON MARCINIAK"), json("Szymon Marciniak")));
  EXPECT_TRUE(values_match(json("Pele"), json("Pel\u00e9")));
  EXPECT_TRUE(values_match(json("N\u00c9STOR FABI\u00c1N PITANA"), json("N\u00e9stor Fabi\u00e1n Pitana")));
  EXPECT_TRUE(values_match(json("Strasse"), json("Stra\u00dfe")));
  EXPECT_FALSE(values_match(json("Mexico City"), json("Mexico")));
  EXPECT_FALSE(values_match(json("Spain"), json("Mexico")));
  // A number and text that is not a number compare as text.
  EXPECT_FALSE(values_match(json("1954 (Switzerland)"), json(1954)));
  EXPECT_TRUE(values_match(json("true"), json(true)));
}

// ---------------------------------------------------------------------------------------------------------
// Grading on synthetic questions

SqlQuestion synthetic(std::vector<std::string> cols, Rows rows, bool order_matters = false) {
  SqlQuestion q;
  q.id = std::string("synthetic");  // not `= "..."`: GCC 12 -O3 warns falsely (-Wrestrict) on that here
  q.gold_columns = std::move(cols);
  q.gold_rows = std::move(rows);
  q.order_matters = order_matters;
  return q;
}

TEST(SqlEvalGrade, ToleranceNeedsAProperMatchingNotGreedy) {
  // 1.015 matches both 1.01 and 1.02, 1.001 only 1.01: pairing the first gold row greedily with 1.01 would
  // strand the second; the right pairing exists and must be found.
  const SqlQuestion q = synthetic({"v"}, {{json(1.015)}, {json(1.001)}});
  const auto g = grade(q, candidate_for({"v"}, {{json(1.01)}, {json(1.02)}}));
  EXPECT_TRUE(g.correct) << g.reason;
  EXPECT_FALSE(grade(q, candidate_for({"v"}, {{json(1.02)}, {json(1.03)}})).correct);
}

TEST(SqlEvalGrade, ColumnAssignmentIsSearched) {
  // Every candidate column holds the same values as each gold column; only (c0, c2) gives the gold rows.
  const SqlQuestion q = synthetic({"a", "b"}, {{json(1), json(2)}, {json(2), json(1)}});
  const auto g =
      grade(q, candidate_for({"c0", "c1", "c2"}, {{json(1), json(1), json(2)}, {json(2), json(2), json(1)}}));
  EXPECT_TRUE(g.correct) << g.reason;
  const auto bad = grade(q, candidate_for({"c0", "c1"}, {{json(1), json(1)}, {json(2), json(2)}}));
  EXPECT_FALSE(bad.correct);
  EXPECT_NE(bad.reason.find("rows differ: gold row [1,2] not found"), std::string::npos) << bad.reason;
}

TEST(SqlEvalGrade, OneCandidateColumnCannotServeTwoGoldColumns) {
  const SqlQuestion q = synthetic({"a", "b"}, {{json(5), json(5)}});
  EXPECT_FALSE(grade(q, candidate_for({"x"}, {{json(5)}})).correct);
  EXPECT_TRUE(grade(q, candidate_for({"x", "y"}, {{json(5), json(5.001)}})).correct);
}

TEST(SqlEvalGrade, ZeroGoldRows) {
  const SqlQuestion q = synthetic({"name"}, {});
  EXPECT_TRUE(grade(q, candidate_for({"whatever"}, {})).correct);
  const auto g = grade(q, candidate_for({"name"}, {{json("Italy")}}));
  EXPECT_FALSE(g.correct);
  EXPECT_EQ(g.reason, "1 row, expected 0");
}

TEST(SqlEvalGrade, NoAnswerNoResult) {
  const SqlQuestion q = synthetic({"v"}, {{json(1)}});
  Candidate gave_up = candidate_for({"v"}, {{json(1)}});
  gave_up.answered = false;
  EXPECT_EQ(grade(q, gave_up).reason, "no final answer");
  Candidate no_query = reply_only("1");
  const auto g = grade(q, no_query);
  EXPECT_FALSE(g.correct);
  EXPECT_EQ(g.reason, "no query result");
}

// ---------------------------------------------------------------------------------------------------------
// The real dev questions

class SqlEvalDev : public testing::Test {
 protected:
  void SetUp() override {
    HEARTH_REQUIRE_FILE(football("questions-dev.jsonl"));
    qs_ = dev_questions();
  }
  std::vector<SqlQuestion> qs_;
};

TEST_F(SqlEvalDev, LoadsAllFields) {
  ASSERT_EQ(qs_.size(), 15u);
  const SqlQuestion& q6 = find(qs_, "fb-dev-06");
  EXPECT_TRUE(q6.order_matters);
  EXPECT_TRUE(q6.expect_answer);
  EXPECT_EQ(q6.difficulty, 2);
  EXPECT_EQ(q6.category, "join");
  EXPECT_EQ(q6.gold_columns, (std::vector<std::string>{"name", "goals"}));
  ASSERT_EQ(q6.gold_rows.size(), 3u);
  EXPECT_EQ(q6.gold_rows[0][0], json("Just Fontaine"));
  EXPECT_FALSE(find(qs_, "fb-dev-14").expect_answer);
  EXPECT_FALSE(find(qs_, "fb-dev-15").expect_answer);
  EXPECT_FALSE(find(qs_, "fb-dev-03").order_matters);
  EXPECT_NE(find(qs_, "fb-dev-11").gold_sql.find("NULLIF"), std::string::npos);
}

TEST_F(SqlEvalDev, GoldRowsGradeCorrect) {
  for (const auto& q : qs_) {
    const auto g = grade(q, gold_candidate(q));
    EXPECT_TRUE(g.correct) << q.id << ": " << g.reason;
    EXPECT_EQ(g.reason, "ok") << q.id;
  }
}

TEST_F(SqlEvalDev, PermutedColumnsAndExtraColumnGradeCorrect) {
  for (const auto& q : qs_) {
    // Columns reversed, then an extra column in front holding the row number (names are ignored).
    std::vector<std::string> cols = {"row_number"};
    for (auto it = q.gold_columns.rbegin(); it != q.gold_columns.rend(); ++it) cols.push_back("x_" + *it);
    Rows rows;
    for (size_t r = 0; r < q.gold_rows.size(); ++r) {
      std::vector<json> row = {json(static_cast<long long>(r + 1))};
      for (auto it = q.gold_rows[r].rbegin(); it != q.gold_rows[r].rend(); ++it) row.push_back(*it);
      rows.push_back(std::move(row));
    }
    const auto g = grade(q, candidate_for(cols, rows));
    EXPECT_TRUE(g.correct) << q.id << ": " << g.reason;
  }
}

TEST_F(SqlEvalDev, ReorderedRowsWrongOnlyWhenOrderMatters) {
  int order_checked = 0;
  for (const auto& q : qs_) {
    if (!q.expect_answer || q.gold_rows.size() < 2) continue;
    Rows rows(q.gold_rows.rbegin(), q.gold_rows.rend());
    const auto g = grade(q, candidate_for(q.gold_columns, rows));
    if (q.order_matters) {
      ++order_checked;
      EXPECT_FALSE(g.correct) << q.id;
      EXPECT_EQ(g.reason, "order differs") << q.id;
    } else {
      EXPECT_TRUE(g.correct) << q.id << ": " << g.reason;
    }
  }
  EXPECT_GE(order_checked, 1);  // fb-dev-06
}

TEST_F(SqlEvalDev, RowRemovedIsWrong) {
  for (const auto& q : qs_) {
    if (!q.expect_answer) continue;
    Rows rows = q.gold_rows;
    rows.pop_back();
    const auto g = grade(q, candidate_for(q.gold_columns, rows));
    EXPECT_FALSE(g.correct) << q.id;
    EXPECT_EQ(g.reason, std::to_string(rows.size()) + (rows.size() == 1 ? " row" : " rows") + ", expected " +
                            std::to_string(q.gold_rows.size()))
        << q.id;
  }
  // A row swapped for another keeps the count but not the rows.
  const SqlQuestion& q9 = find(qs_, "fb-dev-09");
  Rows rows = q9.gold_rows;
  rows[1] = {json(2010), json("Diego Maradona"), json(5)};
  const auto g = grade(q9, candidate_for(q9.gold_columns, rows));
  EXPECT_FALSE(g.correct);
  EXPECT_NE(g.reason.find("no column matches gold column 'name'"), std::string::npos) << g.reason;
}

TEST_F(SqlEvalDev, ValueChangedBeyondToleranceIsWrong) {
  for (const auto& q : qs_) {
    if (!q.expect_answer) continue;
    for (size_t col = 0; col < q.gold_columns.size(); ++col) {
      Rows rows = q.gold_rows;
      json& v = rows.back()[col];
      if (v.is_number()) {
        v = v.get<double>() * 1.01 + 1;
      } else if (v.is_string()) {
        v = v.get<std::string>() + " Jr";
      } else {
        continue;
      }
      const auto g = grade(q, candidate_for(q.gold_columns, rows));
      EXPECT_FALSE(g.correct) << q.id << " column " << q.gold_columns[col];
      EXPECT_NE(g.reason.find("no column matches gold column '" + q.gold_columns[col] + "'"), std::string::npos)
          << q.id << ": " << g.reason;
    }
  }
}

TEST_F(SqlEvalDev, AverageRatingTolerance) {
  const SqlQuestion& q = find(qs_, "fb-dev-11");
  EXPECT_TRUE(grade(q, candidate_for({"avg"}, {{json(6.6094)}})).correct);  // unrounded AVG
  EXPECT_TRUE(grade(q, candidate_for({"avg"}, {{json("6.61")}})).correct);
  const auto g = grade(q, candidate_for({"avg"}, {{json(3.81)}}));  // AVG over '-' as 0
  EXPECT_FALSE(g.correct);
  EXPECT_EQ(g.reason, "no column matches gold column 'avg_rating'");
}

TEST_F(SqlEvalDev, RatingsAsTextAndNamesInOtherCase) {
  const SqlQuestion& q = find(qs_, "fb-dev-10");
  Rows rows = q.gold_rows;
  for (auto& row : rows) {
    row[3] = json(row[3].dump());  // rating as TEXT, as the column is stored
    std::string name = row[1].get<std::string>();
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return std::toupper(ch); });
    row[1] = json("  " + name + " ");
  }
  const auto g = grade(q, candidate_for(q.gold_columns, rows));
  EXPECT_TRUE(g.correct) << g.reason;
}

TEST_F(SqlEvalDev, NullIsNotZero) {
  const SqlQuestion& q = find(qs_, "fb-dev-04");
  EXPECT_FALSE(grade(q, candidate_for({"total_goals"}, {{json(nullptr)}})).correct);
  SqlQuestion with_null = synthetic({"v"}, {{json(nullptr)}});
  EXPECT_FALSE(grade(with_null, candidate_for({"v"}, {{json(0)}})).correct);
  EXPECT_TRUE(grade(with_null, candidate_for({"v"}, {{json(nullptr)}})).correct);
}

TEST_F(SqlEvalDev, NoAnswerReplies) {
  const SqlQuestion& q14 = find(qs_, "fb-dev-14");
  const SqlQuestion& q15 = find(qs_, "fb-dev-15");
  EXPECT_TRUE(grade(q14, reply_only("Italy did not take part in the 2018 World Cup.")).correct);
  EXPECT_TRUE(grade(q14, reply_only("Italy didn\u2019t qualify for 2018, so there are no goals to count.")).correct);
  EXPECT_TRUE(grade(q14, reply_only("Italy isn't among the 2018 teams.")).correct);
  EXPECT_TRUE(grade(q15, reply_only("The database has no assists column.")).correct);
  EXPECT_TRUE(grade(q15, reply_only("Assists are not recorded; only goals, cards and line-ups are.")).correct);
  EXPECT_TRUE(grade(q15, reply_only("That statistic is unavailable in this database.")).correct);

  const auto zero = grade(q14, reply_only("Italy scored 0 goals."));
  EXPECT_FALSE(zero.correct);
  EXPECT_EQ(zero.reason, "reply does not say the data is missing");
  EXPECT_FALSE(grade(q15, reply_only("Messi provided 3 assists.")).correct);
  EXPECT_FALSE(grade(q14, reply_only("Toronto casino")).correct);  // "no" inside words does not count

  // Rows from a query that "answers" with a number, replied as such: wrong.
  EXPECT_FALSE(grade(q14, candidate_for({"goals"}, {{json(0)}})).correct);

  Candidate gave_up = reply_only("");
  gave_up.answered = false;
  const auto g = grade(q14, gave_up);
  EXPECT_FALSE(g.correct);
  EXPECT_EQ(g.reason, "no final answer");
}

// ---------------------------------------------------------------------------------------------------------
// Executing SQL on football.db

class SqlEvalDb : public SqlEvalDev {
 protected:
  void SetUp() override {
    SqlEvalDev::SetUp();
    if (IsSkipped()) return;
    HEARTH_REQUIRE_FILE(football("football.db"));
  }
};

TEST_F(SqlEvalDb, GoldSqlGradesCorrect) {
  for (const auto& q : qs_) {
    const QueryResult r = run_query(football("football.db"), q.gold_sql);
    EXPECT_EQ(r.rows.size(), q.gold_rows.size()) << q.id;
    const auto g = grade(q, candidate_for(r.columns, r.rows));
    EXPECT_TRUE(g.correct) << q.id << ": " << g.reason;
  }
}

TEST_F(SqlEvalDb, KnownWrongSqlGradesWrong) {
  std::ifstream in(wrong_sql_fixture());
  ASSERT_TRUE(in) << wrong_sql_fixture();
  std::string line;
  int checked = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const json j = json::parse(line);
    const std::string id = j.at("id").get<std::string>();
    const SqlQuestion& q = find(qs_, id);
    const QueryResult r = run_query(football("football.db"), j.at("sql").get<std::string>());
    const auto g = grade(q, candidate_for(r.columns, r.rows));
    EXPECT_FALSE(g.correct) << id << " graded correct: " << reply_for_rows(r.columns, r.rows);
    EXPECT_FALSE(g.reason.empty()) << id;
    ++checked;
  }
  EXPECT_GE(checked, 8);
}

TEST_F(SqlEvalDb, NaiveTrapsGiveTheDocumentedWrongValues) {
  // The README's table of silently wrong answers, so that the fixture keeps testing what it claims to.
  const auto avg = run_query(football("football.db"),
                             "SELECT ROUND(AVG(s.rating), 2) FROM player_tournament_stats s JOIN teams tm ON tm.id = "
                             "s.team_id JOIN tournaments t ON t.id = s.tournament_id WHERE tm.name = 'Argentina' "
                             "AND t.year = 2022");
  ASSERT_EQ(avg.rows.size(), 1u);
  EXPECT_TRUE(values_match(avg.rows[0][0], json(3.81)));
  const auto minutes = run_query(football("football.db"),
                                 "SELECT p.name, s.minutes FROM player_tournament_stats s JOIN players p ON p.id = "
                                 "s.player_id JOIN teams tm ON tm.id = s.team_id JOIN tournaments t ON t.id = "
                                 "s.tournament_id WHERE tm.name = 'France' AND t.year = 2022 ORDER BY s.minutes "
                                 "DESC LIMIT 1");
  ASSERT_EQ(minutes.rows.size(), 1u);
  EXPECT_TRUE(values_match(minutes.rows[0][1], json(92)));
}

// ---------------------------------------------------------------------------------------------------------
// Loader errors

TEST(SqlEvalLoad, BlankLinesSkippedDefaultsApplied) {
  const std::string path = write_temp("ok.jsonl",
                                      "\n{\"id\": \"a\", \"question\": \"q\", \"gold_sql\": \"SELECT 1\", "
                                      "\"gold_columns\": [\"x\"], \"gold_rows\": [[1]]}\n   \n");
  const auto qs = load_questions(path);
  ASSERT_EQ(qs.size(), 1u);
  EXPECT_FALSE(qs[0].order_matters);
  EXPECT_TRUE(qs[0].expect_answer);
  EXPECT_EQ(qs[0].difficulty, 0);
  EXPECT_EQ(qs[0].category, "");
}

TEST(SqlEvalLoad, ErrorsNameFileAndLine) {
  const std::string good =
      "{\"id\": \"a\", \"question\": \"q\", \"gold_sql\": \"SELECT 1\", \"gold_columns\": [\"x\"], "
      "\"gold_rows\": [[1]]}\n";
  {
    const std::string path = write_temp("bad_json.jsonl", good + "\n{\"id\": \"b\", \"question\": \n");
    const std::string err = load_error(path);
    EXPECT_EQ(err.rfind(path + ":3: malformed JSON", 0), 0u) << err;
  }
  {
    const std::string path =
        write_temp("missing.jsonl",
                   "{\"id\": \"a\", \"question\": \"q\", \"gold_sql\": \"S\", \"gold_columns\": []}\n");
    EXPECT_EQ(load_error(path), path + ":1: missing field 'gold_rows'");
  }
  {
    const std::string path = write_temp(
        "mistyped.jsonl", good + "{\"id\": \"b\", \"question\": \"q\", \"gold_sql\": 5, \"gold_columns\": [], "
                                 "\"gold_rows\": []}\n");
    EXPECT_EQ(load_error(path), path + ":2: field 'gold_sql' must be a string");
  }
  {
    const std::string path = write_temp(
        "behavior.jsonl", "{\"id\": \"a\", \"question\": \"q\", \"gold_sql\": \"S\", \"gold_columns\": [], "
                          "\"gold_rows\": [], \"expected_behavior\": \"refuse\"}\n");
    const std::string err = load_error(path);
    EXPECT_EQ(err.rfind(path + ":1: field 'expected_behavior'", 0), 0u) << err;
  }
  {
    const std::string path = write_temp(
        "width.jsonl", "{\"id\": \"a\", \"question\": \"q\", \"gold_sql\": \"S\", \"gold_columns\": [\"x\"], "
                       "\"gold_rows\": [[1, 2]]}\n");
    const std::string err = load_error(path);
    EXPECT_EQ(err.rfind(path + ":1: field 'gold_rows[0]' has 2 values", 0), 0u) << err;
  }
  {
    const std::string path = write_temp("dup.jsonl", good + good);
    EXPECT_EQ(load_error(path), path + ":2: duplicate id 'a'");
  }
  {
    const std::string path = write_temp("not_object.jsonl", "[1, 2]\n");
    EXPECT_EQ(load_error(path), path + ":1: expected a JSON object");
  }
  EXPECT_THROW(load_questions(testing::TempDir() + "/sql_eval_test_does_not_exist.jsonl"), hearth::Error);
}

// ---------------------------------------------------------------------------------------------------------
// Replies and the report

TEST(SqlEvalReply, EmptyAndRows) {
  EXPECT_EQ(reply_for_rows({"name"}, {}), "No rows: the database has no data for this question.");
  EXPECT_EQ(reply_for_rows({"name", "goals"}, {{json("Just Fontaine"), json(13)}, {json("X"), json(nullptr)}}),
            "name | goals\nJust Fontaine | 13\nX | NULL\n");
  Rows many;
  for (int i = 0; i < 25; ++i) many.push_back({json(i)});
  const std::string r = reply_for_rows({"n"}, many);
  EXPECT_NE(r.find("\n19\n"), std::string::npos);
  EXPECT_EQ(r.find("\n20\n"), std::string::npos);
  EXPECT_NE(r.find("(5 more rows)"), std::string::npos);
}

TEST(SqlEvalReply, AllNullResultReadsAsNoData) {
  // A no_answer gold query that shows the absence as NULL (AVG over nothing) grades right with --gold.
  SqlQuestion q = synthetic({"avg"}, {{json(nullptr)}});
  q.expect_answer = false;
  const Candidate c = candidate_for({"avg"}, {{json(nullptr)}});
  EXPECT_NE(c.reply.find("no data"), std::string::npos) << c.reply;
  EXPECT_TRUE(grade(q, c).correct);
}

TEST(SqlEvalReport, LinesAndAccuracy) {
  std::vector<EvalRow> rows(3);
  rows[0].id = "fb-dev-01";
  rows[0].grade = {true, "ok"};
  rows[0].rounds = 2;
  rows[0].tool_calls = 1;
  rows[0].seconds = 3.5;
  rows[1].id = "fb-dev-11";
  rows[1].grade = {false, "no column matches gold column 'avg_rating'"};
  rows[1].rounds = 4;
  rows[1].tool_calls = 3;
  rows[1].tool_errors = 1;
  rows[1].seconds = 12.0;
  rows[2].id = "fb-dev-14";
  rows[2].grade = {true, "ok"};
  const std::string report = hearth::agent::format_report(rows);
  EXPECT_EQ(report.rfind("id  ", 0), 0u) << report;
  EXPECT_NE(report.find("result  rounds  calls  errors  seconds  reason"), std::string::npos) << report;
  EXPECT_NE(report.find("fb-dev-11  WRONG"), std::string::npos) << report;
  EXPECT_NE(report.find("no column matches gold column 'avg_rating'"), std::string::npos);
  EXPECT_NE(report.find("fb-dev-01  ok"), std::string::npos);
  // Seconds with one decimal; ok lines carry no reason.
  EXPECT_NE(report.find("      0      3.5\n"), std::string::npos) << report;
  const std::string last = "accuracy: 2/3\n";
  ASSERT_GE(report.size(), last.size());
  EXPECT_EQ(report.substr(report.size() - last.size()), last) << report;
  // One header, three question lines, the accuracy line.
  EXPECT_EQ(std::count(report.begin(), report.end(), '\n'), 5);
  EXPECT_EQ(hearth::agent::format_report({}), std::string("id  result  rounds  calls  errors  seconds  reason\n") +
                                                   "accuracy: 0/0\n");
}

}  // namespace
