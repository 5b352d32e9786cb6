// Pieces shared by the SQL tool's files (sql_text.cpp, sql_functions.cpp, sql_tool.cpp, sql_tools.cpp); not an API.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

struct sqlite3;

namespace hearth::agent::sql_detail {

using json = nlohmann::json;

// ---- text (sql_text.cpp) ----
bool iequals(std::string_view a, std::string_view b);
std::string upper(std::string_view s);
std::string_view trim(std::string_view s);
bool is_word_char(char c);
std::string valid_utf8(std::string_view s);  // invalid sequences replaced by U+FFFD
std::string quote_ident(std::string_view name);
std::string quote_literal(std::string_view s);

// ---- a minimal SQL lexer (sql_text.cpp) ----
size_t skip_quoted(std::string_view s, size_t i);
size_t skip_comment(std::string_view s, size_t i);
size_t skip_blank(std::string_view s, size_t i);
bool is_blank_sql(std::string_view s);
std::string statement_head(std::string_view sql);

// The column affinity SQLite gives a declared type name (https://sqlite.org/datatype3.html, section 3.1).
enum class Affinity { Integer, Text, Blob, Real, Numeric };
Affinity affinity_of(std::string_view type);

// ---- SQL functions (sql_functions.cpp) ----
// safe_cast and strict_cast; with strict_aggregates also sum/avg/total that refuse non-numeric text.
void register_sql_functions(sqlite3* db, bool strict_aggregates);

// ---- rendering (sql_tool.cpp) ----
std::string format_value(const json& v);
std::string json_text(const json& j);

}  // namespace hearth::agent::sql_detail
