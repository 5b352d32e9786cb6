// The SQL tools the model calls: sql_query, list_tables, describe_table (see add_sql_tools in sql_tool.h).
#include <algorithm>
#include <optional>
#include <string>

#include "agent/sql_detail.h"
#include "agent/sql_tool.h"

namespace hearth::agent {

using namespace sql_detail;


namespace {

// The arguments object, or an error text: models sometimes send the object JSON-encoded as a string.
std::optional<json> args_object(const json& args, std::string& error) {
  if (args.is_object()) return args;
  if (args.is_string()) {
    json parsed = json::parse(args.get<std::string>(), nullptr, false);
    if (parsed.is_object()) return parsed;
  }
  if (args.is_null()) return json::object();
  error = "the arguments must be a JSON object, got " + json_text(args).substr(0, 200);
  return std::nullopt;
}

// A required string argument; `aliases` are other names a model might use for it.
std::optional<std::string> string_arg(const json& obj, const std::string& name, std::vector<std::string> aliases,
                                      std::string& error) {
  aliases.insert(aliases.begin(), name);
  for (const auto& key : aliases) {
    auto it = obj.find(key);
    if (it == obj.end()) continue;
    if (!it->is_string()) {
      error = "the argument \"" + key + "\" must be a string, got " + json_text(*it).substr(0, 200);
      return std::nullopt;
    }
    return it->get<std::string>();
  }
  error = "missing the required argument \"" + name + "\" (a string)";
  return std::nullopt;
}

ToolOutput tool_error(const std::string& tool, const std::string& msg, const std::string& example) {
  return {false, "Error: " + msg + ".\nHint: call " + tool + " with " + example + ".", nullptr};
}

std::string sample_text(const json& v) {
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    if (s.size() > 40) {
      size_t cut = 40;
      while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // whole UTF-8 characters
      s = s.substr(0, cut) + "...";
    }
    return quote_literal(s);
  }
  return format_value(v);
}

class SqlQueryTool : public Tool {
 public:
  explicit SqlQueryTool(std::shared_ptr<SqlDatabase> db) : db_(std::move(db)) {}
  std::string name() const override { return "sql_query"; }
  json function() const override {
    std::string strict = db_->options().strict_casts
                             ? " CAST of text that is not a number (e.g. '-') is an error here, and so are SUM/AVG "
                               "over such text."
                             : " Beware: CAST('-' AS REAL) is silently 0 in SQLite.";
    return {{"name", "sql_query"},
            {"description",
             "Run one read-only SQL query on the database (SQLite dialect) and get the rows back. Exactly one "
             "SELECT (or WITH ... SELECT) statement per call; writes, schema changes, ATTACH and PRAGMA changes "
             "are refused. Use LIMIT n (not TOP), || to concatenate, strftime() for dates. Only the first " +
                 std::to_string(db_->options().max_rows) +
                 " rows are shown: aggregate or add a LIMIT. Some numeric-looking columns are TEXT with "
                 "placeholders such as '-': convert them with safe_cast(col, 'REAL') (NULL for non-numbers) or "
                 "CAST(NULLIF(col, '-') AS REAL)." +
                 strict + " Use list_tables and describe_table first to learn the schema."},
            {"parameters",
             {{"type", "object"},
              {"properties",
               {{"query", {{"type", "string"}, {"description", "one SQLite SELECT statement"}}}}},
              {"required", json::array({"query"})}}}};
  }
  ToolOutput call(const json& args) override {
    try {
      std::string err;
      auto obj = args_object(args, err);
      if (!obj) return tool_error(name(), err, "{\"query\": \"SELECT ...\"}");
      auto sql = string_arg(*obj, "query", {"sql", "statement"}, err);
      if (!sql) return tool_error(name(), err, "{\"query\": \"SELECT ...\"}");
      SqlResult r = db_->query(*sql);
      ToolOutput out;
      out.ok = r.ok;
      out.text = format_sql_result(r, *sql);
      if (r.ok) {
        json rows = json::array();
        for (const auto& row : r.rows) rows.push_back(row);
        out.data = {{"columns", r.columns}, {"rows", std::move(rows)}, {"total_rows", r.total_rows}};
      }
      return out;
    } catch (const std::exception& e) {
      return {false, std::string("Error: ") + e.what(), nullptr};
    }
  }

 private:
  std::shared_ptr<SqlDatabase> db_;
};

struct ColumnInfo {
  std::string name, type;
  bool pk = false;
};

std::vector<ColumnInfo> columns_of(SqlDatabase& db, const std::string& table) {
  SqlResult r = db.query_all("SELECT name, type, pk FROM pragma_table_info(" + quote_literal(table) + ")",
                             std::numeric_limits<size_t>::max());
  std::vector<ColumnInfo> out;
  for (const auto& row : r.rows) {
    if (row.size() < 3) continue;
    ColumnInfo c;
    c.name = row[0].is_string() ? row[0].get<std::string>() : "";
    c.type = row[1].is_string() ? row[1].get<std::string>() : "";
    c.pk = row[2].is_number_integer() && row[2].get<int64_t>() > 0;
    out.push_back(std::move(c));
  }
  return out;
}

std::string row_count_text(SqlDatabase& db, const std::string& table) {
  SqlResult r = db.query_all("SELECT count(*) FROM " + quote_ident(table), 1);
  if (!r.ok || r.rows.empty() || r.rows[0].empty()) return "? rows";
  int64_t n = r.rows[0][0].is_number_integer() ? r.rows[0][0].get<int64_t>() : 0;
  return std::to_string(n) + (n == 1 ? " row" : " rows");
}

class ListTablesTool : public Tool {
 public:
  explicit ListTablesTool(std::shared_ptr<SqlDatabase> db) : db_(std::move(db)) {}
  std::string name() const override { return "list_tables"; }
  json function() const override {
    return {{"name", "list_tables"},
            {"description",
             "List every table and view of the (read-only, SQLite) database with its row count and its columns "
             "(name TYPE). Call this first; then describe_table shows sample values of one table."},
            {"parameters", {{"type", "object"}, {"properties", json::object()}}}};
  }
  ToolOutput call(const json&) override {
    try {
      std::vector<std::string> tables = db_->table_names();
      SqlResult kinds = db_->query_all("SELECT name FROM sqlite_master WHERE type = 'view'",
                                       std::numeric_limits<size_t>::max());
      std::vector<std::string> views;
      for (const auto& row : kinds.rows)
        if (!row.empty() && row[0].is_string()) views.push_back(row[0].get<std::string>());
      std::string text = std::to_string(tables.size()) + (tables.size() == 1 ? " table" : " tables") + ":\n";
      json data = json::array();
      for (const auto& t : tables) {
        bool is_view = std::find(views.begin(), views.end(), t) != views.end();
        std::vector<ColumnInfo> cols = columns_of(*db_, t);
        std::string count = row_count_text(*db_, t);
        std::string line = t + (is_view ? " (view, " : " (") + count + "): ";
        json jcols = json::array();
        for (size_t i = 0; i < cols.size(); ++i) {
          line += (i ? ", " : "") + cols[i].name + (cols[i].type.empty() ? "" : " " + cols[i].type);
          jcols.push_back({{"name", cols[i].name}, {"type", cols[i].type}});
        }
        text += valid_utf8(line) + "\n";
        data.push_back({{"name", t}, {"view", is_view}, {"rows", count}, {"columns", jcols}});
      }
      return {true, text, data};
    } catch (const std::exception& e) {
      return {false, std::string("Error: ") + e.what(), nullptr};
    }
  }

 private:
  std::shared_ptr<SqlDatabase> db_;
};

class DescribeTableTool : public Tool {
 public:
  explicit DescribeTableTool(std::shared_ptr<SqlDatabase> db) : db_(std::move(db)) {}
  std::string name() const override { return "describe_table"; }
  json function() const override {
    return {{"name", "describe_table"},
            {"description",
             "Describe one table: its columns (name, declared type, primary key), its row count, and a few "
             "distinct sample values per column. Check the samples before filtering or casting: TEXT columns can "
             "hold numbers with placeholders such as '-' (use safe_cast(col, 'REAL') on those), and names may be "
             "spelled differently than you expect (use LIKE)."},
            {"parameters",
             {{"type", "object"},
              // An enum of the real names: under constrained decoding the model cannot misspell a table.
              {"properties",
               {{"table", {{"type", "string"}, {"enum", db_->table_names()}, {"description", "the table name"}}}}},
              {"required", json::array({"table"})}}}};
  }
  ToolOutput call(const json& args) override {
    try {
      std::string err;
      auto obj = args_object(args, err);
      if (!obj) return tool_error(name(), err, "{\"table\": \"<name>\"}");
      auto want = string_arg(*obj, "table", {"table_name", "name"}, err);
      if (!want) return tool_error(name(), err, "{\"table\": \"<name>\"}");
      std::vector<std::string> tables = db_->table_names();
      std::string table;
      std::string wanted(trim(*want));
      for (const auto& t : tables)
        if (iequals(t, wanted) || iequals(quote_ident(t), wanted)) table = t;
      if (table.empty()) {
        std::string list;
        for (const auto& t : tables) list += (list.empty() ? "" : ", ") + t;
        return {false,
                "Error: there is no table named '" + valid_utf8(wanted) + "'. The tables are: " + list + ".",
                nullptr};
      }
      return describe(table);
    } catch (const std::exception& e) {
      return {false, std::string("Error: ") + e.what(), nullptr};
    }
  }

 private:
  ToolOutput describe(const std::string& table) {
    const std::string qt = quote_ident(table);
    std::vector<ColumnInfo> cols = columns_of(*db_, table);
    std::string text = "Table " + table + " (" + row_count_text(*db_, table) + ")\nColumns:\n";
    json jcols = json::array();
    const size_t want = static_cast<size_t>(std::max(db_->options().sample_values, 0));
    for (const auto& c : cols) {
      const std::string qc = quote_ident(c.name);
      std::vector<json> samples;
      auto add_sample = [&](const json& v) {
        if (samples.size() < want && std::find(samples.begin(), samples.end(), v) == samples.end())
          samples.push_back(v);
      };
      // How the values read as numbers: a TEXT column with both numbers and non-numbers is the placeholder trap.
      SqlResult stats = db_->query_all("SELECT count(" + qc + "), count(safe_cast(" + qc + ", 'REAL')), count(CASE " +
                                           "WHEN typeof(" + qc + ") = 'text' THEN 1 END) FROM " + qt,
                                       1);
      int64_t non_null = 0, numeric = 0, texts = 0;
      if (stats.ok && !stats.rows.empty() && stats.rows[0].size() == 3) {
        non_null = stats.rows[0][0].get<int64_t>();
        numeric = stats.rows[0][1].get<int64_t>();
        texts = stats.rows[0][2].get<int64_t>();
      }
      std::string note;
      if (want > 0 && texts > 0) {
        // The most frequent non-numeric text first, so a placeholder such as '-' is always among the samples.
        SqlResult top = db_->query_all("SELECT " + qc + ", count(*) AS n FROM " + qt + " WHERE typeof(" + qc +
                                           ") = 'text' AND safe_cast(" + qc +
                                           ", 'REAL') IS NULL GROUP BY 1 ORDER BY n DESC LIMIT 1",
                                       1);
        if (top.ok && !top.rows.empty()) {
          add_sample(top.rows[0][0]);
          if (numeric > 0)
            note = "numbers stored as TEXT; " + std::to_string(non_null - numeric) + " of " +
                   std::to_string(non_null) + " values are not numbers (e.g. " + sample_text(top.rows[0][0]) +
                   "): use safe_cast(" + c.name + ", 'REAL') or CAST(NULLIF(" + c.name + ", " +
                   sample_text(top.rows[0][0]) + ") AS REAL)";
        }
      }
      if (want > 0) {
        SqlResult more = db_->query_all("SELECT DISTINCT " + qc + " FROM " + qt + " WHERE " + qc +
                                            " IS NOT NULL LIMIT " + std::to_string(want + 1),
                                        want + 1);
        for (const auto& row : more.rows) add_sample(row[0]);
      }
      std::string line = "- " + c.name + (c.type.empty() ? "" : " " + c.type) + (c.pk ? ", primary key" : "");
      if (non_null == 0) {
        line += ". No non-NULL values.";
      } else if (!samples.empty()) {
        line += ". Samples: ";
        for (size_t i = 0; i < samples.size(); ++i) line += (i ? ", " : "") + sample_text(samples[i]);
      }
      if (!note.empty()) line += "\n  Note: " + note + ".";
      text += valid_utf8(line) + "\n";
      jcols.push_back({{"name", c.name}, {"type", c.type}, {"pk", c.pk}, {"samples", samples}});
    }
    return {true, text, {{"table", table}, {"columns", jcols}}};
  }

  std::shared_ptr<SqlDatabase> db_;
};

}  // namespace

void add_sql_tools(ToolRegistry& registry, std::shared_ptr<SqlDatabase> db) {
  registry.add(std::make_unique<SqlQueryTool>(db));
  registry.add(std::make_unique<ListTablesTool>(db));
  registry.add(std::make_unique<DescribeTableTool>(db));
}

}  // namespace hearth::agent
