// Splits a Gemma 4 model's output, token by token, into reasoning, content and tool calls (GEMMA4.md §6):
//   <|channel>thought\n …reasoning… <channel|>  answer text  <|tool_call>call:NAME{…}<tool_call|> …
// Markup is recognised by token id (the markers are special tokens), so text never leaks markup and
// ordinary text that merely looks like markup stays text. Text is released in whole UTF-8 characters.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "chat/types.h"
#include "tokenizer/tokenizer.h"

namespace hearth::chat {

// Ids of the Gemma 4 markers in a vocabulary (the real one or hearth's toy vocabulary).
struct Gemma4Tokens {
  int32_t channel_open = -1, channel_close = -1;      // <|channel> <channel|>
  int32_t tool_call_open = -1, tool_call_close = -1;  // <|tool_call> <tool_call|>
  int32_t quote = -1;                                 // <|"|>
  int32_t turn_open = -1, turn_close = -1;            // <|turn> <turn|>
  int32_t tool_response_open = -1;                    // <|tool_response>
  // Throws hearth::Error naming the first marker the vocabulary lacks.
  static Gemma4Tokens from(const tokenizer::Tokenizer& tok);
};

class Gemma4OutputParser {
 public:
  enum class State { Content, ChannelHeader, Reasoning, ToolCall };

  Gemma4OutputParser(const tokenizer::Tokenizer& tok, const Gemma4Tokens& ids);

  // One generated token (not an end-of-generation token); appends Reasoning/Content/ToolCall/Error
  // events to `out`. Tool calls get ids "call_<prefix><index>".
  void push(int32_t id, std::vector<ChatEvent>& out);
  // End of generation: releases held bytes; a tool call still open becomes an Error event.
  void finish(std::vector<ChatEvent>& out);

  State state() const { return state_; }
  int n_tool_calls() const { return n_calls_; }
  void set_call_id_prefix(std::string p) { call_id_prefix_ = std::move(p); }

 private:
  void emit_text(std::string text, std::vector<ChatEvent>& out);
  void switch_to(State s, std::vector<ChatEvent>& out);

  const tokenizer::Tokenizer& tok_;
  Gemma4Tokens ids_;
  State state_ = State::Content;
  tokenizer::StreamDecoder dec_;
  std::string header_;  // channel name being read ("thought")
  std::string call_;    // raw text of the tool call being read, <|"|> spelled out
  int n_calls_ = 0;
  std::string call_id_prefix_;
};

}  // namespace hearth::chat
