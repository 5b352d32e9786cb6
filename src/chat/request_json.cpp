#include "chat/request_json.h"

#include <climits>
#include <string>

#include "core/error.h"

namespace hearth::chat {

namespace {

const json* field(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

std::string str_field(const json& obj, const char* key, const std::string& where) {
  const json* v = field(obj, key);
  if (!v) return "";
  if (!v->is_string()) throw Error(where + "." + key + " must be a string");
  return v->get<std::string>();
}

double num_field(const json& v, const std::string& where) {
  if (!v.is_number()) throw Error(where + " must be a number");
  return v.get<double>();
}

ToolCall parse_tool_call(const json& tc, const std::string& where) {
  if (!tc.is_object()) throw Error(where + " must be an object");
  ToolCall call;
  call.id = str_field(tc, "id", where);
  const json* fn = field(tc, "function");
  if (!fn || !fn->is_object()) throw Error(where + ".function must be an object");
  call.name = str_field(*fn, "name", where + ".function");
  if (call.name.empty()) throw Error(where + ".function.name is missing");
  const json* args = field(*fn, "arguments");
  if (!args) {
    call.arguments = json::object();
  } else if (args->is_string()) {
    // OpenAI sends arguments as a JSON string. Keep the object when it parses to one; otherwise keep the
    // text so that the prompt shows what the client sent.
    json parsed = json::parse(args->get<std::string>(), nullptr, /*allow_exceptions=*/false);
    call.arguments = parsed.is_object() ? parsed : *args;
  } else if (args->is_object()) {
    call.arguments = *args;
  } else {
    throw Error(where + ".function.arguments must be a JSON string or object");
  }
  return call;
}

Message parse_message(const json& m, size_t i) {
  const std::string where = "messages[" + std::to_string(i) + "]";
  if (!m.is_object()) throw Error(where + " must be an object");
  Message msg;
  msg.role = str_field(m, "role", where);
  if (msg.role.empty()) throw Error(where + ".role is missing");
  if (const json* c = field(m, "content")) {
    if (!c->is_string() && !c->is_array()) throw Error(where + ".content must be a string, an array of parts or null");
    if (c->is_array())
      for (size_t k = 0; k < c->size(); ++k)
        if (!(*c)[k].is_object() && !(*c)[k].is_string())
          throw Error(where + ".content[" + std::to_string(k) + "] must be an object");
    msg.content = *c;
  }
  if (const json* tcs = field(m, "tool_calls")) {
    if (!tcs->is_array()) throw Error(where + ".tool_calls must be an array");
    for (size_t k = 0; k < tcs->size(); ++k)
      msg.tool_calls.push_back(parse_tool_call((*tcs)[k], where + ".tool_calls[" + std::to_string(k) + "]"));
  }
  msg.tool_call_id = str_field(m, "tool_call_id", where);
  msg.name = str_field(m, "name", where);
  return msg;
}

}  // namespace

int reasoning_effort_budget(const std::string& effort) {
  // Budgets chosen so that "low" still lets a model plan a tool call and "high" is effectively unbounded
  // for an interactive answer; a request's own thinking_budget overrides them.
  if (effort == "none") return 0;
  if (effort == "minimal") return 128;
  if (effort == "low") return 512;
  if (effort == "medium") return 2048;
  if (effort == "high") return 8192;
  throw Error("reasoning_effort must be one of none, minimal, low, medium, high (got \"" + effort + "\")");
}

ChatRequest parse_openai_request(const json& body) {
  if (!body.is_object()) throw Error("the request body must be a JSON object");
  ChatRequest r;
  const json* msgs = field(body, "messages");
  if (!msgs || !msgs->is_array()) throw Error("messages must be an array");
  if (msgs->empty()) throw Error("messages must not be empty");
  for (size_t i = 0; i < msgs->size(); ++i) r.messages.push_back(parse_message((*msgs)[i], i));

  if (const json* tools = field(body, "tools")) {
    if (!tools->is_array()) throw Error("tools must be an array");
    for (size_t i = 0; i < tools->size(); ++i) {
      const std::string where = "tools[" + std::to_string(i) + "]";
      const json& t = (*tools)[i];
      if (!t.is_object()) throw Error(where + " must be an object");
      const std::string type = str_field(t, "type", where);
      if (!type.empty() && type != "function") throw Error(where + ".type must be \"function\"");
      const json* fn = field(t, "function");
      if (!fn || !fn->is_object()) throw Error(where + ".function must be an object");
      Tool tool;
      tool.name = str_field(*fn, "name", where + ".function");
      if (tool.name.empty()) throw Error(where + ".function.name is missing");
      if (const json* p = field(*fn, "parameters"); p && !p->is_object())
        throw Error(where + ".function.parameters must be an object");
      tool.function = *fn;
      r.tools.push_back(std::move(tool));
    }
  }

  if (const json* tc = field(body, "tool_choice")) {
    if (tc->is_string()) {
      const std::string s = tc->get<std::string>();
      if (s == "auto") r.tool_choice = ToolChoice::Auto;
      else if (s == "none") r.tool_choice = ToolChoice::None;
      else if (s == "required") r.tool_choice = ToolChoice::Required;
      else throw Error("tool_choice must be \"auto\", \"none\", \"required\" or {\"type\":\"function\",...}");
    } else if (tc->is_object()) {
      const json* fn = field(*tc, "function");
      if (!fn || !fn->is_object()) throw Error("tool_choice.function must be an object");
      r.tool_choice = ToolChoice::Function;
      r.tool_choice_function = str_field(*fn, "name", "tool_choice.function");
      bool declared = false;
      for (const Tool& t : r.tools) declared |= t.name == r.tool_choice_function;
      if (!declared) throw Error("tool_choice names \"" + r.tool_choice_function + "\", which is not in tools");
    } else {
      throw Error("tool_choice must be a string or an object");
    }
    if ((r.tool_choice == ToolChoice::Required) && r.tools.empty())
      throw Error("tool_choice is \"required\" but no tools are given");
  }
  if (const json* p = field(body, "parallel_tool_calls")) {
    if (!p->is_boolean()) throw Error("parallel_tool_calls must be a boolean");
    r.parallel_tool_calls = p->get<bool>();
  }

  if (const json* rf = field(body, "response_format")) {
    if (!rf->is_object()) throw Error("response_format must be an object");
    const std::string type = str_field(*rf, "type", "response_format");
    if (type == "text" || type.empty()) {
      r.response_format = ResponseFormat::Text;
    } else if (type == "json_object") {
      r.response_format = ResponseFormat::JsonObject;
    } else if (type == "json_schema") {
      const json* js = field(*rf, "json_schema");
      if (!js || !js->is_object()) throw Error("response_format.json_schema must be an object");
      const json* schema = field(*js, "schema");
      if (!schema || !schema->is_object()) throw Error("response_format.json_schema.schema must be an object");
      r.response_format = ResponseFormat::JsonSchema;
      r.json_schema = *schema;
    } else {
      throw Error("response_format.type must be text, json_object or json_schema (got \"" + type + "\")");
    }
  }

  // Thinking: off unless asked for. An explicit budget wins over reasoning_effort.
  if (const json* t = field(body, "think")) {
    if (!t->is_boolean()) throw Error("think must be a boolean");
    r.think = t->get<bool>();
  }
  if (const json* k = field(body, "chat_template_kwargs"); k && k->is_object())
    if (const json* e = field(*k, "enable_thinking"); e && e->is_boolean()) r.think = e->get<bool>();
  if (const json* e = field(body, "reasoning_effort")) {
    if (!e->is_string()) throw Error("reasoning_effort must be a string");
    const int budget = reasoning_effort_budget(e->get<std::string>());
    r.think = budget > 0;
    if (budget > 0) r.thinking_budget = budget;
  }
  if (const json* b = field(body, "thinking_budget")) {
    if (!b->is_number_integer() || b->get<int64_t>() < 0) throw Error("thinking_budget must be a non-negative integer");
    const int64_t n = b->get<int64_t>();
    r.think = n > 0;
    r.thinking_budget = int(std::min<int64_t>(n, 1 << 30));
  }

  Sampling& s = r.sampling;
  if (const json* v = field(body, "temperature")) {
    s.temperature = float(num_field(*v, "temperature"));
    if (s.temperature < 0 || s.temperature > 2) throw Error("temperature must be between 0 and 2");
  }
  if (const json* v = field(body, "top_p")) {
    s.top_p = float(num_field(*v, "top_p"));
    if (s.top_p <= 0 || s.top_p > 1) throw Error("top_p must be in (0, 1]");
  }
  if (const json* v = field(body, "top_k")) {
    if (!v->is_number_integer()) throw Error("top_k must be an integer");
    s.top_k = int(v->get<int64_t>());
  }
  if (const json* v = field(body, "min_p")) s.min_p = float(num_field(*v, "min_p"));
  if (const json* v = field(body, "seed")) {
    if (!v->is_number_integer()) throw Error("seed must be an integer");
    s.seed = uint64_t(v->get<int64_t>());
  }
  if (const json* v = field(body, "presence_penalty")) s.presence_penalty = float(num_field(*v, "presence_penalty"));
  if (const json* v = field(body, "frequency_penalty")) s.frequency_penalty = float(num_field(*v, "frequency_penalty"));
  if (const json* v = field(body, "logit_bias")) {
    if (!v->is_object()) throw Error("logit_bias must be an object mapping token ids to numbers");
    for (auto it = v->begin(); it != v->end(); ++it) {
      int64_t id = -1;
      try {
        size_t used = 0;
        id = std::stoll(it.key(), &used);
        if (used != it.key().size()) id = -1;
      } catch (const std::exception&) {
      }
      if (id < 0 || id > INT32_MAX) throw Error("logit_bias key \"" + it.key() + "\" is not a token id");
      const double bias = num_field(it.value(), "logit_bias[\"" + it.key() + "\"]");
      if (bias < -100 || bias > 100) throw Error("logit_bias values must be between -100 and 100");
      s.logit_bias.emplace_back(int32_t(id), float(bias));
    }
  }
  if (const json* v = field(body, "ignore_eos")) {
    if (!v->is_boolean()) throw Error("ignore_eos must be true or false");
    s.ignore_eos = v->get<bool>();
  }
  for (const char* key : {"max_tokens", "max_completion_tokens"})
    if (const json* v = field(body, key)) {
      if (!v->is_number_integer() || v->get<int64_t>() < 1) throw Error(std::string(key) + " must be a positive integer");
      r.max_tokens = int(std::min<int64_t>(v->get<int64_t>(), 1 << 30));
    }
  if (const json* v = field(body, "stop")) {
    if (v->is_string()) {
      r.stop.push_back(v->get<std::string>());
    } else if (v->is_array()) {
      for (const json& s2 : *v) {
        if (!s2.is_string()) throw Error("stop must be a string or an array of strings");
        r.stop.push_back(s2.get<std::string>());
      }
    } else {
      throw Error("stop must be a string or an array of strings");
    }
    std::erase(r.stop, std::string());
  }
  if (const json* lp = field(body, "logprobs")) {
    if (!lp->is_boolean()) throw Error("logprobs must be a boolean");
    if (lp->get<bool>()) r.logprobs = 0;
  }
  if (const json* tl = field(body, "top_logprobs")) {
    if (!tl->is_number_integer() || tl->get<int64_t>() < 0 || tl->get<int64_t>() > 20)
      throw Error("top_logprobs must be an integer between 0 and 20");
    if (r.logprobs < 0 && tl->get<int64_t>() > 0) throw Error("top_logprobs needs logprobs: true");
    if (r.logprobs >= 0) r.logprobs = int(tl->get<int64_t>());
  }
  if (const json* n = field(body, "n"); n && !(n->is_number_integer() && n->get<int64_t>() == 1))
    throw Error("n must be 1 (hearth returns one choice per request)");
  return r;
}

}  // namespace hearth::chat
