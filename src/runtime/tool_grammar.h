// The Gemma 4 tool-call syntax (GEMMA4.md §6.3) as a grammar, and its parser:
//   <|tool_call>call:NAME{key:value,...}<tool_call|>
// Values: strings <|"|>text<|"|> (the text never spells out <|"|>), JSON numbers, true/false/null, nested
// objects {key:value,...} with bare keys, arrays [v,...]. No whitespace anywhere (the chat template writes
// none). Keys come in the order the chat template renders them (Jinja dictsort: case-insensitive), required
// keys mandatory, optional ones optional; arguments satisfy the tool's `parameters` schema (the subset of
// json_schema.h written in this syntax).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hearth::runtime {

// `parameters` may be null or {} (no arguments: NAME{}), an object schema, or {"type":"object"} without
// properties (any arguments with bare keys).
struct ToolSpec {
  std::string name;
  nlohmann::json parameters;
};

// Token ids of <|tool_call>, <tool_call|> and <|"|> in the vocabulary.
struct Gemma4ToolTokens {
  int32_t call_open, call_close, quote;
};

// GBNF whose root is one call (or, with `parallel`, one or more calls back to back) of any of `tools`, each
// starting with the <|tool_call> token and ending with <tool_call|>. Throws hearth::Error for no tools, a
// duplicate or unwritable tool name, or an unsupported parameters schema.
std::string gemma4_tool_call_gbnf(const std::vector<ToolSpec>& tools, bool parallel, const Gemma4ToolTokens& t);

// Parses the text between "call:" and the end of the call, `NAME{...}` (with <|"|> written as its 5
// characters), into {name, arguments as a JSON object}. Blanks between items are tolerated. Throws
// hearth::Error naming the position on malformed input.
std::pair<std::string, nlohmann::json> parse_gemma4_call(std::string_view text);

}  // namespace hearth::runtime
