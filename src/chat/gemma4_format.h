// The Gemma 4 prompt format (GEMMA4.md §6), rendered natively: the same text the chat template embedded in
// Gemma 4 GGUFs (`tokenizer.chat_template`) renders, checked against a real Jinja rendering of it in
// tests/chat_render_test.cpp (goldens from scripts/chat-goldens/).
//
// Real agents send message lists the template was not written for; they are normalised first, never
// rejected (normalise_gemma4):
//  1. role "developer" is "system";
//  2. the system messages before the first other message merge into one (trimmed texts joined by "\n\n");
//     later system messages stay in place as their own system turns;
//  3. content parts: text stays text, image_url/image → image, input_audio/audio → audio, video → video;
//  4. each run of role "tool" messages becomes `tool_responses` of the assistant message before it (one
//     holding no tool calls is inserted when there is none). A response's function name comes from the
//     call whose id matches tool_call_id, else the message's `name`, else the call at the same position
//     in the run, else "unknown"; its content is parsed as JSON when it parses, else kept as text;
//  5. an assistant message right after such a run (without calls of its own) is the model's answer to
//     the results: its content moves into the message holding the responses, giving the trained layout
//     call → response → answer inside one model turn;
//  6. nothing else changes: consecutive same-role messages stay separate turns, order is kept.
// This is what llama.cpp does for this (release-time) template, plus rules 1-2, chosen so that agents
// that send several system messages or a developer message get one coherent system turn.
#pragma once
#include <string>
#include <vector>

#include "chat/types.h"

namespace hearth::chat {

struct ToolResponse {
  std::string name;
  json response;  // any JSON value; a string when the tool's text was not JSON
};

// A message in the shape the template iterates over.
struct Gemma4Message {
  std::string role;  // system, user, assistant, or a role name passed through
  json content;      // null, a string, or an array of {type: text|image|audio|video, text}
  std::vector<ToolCall> tool_calls;
  std::vector<ToolResponse> tool_responses;
};

std::vector<Gemma4Message> normalise_gemma4(const std::vector<Message>& messages);

struct RenderOptions {
  bool add_generation_prompt = true;
};

// The prompt text, starting with "<bos>" (tokenise it with parse_special and without adding another BOS).
std::string render_gemma4(const ChatRequest& req, const RenderOptions& opt = {});

// Gemma 4's value syntax for tool calls and results: strings as <|"|>text<|"|>, objects {key:value,...}
// with keys in the template's order (case-insensitive sort), arrays [...], true/false, numbers, null.
std::string gemma4_value(const json& v, bool quote_keys = false);

// Python's str.strip() whitespace set, as Jinja's `trim` filter removes it.
std::string jinja_trim(std::string_view s);

}  // namespace hearth::chat
