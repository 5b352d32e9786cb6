// The SQL functions the SQL tool adds: safe_cast, strict_cast (strict-mode CAST), and in strict mode sum/avg/total
// that refuse non-numeric text as PostgreSQL does.
#include <sqlite3.h>

#include <charconv>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
#include <string>

#include "agent/sql_detail.h"

namespace hearth::agent::sql_detail {

namespace {

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

}  // namespace

void register_sql_functions(sqlite3* db, bool strict_aggregates) {
  const int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
  sqlite3_create_function(db, "safe_cast", 2, flags, nullptr, safe_cast_fn, nullptr, nullptr);
  sqlite3_create_function(db, "strict_cast", 2, flags, nullptr, strict_cast_fn, nullptr, nullptr);
  if (strict_aggregates) {
    // Same names and arity as the built-ins: application functions take precedence.
    sqlite3_create_window_function(db, "sum", 1, flags, const_cast<AggKind*>(&kSum), sum_step, sum_value,
                                   sum_value, sum_inverse, nullptr);
    sqlite3_create_window_function(db, "avg", 1, flags, const_cast<AggKind*>(&kAvg), sum_step, sum_value,
                                   sum_value, sum_inverse, nullptr);
    sqlite3_create_window_function(db, "total", 1, flags, const_cast<AggKind*>(&kTotal), sum_step, sum_value,
                                   sum_value, sum_inverse, nullptr);
  }
}

}  // namespace hearth::agent::sql_detail
