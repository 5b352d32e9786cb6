// Text helpers, a minimal SQL lexer, and the strict-mode CAST rewriter of the SQL tool.
#include <algorithm>
#include <cctype>
#include <cstring>
#include <optional>
#include <string_view>

#include "agent/sql_detail.h"
#include "agent/sql_tool.h"

namespace hearth::agent {

namespace sql_detail {

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

}  // namespace sql_detail

// ------------------------------------------------------------------------------------------------------------
// Rewriting CAST for strict mode (exposed for tests)

std::string rewrite_strict_casts(const std::string& sql) { return sql_detail::rewrite_range(sql); }

}  // namespace hearth::agent
