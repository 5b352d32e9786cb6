#include "runtime/grammar.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdio>
#include <map>
#include <mutex>
#include <unordered_map>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace hearth::runtime {

// Named (not anonymous) because Grammar, defined below with external linkage, has members of these types.
namespace grammar_detail {

constexpr uint32_t kMaxCodePoint = 0x10FFFF;

// A set of Unicode code points: sorted, disjoint, non-adjacent ranges, plus a bitmap for ASCII (the case
// every walk hits most).
struct CharSet {
  std::vector<std::pair<uint32_t, uint32_t>> ranges;
  uint64_t ascii[2] = {0, 0};

  // Sorts and merges `ranges`, then rebuilds the bitmap.
  void normalize() {
    std::sort(ranges.begin(), ranges.end());
    std::vector<std::pair<uint32_t, uint32_t>> merged;
    for (const auto& r : ranges) {
      if (!merged.empty() && r.first <= merged.back().second + 1)
        merged.back().second = std::max(merged.back().second, r.second);
      else
        merged.push_back(r);
    }
    ranges = std::move(merged);
    ascii[0] = ascii[1] = 0;
    for (const auto& r : ranges)
      for (uint32_t c = r.first; c <= std::min<uint32_t>(r.second, 127); ++c) ascii[c >> 6] |= uint64_t(1) << (c & 63);
  }
  bool contains(uint32_t c) const {
    if (c < 128) return (ascii[c >> 6] >> (c & 63)) & 1;
    return intersects(c, c);
  }
  bool intersects(uint32_t lo, uint32_t hi) const {
    auto it = std::lower_bound(ranges.begin(), ranges.end(), lo,
                               [](const std::pair<uint32_t, uint32_t>& r, uint32_t v) { return r.second < v; });
    return it != ranges.end() && it->first <= hi;
  }
  // Adds `o`; returns whether anything was new.
  bool merge(const CharSet& o) {
    if (o.ranges.empty()) return false;
    const auto before = ranges;
    ranges.insert(ranges.end(), o.ranges.begin(), o.ranges.end());
    normalize();
    return ranges != before;
  }
  CharSet complement() const {
    CharSet out;
    uint32_t next = 0;
    for (const auto& r : ranges) {
      if (r.first > next) out.ranges.push_back({next, r.first - 1});
      next = r.second + 1;
    }
    if (next <= kMaxCodePoint) out.ranges.push_back({next, kMaxCodePoint});
    out.normalize();
    return out;
  }
};

enum class Kind : uint8_t { End, Chars, Ref, Token };

// One grammar element. Chars: arg = index of a CharSet. Ref: arg = rule id. Token: arg = token id.
// End closes an alternative.
struct Elem {
  Kind kind;
  uint32_t arg;
};

}  // namespace grammar_detail

using grammar_detail::CharSet;
using grammar_detail::Elem;
using grammar_detail::Kind;

// The compiled form: every alternative of every rule laid out in one array, each terminated by End. A
// "position" is an index into `elems`.
struct Grammar {
  std::vector<Elem> elems;
  std::vector<uint32_t> owner;                 // rule that each position belongs to
  std::vector<std::vector<uint32_t>> alts;     // rule -> start positions of its alternatives
  std::vector<std::string> names;              // rule names (for messages)
  std::vector<CharSet> sets;
  std::vector<CharSet> follow;                 // rule -> characters that may come right after it ends
  uint32_t root = 0;

  // Mask caches, one per TokenIndex this grammar has been used with (memoisation only: the grammar itself
  // never changes, so sharing a const Grammar stays safe).
  mutable std::mutex mu;
  mutable std::vector<std::pair<uint64_t, std::shared_ptr<MaskCache>>> caches;
  std::shared_ptr<MaskCache> cache_for(const TokenIndex& idx) const;
};

// ------------------------------------------------------------------------------------------------------
// GBNF parsing

namespace {

std::string describe_cp(uint32_t c) {
  if (c >= 0x20 && c < 0x7F) return std::string("'") + char(c) + "'";
  char buf[16];
  std::snprintf(buf, sizeof buf, "U+%04X", c);
  return buf;
}

// Decodes one UTF-8 character of `s` at `i`; returns its length, or 0 when the bytes are not valid UTF-8.
size_t decode_utf8(std::string_view s, size_t i, uint32_t& cp) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  size_t n;
  uint32_t min;
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  } else if ((b0 & 0xE0) == 0xC0) {
    n = 2, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    n = 3, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    n = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > grammar_detail::kMaxCodePoint || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

// Rules as they are parsed: rule -> alternatives -> elements (no End markers yet).
struct Builder {
  std::vector<std::string> names;
  std::unordered_map<std::string, uint32_t> ids;
  std::vector<std::vector<std::vector<Elem>>> rules;
  std::vector<bool> defined;
  std::vector<size_t> first_use;  // source offset of the first reference (for "undefined rule")
  std::vector<CharSet> sets;
  std::map<std::vector<std::pair<uint32_t, uint32_t>>, uint32_t> set_ids;

  uint32_t rule_id(const std::string& name, size_t at) {
    auto [it, fresh] = ids.try_emplace(name, uint32_t(names.size()));
    if (fresh) {
      names.push_back(name);
      rules.emplace_back();
      defined.push_back(false);
      first_use.push_back(at);
    }
    return it->second;
  }
  // A helper rule for a group or a repetition, named after the rule it was written in.
  uint32_t aux(const std::string& base, std::vector<std::vector<Elem>> alternatives) {
    std::string name;
    for (size_t k = names.size();; ++k) {
      name = base + "_" + std::to_string(k);
      if (!ids.count(name)) break;
    }
    const uint32_t id = rule_id(name, 0);
    rules[id] = std::move(alternatives);
    defined[id] = true;
    return id;
  }
  uint32_t set_id(CharSet cs) {
    cs.normalize();
    auto [it, fresh] = set_ids.try_emplace(cs.ranges, uint32_t(sets.size()));
    if (fresh) sets.push_back(std::move(cs));
    return it->second;
  }
  Elem chars(uint32_t lo, uint32_t hi) {
    CharSet cs;
    cs.ranges.push_back({lo, hi});
    return {Kind::Chars, set_id(std::move(cs))};
  }
};

constexpr uint32_t kUnbounded = UINT32_MAX;
constexpr uint32_t kMaxRepeat = 10000;  // {m,n} bounds beyond this are rejected (each count costs a rule)

class Parser {
 public:
  Parser(std::string_view src, Builder& b) : s_(src), b_(b) {}

  void parse() {
    skip(true);
    while (!eof()) {
      const size_t at = i_;
      const std::string name = word();
      if (name.empty()) fail("expected a rule name", at);
      skip(false);
      if (s_.substr(i_, 3) != "::=") fail("expected '::=' after rule name '" + name + "'", i_);
      i_ += 3;
      skip(true);
      auto alternatives = alternates(name, false);
      const uint32_t id = b_.rule_id(name, at);
      if (b_.defined[id]) fail("rule '" + name + "' is defined twice", at);
      b_.rules[id] = std::move(alternatives);
      b_.defined[id] = true;
      skip(false);
      if (!eof() && s_[i_] != '\n') fail("unexpected " + describe_cp(uint8_t(s_[i_])) + " in rule '" + name + "'", i_);
      skip(true);
    }
  }

  [[noreturn]] void fail(const std::string& msg, size_t at) const {
    size_t line = 1, col = 1;
    for (size_t k = 0; k < at && k < s_.size(); ++k) {
      if (s_[k] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    throw Error("GBNF parse error at line " + std::to_string(line) + ", column " + std::to_string(col) + ": " + msg);
  }

 private:
  bool eof() const { return i_ >= s_.size(); }
  static bool is_word(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  }
  std::string word() {
    const size_t start = i_;
    while (!eof() && is_word(s_[i_])) ++i_;
    return std::string(s_.substr(start, i_ - start));
  }
  // Skips blanks and comments; newlines too when `newlines` (inside parentheses, after '|', between rules).
  void skip(bool newlines) {
    while (!eof()) {
      const char c = s_[i_];
      if (c == ' ' || c == '\t' || c == '\r' || (newlines && c == '\n')) {
        ++i_;
      } else if (c == '#') {
        while (!eof() && s_[i_] != '\n') ++i_;
      } else {
        break;
      }
    }
  }

  std::vector<std::vector<Elem>> alternates(const std::string& rule, bool nested) {
    std::vector<std::vector<Elem>> out;
    out.push_back(sequence(rule, nested));
    for (;;) {
      const size_t save = i_;
      skip(true);  // a '|' may start the next line
      if (eof() || s_[i_] != '|') {
        i_ = save;
        return out;
      }
      ++i_;
      skip(true);
      out.push_back(sequence(rule, nested));
    }
  }

  std::vector<Elem> sequence(const std::string& rule, bool nested) {
    std::vector<Elem> seq;
    size_t last = SIZE_MAX;  // where the most recent symbol starts (what a postfix operator applies to)
    for (;;) {
      skip(nested);
      if (eof()) break;
      const size_t at = i_;
      const char c = s_[i_];
      if (c == '"') {
        last = seq.size();
        literal(seq);
      } else if (c == '[') {
        last = seq.size();
        seq.push_back({Kind::Chars, b_.set_id(char_class())});
      } else if (c == '.') {
        ++i_;
        last = seq.size();
        seq.push_back(b_.chars(0, grammar_detail::kMaxCodePoint));
      } else if (c == '<' && i_ + 1 < s_.size() && s_[i_ + 1] == '[') {
        last = seq.size();
        seq.push_back({Kind::Token, special_token()});
      } else if (c == '(') {
        ++i_;
        skip(true);
        auto inner = alternates(rule, true);
        skip(true);
        if (eof() || s_[i_] != ')') fail("expected ')' to close the group opened here", at);
        ++i_;
        last = seq.size();
        seq.push_back({Kind::Ref, b_.aux(rule, std::move(inner))});
      } else if (is_word(c)) {
        last = seq.size();
        const std::string name = word();
        seq.push_back({Kind::Ref, b_.rule_id(name, at)});
      } else if (c == '*' || c == '+' || c == '?' || c == '{') {
        if (last == SIZE_MAX || last == seq.size()) fail(std::string("nothing to repeat before '") + c + "'", at);
        uint32_t min = 0, max = kUnbounded;
        ++i_;
        if (c == '+') {
          min = 1;
        } else if (c == '?') {
          max = 1;
        } else if (c == '{') {
          skip(false);
          min = number(at);
          skip(false);
          if (!eof() && s_[i_] == ',') {
            ++i_;
            skip(false);
            if (!eof() && s_[i_] != '}') max = number(at);
          } else {
            max = min;
          }
          skip(false);
          if (eof() || s_[i_] != '}') fail("expected '}' to close the repetition", at);
          ++i_;
          if (max != kUnbounded && max < min) fail("repetition {m,n} with n < m", at);
        }
        repeat(seq, last, min, max, rule);
      } else {
        break;
      }
    }
    return seq;
  }

  uint32_t number(size_t at) {
    const size_t start = i_;
    uint64_t v = 0;
    while (!eof() && s_[i_] >= '0' && s_[i_] <= '9') {
      v = v * 10 + uint64_t(s_[i_] - '0');
      if (v > kMaxRepeat) fail("repetition count larger than " + std::to_string(kMaxRepeat), at);
      ++i_;
    }
    if (i_ == start) fail("expected a number in the repetition", at);
    return uint32_t(v);
  }

  // Replaces seq[start..] (one symbol) by its repetition between min and max times.
  void repeat(std::vector<Elem>& seq, size_t start, uint32_t min, uint32_t max, const std::string& rule) {
    std::vector<Elem> item(seq.begin() + std::ptrdiff_t(start), seq.end());
    seq.resize(start);
    const Elem unit = item.size() == 1 ? item[0] : Elem{Kind::Ref, b_.aux(rule, {item})};
    for (uint32_t k = 0; k < min; ++k) seq.push_back(unit);
    if (max == kUnbounded) {
      // star ::= unit star | ""   (the tail reference costs no stack depth, see closure())
      const uint32_t star = b_.aux(rule, {});
      b_.rules[star] = {{unit, {Kind::Ref, star}}, {}};
      seq.push_back({Kind::Ref, star});
    } else if (max > min) {
      // opt_1 ::= unit | "";  opt_k ::= unit opt_(k-1) | ""
      uint32_t prev = UINT32_MAX;
      for (uint32_t k = 0; k < max - min; ++k) {
        std::vector<Elem> alt{unit};
        if (prev != UINT32_MAX) alt.push_back({Kind::Ref, prev});
        prev = b_.aux(rule, {alt, {}});
      }
      seq.push_back({Kind::Ref, prev});
    }
  }

  uint32_t hex(size_t digits, size_t at) {
    uint32_t v = 0;
    for (size_t k = 0; k < digits; ++k) {
      if (eof()) fail("incomplete hexadecimal escape", at);
      const char c = s_[i_++];
      uint32_t d;
      if (c >= '0' && c <= '9') d = uint32_t(c - '0');
      else if (c >= 'a' && c <= 'f') d = uint32_t(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') d = uint32_t(c - 'A' + 10);
      else fail("invalid hexadecimal digit in escape", at);
      v = v * 16 + d;
    }
    return v;
  }

  // One character of a literal or class: an escape or a UTF-8 character.
  uint32_t character() {
    const size_t at = i_;
    if (s_[i_] == '\\') {
      ++i_;
      if (eof()) fail("incomplete escape", at);
      const char e = s_[i_++];
      uint32_t cp;
      switch (e) {
        case 'n': return '\n';
        case 'r': return '\r';
        case 't': return '\t';
        case '\\': case '"': case '\'': case '[': case ']': case '-': case '/': case '^': return uint8_t(e);
        case 'x': cp = hex(2, at); break;
        case 'u': cp = hex(4, at); break;
        case 'U': cp = hex(8, at); break;
        default: fail(std::string("unknown escape '\\") + e + "'", at);
      }
      if (cp > grammar_detail::kMaxCodePoint || (cp >= 0xD800 && cp <= 0xDFFF))
        fail("escape is not a Unicode scalar value", at);
      return cp;
    }
    uint32_t cp;
    const size_t n = decode_utf8(s_, i_, cp);
    if (n == 0) fail("invalid UTF-8 in grammar text", at);
    i_ += n;
    return cp;
  }

  void literal(std::vector<Elem>& seq) {
    const size_t at = i_++;
    for (;;) {
      if (eof()) fail("unterminated string literal", at);
      if (s_[i_] == '"') break;
      if (s_[i_] == '\n') fail("newline inside a string literal (write \\n)", i_);
      const uint32_t c = character();
      seq.push_back(b_.chars(c, c));
    }
    ++i_;
  }

  CharSet char_class() {
    const size_t at = i_++;
    bool negated = false;
    if (!eof() && s_[i_] == '^') {
      negated = true;
      ++i_;
    }
    CharSet cs;
    for (;;) {
      if (eof()) fail("unterminated character class", at);
      if (s_[i_] == ']') break;
      if (s_[i_] == '\n') fail("newline inside a character class", i_);
      const size_t item = i_;
      const uint32_t lo = character();
      uint32_t hi = lo;
      if (i_ + 1 < s_.size() && s_[i_] == '-' && s_[i_ + 1] != ']') {
        ++i_;
        hi = character();
        if (hi < lo) fail("character range " + describe_cp(lo) + "-" + describe_cp(hi) + " is reversed", item);
      }
      cs.ranges.push_back({lo, hi});
    }
    ++i_;
    cs.normalize();
    if (negated) cs = cs.complement();
    if (cs.ranges.empty()) fail("character class matches nothing", at);
    return cs;
  }

  uint32_t special_token() {
    const size_t at = i_;
    i_ += 2;
    const size_t start = i_;
    uint64_t v = 0;
    while (!eof() && s_[i_] >= '0' && s_[i_] <= '9' && v <= INT32_MAX) v = v * 10 + uint64_t(s_[i_++] - '0');
    if (i_ == start || v > INT32_MAX) fail("expected a token id in <[ID]>", at);
    if (s_.substr(i_, 2) != "]>") fail("expected ']>' to close the token terminal", at);
    i_ += 2;
    return uint32_t(v);
  }

  std::string_view s_;
  size_t i_ = 0;
  Builder& b_;
};

// Nullability, left-recursion check, then FIRST and FOLLOW character sets (FOLLOW limits which subtrees the
// mask cache must revisit when a rule ends in the middle of a token).
void analyze(Grammar& g) {
  const size_t n = g.alts.size();
  std::vector<char> nullable(n, 0);
  auto rest_nullable = [&](uint32_t p) {
    for (;; ++p) {
      const Elem& e = g.elems[p];
      if (e.kind == Kind::End) return true;
      if (e.kind != Kind::Ref || !nullable[e.arg]) return false;
    }
  };
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < n; ++r)
      if (!nullable[r])
        for (uint32_t a : g.alts[r])
          if (rest_nullable(a)) {
            nullable[r] = 1;
            changed = true;
            break;
          }
  }

  // Rules reachable from each rule without consuming input; a cycle there would expand forever.
  std::vector<std::vector<uint32_t>> left(n);
  for (size_t r = 0; r < n; ++r)
    for (uint32_t a : g.alts[r])
      for (uint32_t p = a; g.elems[p].kind == Kind::Ref; ++p) {
        left[r].push_back(g.elems[p].arg);
        if (!nullable[g.elems[p].arg]) break;
      }
  std::vector<uint8_t> color(n, 0);
  std::vector<uint32_t> path;
  auto dfs = [&](auto& self, uint32_t r) -> void {
    color[r] = 1;
    path.push_back(r);
    for (uint32_t s : left[r]) {
      if (color[s] == 1) {
        std::string cycle;
        auto it = std::find(path.begin(), path.end(), s);
        for (; it != path.end(); ++it) cycle += g.names[*it] + " -> ";
        throw Error("grammar has left recursion (it could loop without consuming input): " + cycle + g.names[s]);
      }
      if (color[s] == 0) self(self, s);
    }
    path.pop_back();
    color[r] = 2;
  };
  for (uint32_t r = 0; r < n; ++r)
    if (color[r] == 0) dfs(dfs, r);

  // Propagates set inclusions `val[to] ⊇ val[from]` along `edges[from]` until nothing changes.
  auto propagate = [&](std::vector<CharSet>& val, const std::vector<std::vector<uint32_t>>& edges) {
    std::vector<uint32_t> work(n);
    std::vector<char> queued(n, 1);
    for (uint32_t r = 0; r < n; ++r) work[r] = r;
    while (!work.empty()) {
      const uint32_t from = work.back();
      work.pop_back();
      queued[from] = 0;
      for (uint32_t to : edges[from])
        if (to != from && val[to].merge(val[from]) && !queued[to]) {
          queued[to] = 1;
          work.push_back(to);
        }
    }
  };

  // FIRST: characters that can start each rule.
  std::vector<CharSet> first(n);
  std::vector<std::vector<uint32_t>> first_edges(n);  // first[r] ⊇ first[s] for s in left[r]
  for (size_t r = 0; r < n; ++r) {
    for (uint32_t a : g.alts[r])
      for (uint32_t p = a;; ++p) {
        const Elem& e = g.elems[p];
        if (e.kind == Kind::Chars) first[r].merge(g.sets[e.arg]);
        if (e.kind != Kind::Ref || !nullable[e.arg]) break;
      }
    for (uint32_t s : left[r]) first_edges[s].push_back(uint32_t(r));
  }
  propagate(first, first_edges);

  // FOLLOW: for `A ::= ... B rest`, FIRST(rest) follows B, and so does FOLLOW(A) when rest can be empty.
  g.follow.assign(n, CharSet{});
  std::vector<std::vector<uint32_t>> follow_edges(n);  // follow[B] ⊇ follow[A]
  for (size_t r = 0; r < n; ++r)
    for (uint32_t a : g.alts[r])
      for (uint32_t p = a; g.elems[p].kind != Kind::End; ++p) {
        if (g.elems[p].kind != Kind::Ref) continue;
        const uint32_t b = g.elems[p].arg;
        for (uint32_t q = p + 1;; ++q) {
          const Elem& e = g.elems[q];
          if (e.kind == Kind::End) {
            follow_edges[r].push_back(b);
            break;
          }
          if (e.kind == Kind::Chars) {
            g.follow[b].merge(g.sets[e.arg]);
            break;
          }
          if (e.kind == Kind::Token) break;
          g.follow[b].merge(first[e.arg]);
          if (!nullable[e.arg]) break;
        }
      }
  propagate(g.follow, follow_edges);
}

}  // namespace

std::shared_ptr<const Grammar> compile_gbnf(std::string_view text, std::string_view root) {
  Builder b;
  Parser parser(text, b);
  parser.parse();
  for (size_t r = 0; r < b.names.size(); ++r)
    if (!b.defined[r]) parser.fail("undefined rule '" + b.names[r] + "'", b.first_use[r]);
  auto it = b.ids.find(std::string(root));
  if (it == b.ids.end() || !b.defined[it->second])
    throw Error("GBNF: the root rule '" + std::string(root) + "' is not defined");

  auto g = std::make_shared<Grammar>();
  g->names = b.names;
  g->sets = std::move(b.sets);
  g->root = it->second;
  g->alts.resize(b.rules.size());
  for (size_t r = 0; r < b.rules.size(); ++r)
    for (const auto& alt : b.rules[r]) {
      g->alts[r].push_back(uint32_t(g->elems.size()));
      for (const Elem& e : alt) {
        g->elems.push_back(e);
        g->owner.push_back(uint32_t(r));
      }
      g->elems.push_back({Kind::End, 0});
      g->owner.push_back(uint32_t(r));
    }
  analyze(*g);
  return g;
}

// ------------------------------------------------------------------------------------------------------
// Token index: a byte trie over every text token's piece, in preorder, so that a subtree is the index
// range [i, end[i]) and skipping a dead subtree is one assignment.

struct PosEntry;  // a mask-cache entry (below)

struct TokenIndex::Impl {
  int32_t n_vocab = 0;
  uint64_t uid = 0;            // identifies this index in grammars' cache lists (never reused)
  std::vector<uint8_t> kind;   // kNever / kText / kSpecial
  std::vector<uint32_t> text_off;
  std::string text_bytes;
  // Trie; node 0 is the root (no label).
  std::vector<uint8_t> label;
  std::vector<uint32_t> end;
  std::vector<uint32_t> tok_begin;  // tokens ending at node i: toks[tok_begin[i] .. tok_begin[i+1])
  std::vector<int32_t> toks;

  // Mask-cache entries shared by every grammar used with this index, keyed by a canonical description of the
  // grammar fragment each depends on (see signature()): the JSON string body, say, is walked once per
  // process rather than once per request's grammar. Cleared when it outgrows kSharedBudget bytes (grammars
  // keep the entries they use).
  static constexpr size_t kSharedBudget = size_t(64) << 20;
  mutable std::mutex shared_mu;
  mutable std::unordered_map<std::string, std::shared_ptr<const PosEntry>> shared;
  mutable size_t shared_bytes = 0;

  static constexpr uint8_t kNever = 0, kText = 1, kSpecial = 2;
  std::string_view text(int32_t id) const {
    return std::string_view(text_bytes).substr(text_off[size_t(id)], text_off[size_t(id) + 1] - text_off[size_t(id)]);
  }
  size_t words() const { return (size_t(n_vocab) + 63) / 64; }
  uint32_t n_nodes() const { return uint32_t(label.size()); }
};

TokenIndex::TokenIndex(const tokenizer::Tokenizer& tok) : impl_(std::make_unique<Impl>()) {
  static std::atomic<uint64_t> next_uid{1};
  Impl& ix = *impl_;
  ix.uid = next_uid++;
  ix.n_vocab = tok.n_vocab();
  ix.kind.assign(size_t(ix.n_vocab), Impl::kNever);
  ix.text_off.assign(size_t(ix.n_vocab) + 1, 0);
  using tokenizer::TokenType;
  for (int32_t id = 0; id < ix.n_vocab; ++id) {
    ix.text_off[size_t(id)] = uint32_t(ix.text_bytes.size());
    const TokenType t = tok.type(id);
    if (t == TokenType::Control || t == TokenType::UserDefined) {
      ix.kind[size_t(id)] = Impl::kSpecial;
    } else if (t != TokenType::Unused) {
      const std::string piece = tok.token_to_piece(id, false);
      if (!piece.empty()) {
        ix.kind[size_t(id)] = Impl::kText;
        ix.text_bytes += piece;
      }
    }
  }
  ix.text_off[size_t(ix.n_vocab)] = uint32_t(ix.text_bytes.size());

  std::vector<int32_t> order;
  for (int32_t id = 0; id < ix.n_vocab; ++id)
    if (ix.kind[size_t(id)] == Impl::kText) order.push_back(id);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    const auto ta = ix.text(a), tb = ix.text(b);
    return ta != tb ? ta < tb : a < b;
  });

  // Sorted pieces: each shares a prefix with the previous one (the current trie path); a piece that is a
  // prefix of another sorts first, so tokens attach to nodes in preorder.
  ix.label.push_back(0);
  ix.end.push_back(0);
  std::vector<uint32_t> path{0};
  std::vector<uint32_t> count{0};
  std::string_view prev;
  for (int32_t id : order) {
    const std::string_view p = ix.text(id);
    size_t l = 0;
    while (l < p.size() && l < prev.size() && p[l] == prev[l]) ++l;
    while (path.size() - 1 > l) {
      ix.end[path.back()] = uint32_t(ix.label.size());
      path.pop_back();
    }
    for (size_t k = l; k < p.size(); ++k) {
      path.push_back(uint32_t(ix.label.size()));
      ix.label.push_back(uint8_t(p[k]));
      ix.end.push_back(0);
      count.push_back(0);
    }
    ++count[path.back()];
    ix.toks.push_back(id);
    prev = p;
  }
  while (!path.empty()) {
    ix.end[path.back()] = uint32_t(ix.label.size());
    path.pop_back();
  }
  ix.tok_begin.assign(ix.label.size() + 1, 0);
  for (size_t i = 0; i < ix.label.size(); ++i) ix.tok_begin[i + 1] = ix.tok_begin[i] + count[i];
}

TokenIndex::~TokenIndex() = default;
int32_t TokenIndex::n_vocab() const { return impl_->n_vocab; }
bool TokenIndex::is_special(int32_t id) const {
  return id >= 0 && id < impl_->n_vocab && impl_->kind[size_t(id)] == Impl::kSpecial;
}
std::string_view TokenIndex::text(int32_t id) const {
  if (id < 0 || id >= impl_->n_vocab) return {};
  return impl_->text(id);
}

// ------------------------------------------------------------------------------------------------------
// Stack sets. A Walker interns stacks as (position, parent) nodes, so a stack is one integer and a set of
// stacks (a "state") is a sorted vector, itself interned, with memoised transitions per code point. Node 0
// is the empty stack: "the grammar is complete" in a full walk, "the starting rule ended" in a precompute.

namespace {

enum class Step : uint8_t { Bad, Partial, Done };

// Incremental UTF-8 decoder over trie bytes.
struct Utf8 {
  uint32_t cp = 0;
  uint8_t need = 0;  // continuation bytes still expected
  uint8_t len = 0;   // length of the current character

  // Feeds one byte. Done: lo is the code point. Partial: [lo, hi] are the code points still possible.
  Step feed(uint8_t b, uint32_t& lo, uint32_t& hi) {
    if (need == 0) {
      if (b < 0x80) {
        lo = hi = b;
        return Step::Done;
      }
      if (b >= 0xC2 && b <= 0xDF) cp = b & 0x1F, need = 1, len = 2;
      else if (b >= 0xE0 && b <= 0xEF) cp = b & 0x0F, need = 2, len = 3;
      else if (b >= 0xF0 && b <= 0xF4) cp = b & 0x07, need = 3, len = 4;
      else return Step::Bad;
    } else {
      if ((b & 0xC0) != 0x80) return Step::Bad;
      cp = (cp << 6) | (b & 0x3F);
      --need;
    }
    static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    const unsigned shift = 6u * need;
    lo = std::max(cp << shift, kMin[len]);
    hi = std::min((cp << shift) | ((1u << shift) - 1), grammar_detail::kMaxCodePoint);
    // Surrogates are not characters: trim them off the ends of the range.
    if (hi >= 0xD800 && hi <= 0xDFFF) hi = 0xD7FF;
    if (lo >= 0xD800 && lo <= 0xDFFF) lo = 0xE000;
    if (lo > hi) return Step::Bad;
    return need == 0 ? Step::Done : Step::Partial;
  }
};

constexpr int32_t kDead = -1, kUnknown = -2, kMixed = -3;

class Walker {
 public:
  explicit Walker(const Grammar& g) : g_(g) { nodes_.push_back({UINT32_MAX, 0}); }

  uint32_t node(uint32_t pos, uint32_t parent) {
    const uint64_t key = (uint64_t(pos) << 32) | parent;
    auto [it, fresh] = node_ids_.try_emplace(key, uint32_t(nodes_.size()));
    if (fresh) nodes_.push_back({pos, parent});
    return it->second;
  }

  // Adds to `out` every stack with a terminal on top reachable by continuing at `pos` with return stack
  // `parent`. A reference whose next element is End pushes no return frame (tail call), so right-recursive
  // loops such as `x* ::= x x* | ""` run in constant stack depth.
  void closure(uint32_t pos, uint32_t parent, std::vector<uint32_t>& out) {
    const Elem e = g_.elems[pos];
    switch (e.kind) {
      case Kind::Chars:
      case Kind::Token:
        out.push_back(node(pos, parent));
        return;
      case Kind::End:
        if (parent == 0) {
          out.push_back(0);
        } else {
          const Node up = nodes_[parent];
          closure(up.pos, up.parent, out);
        }
        return;
      case Kind::Ref: {
        const uint32_t ret = g_.elems[pos + 1].kind == Kind::End ? parent : node(pos + 1, parent);
        for (uint32_t a : g_.alts[e.arg]) closure(a, ret, out);
        return;
      }
    }
  }

  // Interns a set of stacks (sorted and deduplicated here); kDead when empty.
  int32_t intern(std::vector<uint32_t>& stacks) {
    if (stacks.empty()) return kDead;
    std::sort(stacks.begin(), stacks.end());
    stacks.erase(std::unique(stacks.begin(), stacks.end()), stacks.end());
    auto [it, fresh] = state_ids_.try_emplace(stacks, int32_t(states_.size()));
    if (fresh) {
      states_.push_back(stacks);
      ascii_.resize(ascii_.size() + 128, kUnknown);
      info_.push_back({stacks.front() == 0, stacks.size() == 1 && stacks[0] == 0});
    }
    return it->second;
  }

  // The state after consuming code point `cp` (memoised).
  int32_t next(int32_t s, uint32_t cp) {
    if (cp < 128) return next_ascii(s, cp);
    const int32_t wide = wide_next(s);
    if (wide != kMixed) return wide;
    const uint64_t key = (uint64_t(uint32_t(s)) << 21) | cp;
    auto it = other_.find(key);
    if (it != other_.end()) return it->second;
    const int32_t r = compute_next(s, cp);
    other_.emplace(key, r);
    return r;
  }
  int32_t next_ascii(int32_t s, uint32_t c) {
    const size_t slot = size_t(s) * 128 + c;
    if (ascii_[slot] == kUnknown) {
      const int32_t r = compute_next(s, c);
      ascii_[slot] = r;
    }
    return ascii_[slot];
  }

  // Whether some character in [lo, hi] (not ASCII) could be consumed from state s.
  bool viable(int32_t s, uint32_t lo, uint32_t hi) {
    const int32_t wide = wide_next(s);
    if (wide != kMixed) return wide != kDead;
    for (uint32_t k : states_[size_t(s)]) {
      if (k == 0) continue;
      const Elem& e = g_.elems[nodes_[k].pos];
      if (e.kind == Kind::Chars && g_.sets[e.arg].intersects(lo, hi)) return true;
    }
    return false;
  }

  bool has_empty(int32_t s) const { return info_[size_t(s)].has_empty; }
  bool only_empty(int32_t s) const { return info_[size_t(s)].only_empty; }
  // The state without its empty stack.
  int32_t drop_empty(int32_t s) {
    if (info_[size_t(s)].drop == kUnknown) {
      std::vector<uint32_t> v(states_[size_t(s)].begin() + 1, states_[size_t(s)].end());
      const int32_t r = intern(v);
      info_[size_t(s)].drop = r;
    }
    return info_[size_t(s)].drop;
  }

  const std::vector<uint32_t>& stacks(int32_t s) const { return states_[size_t(s)]; }
  uint32_t top(uint32_t stack) const { return nodes_[stack].pos; }
  uint32_t below(uint32_t stack) const { return nodes_[stack].parent; }

  // Interns an explicit stack (bottom first, its first n positions); 0 for the empty stack.
  uint32_t import(const std::vector<uint32_t>& st, size_t n) {
    uint32_t id = 0;
    for (size_t k = 0; k < n; ++k) id = node(st[k], id);
    return id;
  }
  std::vector<uint32_t> unpack(uint32_t id) const {
    std::vector<uint32_t> st;
    for (; id != 0; id = nodes_[id].parent) st.push_back(nodes_[id].pos);
    std::reverse(st.begin(), st.end());
    return st;
  }

  std::vector<uint32_t> scratch;  // for callers building stack lists

  // The trie walk's ancestors, by depth.
  struct Frame {
    uint32_t end;
    int32_t state;
    Utf8 dec;
  };
  std::vector<Frame> frames;

 private:
  struct Node {
    uint32_t pos, parent;
  };
  struct Info {
    bool has_empty, only_empty;
    int32_t drop = kUnknown;
    // The next state for every non-ASCII character when they all lead to the same one (every class on top
    // contains all of them or none, as inside strings), else kMixed.
    int32_t wide = kUnknown;
  };
  struct VecHash {
    size_t operator()(const std::vector<uint32_t>& v) const {
      uint64_t h = 0x9E3779B97F4A7C15ull ^ v.size();
      for (uint32_t x : v) h = (h ^ x) * 0x100000001B3ull;
      return size_t(h ^ (h >> 29));
    }
  };

  int32_t wide_next(int32_t s) {
    if (info_[size_t(s)].wide != kUnknown) return info_[size_t(s)].wide;
    bool uniform = true;
    for (uint32_t k : states_[size_t(s)]) {
      if (k == 0) continue;
      const Elem& e = g_.elems[nodes_[k].pos];
      if (e.kind != Kind::Chars) continue;
      const CharSet& cs = g_.sets[e.arg];
      if (!cs.intersects(0x80, grammar_detail::kMaxCodePoint)) continue;
      auto it = std::lower_bound(cs.ranges.begin(), cs.ranges.end(), 0x80u,
                                 [](const std::pair<uint32_t, uint32_t>& r, uint32_t v) { return r.second < v; });
      if (!(it->first <= 0x80 && it->second >= grammar_detail::kMaxCodePoint)) uniform = false;
    }
    const int32_t r = uniform ? compute_next(s, 0x80) : kMixed;
    info_[size_t(s)].wide = r;
    return r;
  }

  int32_t compute_next(int32_t s, uint32_t cp) {
    tmp_.clear();
    const std::vector<uint32_t> src = states_[size_t(s)];  // copy: closure() may grow nodes_, not states_
    for (uint32_t k : src) {
      if (k == 0) continue;
      const Node n = nodes_[k];
      const Elem& e = g_.elems[n.pos];
      if (e.kind == Kind::Chars && g_.sets[e.arg].contains(cp)) closure(n.pos + 1, n.parent, tmp_);
    }
    return intern(tmp_);
  }

  const Grammar& g_;
  std::vector<Node> nodes_;
  std::unordered_map<uint64_t, uint32_t> node_ids_;
  std::vector<std::vector<uint32_t>> states_;
  std::unordered_map<std::vector<uint32_t>, int32_t, VecHash> state_ids_;
  std::vector<int32_t> ascii_;  // state * 128 + c -> next state
  std::vector<Info> info_;
  std::unordered_map<uint64_t, int32_t> other_;
  std::vector<uint32_t> tmp_;
};

// What a precompute walk records besides the accepted tokens.
struct Resume {
  const CharSet* follow;         // characters that can follow the key's bottom frame
  std::vector<uint32_t>* nodes;  // trie nodes to re-walk from the caller's continuation
  size_t cap;                    // give up beyond this many (the matcher then uses a deeper key)
  bool overflow = false;
};

inline void set_bit(uint64_t* bits, int32_t id) { bits[size_t(id) >> 6] |= uint64_t(1) << (id & 63); }

// Walks the trie nodes [first, last) (siblings and their subtrees) from state s0 with decoder d0, setting the
// bit of every token whose bytes can be consumed. With `resume` (precompute mode) the empty stack means
// "the key's frames ended": the children of such a node whose first character may follow are recorded,
// and the walk goes on inside the frames only.
void walk(Walker& w, const TokenIndex::Impl& ix, uint32_t first, uint32_t last, int32_t s0, Utf8 d0, uint64_t* bits,
          Resume* resume) {
  auto& frames = w.frames;
  frames.clear();
  frames.push_back({last, s0, d0});
  const uint8_t* label = ix.label.data();
  const uint32_t* end = ix.end.data();
  const uint32_t* tok_begin = ix.tok_begin.data();
  uint32_t i = first;
  while (i < last) {
    while (i >= frames.back().end) frames.pop_back();
    const Walker::Frame& f = frames.back();
    const uint8_t b = label[i];
    Utf8 d = f.dec;
    int32_t ns;
    bool done = true;
    if (b < 0x80 && d.need == 0) {  // the common case: one ASCII character
      ns = w.next_ascii(f.state, b);
    } else {
      uint32_t lo = 0, hi = 0;
      const Step st = d.feed(b, lo, hi);
      if (st == Step::Bad) {
        i = end[i];
        continue;
      }
      done = st == Step::Done;
      ns = done ? w.next(f.state, lo) : w.viable(f.state, lo, hi) ? f.state : kDead;
    }
    if (ns == kDead) {
      i = end[i];
      continue;
    }
    for (uint32_t t = tok_begin[i]; t < tok_begin[i + 1]; ++t) set_bit(bits, ix.toks[t]);
    const uint32_t e = end[i];
    if (e == i + 1) {  // leaf
      ++i;
      continue;
    }
    if (done && w.has_empty(ns)) {
      if (resume) {
        for (uint32_t j = i + 1; j < e; j = end[j]) {
          const uint8_t c = label[j];
          bool may_follow;
          if (c < 0x80) {
            may_follow = resume->follow->contains(c);
          } else {
            Utf8 probe;
            uint32_t plo = 0, phi = 0;
            may_follow = probe.feed(c, plo, phi) == Step::Partial && resume->follow->intersects(plo, phi);
          }
          if (may_follow) resume->nodes->push_back(j);
        }
        if (resume->nodes->size() > resume->cap) {
          resume->overflow = true;
          return;
        }
        ns = w.drop_empty(ns);
        if (ns == kDead) {
          i = e;
          continue;
        }
      } else if (w.only_empty(ns)) {  // complete, and nothing may follow
        i = e;
        continue;
      }
    }
    frames.push_back({e, ns, d});  // (invalidates f)
    ++i;
  }
}

}  // namespace

// ------------------------------------------------------------------------------------------------------
// Mask cache. An entry is keyed by the top k frames of a stack (k = 1 first): the tokens accepted from a
// stack with that top without leaving the frames, and the trie nodes where the bottom one of those frames
// may end inside a token. When a small rule (one character of a string, say) ends after almost every
// character, its k = 1 entry resumes almost everywhere; the matcher then asks for k = 2, whose frames cover
// the whole loop, and so on.

// A cache entry with more resume nodes than this is replaced by a deeper key.
constexpr size_t kShortResume = 2048;

struct PosEntry {
  std::vector<int32_t> ids;      // accepted tokens, when there are few
  std::vector<uint64_t> bits;    // accepted tokens as a bitset, when there are many
  std::vector<uint32_t> resume;  // trie nodes to walk from the continuation below the key's frames
  bool full = false;             // resume list too long (walk abandoned): use a deeper key
};

namespace {

// A canonical description of everything an entry for `key` depends on: the elements from each key position
// to the end of its alternative, every rule reachable from them (renumbered in the order first met), and,
// unless `whole`, the characters that may follow the bottom frame. Equal signatures give equal entries,
// whichever grammar they come from.
std::string signature(const Grammar& g, const std::vector<uint32_t>& key, bool whole) {
  std::string out;
  auto put = [&](uint64_t v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); };
  auto put_set = [&](const CharSet& cs) {
    put(cs.ranges.size());
    for (const auto& [lo, hi] : cs.ranges) put((uint64_t(lo) << 32) | hi);
  };
  std::unordered_map<uint32_t, uint32_t> ids;
  std::vector<uint32_t> queue;
  auto seq = [&](uint32_t p) {
    for (;; ++p) {
      const Elem& e = g.elems[p];
      put(uint64_t(e.kind));
      if (e.kind == Kind::End) return;
      if (e.kind == Kind::Ref) {
        auto [it, fresh] = ids.try_emplace(e.arg, uint32_t(ids.size()));
        if (fresh) queue.push_back(e.arg);
        put(it->second);
      } else if (e.kind == Kind::Token) {
        put(e.arg);
      } else {
        put_set(g.sets[e.arg]);
      }
    }
  };
  put(whole);
  put(key.size());
  for (uint32_t p : key) seq(p);
  for (size_t q = 0; q < queue.size(); ++q) {
    put(g.alts[queue[q]].size());
    for (uint32_t a : g.alts[queue[q]]) seq(a);
  }
  if (!whole) put_set(g.follow[g.owner[key.front()]]);
  return out;
}

std::shared_ptr<const PosEntry> compute_entry(const std::vector<uint32_t>& key, bool whole, const Grammar& g,
                                              const TokenIndex::Impl& ix) {
  auto e = std::make_shared<PosEntry>();
  Walker w(g);
  std::vector<uint32_t> start{w.import(key, key.size())};
  const int32_t s = w.intern(start);
  std::vector<uint64_t> bits(ix.words(), 0);
  Resume resume{&g.follow[g.owner[key.front()]], &e->resume, kShortResume};
  walk(w, ix, 1, ix.n_nodes(), s, Utf8{}, bits.data(), whole ? nullptr : &resume);
  if (resume.overflow) {
    e->full = true;
    e->resume.clear();
    return e;
  }
  size_t count = 0;
  for (uint64_t x : bits) count += size_t(std::popcount(x));
  if (count * 32 < bits.size() * 64) {  // ids take less room than the bitset
    for (size_t wi = 0; wi < bits.size(); ++wi)
      for (uint64_t x = bits[wi]; x; x &= x - 1) e->ids.push_back(int32_t(wi * 64 + size_t(std::countr_zero(x))));
  } else {
    e->bits = std::move(bits);
  }
  return e;
}

}  // namespace

// The per-(grammar, index) level of the cache: stack keys to entries, in front of the index's shared level.
struct MaskCache {
  struct KeyHash {
    size_t operator()(const std::vector<uint32_t>& v) const {
      uint64_t h = 0xCBF29CE484222325ull;
      for (uint32_t x : v) h = (h ^ x) * 0x100000001B3ull;
      return size_t(h ^ (h >> 31));
    }
  };
  static constexpr size_t kMaxEntries = 4096;
  std::mutex mu;
  std::unordered_map<std::vector<uint32_t>, std::shared_ptr<const PosEntry>, KeyHash> entries;

  // `key`: the top frames of a stack, bottom first; when `whole`, the entire stack (whose end is the end of
  // the grammar, so there is nothing to resume).
  std::shared_ptr<const PosEntry> get(const std::vector<uint32_t>& key, bool whole, const Grammar& g,
                                      const TokenIndex::Impl& ix) {
    std::vector<uint32_t> k = key;
    if (whole) k.push_back(UINT32_MAX);  // whole-stack entries are distinct from suffix entries
    {
      std::lock_guard<std::mutex> lock(mu);
      auto it = entries.find(k);
      if (it != entries.end()) return it->second;
    }
    // Computed outside the locks: two threads may both compute an entry, the first one stored wins.
    const std::string sig = signature(g, key, whole);
    std::shared_ptr<const PosEntry> e;
    {
      std::lock_guard<std::mutex> lock(ix.shared_mu);
      auto it = ix.shared.find(sig);
      if (it != ix.shared.end()) e = it->second;
    }
    if (!e) {
      e = compute_entry(key, whole, g, ix);
      const size_t bytes = sig.size() + e->ids.size() * 4 + e->bits.size() * 8 + e->resume.size() * 4 + 64;
      std::lock_guard<std::mutex> lock(ix.shared_mu);
      if (ix.shared_bytes + bytes > TokenIndex::Impl::kSharedBudget) {
        ix.shared.clear();
        ix.shared_bytes = 0;
      }
      if (ix.shared.emplace(sig, e).second) ix.shared_bytes += bytes;
    }
    std::lock_guard<std::mutex> lock(mu);
    // Deep recursion can produce ever new whole-stack keys: keep the table bounded.
    if (entries.size() >= kMaxEntries) entries.clear();
    return entries.emplace(std::move(k), std::move(e)).first->second;
  }
};

std::shared_ptr<MaskCache> Grammar::cache_for(const TokenIndex& idx) const {
  std::lock_guard<std::mutex> lock(mu);
  for (auto& [uid, cache] : caches)
    if (uid == idx.impl().uid) return cache;
  caches.emplace_back(idx.impl().uid, std::make_shared<MaskCache>());
  return caches.back().second;
}

// ------------------------------------------------------------------------------------------------------
// Matcher

namespace {

// Interns the matcher's stacks; kDead if there are none.
int32_t import_state(Walker& w, const std::vector<std::vector<uint32_t>>& stacks) {
  w.scratch.clear();
  for (const auto& st : stacks) w.scratch.push_back(w.import(st, st.size()));
  return w.intern(w.scratch);
}

std::vector<std::vector<uint32_t>> export_state(const Walker& w, int32_t s) {
  std::vector<std::vector<uint32_t>> out;
  for (uint32_t id : w.stacks(s)) out.push_back(w.unpack(id));
  std::sort(out.begin(), out.end());
  return out;
}

// Advances state s over `bytes`, starting inside the incomplete character `pending` (updated on success).
// Returns kDead when the bytes are rejected.
int32_t advance_bytes(Walker& w, int32_t s, std::string& pending, std::string_view bytes) {
  Utf8 d;
  uint32_t lo = 0, hi = 0;
  for (char c : pending) d.feed(uint8_t(c), lo, hi);
  std::string cur = pending;
  for (char c : bytes) {
    const Step st = d.feed(uint8_t(c), lo, hi);
    if (st == Step::Bad) return kDead;
    if (st == Step::Partial) {
      if (!w.viable(s, lo, hi)) return kDead;
      cur.push_back(c);
      continue;
    }
    s = w.next(s, lo);
    if (s == kDead) return kDead;
    cur.clear();
  }
  pending = std::move(cur);
  return s;
}

}  // namespace

GrammarMatcher::GrammarMatcher(std::shared_ptr<const Grammar> g, std::shared_ptr<const TokenIndex> idx)
    : g_(std::move(g)), idx_(std::move(idx)) {
  if (!g_ || !idx_) throw Error("GrammarMatcher: grammar and token index are required");
  cache_ = g_->cache_for(*idx_);
  reset();
}

void GrammarMatcher::reset() {
  Walker w(*g_);
  std::vector<uint32_t> start;
  for (uint32_t a : g_->alts[g_->root]) w.closure(a, 0, start);
  stacks_ = export_state(w, w.intern(start));
  pending_.clear();
}

bool GrammarMatcher::can_end() const { return pending_.empty() && !stacks_.empty() && stacks_.front().empty(); }

bool GrammarMatcher::must_end() const { return can_end() && stacks_.size() == 1; }

bool GrammarMatcher::accept_text(std::string_view utf8) {
  Walker w(*g_);
  const int32_t s = import_state(w, stacks_);
  if (s == kDead) return false;
  std::string pending = pending_;
  const int32_t ns = advance_bytes(w, s, pending, utf8);
  if (ns == kDead) return false;
  stacks_ = export_state(w, ns);
  pending_ = std::move(pending);
  return true;
}

bool GrammarMatcher::accept(int32_t token) {
  const auto& ix = idx_->impl();
  if (token < 0 || token >= ix.n_vocab) return false;
  Walker w(*g_);
  const int32_t s = import_state(w, stacks_);
  if (s == kDead) return false;
  std::vector<uint32_t> next;
  std::string pending = pending_;
  // As a text token: its bytes.
  if (ix.kind[size_t(token)] == TokenIndex::Impl::kText) {
    const int32_t ns = advance_bytes(w, s, pending, ix.text(token));
    if (ns != kDead) next = w.stacks(ns);
  }
  // As a <[ID]> terminal: only between characters (and not when the text reading left one open, so that
  // every resulting stack agrees on the pending bytes).
  if (pending.empty()) {
    for (uint32_t k : std::vector<uint32_t>(w.stacks(s))) {
      if (k == 0) continue;
      const Elem& e = g_->elems[w.top(k)];
      if (e.kind == Kind::Token && e.arg == uint32_t(token)) w.closure(w.top(k) + 1, w.below(k), next);
    }
  }
  const int32_t ns = w.intern(next);
  if (ns == kDead) return false;
  stacks_ = export_state(w, ns);
  pending_ = std::move(pending);
  return true;
}

void GrammarMatcher::compute_mask(std::vector<uint64_t>& bits) const {
  const auto& ix = idx_->impl();
  bits.assign(ix.words(), 0);
  Walker w(*g_);
  if (!pending_.empty()) {
    // In the middle of a character: only bytes that complete it can follow; walk the whole trie.
    const int32_t s = import_state(w, stacks_);
    Utf8 d;
    uint32_t lo = 0, hi = 0;
    for (char c : pending_) d.feed(uint8_t(c), lo, hi);
    if (s != kDead) walk(w, ix, 1, ix.n_nodes(), s, d, bits.data(), nullptr);
    return;
  }
  for (const auto& st : stacks_) {
    if (st.empty()) continue;
    const uint32_t p = st.back();
    const Elem& e = g_->elems[p];
    if (e.kind == Kind::Token) {
      if (e.arg < uint32_t(ix.n_vocab)) set_bit(bits.data(), int32_t(e.arg));
      continue;
    }
    // The shortest key whose resume list is short, or else the whole stack.
    std::shared_ptr<const PosEntry> entry;
    size_t k = 1;
    for (;; ++k) {
      const std::vector<uint32_t> key(st.end() - std::ptrdiff_t(k), st.end());
      entry = cache_->get(key, k == st.size(), *g_, ix);
      if (k == st.size() || !entry->full) break;
    }
    if (!entry->bits.empty()) {
      for (size_t i = 0; i < bits.size(); ++i) bits[i] |= entry->bits[i];
    } else {
      for (int32_t id : entry->ids) set_bit(bits.data(), id);
    }
    if (k == st.size() || entry->resume.empty()) continue;
    // The key's frames may end inside a token: continue those tokens from the frame below them.
    const size_t below_at = st.size() - k - 1;
    std::vector<uint32_t> below;
    w.closure(st[below_at], w.import(st, below_at), below);
    const int32_t ps = w.intern(below);
    if (ps == kDead) continue;
    for (uint32_t j : entry->resume) walk(w, ix, j, ix.end[j], ps, Utf8{}, bits.data(), nullptr);
  }
}

void GrammarMatcher::allowed(std::vector<uint8_t>& mask) const {
  std::vector<uint64_t> bits;
  compute_mask(bits);
  const int32_t n = idx_->n_vocab();
  mask.assign(size_t(n), 0);
  for (int32_t id = 0; id < n; ++id) mask[size_t(id)] = uint8_t((bits[size_t(id) >> 6] >> (id & 63)) & 1);
}

void GrammarMatcher::apply(float* logits, const std::vector<int32_t>& eog) const {
  std::vector<uint64_t> bits;
  compute_mask(bits);
  const int32_t n = idx_->n_vocab();
  const bool end = can_end();
  for (int32_t id : eog) {
    if (id < 0 || id >= n) continue;
    const uint64_t bit = uint64_t(1) << (id & 63);
    if (end) bits[size_t(id) >> 6] |= bit;
    else bits[size_t(id) >> 6] &= ~bit;
  }
  // Runs of disallowed tokens (most of the vocabulary in structural states) are filled in bulk.
  int32_t run = -1;  // start of the current run of disallowed ids
  for (int32_t id = 0; id < n; ++id) {
    const bool allowed = (bits[size_t(id) >> 6] >> (id & 63)) & 1;
    if (!allowed && run < 0) run = id;
    if (allowed && run >= 0) {
      std::fill(logits + run, logits + id, -INFINITY);
      run = -1;
    }
    // Skip whole words of one kind.
    if ((id & 63) == 0 && id + 64 <= n) {
      const uint64_t word = bits[size_t(id) >> 6];
      if (word == 0 && run >= 0) id += 63;
      else if (word == ~uint64_t(0) && run < 0) id += 63;
    }
  }
  if (run >= 0) std::fill(logits + run, logits + n, -INFINITY);
}

}  // namespace hearth::runtime
