#include "agent/tool.h"

namespace hearth::agent {

void ToolRegistry::add(std::unique_ptr<Tool> tool) { tools_.push_back(std::move(tool)); }

json ToolRegistry::tools_json() const {
  json out = json::array();
  for (const auto& t : tools_) out.push_back({{"type", "function"}, {"function", t->function()}});
  return out;
}

std::vector<std::string> ToolRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& t : tools_) out.push_back(t->name());
  return out;
}

ToolOutput ToolRegistry::call(const std::string& name, const json& args) {
  for (const auto& t : tools_)
    if (t->name() == name) return t->call(args);
  std::string list;
  for (const auto& t : tools_) list += (list.empty() ? "" : ", ") + t->name();
  return {false, "Error: there is no tool named '" + name + "'. The tools are: " + list + ".", nullptr};
}

}  // namespace hearth::agent
