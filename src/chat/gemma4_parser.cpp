#include "chat/gemma4_parser.h"

#include "core/error.h"
#include "runtime/tool_grammar.h"

namespace hearth::chat {

Gemma4Tokens Gemma4Tokens::from(const tokenizer::Tokenizer& tok) {
  auto id = [&](const char* piece) {
    auto v = tok.find(piece);
    if (!v) throw Error(std::string("the vocabulary has no Gemma 4 chat marker ") + piece);
    return *v;
  };
  Gemma4Tokens t;
  t.channel_open = id("<|channel>");
  t.channel_close = id("<channel|>");
  t.tool_call_open = id("<|tool_call>");
  t.tool_call_close = id("<tool_call|>");
  t.quote = id("<|\"|>");
  t.turn_open = id("<|turn>");
  t.turn_close = id("<turn|>");
  t.tool_response_open = id("<|tool_response>");
  return t;
}

Gemma4OutputParser::Gemma4OutputParser(const tokenizer::Tokenizer& tok, const Gemma4Tokens& ids)
    : tok_(tok), ids_(ids), dec_(tok) {}

void Gemma4OutputParser::emit_text(std::string text, std::vector<ChatEvent>& out) {
  if (text.empty()) return;
  switch (state_) {
    case State::Content:
    case State::Reasoning: {
      const auto kind = state_ == State::Content ? ChatEvent::Kind::Content : ChatEvent::Kind::Reasoning;
      if (!out.empty() && out.back().kind == kind) out.back().text += text;
      else {
        ChatEvent ev;
        ev.kind = kind;
        ev.text = std::move(text);
        out.push_back(std::move(ev));
      }
      break;
    }
    case State::ChannelHeader: header_ += text; break;
    case State::ToolCall: call_ += text; break;
  }
}

void Gemma4OutputParser::switch_to(State s, std::vector<ChatEvent>& out) {
  emit_text(dec_.flush(), out);  // bytes of a character cut by the marker belong to the old part
  state_ = s;
}

void Gemma4OutputParser::push(int32_t id, std::vector<ChatEvent>& out) {
  if (state_ == State::ToolCall) {
    if (id == ids_.tool_call_close) {
      emit_text(dec_.flush(), out);
      state_ = State::Content;
      std::string raw = std::move(call_);
      call_.clear();
      // raw = "call:NAME{...}"
      ChatEvent ev;
      try {
        if (!raw.starts_with("call:")) throw Error("it does not start with \"call:\"");
        auto [name, args] = runtime::parse_gemma4_call(std::string_view(raw).substr(5));
        ev.kind = ChatEvent::Kind::ToolCall;
        ev.call.id = "call_" + call_id_prefix_ + std::to_string(n_calls_);
        ev.call.name = std::move(name);
        ev.call.arguments = std::move(args);
        ev.index = n_calls_++;
      } catch (const Error& e) {
        ev.kind = ChatEvent::Kind::Error;
        ev.text = std::string("the model wrote a malformed tool call (") + e.what() + "): <|tool_call>" + raw + "<tool_call|>";
      }
      out.push_back(std::move(ev));
      return;
    }
    if (id == ids_.quote) {
      emit_text(dec_.flush(), out);
      call_ += "<|\"|>";
      return;
    }
    emit_text(dec_.push(id), out);
    return;
  }
  if (id == ids_.channel_open) {
    switch_to(State::ChannelHeader, out);
    header_.clear();
    return;
  }
  if (id == ids_.channel_close) {
    // Ends reasoning; a stray close in content (llama.cpp tolerates them too) is dropped.
    switch_to(State::Content, out);
    return;
  }
  if (id == ids_.tool_call_open) {
    switch_to(State::ToolCall, out);
    call_.clear();
    return;
  }
  if (state_ == State::ChannelHeader) {
    emit_text(dec_.push(id), out);
    if (const size_t nl = header_.find('\n'); nl != std::string::npos) {
      // The channel name ends at the newline; what follows it is already reasoning.
      std::string rest = header_.substr(nl + 1);
      header_.resize(nl);
      state_ = State::Reasoning;
      emit_text(std::move(rest), out);
    }
    return;
  }
  emit_text(dec_.push(id), out);  // control tokens decode to "" and vanish
}

void Gemma4OutputParser::finish(std::vector<ChatEvent>& out) {
  emit_text(dec_.flush(), out);
  if (state_ == State::ToolCall) {
    ChatEvent ev;
    ev.kind = ChatEvent::Kind::Error;
    ev.text = "the model's tool call was cut off before <tool_call|>: <|tool_call>" + call_;
    out.push_back(std::move(ev));
    call_.clear();
  }
  state_ = State::Content;
}

}  // namespace hearth::chat
