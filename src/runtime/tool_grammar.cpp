#include "runtime/tool_grammar.h"

#include <set>

#include "core/error.h"
#include "runtime/json_schema.h"

namespace hearth::runtime {

std::string gemma4_tool_call_gbnf(const std::vector<ToolSpec>& tools, bool parallel, const Gemma4ToolTokens& t) {
  if (tools.empty()) throw Error("Gemma 4 tool grammar: no tools given");
  SchemaGrammarBuilder b(SchemaGrammarBuilder::Syntax::Gemma4, t.quote);
  // The builder keeps references to the documents its $refs resolve against: keep them alive here.
  std::vector<nlohmann::ordered_json> docs;
  docs.reserve(tools.size());
  std::set<std::string> seen;
  std::string calls;
  for (const ToolSpec& tool : tools) {
    if (tool.name.empty() || tool.name.find_first_of("{}:,<>\" \t\r\n") != std::string::npos)
      throw Error("Gemma 4 tool grammar: tool name '" + tool.name + "' cannot be written in a call");
    if (!seen.insert(tool.name).second) throw Error("Gemma 4 tool grammar: duplicate tool name '" + tool.name + "'");
    const nlohmann::json& p = tool.parameters;
    std::string args;
    if (p.is_null() || (p.is_object() && p.empty())) {
      args = "\"{}\"";
    } else {
      if (!p.is_object()) throw Error("Gemma 4 tool grammar: parameters of '" + tool.name + "' must be a JSON object");
      const bool object = p.contains("properties") || (p.contains("type") && p["type"] == "object");
      if (!object || (p.contains("type") && p["type"] != "object"))
        throw Error("Gemma 4 tool grammar: parameters of '" + tool.name + "' must be an object schema");
      docs.emplace_back(p);
      args = b.value(docs.back(), docs.back(), tool.name + "-args");
    }
    const std::string call = b.rule("call-" + tool.name, gbnf_literal(tool.name) + " " + args);
    calls += (calls.empty() ? "" : " | ") + call;
  }
  const std::string one = b.rule("call", "<[" + std::to_string(t.call_open) + "]> \"call:\" (" + calls + ") <[" +
                                             std::to_string(t.call_close) + "]>");
  return b.gbnf(parallel ? one + "+" : one);
}

namespace {

constexpr std::string_view kQuote = "<|\"|>";

class CallParser {
 public:
  explicit CallParser(std::string_view s) : s_(s) {}

  std::pair<std::string, nlohmann::json> call() {
    blanks();
    const size_t start = i_;
    while (i_ < s_.size() && s_[i_] != '{') ++i_;
    std::string name(trim(s_.substr(start, i_ - start)));
    if (name.empty()) fail("expected the function name before '{'");
    if (i_ >= s_.size()) fail("expected '{' after the function name");
    nlohmann::json args = object();
    blanks();
    if (i_ != s_.size()) fail("unexpected text after the arguments");
    return {std::move(name), std::move(args)};
  }

 private:
  [[noreturn]] void fail(const std::string& msg) const {
    throw Error("Gemma 4 tool call: " + msg + " at offset " + std::to_string(i_) + " in '" + std::string(s_) + "'");
  }
  static std::string_view trim(std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t' || v.front() == '\n' || v.front() == '\r'))
      v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\n' || v.back() == '\r'))
      v.remove_suffix(1);
    return v;
  }
  void blanks() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  bool at(std::string_view w) const { return s_.substr(i_, w.size()) == w; }
  void expect(char c) {
    blanks();
    if (i_ >= s_.size() || s_[i_] != c) fail(std::string("expected '") + c + "'");
    ++i_;
  }

  std::string quoted() {
    i_ += kQuote.size();
    const size_t end = s_.find(kQuote, i_);
    if (end == std::string_view::npos) fail("unterminated <|\"|> string");
    std::string out(s_.substr(i_, end - i_));
    i_ = end + kQuote.size();
    return out;
  }

  nlohmann::json object() {
    expect('{');
    nlohmann::json obj = nlohmann::json::object();
    blanks();
    if (i_ < s_.size() && s_[i_] == '}') {
      ++i_;
      return obj;
    }
    for (;;) {
      blanks();
      std::string key;
      if (at(kQuote)) {  // declarations quote their keys; accept that form too
        key = quoted();
      } else {
        const size_t start = i_;
        while (i_ < s_.size() && s_[i_] != ':' && s_[i_] != ',' && s_[i_] != '{' && s_[i_] != '}') ++i_;
        key = std::string(trim(s_.substr(start, i_ - start)));
      }
      if (key.empty()) fail("expected a key");
      expect(':');
      if (obj.contains(key)) fail("duplicate key '" + key + "'");
      obj[key] = value();
      blanks();
      if (i_ < s_.size() && s_[i_] == ',') {
        ++i_;
        continue;
      }
      expect('}');
      return obj;
    }
  }

  nlohmann::json array() {
    expect('[');
    nlohmann::json arr = nlohmann::json::array();
    blanks();
    if (i_ < s_.size() && s_[i_] == ']') {
      ++i_;
      return arr;
    }
    for (;;) {
      arr.push_back(value());
      blanks();
      if (i_ < s_.size() && s_[i_] == ',') {
        ++i_;
        continue;
      }
      expect(']');
      return arr;
    }
  }

  nlohmann::json value() {
    blanks();
    if (i_ >= s_.size()) fail("expected a value");
    if (at(kQuote)) return quoted();
    const char c = s_[i_];
    if (c == '{') return object();
    if (c == '[') return array();
    for (auto [word, v] :
         {std::pair<std::string_view, nlohmann::json>{"true", true}, {"false", false}, {"null", nullptr}})
      if (at(word)) {
        i_ += word.size();
        return v;
      }
    if (c == '-' || (c >= '0' && c <= '9')) {
      const size_t start = i_;
      while (i_ < s_.size() && (std::string_view("+-.eE").find(s_[i_]) != std::string_view::npos ||
                                (s_[i_] >= '0' && s_[i_] <= '9')))
        ++i_;
      const std::string num(s_.substr(start, i_ - start));
      try {
        nlohmann::json v = nlohmann::json::parse(num);
        if (!v.is_number()) fail("invalid number '" + num + "'");
        return v;
      } catch (const nlohmann::json::exception&) {
        i_ = start;
        fail("invalid number '" + num + "'");
      }
    }
    fail("expected a value");
  }

  std::string_view s_;
  size_t i_ = 0;
};

}  // namespace

std::pair<std::string, nlohmann::json> parse_gemma4_call(std::string_view text) { return CallParser(text).call(); }

}  // namespace hearth::runtime
