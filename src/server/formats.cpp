#include "server/formats.h"

#include <ctime>

#include "chat/request_json.h"
#include "core/error.h"
#include "server/api_error.h"

namespace hearth::server {

namespace {

double per_second(int n, double ms) { return ms > 0 ? n * 1000.0 / ms : 0.0; }

const json* field(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

// Runs the shared OpenAI request parser, turning its errors into 400s.
chat::ChatRequest parse_openai_or_400(const json& body, const std::string& prefix = "") {
  try {
    return chat::parse_openai_request(body);
  } catch (const hearth::Error& e) {
    throw bad_request(prefix + e.what());
  }
}

}  // namespace

std::string dump_json(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string sse_data(const json& j) { return "data: " + dump_json(j) + "\n\n"; }

json usage_json(const chat::Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_prompt_tokens}}},
          {"completion_tokens_details", {{"reasoning_tokens", u.reasoning_tokens}}}};
}

json timings_json(const chat::Usage& u) {
  const int prompt_n = u.prompt_tokens - u.cached_prompt_tokens;  // evaluated, not reused from the cache
  return {{"cache_n", u.cached_prompt_tokens},
          {"prompt_n", prompt_n},
          {"prompt_ms", u.prompt_ms},
          {"prompt_per_token_ms", prompt_n > 0 ? u.prompt_ms / prompt_n : 0.0},
          {"prompt_per_second", per_second(prompt_n, u.prompt_ms)},
          {"predicted_n", u.completion_tokens},
          {"predicted_ms", u.decode_ms},
          {"predicted_per_token_ms", u.completion_tokens > 0 ? u.decode_ms / u.completion_tokens : 0.0},
          {"predicted_per_second", per_second(u.completion_tokens, u.decode_ms)}};
}

std::string openai_finish_reason(const std::string& r) {
  if (r == "length" || r == "tool_calls" || r == "content_filter") return r;
  return "stop";
}

json openai_tool_call(const chat::ToolCall& c) {
  return {{"id", c.id},
          {"type", "function"},
          {"function",
           {{"name", c.name}, {"arguments", c.arguments.is_string() ? c.arguments.get<std::string>() : dump_json(c.arguments)}}}};
}

json logprobs_json(const std::vector<chat::TokenLogprob>& lps) {
  auto bytes = [](const std::string& s) {
    json b = json::array();
    for (unsigned char c : s) b.push_back(int(c));
    return b;
  };
  json content = json::array();
  for (const chat::TokenLogprob& lp : lps) {
    json top = json::array();
    for (const auto& [tok, l] : lp.top) top.push_back({{"token", tok}, {"logprob", l}, {"bytes", bytes(tok)}});
    content.push_back({{"token", lp.token}, {"logprob", lp.logprob}, {"bytes", bytes(lp.token)}, {"top_logprobs", top}});
  }
  return {{"content", content}, {"refusal", nullptr}};
}

json chat_completion_json(const ResponseMeta& meta, const chat::ChatResult& r, bool logprobs) {
  json msg = {{"role", "assistant"}, {"content", r.content}};
  if (!r.reasoning.empty()) msg["reasoning_content"] = r.reasoning;
  if (!r.tool_calls.empty()) {
    json calls = json::array();
    for (const auto& c : r.tool_calls) calls.push_back(openai_tool_call(c));
    msg["tool_calls"] = calls;
    if (r.content.empty()) msg["content"] = nullptr;
  }
  msg["refusal"] = nullptr;
  return {{"id", meta.id},
          {"object", "chat.completion"},
          {"created", meta.created},
          {"model", meta.model},
          {"system_fingerprint", "hearth"},
          {"choices", json::array({{{"index", 0},
                                    {"message", msg},
                                    {"logprobs", logprobs ? logprobs_json(r.logprobs) : json(nullptr)},
                                    {"finish_reason", openai_finish_reason(r.finish_reason)}}})},
          {"usage", usage_json(r.usage)},
          {"timings", timings_json(r.usage)}};
}

json text_completion_json(const ResponseMeta& meta, const chat::ChatResult& r) {
  return {{"id", meta.id},
          {"object", "text_completion"},
          {"created", meta.created},
          {"model", meta.model},
          {"system_fingerprint", "hearth"},
          {"choices", json::array({{{"index", 0},
                                    {"text", r.content},
                                    {"logprobs", nullptr},
                                    {"finish_reason", openai_finish_reason(r.finish_reason)}}})},
          {"usage", usage_json(r.usage)},
          {"timings", timings_json(r.usage)}};
}

// ---- ChatChunker ----

json ChatChunker::chunk(json delta, const json& finish_reason) const {
  json c = {{"id", meta_.id},
            {"object", "chat.completion.chunk"},
            {"created", meta_.created},
            {"model", meta_.model},
            {"system_fingerprint", "hearth"},
            {"choices", json::array({{{"index", 0}, {"delta", std::move(delta)}, {"logprobs", nullptr},
                                      {"finish_reason", finish_reason}}})}};
  if (include_usage_) c["usage"] = nullptr;
  return c;
}

std::string ChatChunker::begin() { return sse_data(chunk({{"role", "assistant"}, {"content", ""}})); }

std::string ChatChunker::event(const chat::ChatEvent& ev) {
  using K = chat::ChatEvent::Kind;
  if (done_) return "";
  switch (ev.kind) {
    case K::Content: {
      if (ev.text.empty()) return "";
      json c = chunk({{"content", ev.text}});
      if (!ev.logprobs.empty()) c["choices"][0]["logprobs"] = logprobs_json(ev.logprobs);
      return sse_data(c);
    }
    case K::Reasoning:
      return ev.text.empty() ? "" : sse_data(chunk({{"reasoning_content", ev.text}}));
    case K::ToolCall: {
      json tc = openai_tool_call(ev.call);
      tc["index"] = n_tool_calls_++;
      return sse_data(chunk({{"tool_calls", json::array({tc})}}));
    }
    case K::Error:
      return "";  // non-fatal engine notes (e.g. a malformed tool call kept as text) stay in the server log
    case K::Done: {
      done_ = true;
      std::string out = sse_data(chunk(json::object(), openai_finish_reason(ev.finish_reason)));
      if (include_usage_) {
        json u = {{"id", meta_.id},         {"object", "chat.completion.chunk"}, {"created", meta_.created},
                  {"model", meta_.model},   {"system_fingerprint", "hearth"},    {"choices", json::array()},
                  {"usage", usage_json(ev.usage)}, {"timings", timings_json(ev.usage)}};
        out += sse_data(u);
      }
      return out + kSseDone;
    }
  }
  return "";
}

std::string ChatChunker::error(const std::string& message, const std::string& type) {
  done_ = true;
  return sse_data(openai_error_json(message, type, ""));
}

// ---- CompletionChunker ----

json CompletionChunker::chunk(const std::string& text, const json& finish_reason) const {
  json c = {{"id", meta_.id},
            {"object", "text_completion"},
            {"created", meta_.created},
            {"model", meta_.model},
            {"system_fingerprint", "hearth"},
            {"choices", json::array({{{"index", 0}, {"text", text}, {"logprobs", nullptr},
                                      {"finish_reason", finish_reason}}})}};
  if (include_usage_) c["usage"] = nullptr;
  return c;
}

std::string CompletionChunker::event(const chat::ChatEvent& ev) {
  using K = chat::ChatEvent::Kind;
  if (done_) return "";
  if ((ev.kind == K::Content || ev.kind == K::Reasoning) && !ev.text.empty()) return sse_data(chunk(ev.text, nullptr));
  if (ev.kind != K::Done) return "";
  done_ = true;
  std::string out = sse_data(chunk("", openai_finish_reason(ev.finish_reason)));
  if (include_usage_) {
    json u = {{"id", meta_.id},       {"object", "text_completion"}, {"created", meta_.created},
              {"model", meta_.model}, {"choices", json::array()},    {"usage", usage_json(ev.usage)},
              {"timings", timings_json(ev.usage)}};
    out += sse_data(u);
  }
  return out + kSseDone;
}

std::string CompletionChunker::error(const std::string& message, const std::string& type) {
  done_ = true;
  return sse_data(openai_error_json(message, type, ""));
}

// ---- Ollama requests ----

namespace {

// options → the OpenAI body fields parse_openai_request validates, and the Ollama-only ones.
void map_ollama_options(const json& body, json& oai, OllamaRequest& out) {
  const json* opts = field(body, "options");
  if (!opts) {
    out.num_predict_fill = true;
    return;
  }
  if (!opts->is_object()) throw bad_request("options must be an object");
  auto number = [&](const char* key) -> const json* {
    const json* v = field(*opts, key);
    if (v && !v->is_number()) throw bad_request(std::string("options.") + key + " must be a number");
    return v;
  };
  auto integer = [&](const char* key) -> const json* {
    const json* v = field(*opts, key);
    if (v && !v->is_number_integer()) throw bad_request(std::string("options.") + key + " must be an integer");
    return v;
  };
  if (const json* v = integer("num_ctx")) {
    if (v->get<int64_t>() < 1) throw bad_request("options.num_ctx must be a positive integer");
    out.num_ctx = int(std::min<int64_t>(v->get<int64_t>(), 1 << 30));
  }
  out.num_predict_fill = true;
  if (const json* v = integer("num_predict")) {
    const int64_t n = v->get<int64_t>();
    if (n > 0) {
      oai["max_tokens"] = std::min<int64_t>(n, 1 << 30);
      out.num_predict_fill = false;
    } else if (n != -1 && n != -2) {
      throw bad_request("options.num_predict must be a positive integer, -1 (no limit) or -2 (fill the context)");
    }
  }
  for (const char* key : {"temperature", "top_p", "min_p", "presence_penalty", "frequency_penalty"})
    if (const json* v = number(key)) oai[key] = *v;
  if (const json* v = integer("top_k")) oai["top_k"] = *v;
  if (const json* v = integer("seed")) oai["seed"] = *v;
  if (const json* v = field(*opts, "ignore_eos")) {  // llama.cpp's field (Ollama has none): runs to num_predict
    if (!v->is_boolean()) throw bad_request("options.ignore_eos must be true or false");
    oai["ignore_eos"] = *v;
  }
  if (const json* v = field(*opts, "stop")) {
    if (!v->is_array() && !v->is_string()) throw bad_request("options.stop must be an array of strings");
    oai["stop"] = *v;
  }
}

void map_ollama_common(const json& body, json& oai, OllamaRequest& out) {
  if (const json* m = field(body, "model")) {
    if (!m->is_string()) throw bad_request("model must be a string");
    out.model = m->get<std::string>();
  }
  if (const json* s = field(body, "stream")) {
    if (!s->is_boolean()) throw bad_request("stream must be a boolean");
    out.stream = s->get<bool>();
  }
  if (const json* f = field(body, "format")) {
    if (f->is_string()) {
      const std::string s = f->get<std::string>();
      if (s == "json") oai["response_format"] = {{"type", "json_object"}};
      else if (!s.empty()) throw bad_request("format must be \"json\" or a JSON schema object (got \"" + s + "\")");
    } else if (f->is_object()) {
      oai["response_format"] = {{"type", "json_schema"}, {"json_schema", {{"name", "format"}, {"schema", *f}}}};
    } else {
      throw bad_request("format must be \"json\" or a JSON schema object");
    }
  }
  if (const json* t = field(body, "think")) {
    if (t->is_boolean()) {
      oai["think"] = *t;
    } else if (t->is_string()) {
      oai["reasoning_effort"] = *t;
    } else {
      throw bad_request("think must be a boolean or one of \"low\", \"medium\", \"high\"");
    }
  }
  map_ollama_options(body, oai, out);
}

json ollama_message_to_openai(const json& m, size_t i, OllamaRequest& out) {
  const std::string where = "messages[" + std::to_string(i) + "]";
  if (!m.is_object()) throw bad_request(where + " must be an object");
  json o = json::object();
  const json* role = field(m, "role");
  if (!role || !role->is_string()) throw bad_request(where + ".role must be a string");
  o["role"] = *role;
  if (const json* c = field(m, "content")) {
    if (!c->is_string()) throw bad_request(where + ".content must be a string");
    o["content"] = *c;
  } else {
    o["content"] = "";
  }
  if (const json* imgs = field(m, "images")) {
    if (!imgs->is_array()) throw bad_request(where + ".images must be an array");
    if (!imgs->empty()) out.notes.push_back(where + ".images ignored: hearth serves text only for now");
  }
  if (const json* tcs = field(m, "tool_calls")) {
    if (!tcs->is_array()) throw bad_request(where + ".tool_calls must be an array");
    json calls = json::array();
    for (size_t k = 0; k < tcs->size(); ++k) {
      const json& tc = (*tcs)[k];
      const std::string w = where + ".tool_calls[" + std::to_string(k) + "]";
      if (!tc.is_object()) throw bad_request(w + " must be an object");
      const json* fn = field(tc, "function");
      if (!fn || !fn->is_object()) throw bad_request(w + ".function must be an object");
      json call = {{"type", "function"}, {"function", *fn}};
      if (const json* id = field(tc, "id"); id && id->is_string()) call["id"] = *id;
      calls.push_back(call);
    }
    o["tool_calls"] = calls;
  }
  for (const char* key : {"tool_name", "name"})
    if (const json* n = field(m, key)) {
      if (!n->is_string()) throw bad_request(where + "." + key + " must be a string");
      o["name"] = *n;
    }
  if (const json* id = field(m, "tool_call_id"); id && id->is_string()) o["tool_call_id"] = *id;
  return o;
}

}  // namespace

OllamaRequest parse_ollama_chat(const json& body) {
  if (!body.is_object()) throw bad_request("the request body must be a JSON object");
  OllamaRequest out;
  json oai = json::object();
  map_ollama_common(body, oai, out);
  const json* msgs = field(body, "messages");
  if (msgs && !msgs->is_array()) throw bad_request("messages must be an array");
  if (!msgs || msgs->empty()) {
    out.load_only = true;  // Ollama: a chat without messages loads the model and returns at once
    return out;
  }
  json list = json::array();
  for (size_t i = 0; i < msgs->size(); ++i) list.push_back(ollama_message_to_openai((*msgs)[i], i, out));
  oai["messages"] = list;
  if (const json* tools = field(body, "tools")) oai["tools"] = *tools;
  out.req = parse_openai_or_400(oai);
  return out;
}

OllamaRequest parse_ollama_generate(const json& body) {
  if (!body.is_object()) throw bad_request("the request body must be a JSON object");
  OllamaRequest out;
  json oai = json::object();
  map_ollama_common(body, oai, out);
  std::string prompt, system;
  if (const json* p = field(body, "prompt")) {
    if (!p->is_string()) throw bad_request("prompt must be a string");
    prompt = p->get<std::string>();
  }
  if (const json* s = field(body, "system")) {
    if (!s->is_string()) throw bad_request("system must be a string");
    system = s->get<std::string>();
  }
  if (const json* s = field(body, "suffix"); s && !(s->is_string() && s->get<std::string>().empty()))
    throw bad_request("suffix (fill-in-the-middle) is not supported");
  bool raw = false;
  if (const json* r = field(body, "raw")) {
    if (!r->is_boolean()) throw bad_request("raw must be a boolean");
    raw = r->get<bool>();
  }
  if (const json* imgs = field(body, "images"); imgs && imgs->is_array() && !imgs->empty())
    out.notes.push_back("images ignored: hearth serves text only for now");
  if (field(body, "template")) out.notes.push_back("template ignored: hearth renders the model's own chat format");
  if (field(body, "context")) out.notes.push_back("context ignored (deprecated): send the conversation to /api/chat");
  if (prompt.empty() && !raw) {
    out.load_only = true;
    return out;
  }
  json msgs = json::array();
  if (!system.empty()) msgs.push_back({{"role", "system"}, {"content", system}});
  msgs.push_back({{"role", "user"}, {"content", prompt}});
  oai["messages"] = msgs;
  out.req = parse_openai_or_400(oai);
  if (raw) {
    out.req.raw_prompt = prompt;
    out.req.think = false;
    out.req.thinking_budget.reset();
  }
  return out;
}

// ---- Ollama responses ----

std::string rfc3339_now() {
  const auto now = std::chrono::system_clock::now();
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  const std::time_t secs = std::time_t(ns / 1000000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[96];
  std::snprintf(out, sizeof out, "%s.%09lldZ", buf, static_cast<long long>(ns % 1000000000));
  return out;
}

json ollama_tool_call(const chat::ToolCall& c, int index) {
  json args = c.arguments;
  if (args.is_string()) {
    json parsed = json::parse(args.get<std::string>(), nullptr, false);
    args = parsed.is_object() ? parsed : json::object();
  }
  json call = {{"function", {{"index", index}, {"name", c.name}, {"arguments", args}}}};
  if (!c.id.empty()) call["id"] = c.id;
  return call;
}

json OllamaChunker::base() const { return {{"model", model_}, {"created_at", rfc3339_now()}}; }

json OllamaChunker::final_fields(const chat::Usage& u, const std::string& finish_reason) const {
  const auto total = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start_);
  json j;
  j["done"] = true;
  j["done_reason"] = finish_reason == "length" ? "length" : "stop";
  j["total_duration"] = int64_t(total.count());
  j["load_duration"] = 0;
  j["prompt_eval_count"] = u.prompt_tokens;
  j["prompt_eval_duration"] = int64_t(u.prompt_ms * 1e6);
  j["eval_count"] = u.completion_tokens;
  j["eval_duration"] = int64_t(u.decode_ms * 1e6);
  return j;
}

std::string OllamaChunker::event(const chat::ChatEvent& ev) {
  using K = chat::ChatEvent::Kind;
  if (done_ || ev.kind == K::Error) return "";
  json j = base();
  if (ev.kind == K::Done) {
    done_ = true;
    if (chat_) j["message"] = {{"role", "assistant"}, {"content", ""}};
    else j["response"] = "";
    j.update(final_fields(ev.usage, ev.finish_reason));
    return dump_json(j) + "\n";
  }
  if ((ev.kind == K::Content || ev.kind == K::Reasoning) && ev.text.empty()) return "";
  const char* text_key = ev.kind == K::Reasoning ? "thinking" : "content";
  if (chat_) {
    json msg = {{"role", "assistant"}, {"content", ""}};
    if (ev.kind == K::ToolCall) msg["tool_calls"] = json::array({ollama_tool_call(ev.call, ev.index)});
    else msg[text_key] = ev.text;
    j["message"] = msg;
  } else {
    if (ev.kind == K::ToolCall) return "";  // /api/generate has no tool calls
    j["response"] = ev.kind == K::Content ? ev.text : "";
    if (ev.kind == K::Reasoning) j["thinking"] = ev.text;
  }
  j["done"] = false;
  return dump_json(j) + "\n";
}

std::string OllamaChunker::error(const std::string& message) {
  done_ = true;
  return dump_json(ollama_error_json(message)) + "\n";
}

json OllamaChunker::whole(const chat::ChatResult& r) const {
  json j = base();
  if (chat_) {
    json msg = {{"role", "assistant"}, {"content", r.content}};
    if (!r.reasoning.empty()) msg["thinking"] = r.reasoning;
    if (!r.tool_calls.empty()) {
      json calls = json::array();
      for (size_t i = 0; i < r.tool_calls.size(); ++i) calls.push_back(ollama_tool_call(r.tool_calls[i], int(i)));
      msg["tool_calls"] = calls;
    }
    j["message"] = msg;
  } else {
    j["response"] = r.content;
    if (!r.reasoning.empty()) j["thinking"] = r.reasoning;
  }
  j.update(final_fields(r.usage, r.finish_reason));
  return j;
}

std::string base64_encode(const void* data, size_t n) {
  static const char* tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* p = static_cast<const unsigned char*>(data);
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < n; i += 3) {
    const uint32_t v = uint32_t(p[i]) << 16 | uint32_t(p[i + 1]) << 8 | p[i + 2];
    out += tbl[v >> 18];
    out += tbl[(v >> 12) & 63];
    out += tbl[(v >> 6) & 63];
    out += tbl[v & 63];
  }
  if (i < n) {
    uint32_t v = uint32_t(p[i]) << 16;
    if (i + 1 < n) v |= uint32_t(p[i + 1]) << 8;
    out += tbl[v >> 18];
    out += tbl[(v >> 12) & 63];
    out += i + 1 < n ? tbl[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace hearth::server
