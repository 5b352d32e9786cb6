// The read-only SQL tool (see sql_tool.h for the safety layers and the SQL functions it adds).
#include "agent/sql_tool.h"

#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <string_view>

#include "core/error.h"

namespace hearth::agent {

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
// Text helpers

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// SQLite identifiers and keywords: letters, digits, '_', '$' and any non-ASCII byte.
bool is_word_char(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  return std::isalnum(u) || c == '_' || c == '$' || u >= 0x80;
}

// Model-facing text and JSON must be valid UTF-8 (nlohmann::json::dump throws otherwise): invalid bytes become
// U+FFFD. Database text is usually fine; this guards against blobs stored as TEXT and truncated sequences.
std::string valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c < 0x80) len = 1;
    else if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) len = 3, lo = 0xA0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) len = 3;
    else if (c == 0xED) len = 3, hi = 0x9F;  // no UTF-16 surrogates
    else if (c == 0xF0) len = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) len = 4, hi = 0x8F;  // nothing above U+10FFFF
    bool ok = len > 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) {
      unsigned char b = static_cast<unsigned char>(s[i + k]);
      ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    }
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      i += 1;
    }
  }
  return out;
}

std::string quote_ident(std::string_view name) {
  std::string out = "\"";
  for (char c : name) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string quote_literal(std::string_view s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

// ------------------------------------------------------------------------------------------------------------
// A minimal SQL lexer: enough to skip literals, quoted identifiers and comments, which is all the one-statement
// check and the CAST rewriter need.

// End (one past) of the quoted token that starts at s[i] ('...', "...", `...` with doubled-quote escapes, or
// [...]), or s.size() when it is unterminated.
size_t skip_quoted(std::string_view s, size_t i) {
  char close = s[i] == '[' ? ']' : s[i];
  size_t j = i + 1;
  while (j < s.size()) {
    if (s[j] == close) {
      if (close != ']' && j + 1 < s.size() && s[j + 1] == close) {
        j += 2;  // doubled quote: an escaped quote character
        continue;
      }
      return j + 1;
    }
    ++j;
  }
  return s.size();
}

// End of the comment that starts at s[i] ("--" to end of line, "/*" to "*/" or end of input, as SQLite reads
// them), or i when there is no comment at i.
size_t skip_comment(std::string_view s, size_t i) {
  if (i + 1 < s.size() && s[i] == '-' && s[i + 1] == '-') {
    size_t nl = s.find('\n', i);
    return nl == std::string_view::npos ? s.size() : nl + 1;
  }
  if (i + 1 < s.size() && s[i] == '/' && s[i + 1] == '*') {
    size_t end = s.find("*/", i + 2);
    return end == std::string_view::npos ? s.size() : end + 2;
  }
  return i;
}

// Skips whitespace and comments from i.
size_t skip_blank(std::string_view s, size_t i) {
  while (i < s.size()) {
    if (is_space(s[i])) {
      ++i;
      continue;
    }
    size_t j = skip_comment(s, i);
    if (j == i) break;
    i = j;
  }
  return i;
}

// True when s holds nothing but whitespace, comments and ';'.
bool is_blank_sql(std::string_view s) {
  size_t i = 0;
  while (true) {
    i = skip_blank(s, i);
    if (i < s.size() && s[i] == ';') {
      ++i;
      continue;
    }
    return i >= s.size();
  }
}

// The start of a statement for messages ("DROP TABLE teams", "VACUUM INTO '/tmp/x.db'"): leading comments
// skipped, up to the first '(' or ';' or comment, whitespace collapsed, at most 60 bytes.
std::string statement_head(std::string_view sql) {
  size_t i = skip_blank(sql, 0);
  std::string out;
  for (; i < sql.size() && out.size() < 60; ++i) {
    char c = sql[i];
    if (c == '(' || c == ';' || skip_comment(sql, i) != i) break;
    if (is_space(c)) {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += c;
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// The column affinity SQLite gives a declared type name (https://sqlite.org/datatype3.html, section 3.1).
enum class Affinity { Integer, Text, Blob, Real, Numeric };

Affinity affinity_of(std::string_view type) {
  std::string t = upper(type);
  if (t.find("INT") != std::string::npos) return Affinity::Integer;
  if (t.find("CHAR") != std::string::npos || t.find("CLOB") != std::string::npos ||
      t.find("TEXT") != std::string::npos)
    return Affinity::Text;
  if (t.find("BLOB") != std::string::npos || trim(t).empty()) return Affinity::Blob;
  if (t.find("REAL") != std::string::npos || t.find("FLOA") != std::string::npos ||
      t.find("DOUB") != std::string::npos)
    return Affinity::Real;
  return Affinity::Numeric;
}

// For CAST(<expr> AS <type>) whose '(' is at s[open]: the offsets of "AS" (the first one at the CAST's own
// paren depth), of the type after it, and of the closing ')'.
struct CastParts {
  size_t as_begin, type_begin, close;
};

std::optional<CastParts> split_cast(std::string_view s, size_t open) {
  int depth = 1;
  std::optional<size_t> as_at;
  size_t i = open + 1;
  while (i < s.size()) {
    char c = s[i];
    if (c == '\'' || c == '"' || c == '`' || c == '[') {
      i = skip_quoted(s, i);
    } else if (size_t j = skip_comment(s, i); j != i) {
      i = j;
    } else if (c == '(') {
      ++depth, ++i;
    } else if (c == ')') {
      if (--depth == 0) {
        if (!as_at) return std::nullopt;
        return CastParts{*as_at, *as_at + 2, i};
      }
      ++i;
    } else if (is_word_char(c)) {
      size_t j = i;
      while (j < s.size() && is_word_char(s[j])) ++j;
      if (depth == 1 && !as_at && iequals(s.substr(i, j - i), "AS")) as_at = i;
      i = j;
    } else {
      ++i;
    }
  }
  return std::nullopt;  // unbalanced: leave it to SQLite's parser to report
}

// Collapses runs of whitespace in a type name ("DOUBLE   PRECISION" → "DOUBLE PRECISION"); empty when the type
// holds anything unusual (quotes, comments), in which case the CAST is left as it is.
std::string clean_type(std::string_view type) {
  std::string out;
  for (char c : trim(type)) {
    if (is_space(c)) {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '(' || c == ')' || c == ',' ||
               c == '+' || c == '-') {
      out += c;
    } else {
      return {};
    }
  }
  return out;
}

std::string rewrite_range(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 16);
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (c == '\'' || c == '"' || c == '`' || c == '[') {
      size_t j = skip_quoted(s, i);
      out.append(s.substr(i, j - i));
      i = j;
      continue;
    }
    if (size_t j = skip_comment(s, i); j != i) {
      out.append(s.substr(i, j - i));
      i = j;
      continue;
    }
    if (!is_word_char(c)) {
      out += c;
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && is_word_char(s[j])) ++j;
    std::string_view word = s.substr(i, j - i);
    if (iequals(word, "CAST")) {
      size_t open = skip_blank(s, j);
      if (open < s.size() && s[open] == '(') {
        if (auto p = split_cast(s, open)) {
          std::string expr = rewrite_range(s.substr(open + 1, p->as_begin - open - 1));  // nested CASTs
          std::string type = clean_type(s.substr(p->type_begin, p->close - p->type_begin));
          Affinity a = affinity_of(type);
          if (!type.empty() && (a == Affinity::Integer || a == Affinity::Real || a == Affinity::Numeric)) {
            out += "strict_cast(" + std::string(trim(expr)) + ", '" + type + "')";
          } else {
            // Text and blob casts cannot fail: keep SQLite's own CAST (with any nested casts rewritten).
            out.append(s.substr(i, open + 1 - i));
            out += expr;
            out.append(s.substr(p->as_begin, p->close + 1 - p->as_begin));
          }
          i = p->close + 1;
          continue;
        }
      }
    }
    out.append(word);
    i = j;
  }
  return out;
}

// ------------------------------------------------------------------------------------------------------------
// Numbers in text, as safe_cast / strict_cast / strict aggregates read them.

struct Number {
  bool is_int = false;
  int64_t i = 0;
  double d = 0;
};

// The whole (trimmed) text must be a decimal number: [+-] digits [. digits] [e [+-] digits], or [+-] . digits.
// No hex, no "inf"/"nan", nothing after the number. Out-of-range values ("1e999") are not numbers here.
std::optional<Number> parse_number(std::string_view text) {
  std::string_view s = trim(text);
  if (s.empty()) return std::nullopt;
  size_t i = 0;
  if (s[i] == '+' || s[i] == '-') ++i;
  size_t int_digits = 0, frac_digits = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++int_digits;
  bool has_point = false, has_exp = false;
  if (i < s.size() && s[i] == '.') {
    has_point = true;
    ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++frac_digits;
  }
  if (int_digits + frac_digits == 0) return std::nullopt;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    has_exp = true;
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    size_t exp_digits = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++exp_digits;
    if (exp_digits == 0) return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  std::string_view body = s[0] == '+' ? s.substr(1) : s;  // from_chars takes no '+'
  Number n;
  if (!has_point && !has_exp) {
    auto [p, ec] = std::from_chars(body.data(), body.data() + body.size(), n.i);
    if (ec == std::errc() && p == body.data() + body.size()) {
      n.is_int = true;
      return n;
    }
    // Too large for 64 bits: read it as a real, as SQLite does.
  }
  auto [p, ec] = std::from_chars(body.data(), body.data() + body.size(), n.d);
  if (ec != std::errc() || p != body.data() + body.size()) return std::nullopt;
  return n;
}

// double → int64 as SQLite's CAST does it: truncation toward zero, saturating at the int64 range (a plain C++
// conversion of an out-of-range double is undefined behaviour).
int64_t real_to_int(double d) {
  if (std::isnan(d)) return 0;
  if (d >= 9223372036854775807.0) return std::numeric_limits<int64_t>::max();
  if (d <= -9223372036854775808.0) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(d);
}

// Sets the function result to n converted to the affinity (Integer, Real or Numeric), like CAST. from_text:
// NUMERIC of text turns an integral real ("7.0", "1e3") into an integer, as SQLite's CAST does; NUMERIC of a
// real value is a no-op.
void result_number(sqlite3_context* ctx, const Number& n, Affinity a, bool from_text) {
  switch (a) {
    case Affinity::Integer:
      sqlite3_result_int64(ctx, n.is_int ? n.i : real_to_int(n.d));
      return;
    case Affinity::Real:
      sqlite3_result_double(ctx, n.is_int ? static_cast<double>(n.i) : n.d);
      return;
    default:
      if (n.is_int) {
        sqlite3_result_int64(ctx, n.i);
      } else if (from_text && std::trunc(n.d) == n.d && std::fabs(n.d) < 9.2e18) {
        sqlite3_result_int64(ctx, static_cast<int64_t>(n.d));
      } else {
        sqlite3_result_double(ctx, n.d);
      }
  }
}

std::string text_of(sqlite3_value* v) {
  const unsigned char* t = sqlite3_value_text(v);
  return t ? std::string(reinterpret_cast<const char*>(t), static_cast<size_t>(sqlite3_value_bytes(v))) : "";
}

// `invalid input syntax for type real: "-"`, PostgreSQL's wording, so the model meets the error it knows.
std::string invalid_input(std::string_view type, std::string_view value) {
  std::string v(value.substr(0, 60));
  if (value.size() > 60) v += "...";
  return "invalid input syntax for type " + std::string(type) + ": \"" + valid_utf8(v) + "\"";
}

// The target of a safe_cast / strict_cast type argument.
std::optional<Affinity> cast_target(std::string_view type, bool any_type_name) {
  std::string t = upper(trim(type));
  if (!any_type_name) {
    // safe_cast takes a short list of names, so a typo is an error rather than a silent NUMERIC.
    if (t == "INTEGER" || t == "INT" || t == "BIGINT") return Affinity::Integer;
    if (t == "REAL" || t == "FLOAT" || t == "DOUBLE" || t == "DOUBLE PRECISION") return Affinity::Real;
    if (t == "NUMERIC" || t == "DECIMAL") return Affinity::Numeric;
    if (t == "TEXT") return Affinity::Text;
    return std::nullopt;
  }
  return affinity_of(t);
}

// safe_cast(value, type) / strict_cast(value, type): `strict` raises an error where safe_cast returns NULL.
void cast_function(sqlite3_context* ctx, int argc, sqlite3_value** argv, bool strict) {
  const char* fname = strict ? "strict_cast" : "safe_cast";
  if (argc != 2) {
    sqlite3_result_error(ctx, (std::string(fname) + "() takes 2 arguments").c_str(), -1);
    return;
  }
  std::string type_name = sqlite3_value_type(argv[1]) == SQLITE_NULL ? "" : text_of(argv[1]);
  std::optional<Affinity> target = cast_target(type_name, strict);
  if (!target) {
    std::string msg = std::string(fname) + "(): unknown type '" + valid_utf8(type_name) +
                      "' (use 'INTEGER', 'REAL', 'NUMERIC' or 'TEXT')";
    sqlite3_result_error(ctx, msg.c_str(), -1);
    return;
  }
  sqlite3_value* v = argv[0];
  int vt = sqlite3_value_type(v);
  if (vt == SQLITE_NULL) {
    sqlite3_result_null(ctx);
    return;
  }
  if (*target == Affinity::Text || *target == Affinity::Blob) {
    // strict_cast is only generated for numeric types; safe_cast(x, 'TEXT') is plain text conversion.
    const unsigned char* t = sqlite3_value_text(v);  // before _bytes: the size of the text form
    sqlite3_result_text(ctx, reinterpret_cast<const char*>(t), sqlite3_value_bytes(v), SQLITE_TRANSIENT);
    return;
  }
  Number n;
  if (vt == SQLITE_INTEGER) {
    n.is_int = true;
    n.i = sqlite3_value_int64(v);
  } else if (vt == SQLITE_FLOAT) {
    n.d = sqlite3_value_double(v);
  } else if (vt == SQLITE_TEXT) {
    std::optional<Number> parsed = parse_number(text_of(v));
    if (!parsed) {
      if (!strict) {
        sqlite3_result_null(ctx);
        return;
      }
      Affinity a = *target;
      std::string pg = a == Affinity::Integer ? "integer"
                       : a == Affinity::Real
                           ? (upper(type_name).find("DOUB") != std::string::npos ? "double precision" : "real")
                           : "numeric";
      sqlite3_result_error(ctx, invalid_input(pg, text_of(v)).c_str(), -1);
      return;
    }
    n = *parsed;
  } else {  // BLOB: SQLite's own reading of its bytes
    n.d = sqlite3_value_double(v);
  }
  result_number(ctx, n, *target, vt == SQLITE_TEXT);
}

void safe_cast_fn(sqlite3_context* ctx, int argc, sqlite3_value** argv) { cast_function(ctx, argc, argv, false); }
void strict_cast_fn(sqlite3_context* ctx, int argc, sqlite3_value** argv) { cast_function(ctx, argc, argv, true); }

// Strict-mode sum / avg / total: SQLite's arithmetic (integer sum while every input is an integer, "integer
// overflow" from sum, avg and total as reals, NULLs skipped), but TEXT that is not a number is an error instead of
// a silent 0. Also usable as window functions (xValue / xInverse).
enum class AggKind { Sum, Avg, Total };
const AggKind kSum = AggKind::Sum, kAvg = AggKind::Avg, kTotal = AggKind::Total;

struct SumState {
  double rsum;
  int64_t isum;
  int64_t cnt;
  bool approx;    // a real value was added: the sum is a real
  bool overflow;  // the integer sum overflowed
};

void sum_add(sqlite3_context* ctx, sqlite3_value* v, int sign) {
  int vt = sqlite3_value_type(v);
  if (vt == SQLITE_NULL) return;
  Number n;
  if (vt == SQLITE_INTEGER) {
    n.is_int = true;
    n.i = sqlite3_value_int64(v);
  } else if (vt == SQLITE_TEXT) {
    std::optional<Number> parsed = parse_number(text_of(v));
    if (!parsed) {
      sqlite3_result_error(ctx, invalid_input("numeric", text_of(v)).c_str(), -1);
      return;
    }
    n = *parsed;
  } else {
    n.d = sqlite3_value_double(v);
  }
  auto* st = static_cast<SumState*>(sqlite3_aggregate_context(ctx, sizeof(SumState)));  // zeroed on first use
  if (!st) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  st->cnt += sign;
  if (n.is_int) {
    st->rsum += sign * static_cast<double>(n.i);
    int64_t r = 0;
    bool ovf = sign > 0 ? __builtin_add_overflow(st->isum, n.i, &r) : __builtin_sub_overflow(st->isum, n.i, &r);
    if (!st->approx && !st->overflow) {
      if (ovf) st->approx = st->overflow = true;
      else st->isum = r;
    }
  } else {
    st->rsum += sign * n.d;
    st->approx = true;
  }
}

void sum_step(sqlite3_context* ctx, int, sqlite3_value** argv) { sum_add(ctx, argv[0], +1); }
void sum_inverse(sqlite3_context* ctx, int, sqlite3_value** argv) { sum_add(ctx, argv[0], -1); }

void sum_value(sqlite3_context* ctx) {
  AggKind kind = *static_cast<const AggKind*>(sqlite3_user_data(ctx));
  auto* st = static_cast<SumState*>(sqlite3_aggregate_context(ctx, 0));
  int64_t cnt = st ? st->cnt : 0;
  switch (kind) {
    case AggKind::Total:
      sqlite3_result_double(ctx, st ? st->rsum : 0.0);
      return;
    case AggKind::Avg:
      if (cnt > 0) sqlite3_result_double(ctx, st->rsum / static_cast<double>(cnt));
      else sqlite3_result_null(ctx);
      return;
    case AggKind::Sum:
      if (cnt <= 0) sqlite3_result_null(ctx);
      else if (st->overflow) sqlite3_result_error(ctx, "integer overflow", -1);
      else if (st->approx) sqlite3_result_double(ctx, st->rsum);
      else sqlite3_result_int64(ctx, st->isum);
      return;
  }
}

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

std::string json_text(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace

// ------------------------------------------------------------------------------------------------------------
// Rewriting CAST for strict mode (exposed for tests)

std::string rewrite_strict_casts(const std::string& sql) { return rewrite_range(sql); }

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

  const int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
  sqlite3_create_function(db_, "safe_cast", 2, flags, nullptr, safe_cast_fn, nullptr, nullptr);
  sqlite3_create_function(db_, "strict_cast", 2, flags, nullptr, strict_cast_fn, nullptr, nullptr);
  if (opt_.strict_casts) {
    // Same names and arity as the built-ins: application functions take precedence.
    sqlite3_create_window_function(db_, "sum", 1, flags, const_cast<AggKind*>(&kSum), sum_step, sum_value,
                                   sum_value, sum_inverse, nullptr);
    sqlite3_create_window_function(db_, "avg", 1, flags, const_cast<AggKind*>(&kAvg), sum_step, sum_value,
                                   sum_value, sum_inverse, nullptr);
    sqlite3_create_window_function(db_, "total", 1, flags, const_cast<AggKind*>(&kTotal), sum_step, sum_value,
                                   sum_value, sum_inverse, nullptr);
  }

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

// ------------------------------------------------------------------------------------------------------------
// The tools

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
