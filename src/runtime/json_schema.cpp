#include "runtime/json_schema.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "core/error.h"

namespace hearth::runtime {

using ojson = nlohmann::ordered_json;

namespace {

// Keywords that change which values are valid and that neither the grammar nor the validator implements.
const std::set<std::string>& unsupported_keywords() {
  static const std::set<std::string> k = {
      "pattern", "patternProperties", "multipleOf", "uniqueItems", "contains", "minContains", "maxContains",
      "prefixItems", "minProperties", "maxProperties", "propertyNames", "dependentRequired", "dependentSchemas",
      "dependencies", "if", "then", "else", "not", "unevaluatedProperties", "unevaluatedItems", "additionalItems",
      "$dynamicRef", "$recursiveRef"};
  return k;
}

// Keywords that constrain values and that are implemented (everything else is an annotation).
const std::set<std::string>& validity_keywords() {
  static const std::set<std::string> k = {
      "type", "enum", "const", "properties", "required", "additionalProperties", "items", "minItems", "maxItems",
      "minLength", "maxLength", "anyOf", "oneOf", "allOf", "nullable", "minimum", "maximum", "exclusiveMinimum",
      "exclusiveMaximum", "$ref"};
  return k;
}

template <class J>
void check_supported(const J& schema, const std::string& where) {
  for (auto it = schema.begin(); it != schema.end(); ++it)
    if (unsupported_keywords().count(it.key()))
      throw Error("unsupported JSON schema keyword '" + it.key() + "' at " + where);
  if (schema.contains("items") && schema["items"].is_array())
    throw Error("unsupported JSON schema: tuple-style 'items' array at " + where + " (use 'items' with one schema)");
}

template <class J>
const J& resolve_ref(const J& document, const J& schema, const std::string& where) {
  if (!schema["$ref"].is_string()) throw Error("JSON schema: $ref must be a string at " + where);
  const std::string ref = schema["$ref"].template get<std::string>();
  if (ref.empty() || ref[0] != '#')
    throw Error("JSON schema: only local $ref (\"#/...\") is supported, got '" + ref + "' at " + where);
  const J* cur = &document;
  size_t i = 1;
  while (i < ref.size()) {
    if (ref[i] != '/') throw Error("JSON schema: malformed $ref '" + ref + "' at " + where);
    const size_t next = ref.find('/', i + 1);
    std::string token = ref.substr(i + 1, (next == std::string::npos ? ref.size() : next) - i - 1);
    std::string key;
    for (size_t k = 0; k < token.size(); ++k) {
      if (token[k] == '~' && k + 1 < token.size() && (token[k + 1] == '0' || token[k + 1] == '1')) {
        key += token[k + 1] == '0' ? '~' : '/';
        ++k;
      } else {
        key += token[k];
      }
    }
    if (cur->is_object() && cur->contains(key)) {
      cur = &(*cur)[key];
    } else if (cur->is_array() && !key.empty() && key.find_first_not_of("0123456789") == std::string::npos &&
               std::stoull(key) < cur->size()) {
      cur = &(*cur)[std::stoull(key)];
    } else {
      throw Error("JSON schema: $ref '" + ref + "' does not resolve (at " + where + ")");
    }
    i = next == std::string::npos ? ref.size() : next;
  }
  return *cur;
}

template <class J>
std::string type_name(const J& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "boolean";
  if (v.is_number_integer()) return "integer";
  if (v.is_number()) return "number";
  if (v.is_string()) return "string";
  if (v.is_array()) return "array";
  return "object";
}

template <class J>
bool has_type(const J& v, const std::string& t) {
  if (t == "null") return v.is_null();
  if (t == "boolean") return v.is_boolean();
  if (t == "string") return v.is_string();
  if (t == "array") return v.is_array();
  if (t == "object") return v.is_object();
  if (t == "number") return v.is_number();
  if (t == "integer") {
    if (v.is_number_integer()) return true;
    if (!v.is_number_float()) return false;
    const double d = v.template get<double>();
    return std::isfinite(d) && std::floor(d) == d;
  }
  throw Error("JSON schema: unknown type '" + t + "'");
}

size_t utf8_length(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

template <class J>
uint64_t count_keyword(const J& schema, const char* key, const std::string& where) {
  const auto& v = schema[key];
  if (!v.is_number_integer() && !(v.is_number() && v.template get<double>() == std::floor(v.template get<double>())))
    throw Error(std::string("JSON schema: '") + key + "' must be a non-negative integer at " + where);
  const double d = v.template get<double>();
  if (d < 0) throw Error(std::string("JSON schema: '") + key + "' must be a non-negative integer at " + where);
  return d > 1e18 ? uint64_t(1e18) : uint64_t(d);
}

// The validator, generic over nlohmann::json and nlohmann::ordered_json (the grammar builder uses it to
// filter enum values).
template <class J>
class Validator {
 public:
  explicit Validator(const J& root) : root_(root) {}

  std::string check(const J& v, const J& s, const std::string& path, int ref_depth = 0) const {
    if (s.is_boolean()) return s.template get<bool>() ? "" : path + ": no value is allowed here (schema false)";
    if (!s.is_object()) throw Error("JSON schema at " + path + " must be an object or a boolean");
    check_supported(s, path);
    if (s.contains("$ref")) {
      if (ref_depth > 64) throw Error("JSON schema: circular $ref at " + path);
      return check(v, resolve_ref(root_, s, path), path, ref_depth + 1);
    }
    if (s.contains("nullable") && s["nullable"].is_boolean() && s["nullable"].template get<bool>() && v.is_null())
      return "";
    if (s.contains("const") && v != s["const"]) return path + ": expected " + s["const"].dump();
    if (s.contains("enum")) {
      if (!s["enum"].is_array()) throw Error("JSON schema: 'enum' must be an array at " + path);
      if (std::find(s["enum"].begin(), s["enum"].end(), v) == s["enum"].end())
        return path + ": " + v.dump() + " is not one of " + s["enum"].dump();
    }
    for (const char* k : {"anyOf", "oneOf", "allOf"})
      if (s.contains(k) && (!s[k].is_array() || s[k].empty()))
        throw Error(std::string("JSON schema: '") + k + "' must be a non-empty array at " + path);
    if (s.contains("anyOf")) {
      std::string first;
      bool ok = false;
      for (const auto& sub : s["anyOf"]) {
        std::string m = check(v, sub, path, ref_depth);
        if (m.empty()) {
          ok = true;
          break;
        }
        if (first.empty()) first = m;
      }
      if (!ok) return path + ": matches no anyOf branch (first: " + first + ")";
    }
    if (s.contains("oneOf")) {
      size_t n = 0;
      for (const auto& sub : s["oneOf"]) n += check(v, sub, path, ref_depth).empty();
      if (n != 1) return path + ": matches " + std::to_string(n) + " oneOf branches, expected exactly one";
    }
    if (s.contains("allOf"))
      for (const auto& sub : s["allOf"])
        if (std::string m = check(v, sub, path, ref_depth); !m.empty()) return m;
    if (s.contains("type")) {
      const auto& t = s["type"];
      bool ok = false;
      if (t.is_string()) {
        ok = has_type(v, t.template get<std::string>());
      } else if (t.is_array()) {
        for (const auto& x : t) {
          if (!x.is_string()) throw Error("JSON schema: 'type' entries must be strings at " + path);
          ok = ok || has_type(v, x.template get<std::string>());
        }
      } else {
        throw Error("JSON schema: 'type' must be a string or an array at " + path);
      }
      if (!ok) return path + ": expected " + t.dump() + ", got " + type_name(v);
    }
    if (v.is_string()) {
      const size_t n = utf8_length(v.template get<std::string>());
      if (s.contains("minLength") && n < count_keyword(s, "minLength", path))
        return path + ": string shorter than minLength";
      if (s.contains("maxLength") && n > count_keyword(s, "maxLength", path))
        return path + ": string longer than maxLength";
    }
    if (v.is_number()) {
      if (std::string m = check_bounds(v, s, path); !m.empty()) return m;
    }
    if (v.is_array()) {
      if (s.contains("minItems") && v.size() < count_keyword(s, "minItems", path))
        return path + ": fewer than minItems items";
      if (s.contains("maxItems") && v.size() > count_keyword(s, "maxItems", path))
        return path + ": more than maxItems items";
      if (s.contains("items"))
        for (size_t i = 0; i < v.size(); ++i)
          if (std::string m = check(v[i], s["items"], path + "[" + std::to_string(i) + "]"); !m.empty()) return m;
    }
    if (v.is_object()) {
      const bool has_props = s.contains("properties");
      if (has_props && !s["properties"].is_object())
        throw Error("JSON schema: 'properties' must be an object at " + path);
      if (s.contains("required")) {
        if (!s["required"].is_array()) throw Error("JSON schema: 'required' must be an array at " + path);
        for (const auto& r : s["required"]) {
          if (!r.is_string()) throw Error("JSON schema: 'required' entries must be strings at " + path);
          if (!v.contains(r.template get<std::string>()))
            return path + ": missing required property '" + r.template get<std::string>() + "'";
        }
      }
      for (auto it = v.begin(); it != v.end(); ++it) {
        const std::string sub = path + "." + it.key();
        if (has_props && s["properties"].contains(it.key())) {
          if (std::string m = check(it.value(), s["properties"][it.key()], sub); !m.empty()) return m;
          continue;
        }
        // Not a listed property: additionalProperties decides (false by default when properties are listed).
        if (s.contains("additionalProperties")) {
          if (std::string m = check(it.value(), s["additionalProperties"], sub); !m.empty())
            return s["additionalProperties"].is_boolean() ? path + ": unexpected property '" + it.key() + "'" : m;
        } else if (has_props) {
          return path + ": unexpected property '" + it.key() + "'";
        }
      }
    }
    return "";
  }

 private:
  std::string check_bounds(const J& v, const J& s, const std::string& path) const {
    const double x = v.template get<double>();
    auto num = [&](const char* k) {
      if (!s[k].is_number()) throw Error(std::string("JSON schema: '") + k + "' must be a number at " + path);
      return s[k].template get<double>();
    };
    // Draft 4 writes exclusiveMinimum/Maximum as booleans modifying minimum/maximum; later drafts as numbers.
    const bool ex_min_flag = s.contains("exclusiveMinimum") && s["exclusiveMinimum"].is_boolean() &&
                             s["exclusiveMinimum"].template get<bool>();
    const bool ex_max_flag = s.contains("exclusiveMaximum") && s["exclusiveMaximum"].is_boolean() &&
                             s["exclusiveMaximum"].template get<bool>();
    if (s.contains("minimum") && (ex_min_flag ? x <= num("minimum") : x < num("minimum")))
      return path + ": " + v.dump() + " is below the minimum";
    if (s.contains("maximum") && (ex_max_flag ? x >= num("maximum") : x > num("maximum")))
      return path + ": " + v.dump() + " is above the maximum";
    if (s.contains("exclusiveMinimum") && !s["exclusiveMinimum"].is_boolean() && x <= num("exclusiveMinimum"))
      return path + ": " + v.dump() + " is not above exclusiveMinimum";
    if (s.contains("exclusiveMaximum") && !s["exclusiveMaximum"].is_boolean() && x >= num("exclusiveMaximum"))
      return path + ": " + v.dump() + " is not below exclusiveMaximum";
    return "";
  }

  const J& root_;
};

// ------------------------------------------------------------------------------------------------------
// Integer ranges as digit strings.

constexpr int64_t kMaxInt = 9999999999999999;  // 16 digits: the longest integer the grammars write

std::string join_alts(const std::vector<std::string>& alts) {
  if (alts.size() == 1) return alts[0];
  std::string out = "(";
  for (size_t i = 0; i < alts.size(); ++i) out += (i ? " | " : "") + alts[i];
  return out + ")";
}

std::string digit_class(char lo, char hi) {
  if (lo == hi) return std::string("\"") + lo + "\"";
  return std::string("[") + lo + "-" + hi + "]";
}

std::string any_digits(size_t n) {
  if (n == 0) return "";
  return n == 1 ? "[0-9]" : "[0-9]{" + std::to_string(n) + "}";
}

std::string seq(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return a + " " + b;
}

// Digit strings of one length between a and b (inclusive, a <= b).
std::string fixed_range(const std::string& a, const std::string& b) {
  if (a.empty()) return "";
  const size_t n = a.size() - 1;
  if (a[0] == b[0]) return seq(digit_class(a[0], a[0]), fixed_range(a.substr(1), b.substr(1)));
  const bool low_full = a.find_first_not_of('0', 1) == std::string::npos;   // a = d00..0
  const bool high_full = b.find_first_not_of('9', 1) == std::string::npos;  // b = d99..9
  std::vector<std::string> alts;
  char mid_lo = char(a[0] + 1), mid_hi = char(b[0] - 1);
  if (low_full) mid_lo = a[0];
  else alts.push_back(seq(digit_class(a[0], a[0]), fixed_range(a.substr(1), std::string(n, '9'))));
  if (high_full) mid_hi = b[0];
  if (mid_lo <= mid_hi) alts.push_back(seq(digit_class(mid_lo, mid_hi), any_digits(n)));
  if (!high_full) alts.push_back(seq(digit_class(b[0], b[0]), fixed_range(std::string(n, '0'), b.substr(1))));
  return join_alts(alts);
}

// Decimal integers (no leading zeros) in [lo, hi], 0 <= lo <= hi.
std::string nonneg_range(int64_t lo, int64_t hi) {
  std::vector<std::string> alts;
  int64_t start = 1;  // 10^(len-1)
  for (size_t len = 1; len <= 16; ++len, start *= 10) {
    const int64_t top = start * 10 - 1;
    const int64_t a = std::max(lo, len == 1 ? 0 : start), b = std::min(hi, top);
    if (a > b) continue;
    alts.push_back(fixed_range(std::to_string(a), std::to_string(b)));
  }
  return join_alts(alts);
}

std::string int_range(int64_t lo, int64_t hi) {
  std::vector<std::string> alts;
  if (lo < 0) alts.push_back("\"-\" " + nonneg_range(std::max<int64_t>(1, -hi), -lo));
  if (hi >= 0) alts.push_back(nonneg_range(std::max<int64_t>(0, lo), hi));
  return join_alts(alts);
}

std::string sanitize(const std::string& hint) {
  std::string out;
  for (char c : hint) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (ok) out += c;
    else if (!out.empty() && out.back() != '-') out += '-';
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  if (out.size() > 40) out.resize(40);
  return out.empty() ? "v" : out;
}

// The chat template sorts keys with Jinja's dictsort, which ignores case (ties keep their order).
std::vector<std::string> dictsort(std::vector<std::string> keys) {
  auto lower = [](std::string s) {
    for (char& c : s)
      if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    return s;
  };
  std::stable_sort(keys.begin(), keys.end(),
                   [&](const std::string& a, const std::string& b) { return lower(a) < lower(b); });
  return keys;
}

}  // namespace

std::string gbnf_literal(std::string_view bytes) {
  std::string out = "\"";
  for (char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

// ------------------------------------------------------------------------------------------------------
// Grammar builder

struct SchemaGrammarBuilder::Impl {
  Syntax syntax;
  int32_t quote;
  std::vector<std::pair<std::string, std::string>> rules;  // in the order added
  std::set<std::string> names;
  std::set<std::string> prims_added;
  std::map<std::string, std::string> memo;  // (document, schema) -> rule name

  bool gemma() const { return syntax == Syntax::Gemma4; }
  std::string q() const { return "<[" + std::to_string(quote) + "]>"; }
  std::string ws() { return gemma() ? "" : prim("ws"); }
  std::string sep() { return gemma() ? "\",\"" : "\",\" " + prim("ws"); }

  std::string add(const std::string& hint, const std::string& body) {
    std::string base = sanitize(hint), name = base;
    for (int k = 2; names.count(name); ++k) name = base + "-" + std::to_string(k);
    names.insert(name);
    rules.emplace_back(name, body);
    return name;
  }

  // Shared rules, added on first use under fixed names (reserved at construction).
  std::string prim(const std::string& what) {
    const std::string name = (gemma() && (what == "value" || what == "object" || what == "array" || what == "string")
                                  ? "g-"
                                  : "json-") + what;
    if (prims_added.count(name)) return name;
    prims_added.insert(name);
    std::string body;
    if (what == "ws") {
      body = "[ \\t]{0,4} (\"\\n\" [ \\t]{0,32}){0,2}";
    } else if (what == "string" && gemma()) {
      // Text between <|"|> tokens must not spell out <|"|> itself: the states of a matcher for that
      // 5-character word, g-s<k> meaning "the last k characters are its first k".
      rules.emplace_back("g-s0", "[^<] g-s0 | \"<\" g-s1 | \"\"");
      rules.emplace_back("g-s1", "\"<\" g-s1 | \"|\" g-s2 | [^<|] g-s0 | \"\"");
      rules.emplace_back("g-s2", "\"<\" g-s1 | \"\\\"\" g-s3 | [^<\"] g-s0 | \"\"");
      rules.emplace_back("g-s3", "\"<\" g-s1 | \"|\" g-s4 | [^<|] g-s0 | \"\"");
      rules.emplace_back("g-s4", "\"<\" g-s1 | [^<>] g-s0 | \"\"");
      body = q() + " g-s0 " + q();
    } else if (what == "string") {
      body = "\"\\\"\" " + prim("char") + "* \"\\\"\"";
    } else if (what == "char") {
      // One JSON string character; \u escapes never leave a lone surrogate (JSON parsers reject those).
      const std::string h = prim("hex");
      body = "[^\"\\\\\\x00-\\x1F] | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" ([0-9a-cA-Ce-fE-F] " + h + "{3} | [dD] [0-7] " +
             h + "{2} | [dD] [89abAB] " + h + "{2} \"\\\\u\" [dD] [c-fC-F] " + h + "{2}))";
    } else if (what == "hex") {
      body = "[0-9a-fA-F]";
    } else if (what == "int") {
      body = "\"0\" | [1-9] [0-9]{0,15}";
    } else if (what == "integer") {
      body = "\"-\"? " + prim("int");
    } else if (what == "number") {
      body = "\"-\"? " + prim("int") + " (\".\" [0-9]{1,16})? ([eE] [-+]? [0-9]{1,2})?";
    } else if (what == "boolean") {
      body = "\"true\" | \"false\"";
    } else if (what == "null") {
      body = "\"null\"";
    } else if (what == "value") {
      body = prim("object") + " | " + prim("array") + " | " + prim("string") + " | " + prim("number") + " | " +
             prim("boolean") + " | " + prim("null");
    } else if (what == "object" && gemma()) {
      const std::string member = prim("key") + " \":\" " + prim("value");
      body = "\"{\" (" + member + " (\",\" " + member + ")*)? \"}\"";
    } else if (what == "key") {
      body = "[A-Za-z_] [A-Za-z0-9_.-]{0,63}";  // bare keys of free-form Gemma objects
    } else if (what == "object") {
      const std::string member = prim("string") + " " + ws() + " \":\" " + ws() + " " + prim("value") + " " + ws();
      body = "\"{\" " + ws() + " (" + member + " (\",\" " + ws() + " " + member + ")*)? \"}\"";
    } else if (what == "array") {
      const std::string item = prim("value") + (gemma() ? "" : " " + ws());
      body = "\"[\" " + ws() + " (" + item + " (" + sep() + " " + item + ")*)? \"]\"";
    } else {
      throw Error("internal: unknown primitive " + what);
    }
    rules.emplace_back(name, body);
    return name;
  }

  // A grammar expression for exactly the JSON value v, in this syntax.
  std::string literal(const ojson& v, const std::string& where) const {
    if (!gemma()) return gbnf_literal(v.dump());
    if (v.is_string()) {
      const std::string s = v.get<std::string>();
      if (s.find("<|\"|>") != std::string::npos)
        throw Error("JSON schema: string value containing <|\"|> cannot be written in a Gemma 4 call (at " + where +
                    ")");
      return q() + " " + gbnf_literal(s) + " " + q();
    }
    if (v.is_array()) {
      std::string out = "\"[\"";
      for (size_t i = 0; i < v.size(); ++i) out += (i ? " \",\" " : " ") + literal(v[i], where);
      return out + " \"]\"";
    }
    if (v.is_object()) {
      std::vector<std::string> keys;
      for (auto it = v.begin(); it != v.end(); ++it) keys.push_back(it.key());
      std::string out = "\"{\"";
      bool first = true;
      for (const auto& k : dictsort(keys)) {
        check_bare_key(k, where);
        out += (first ? " " : " \",\" ") + gbnf_literal(k + ":") + " " + literal(v[k], where);
        first = false;
      }
      return out + " \"}\"";
    }
    return gbnf_literal(v.dump());
  }

  static void check_bare_key(const std::string& k, const std::string& where) {
    if (k.empty() || k.find_first_of(":,{}[]<>\" \t\r\n") != std::string::npos)
      throw Error("JSON schema: property name '" + k + "' cannot be written as a bare Gemma 4 key (at " + where + ")");
  }

  std::string value(const ojson& schema, const ojson& doc, const std::string& hint, const std::string& where) {
    const std::string key = std::to_string(reinterpret_cast<uintptr_t>(&doc)) + "|" + schema.dump();
    if (auto it = memo.find(key); it != memo.end()) return it->second;
    // Named before its body is built, so that recursive $refs find it.
    std::string base = sanitize(hint), name = base;
    for (int k = 2; names.count(name); ++k) name = base + "-" + std::to_string(k);
    names.insert(name);
    memo[key] = name;
    const size_t slot = rules.size();
    rules.emplace_back(name, "");
    rules[slot].second = body(schema, doc, name, where);
    return name;
  }

  std::string body(const ojson& s, const ojson& doc, const std::string& name, const std::string& where) {
    if (s.is_boolean()) {
      if (!s.get<bool>()) throw Error("JSON schema: 'false' allows no value (at " + where + ")");
      return prim("value");
    }
    if (!s.is_object()) throw Error("JSON schema at " + where + " must be an object or a boolean");
    check_supported(s, where);
    auto has_other = [&](std::initializer_list<const char*> allowed) {
      for (auto it = s.begin(); it != s.end(); ++it)
        if (validity_keywords().count(it.key()) &&
            std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return it.key() == a; }))
          return it.key();
      return std::string();
    };
    if (s.contains("$ref")) {
      if (auto k = has_other({"$ref"}); !k.empty())
        throw Error("JSON schema: '" + k + "' next to $ref is not supported (at " + where + ")");
      const std::string ref = s["$ref"].is_string() ? s["$ref"].get<std::string>() : "";
      const std::string hint = ref.substr(ref.find_last_of('/') + 1);
      return value(resolve_ref(doc, s, where), doc, hint.empty() ? "ref" : hint, ref);
    }
    const bool nullable = s.contains("nullable") && s["nullable"].is_boolean() && s["nullable"].get<bool>();
    std::vector<std::string> alts;
    if (s.contains("const") || s.contains("enum")) {
      ojson candidates = ojson::array();
      if (s.contains("const")) {
        candidates.push_back(s["const"]);
      } else {
        if (!s["enum"].is_array()) throw Error("JSON schema: 'enum' must be an array at " + where);
        candidates = s["enum"];
      }
      ojson rest = s;
      rest.erase("const");
      rest.erase("enum");
      const Validator<ojson> validator(doc);
      for (const auto& c : candidates)
        if (validator.check(c, rest, where).empty()) alts.push_back(literal(c, where));
      if (alts.empty())
        throw Error("JSON schema: no enum/const value is valid against its own schema (at " + where + ")");
    } else if (s.contains("anyOf") || s.contains("oneOf")) {
      const char* k = s.contains("anyOf") ? "anyOf" : "oneOf";
      if (auto other = has_other({"anyOf", "oneOf", "nullable"});
          !other.empty() || (s.contains("anyOf") && s.contains("oneOf")))
        throw Error("JSON schema: '" + std::string(k) + "' combined with '" + (other.empty() ? "oneOf" : other) +
                    "' is not supported; move the keyword into each branch (at " + where + ")");
      if (!s[k].is_array() || s[k].empty())
        throw Error("JSON schema: '" + std::string(k) + "' must be a non-empty array at " + where);
      for (size_t i = 0; i < s[k].size(); ++i)
        alts.push_back(value(s[k][i], doc, name + "-" + std::to_string(i), where + "/" + k + "/" + std::to_string(i)));
    } else if (s.contains("allOf")) {
      if (!s["allOf"].is_array() || s["allOf"].size() != 1 || !has_other({"allOf", "nullable"}).empty())
        throw Error("JSON schema: allOf is supported only with a single schema and no sibling keywords (at " + where +
                    ")");
      alts.push_back(value(s["allOf"][0], doc, name, where + "/allOf/0"));
    } else {
      std::vector<std::string> types;
      if (s.contains("type")) {
        if (s["type"].is_string()) {
          types.push_back(s["type"].get<std::string>());
        } else if (s["type"].is_array()) {
          for (const auto& t : s["type"]) {
            if (!t.is_string()) throw Error("JSON schema: 'type' entries must be strings at " + where);
            types.push_back(t.get<std::string>());
          }
        } else {
          throw Error("JSON schema: 'type' must be a string or an array at " + where);
        }
      } else if (s.contains("properties") || s.contains("required") || s.contains("additionalProperties")) {
        types.push_back("object");
      } else if (s.contains("items") || s.contains("minItems") || s.contains("maxItems")) {
        types.push_back("array");
      } else if (s.contains("minLength") || s.contains("maxLength")) {
        types.push_back("string");
      } else if (s.contains("minimum") || s.contains("maximum") || s.contains("exclusiveMinimum") ||
                 s.contains("exclusiveMaximum")) {
        types.push_back("number");
      } else {
        alts.push_back(prim("value"));
      }
      for (const auto& t : types) alts.push_back(typed(t, s, doc, name, where));
    }
    if (nullable) alts.push_back(prim("null"));
    std::string out;
    for (size_t i = 0; i < alts.size(); ++i) out += (i ? " | " : "") + alts[i];
    return out;
  }

  std::string typed(const std::string& t, const ojson& s, const ojson& doc, const std::string& name,
                    const std::string& where) {
    if (t == "string") return string_expr(s, where);
    if (t == "number" || t == "integer") return number_expr(t == "integer", s, where);
    if (t == "boolean") return prim("boolean");
    if (t == "null") return prim("null");
    if (t == "object") return object_expr(s, doc, name, where);
    if (t == "array") return array_expr(s, doc, name, where);
    throw Error("JSON schema: unknown type '" + t + "' at " + where);
  }

  static std::string repeat(const std::string& item, uint64_t min, std::optional<uint64_t> max) {
    if (max && *max == min) return min == 0 ? "" : "(" + item + "){" + std::to_string(min) + "}";
    if (!max) return min == 0 ? "(" + item + ")*" : "(" + item + "){" + std::to_string(min) + ",}";
    return "(" + item + "){" + std::to_string(min) + "," + std::to_string(*max) + "}";
  }

  static void check_count(uint64_t n, const std::string& where) {
    if (n > 10000) throw Error("JSON schema: length/item bounds above 10000 are not supported (at " + where + ")");
  }

  std::pair<uint64_t, std::optional<uint64_t>> bounds(const ojson& s, const char* min_key, const char* max_key,
                                                      const std::string& where) {
    const uint64_t min = s.contains(min_key) ? count_keyword(s, min_key, where) : 0;
    std::optional<uint64_t> max;
    if (s.contains(max_key)) max = count_keyword(s, max_key, where);
    check_count(min, where);
    if (max) check_count(*max, where);
    if (max && *max < min) throw Error(std::string("JSON schema: ") + max_key + " < " + min_key + " at " + where);
    return {min, max};
  }

  std::string string_expr(const ojson& s, const std::string& where) {
    if (!s.contains("minLength") && !s.contains("maxLength")) return prim("string");
    const auto [min, max] = bounds(s, "minLength", "maxLength", where);
    if (gemma()) {
      // Counting characters of the <|"|>-avoiding matcher is not expressible simply; bounded strings
      // avoid '<' altogether instead (still valid, slightly stricter).
      const std::string body = repeat("[^<]", min, max);
      return q() + (body.empty() ? "" : " " + body) + " " + q();
    }
    const std::string body = repeat(prim("char"), min, max);
    return "\"\\\"\" " + (body.empty() ? "" : body + " ") + "\"\\\"\"";
  }

  std::string number_expr(bool integer, const ojson& s, const std::string& where) {
    const bool bounded = s.contains("minimum") || s.contains("maximum") || s.contains("exclusiveMinimum") ||
                         s.contains("exclusiveMaximum");
    if (!bounded) return prim(integer ? "integer" : "number");
    auto bound = [&](const char* k) {
      if (!s[k].is_number()) throw Error(std::string("JSON schema: '") + k + "' must be a number (at " + where + ")");
      return std::clamp(s[k].get<double>(), -1e17, 1e17);
    };
    // Draft 4 writes exclusiveMinimum/Maximum as booleans modifying minimum/maximum, later drafts as numbers.
    const bool ex_min =
        s.contains("exclusiveMinimum") && s["exclusiveMinimum"].is_boolean() && s["exclusiveMinimum"].get<bool>();
    const bool ex_max =
        s.contains("exclusiveMaximum") && s["exclusiveMaximum"].is_boolean() && s["exclusiveMaximum"].get<bool>();
    const bool num_ex_min = s.contains("exclusiveMinimum") && !s["exclusiveMinimum"].is_boolean();
    const bool num_ex_max = s.contains("exclusiveMaximum") && !s["exclusiveMaximum"].is_boolean();
    if (!integer) {
      // Only "non-negative" is written for numbers (no minus sign); other bounds need digit-wise
      // comparisons of fractions that this grammar does not attempt.
      if (s.contains("minimum") && !ex_min && !s.contains("maximum") && !num_ex_min && !num_ex_max &&
          s["minimum"].is_number() && s["minimum"].get<double>() == 0)
        return prim("int") + " (\".\" [0-9]{1,16})? ([eE] [-+]? [0-9]{1,2})?";
      throw Error("JSON schema: minimum/maximum on numbers are supported only as minimum 0; use an integer type "
                  "for other bounds (at " + where + ")");
    }
    // Integer bounds, rounded inwards.
    double lo = -double(kMaxInt), hi = double(kMaxInt);
    if (s.contains("minimum")) {
      const double m = bound("minimum");
      lo = std::max(lo, ex_min && std::floor(m) == m ? m + 1 : std::ceil(m));
    }
    if (s.contains("maximum")) {
      const double m = bound("maximum");
      hi = std::min(hi, ex_max && std::floor(m) == m ? m - 1 : std::floor(m));
    }
    if (num_ex_min) lo = std::max(lo, std::floor(bound("exclusiveMinimum")) + 1);
    if (num_ex_max) hi = std::min(hi, std::ceil(bound("exclusiveMaximum")) - 1);
    lo = std::max(lo, -double(kMaxInt));
    hi = std::min(hi, double(kMaxInt));
    if (lo > hi) throw Error("JSON schema: the integer range is empty (or beyond 16 digits) at " + where);
    return int_range(int64_t(lo), int64_t(hi));
  }

  std::string object_expr(const ojson& s, const ojson& doc, const std::string& name, const std::string& where) {
    const std::string open = gemma() ? "\"{\"" : "\"{\" " + ws();
    if (s.contains("properties") && !s["properties"].is_object())
      throw Error("JSON schema: 'properties' must be an object at " + where);
    std::set<std::string> required;
    if (s.contains("required")) {
      if (!s["required"].is_array()) throw Error("JSON schema: 'required' must be an array at " + where);
      for (const auto& r : s["required"]) {
        if (!r.is_string()) throw Error("JSON schema: 'required' entries must be strings at " + where);
        required.insert(r.get<std::string>());
      }
    }
    const bool listed = s.contains("properties");
    const ojson props = listed ? s["properties"] : ojson::object();
    for (const auto& r : required)
      if (!props.contains(r))
        throw Error("JSON schema: required property '" + r + "' is not listed in properties (at " + where + ")");
    if (props.empty()) {
      if (!required.empty())
        throw Error("JSON schema: 'required' without 'properties' is not supported (at " + where + ")");
      // additionalProperties is false by default once properties are listed (even none).
      const ojson extra = s.contains("additionalProperties") ? s["additionalProperties"] : ojson(!listed);
      if (extra == true) return prim("object");
      if (extra == false) return open + " \"}\"";
      // A map: any keys, values valid against additionalProperties.
      const std::string v = value(s["additionalProperties"], doc, name + "-value", where + "/additionalProperties");
      const std::string member = gemma() ? prim("key") + " \":\" " + v
                                         : prim("string") + " " + ws() + " \":\" " + ws() + " " + v + " " + ws();
      return open + " (" + member + " (" + sep() + " " + member + ")*)? \"}\"";
    }
    std::vector<std::string> keys;
    for (auto it = props.begin(); it != props.end(); ++it) keys.push_back(it.key());
    if (gemma()) {
      keys = dictsort(keys);
      for (const auto& k : keys) check_bare_key(k, where);
    }
    // kv[i]: one member. Rules after(i) / first(i): members i.. when some member was / none was written
    // yet (so that commas come out right whichever optional members are present).
    const size_t n = keys.size();
    std::vector<std::string> kv(n);
    for (size_t i = 0; i < n; ++i) {
      const std::string v = value(props[keys[i]], doc, name + "-" + keys[i], where + "/properties/" + keys[i]);
      kv[i] = gemma() ? gbnf_literal(keys[i] + ":") + " " + v
                      : gbnf_literal(ojson(keys[i]).dump()) + " " + ws() + " \":\" " + ws() + " " + v + " " + ws();
      kv[i] = add(name + "-" + keys[i] + "-kv", kv[i]);
    }
    std::vector<std::string> after(n + 1), first(n + 1);
    after[n] = first[n] = "";
    for (size_t i = n; i-- > 0;) {
      const bool req = required.count(keys[i]) > 0;
      const std::string rest_after = after[i + 1].empty() ? "" : " " + after[i + 1];
      const std::string a = req ? sep() + " " + kv[i] + rest_after : "(" + sep() + " " + kv[i] + ")?" + rest_after;
      after[i] = add(name + "-after" + std::to_string(i), a);
      std::string f = kv[i] + rest_after;
      if (!req) f += first[i + 1].empty() ? " | \"\"" : " | " + first[i + 1];
      first[i] = add(name + "-first" + std::to_string(i), f);
    }
    return open + " " + first[0] + " \"}\"";
  }

  std::string array_expr(const ojson& s, const ojson& doc, const std::string& name, const std::string& where) {
    const std::string v =
        s.contains("items") ? value(s["items"], doc, name + "-item", where + "/items") : prim("value");
    const auto [min, max] = bounds(s, "minItems", "maxItems", where);
    const std::string open = gemma() ? "\"[\"" : "\"[\" " + ws();
    const std::string item = gemma() ? v : v + " " + ws();
    if (max && *max == 0) return open + " \"]\"";
    const std::string more = repeat(sep() + " " + item, min == 0 ? 0 : min - 1,
                                    max ? std::optional<uint64_t>(*max - 1) : std::nullopt);
    const std::string items = item + (more.empty() ? "" : " " + more);
    return open + " " + (min == 0 ? "(" + items + ")?" : items) + " \"]\"";
  }
};

SchemaGrammarBuilder::SchemaGrammarBuilder(Syntax syntax, int32_t quote_token) : impl_(std::make_unique<Impl>()) {
  impl_->syntax = syntax;
  impl_->quote = quote_token;
  if (syntax == Syntax::Gemma4 && quote_token < 0) throw Error("Gemma 4 tool grammar: the <|\"|> token id is required");
  // Names of the shared rules, reserved so that no schema-derived rule takes them.
  for (const char* p : {"json-ws", "json-string", "json-char", "json-hex", "json-int", "json-integer", "json-number",
                        "json-boolean", "json-null", "json-value", "json-object", "json-array", "json-key", "g-value",
                        "g-object", "g-array", "g-string", "g-s0", "g-s1", "g-s2", "g-s3", "g-s4", "root"})
    impl_->names.insert(p);
}

SchemaGrammarBuilder::~SchemaGrammarBuilder() = default;

std::string SchemaGrammarBuilder::value(const ojson& schema, const ojson& document, const std::string& hint) {
  return impl_->value(schema, document, hint, "#");
}

std::string SchemaGrammarBuilder::whitespace() { return impl_->ws(); }

std::string SchemaGrammarBuilder::rule(const std::string& hint, const std::string& body) {
  return impl_->add(hint, body);
}

std::string SchemaGrammarBuilder::gbnf(const std::string& root_body) const {
  std::string out = "root ::= " + root_body + "\n";
  for (const auto& [name, body] : impl_->rules) out += name + " ::= " + body + "\n";
  return out;
}

std::string json_schema_to_gbnf_ordered(const ojson& schema) {
  SchemaGrammarBuilder b(SchemaGrammarBuilder::Syntax::Json);
  const std::string v = b.value(schema, schema, "value");
  return b.gbnf(v + " " + b.whitespace());
}

std::string json_schema_to_gbnf(const nlohmann::json& schema) { return json_schema_to_gbnf_ordered(ojson(schema)); }

std::string json_object_gbnf() {
  SchemaGrammarBuilder b(SchemaGrammarBuilder::Syntax::Json);
  const ojson any_object = {{"type", "object"}};
  const std::string v = b.value(any_object, any_object, "value");
  return b.gbnf(v + " " + b.whitespace());
}

std::string validate_json(const nlohmann::json& value, const nlohmann::json& schema) {
  return Validator<nlohmann::json>(schema).check(value, schema, "$");
}

}  // namespace hearth::runtime
