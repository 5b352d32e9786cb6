// Tools the agent can call: a name, an OpenAI function schema, and a call that never throws for bad
// arguments or failed work. Everything a tool says goes back to the model verbatim, so errors are written
// for the model to act on: what failed, the statement or argument that failed, and a short hint.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hearth::agent {

using json = nlohmann::json;

struct ToolOutput {
  bool ok = true;
  std::string text;  // what the model reads as the tool's result (an error message when !ok)
  json data;         // structured result for programs (sql_query: {"columns": [...], "rows": [[...]]}), or null
};

class Tool {
 public:
  virtual ~Tool() = default;
  virtual std::string name() const = 0;
  // The OpenAI `function` object: {"name", "description", "parameters": JSON Schema}.
  virtual json function() const = 0;
  // `args` is what the model sent (normally an object; a model may send anything). Never throws.
  virtual ToolOutput call(const json& args) = 0;
};

class ToolRegistry {
 public:
  void add(std::unique_ptr<Tool> tool);
  // OpenAI `tools` array: [{"type": "function", "function": {...}}, ...] in registration order.
  json tools_json() const;
  std::vector<std::string> names() const;
  // Calls the named tool; an unknown name is an error output listing the tools there are.
  ToolOutput call(const std::string& name, const json& args);

 private:
  std::vector<std::unique_ptr<Tool>> tools_;
};

}  // namespace hearth::agent
