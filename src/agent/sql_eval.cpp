// Text-to-SQL grading by execution accuracy; the rules are in sql_eval.h.
#include "agent/sql_eval.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <set>

#include "agent/sql_detail.h"
#include "core/error.h"

namespace hearth::agent {

namespace {

// ---------------------------------------------------------------------------------------------------------
// Loading

std::string where(const std::string& path, size_t line) { return path + ":" + std::to_string(line) + ": "; }

const json& required(const json& obj, const char* key, const std::string& at) {
  auto it = obj.find(key);
  if (it == obj.end()) throw Error(at + "missing field '" + std::string(key) + "'");
  return *it;
}

std::string required_string(const json& obj, const char* key, const std::string& at) {
  const json& v = required(obj, key, at);
  if (!v.is_string()) throw Error(at + "field '" + std::string(key) + "' must be a string");
  return v.get<std::string>();
}

bool is_scalar(const json& v) { return v.is_null() || v.is_number() || v.is_string() || v.is_boolean(); }

SqlQuestion parse_question(const json& j, const std::string& at) {
  if (!j.is_object()) throw Error(at + "expected a JSON object");
  SqlQuestion q;
  q.id = required_string(j, "id", at);
  if (q.id.empty()) throw Error(at + "field 'id' is empty");
  q.question = required_string(j, "question", at);
  q.gold_sql = required_string(j, "gold_sql", at);

  const json& cols = required(j, "gold_columns", at);
  if (!cols.is_array()) throw Error(at + "field 'gold_columns' must be an array of strings");
  for (const json& c : cols) {
    if (!c.is_string()) throw Error(at + "field 'gold_columns' must be an array of strings");
    q.gold_columns.push_back(c.get<std::string>());
  }

  const json& rows = required(j, "gold_rows", at);
  if (!rows.is_array()) throw Error(at + "field 'gold_rows' must be an array of arrays");
  for (size_t r = 0; r < rows.size(); ++r) {
    const json& row = rows[r];
    const std::string which = "gold_rows[" + std::to_string(r) + "]";
    if (!row.is_array()) throw Error(at + "field '" + which + "' must be an array");
    // A row narrower or wider than the column list would make column matching meaningless.
    if (row.size() != q.gold_columns.size())
      throw Error(at + "field '" + which + "' has " + std::to_string(row.size()) + " values, gold_columns has " +
                  std::to_string(q.gold_columns.size()));
    std::vector<json> values;
    for (const json& v : row) {
      if (!is_scalar(v))
        throw Error(at + "field '" + which + "' holds a value that is not null, number, string or bool");
      values.push_back(v);
    }
    q.gold_rows.push_back(std::move(values));
  }

  if (auto it = j.find("row_count"); it != j.end() && !it->is_null()) {
    if (!it->is_number_integer()) throw Error(at + "field 'row_count' must be an integer");
    if (it->get<long long>() != static_cast<long long>(q.gold_rows.size()))
      throw Error(at + "field 'row_count' is " + it->dump() + " but gold_rows has " +
                  std::to_string(q.gold_rows.size()) + " rows");
  }
  if (auto it = j.find("order_matters"); it != j.end() && !it->is_null()) {
    if (!it->is_boolean()) throw Error(at + "field 'order_matters' must be true or false");
    q.order_matters = it->get<bool>();
  }
  if (auto it = j.find("expected_behavior"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) throw Error(at + "field 'expected_behavior' must be a string");
    const std::string b = it->get<std::string>();
    if (b == "answer") {
      q.expect_answer = true;
    } else if (b == "no_answer") {
      q.expect_answer = false;
    } else {
      throw Error(at + "field 'expected_behavior' is '" + b + "', expected 'answer' or 'no_answer'");
    }
  }
  if (auto it = j.find("difficulty"); it != j.end() && !it->is_null()) {
    if (!it->is_number_integer()) throw Error(at + "field 'difficulty' must be an integer");
    q.difficulty = it->get<int>();
  }
  if (auto it = j.find("category"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) throw Error(at + "field 'category' must be a string");
    q.category = it->get<std::string>();
  }
  return q;
}

// ---------------------------------------------------------------------------------------------------------
// Values

using sql_detail::trim;

// A number written plainly: optional sign, digits with at most one '.', optional exponent. strtod alone would
// also take "inf", "nan" and hex, which are names or codes in a result, not numbers.
std::optional<double> parse_number(const std::string& raw) {
  const std::string s(trim(raw));
  size_t i = 0, n = s.size();
  if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
  size_t digits = 0;
  while (i < n && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
  if (i < n && s[i] == '.') {
    ++i;
    while (i < n && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
  }
  if (digits == 0) return std::nullopt;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    size_t exp_digits = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') ++i, ++exp_digits;
    if (exp_digits == 0) return std::nullopt;
  }
  if (i != n) return std::nullopt;
  return std::strtod(s.c_str(), nullptr);
}

std::optional<double> as_number(const json& v) {
  if (v.is_boolean()) return v.get<bool>() ? 1.0 : 0.0;
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) return parse_number(v.get_ref<const std::string&>());
  return std::nullopt;
}

// ASCII base letter for a Latin-1 letter (U+00C0..U+00FF), so that "Pelé" matches "Pele" and "Müller" matches
// "Muller"; 0 when there is none (×, ÷). Other scripts and Latin Extended letters (ł, ő) are left as they are.
char latin1_base(unsigned cp) {
  static const char* const table =
      "AAAAAAACEEEEIIII"  // C0..CF  (Æ → A)
      "DNOOOOO\0OUUUUYT\0"  // D0..DF  (× none, Þ → T; ß is "ss", done by the caller)
      "aaaaaaaceeeeiiii"  // E0..EF
      "dnooooo\0ouuuuyty";  // F0..FF  (÷ none)
  if (cp < 0xC0 || cp > 0xFF) return 0;
  return table[cp - 0xC0];
}

// Trimmed, lower-case, Latin-1 accents folded: the form text values are compared in.
std::string fold_text(const std::string& raw) {
  const std::string s(trim(raw));
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    // Two-byte UTF-8 sequences C3 80..C3 BF encode U+00C0..U+00FF.
    if (c == 0xC3 && i + 1 < s.size()) {
      const unsigned char c2 = static_cast<unsigned char>(s[i + 1]);
      if (c2 >= 0x80 && c2 <= 0xBF) {
        if (c2 == 0x9F) {  // ß
          out += "ss";
          ++i;
          continue;
        }
        if (char base = latin1_base(0xC0 + (c2 - 0x80))) {
          out += static_cast<char>(base >= 'A' && base <= 'Z' ? base - 'A' + 'a' : base);
          ++i;
          continue;
        }
      }
    }
    out += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  }
  return out;
}

std::string as_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

std::string render_value(const json& v) {
  if (v.is_null()) return "NULL";
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

std::string render_row(const std::vector<json>& row) {
  json arr = json::array();
  for (const json& v : row) arr.push_back(v);
  return arr.dump();
}

// ---------------------------------------------------------------------------------------------------------
// Matching

// Maximum bipartite matching by augmenting paths (Kuhn). With a tolerance, "matches" is not transitive
// (1.000 ~ 1.009 ~ 1.018 but 1.000 !~ 1.018), so a greedy pairing can fail where a pairing exists; the
// augmenting paths find it. adj[g] lists the right-hand items left item g may pair with. Sizes are result
// rows (hundreds at most), so the O(V·E) bound is fine.
class Matcher {
 public:
  Matcher(const std::vector<std::vector<int>>& adj, size_t n_right)
      : adj_(adj), right_owner_(n_right, -1), left_match_(adj.size(), -1) {}

  // Returns the number of left items matched; unmatched() names one that was not.
  size_t run() {
    size_t matched = 0;
    // A cheap greedy pass first: with exact or near-exact data it settles almost everything.
    for (size_t g = 0; g < adj_.size(); ++g) {
      for (int r : adj_[g]) {
        if (right_owner_[r] < 0) {
          right_owner_[r] = static_cast<int>(g);
          left_match_[g] = r;
          ++matched;
          break;
        }
      }
    }
    for (size_t g = 0; g < adj_.size(); ++g) {
      if (left_match_[g] >= 0) continue;
      seen_.assign(right_owner_.size(), 0);
      if (augment(static_cast<int>(g))) ++matched;
    }
    return matched;
  }

  int first_unmatched() const {
    for (size_t g = 0; g < left_match_.size(); ++g)
      if (left_match_[g] < 0) return static_cast<int>(g);
    return -1;
  }

 private:
  bool augment(int g) {
    for (int r : adj_[g]) {
      if (seen_[r]) continue;
      seen_[r] = 1;
      if (right_owner_[r] < 0 || augment(right_owner_[r])) {
        right_owner_[r] = g;
        left_match_[g] = r;
        return true;
      }
    }
    return false;
  }

  const std::vector<std::vector<int>>& adj_;
  std::vector<int> right_owner_, left_match_;
  std::vector<char> seen_;
};

// Whether candidate column `cc` holds the same multiset of values as gold column `gc`.
bool column_matches(const SqlQuestion& q, const Candidate& c, size_t gc, size_t cc) {
  const size_t n = q.gold_rows.size();
  std::vector<std::vector<int>> adj(n);
  for (size_t g = 0; g < n; ++g)
    for (size_t r = 0; r < c.rows.size(); ++r)
      if (cc < c.rows[r].size() && values_match(c.rows[r][cc], q.gold_rows[g][gc]))
        adj[g].push_back(static_cast<int>(r));
  Matcher m(adj, c.rows.size());
  return m.run() == n;
}

bool row_matches(const std::vector<json>& gold, const std::vector<json>& cand, const std::vector<int>& mapping) {
  for (size_t gc = 0; gc < mapping.size(); ++gc) {
    const size_t cc = static_cast<size_t>(mapping[gc]);
    if (cc >= cand.size() || !values_match(cand[cc], gold[gc])) return false;
  }
  return true;
}

// The result of checking the rows under one column mapping.
struct RowCheck {
  bool as_multiset = false;  // every gold row pairs with a distinct candidate row
  bool in_order = false;     // gold row i matches candidate row i for every i
  int missing_row = -1;      // a gold row left unpaired when !as_multiset
  size_t paired = 0;         // how many gold rows were paired
};

RowCheck check_rows(const SqlQuestion& q, const Candidate& c, const std::vector<int>& mapping) {
  RowCheck rc;
  const size_t n = q.gold_rows.size();
  rc.in_order = true;
  for (size_t i = 0; i < n && rc.in_order; ++i) rc.in_order = row_matches(q.gold_rows[i], c.rows[i], mapping);
  if (rc.in_order) {
    rc.as_multiset = true;
    rc.paired = n;
    return rc;
  }
  std::vector<std::vector<int>> adj(n);
  for (size_t g = 0; g < n; ++g)
    for (size_t r = 0; r < c.rows.size(); ++r)
      if (row_matches(q.gold_rows[g], c.rows[r], mapping)) adj[g].push_back(static_cast<int>(r));
  Matcher m(adj, c.rows.size());
  rc.paired = m.run();
  rc.as_multiset = rc.paired == n;
  rc.missing_row = m.first_unmatched();
  return rc;
}

// Backtracking over gold → candidate column assignments can explode when many columns hold the same values
// (all zeros, all NULL); past this many complete assignments the grader stops and says so.
constexpr size_t kMaxAssignments = 20000;

Grade grade_answer(const SqlQuestion& q, const Candidate& c) {
  if (!c.answered) return {false, "no final answer"};
  if (!c.columns) return {false, "no query result"};
  const size_t n = q.gold_rows.size();
  if (c.rows.size() != n) return {false, std::to_string(c.rows.size()) + (c.rows.size() == 1 ? " row" : " rows") +
                                             ", expected " + std::to_string(n)};
  // Nothing to map when there are no rows: an empty result is the answer.
  if (n == 0) return {true, "ok"};

  const size_t ncols = q.gold_columns.size();
  const size_t ccols = c.columns->size();
  for (const auto& row : c.rows)
    if (row.size() != ccols) return {false, "candidate row width differs from its column count"};

  // Candidates for each gold column: candidate columns with the same multiset of values.
  std::vector<std::vector<int>> options(ncols);
  for (size_t gc = 0; gc < ncols; ++gc) {
    for (size_t cc = 0; cc < ccols; ++cc)
      if (column_matches(q, c, gc, cc)) options[gc].push_back(static_cast<int>(cc));
    if (options[gc].empty()) return {false, "no column matches gold column '" + q.gold_columns[gc] + "'"};
  }

  // Most constrained gold columns first, so dead ends show early.
  std::vector<size_t> order(ncols);
  for (size_t i = 0; i < ncols; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return options[a].size() < options[b].size(); });

  std::vector<int> mapping(ncols, -1);
  std::vector<char> used(ccols, 0);
  size_t tried = 0;
  bool order_only = false;  // some mapping matched the rows as a multiset but not in order
  RowCheck best;
  std::vector<int> best_mapping;
  bool found = false, gave_up = false;

  std::function<void(size_t)> search = [&](size_t k) {
    if (found || gave_up) return;
    if (k == ncols) {
      if (++tried > kMaxAssignments) {
        gave_up = true;
        return;
      }
      RowCheck rc = check_rows(q, c, mapping);
      if (q.order_matters ? rc.in_order : rc.as_multiset) {
        found = true;
        return;
      }
      if (rc.as_multiset) order_only = true;
      if (best_mapping.empty() || rc.paired > best.paired) {
        best = rc;
        best_mapping = mapping;
      }
      return;
    }
    const size_t gc = order[k];
    for (int cc : options[gc]) {
      if (used[cc]) continue;
      used[cc] = 1;
      mapping[gc] = cc;
      search(k + 1);
      mapping[gc] = -1;
      used[cc] = 0;
      if (found || gave_up) return;
    }
  };
  search(0);

  if (found) return {true, "ok"};
  if (order_only) return {false, "order differs"};
  if (gave_up) return {false, "too many ways to match columns (" + std::to_string(kMaxAssignments) + " tried)"};
  if (best_mapping.empty()) return {false, "no distinct candidate column for each gold column"};
  if (best.missing_row >= 0)
    return {false, "rows differ: gold row " + render_row(q.gold_rows[static_cast<size_t>(best.missing_row)]) +
                       " not found"};
  return {false, "rows differ"};
}

// ---------------------------------------------------------------------------------------------------------
// "The data is not there" replies

// Words that, alone, say something is absent or unknown. Matched as whole words so that "Toronto" or
// "casino" do not count as "no".
const std::set<std::string>& absence_words() {
  static const std::set<std::string> words = {
      "not",     "no",      "none",    "nothing",  "nobody",   "never",  "cannot", "unavailable", "missing",
      "absent",  "unknown", "neither", "lacks",    "lack",     "unrecorded",
      // the same negations typed without an apostrophe
      "dont",    "doesnt",  "didnt",   "cant",     "isnt",     "wasnt",  "arent",  "werent", "hasnt", "havent",
      "wont"};
  return words;
}

bool says_absent(const std::string& reply) {
  // Typographic apostrophe (U+2019, E2 80 99) → ASCII, so "didn’t" reads as "didn't". Copied char by char:
  // GCC 12 at -O3 warns (-Wrestrict, falsely) on std::string::replace here.
  std::string text;
  text.reserve(reply.size());
  for (size_t i = 0; i < reply.size(); ++i) {
    if (reply.compare(i, 3, "\xE2\x80\x99") == 0) {
      text += '\'';
      i += 2;
    } else {
      text += reply[i];
    }
  }
  text = fold_text(text);
  std::string word;
  auto check = [&]() {
    bool hit = false;
    if (!word.empty()) {
      hit = absence_words().count(word) > 0 || (word.size() > 3 && word.compare(word.size() - 3, 3, "n't") == 0);
    }
    word.clear();
    return hit;
  };
  for (char ch : text) {
    if ((ch >= 'a' && ch <= 'z') || ch == '\'') {
      word += ch;
    } else if (check()) {
      return true;
    }
  }
  return check();
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------

std::vector<SqlQuestion> load_questions(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open");
  std::vector<SqlQuestion> out;
  std::set<std::string> ids;
  std::string line;
  size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (trim(line).empty()) continue;
    const std::string at = where(path, lineno);
    json j;
    try {
      j = json::parse(line);
    } catch (const json::parse_error& e) {
      throw Error(at + "malformed JSON: " + e.what());
    }
    SqlQuestion q = parse_question(j, at);
    if (!ids.insert(q.id).second) throw Error(at + "duplicate id '" + q.id + "'");
    out.push_back(std::move(q));
  }
  return out;
}

bool values_match(const json& candidate, const json& gold) {
  if (gold.is_null() || candidate.is_null()) return gold.is_null() && candidate.is_null();
  const std::optional<double> a = as_number(candidate), b = as_number(gold);
  if (a && b) return std::fabs(*a - *b) <= std::max(0.01, 1e-4 * std::fabs(*b));
  if (!is_scalar(candidate) || !is_scalar(gold)) return candidate == gold;
  // One side is text that is not a number: compare both as text ("1954" never equals "1954 (Switzerland)").
  return fold_text(as_text(candidate)) == fold_text(as_text(gold));
}

Grade grade(const SqlQuestion& q, const Candidate& c) {
  if (q.expect_answer) return grade_answer(q, c);
  if (!c.answered) return {false, "no final answer"};
  if (!says_absent(c.reply)) return {false, "reply does not say the data is missing"};
  return {true, "ok"};
}

std::string reply_for_rows(const std::vector<std::string>& columns, const std::vector<std::vector<json>>& rows) {
  if (rows.empty()) return "No rows: the database has no data for this question.";
  constexpr size_t kShown = 20;
  std::string out;
  // Appended piece by piece here and below: GCC 12 at -O3 warns (-Wrestrict, falsely) on
  // `"literal" + std::string` in this function.
  for (size_t i = 0; i < columns.size(); ++i) {
    if (i) out += " | ";
    out += columns[i];
  }
  out += "\n";
  bool all_null = true;
  for (size_t r = 0; r < rows.size(); ++r) {
    for (const json& v : rows[r]) all_null = all_null && v.is_null();
    if (r >= kShown) continue;
    for (size_t i = 0; i < rows[r].size(); ++i) {
      if (i) out += " | ";
      out += render_value(rows[r][i]);
    }
    out += "\n";
  }
  if (rows.size() > kShown) {
    out += "(";
    out += std::to_string(rows.size() - kShown);
    out += " more rows)\n";
  }
  // A result of NULLs only (AVG over nothing) is how a gold query shows that a value is missing; say it in words
  // so that a no_answer question run with --gold reads as the right reply.
  if (all_null) out += "Every value is NULL: the database has no data for this question.\n";
  return out;
}

std::string format_report(const std::vector<EvalRow>& rows) {
  size_t id_width = 2;
  for (const EvalRow& r : rows) id_width = std::max(id_width, r.id.size());
  auto pad = [](std::string s, size_t w) {
    if (s.size() < w) s.append(w - s.size(), ' ');
    return s;
  };
  auto lpad = [](std::string s, size_t w) {
    if (s.size() < w) s.insert(0, w - s.size(), ' ');
    return s;
  };
  std::string out = pad("id", id_width) + "  result  rounds  calls  errors  seconds  reason\n";
  size_t correct = 0;
  for (const EvalRow& r : rows) {
    if (r.grade.correct) ++correct;
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.1f", r.seconds);
    std::string line = pad(r.id, id_width) + "  " + pad(r.grade.correct ? "ok" : "WRONG", 6) + "  " +
                       lpad(std::to_string(r.rounds), 6) + "  " + lpad(std::to_string(r.tool_calls), 5) + "  " +
                       lpad(std::to_string(r.tool_errors), 6) + "  " + lpad(secs, 7) + "  " +
                       (r.grade.correct ? std::string() : r.grade.reason);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  out += "accuracy: ";
  out += std::to_string(correct) + "/" + std::to_string(rows.size()) + "\n";
  return out;
}

}  // namespace hearth::agent
