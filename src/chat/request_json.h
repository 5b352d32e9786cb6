// OpenAI chat-completions request bodies → ChatRequest. Shared by the server and `hearth render`.
#pragma once
#include "chat/types.h"

namespace hearth::chat {

// Reads messages, tools, tool_choice, parallel_tool_calls, response_format, temperature, top_p, top_k,
// min_p, seed, presence/frequency_penalty, max_tokens / max_completion_tokens, stop, and the thinking
// controls: hearth's `think` (bool), `reasoning_effort`, `thinking_budget` (tokens), and llama.cpp's
// `chat_template_kwargs.enable_thinking`. Throws hearth::Error naming the offending field.
ChatRequest parse_openai_request(const json& body);

// reasoning_effort → thinking budget in tokens; "none" → 0 (thinking off). Throws for unknown values.
int reasoning_effort_budget(const std::string& effort);

}  // namespace hearth::chat
