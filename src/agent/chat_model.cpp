#include "agent/chat_model.h"

#include <curl/curl.h>

#include <mutex>

#include "core/error.h"

namespace hearth::agent {

chat::ChatResult EngineModel::complete(const chat::ChatRequest& req, const DeltaFn& on_delta) {
  return engine_.chat(req, [&](const chat::ChatEvent& ev) { return on_delta ? on_delta(ev) : true; });
}

namespace {

json message_json(const chat::Message& m) {
  json j = {{"role", m.role}, {"content", m.content}};
  if (!m.tool_calls.empty()) {
    json calls = json::array();
    for (const auto& c : m.tool_calls) {
      const std::string args = c.arguments.is_string() ? c.arguments.get<std::string>() : c.arguments.dump();
      calls.push_back({{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", args}}}});
    }
    j["tool_calls"] = calls;
  }
  if (!m.tool_call_id.empty()) j["tool_call_id"] = m.tool_call_id;
  if (!m.name.empty()) j["name"] = m.name;
  return j;
}

std::string effort_for_budget(const chat::ChatRequest& req) {
  if (!req.think) return "none";
  const int b = req.thinking_budget.value_or(8192);
  return b <= 128 ? "minimal" : b <= 512 ? "low" : b <= 2048 ? "medium" : "high";
}

}  // namespace

json openai_request_body(const chat::ChatRequest& req, const std::string& model) {
  json body = {{"model", model}, {"stream", false}};
  json msgs = json::array();
  for (const auto& m : req.messages) msgs.push_back(message_json(m));
  body["messages"] = msgs;
  if (!req.tools.empty()) {
    json tools = json::array();
    for (const auto& t : req.tools) tools.push_back({{"type", "function"}, {"function", t.function}});
    body["tools"] = tools;
    switch (req.tool_choice) {
      case chat::ToolChoice::Auto: body["tool_choice"] = "auto"; break;
      case chat::ToolChoice::None: body["tool_choice"] = "none"; break;
      case chat::ToolChoice::Required: body["tool_choice"] = "required"; break;
      case chat::ToolChoice::Function:
        body["tool_choice"] = {{"type", "function"}, {"function", {{"name", req.tool_choice_function}}}};
        break;
    }
    if (!req.parallel_tool_calls) body["parallel_tool_calls"] = false;
  }
  if (req.response_format == chat::ResponseFormat::JsonObject) body["response_format"] = {{"type", "json_object"}};
  if (req.response_format == chat::ResponseFormat::JsonSchema)
    body["response_format"] = {{"type", "json_schema"}, {"json_schema", {{"name", "answer"}, {"schema", req.json_schema}}}};
  if (req.think || req.thinking_budget) body["reasoning_effort"] = effort_for_budget(req);
  body["temperature"] = req.sampling.temperature;
  body["top_p"] = req.sampling.top_p;
  if (req.sampling.seed) body["seed"] = *req.sampling.seed;
  if (req.max_tokens) body["max_tokens"] = *req.max_tokens;
  if (!req.stop.empty()) body["stop"] = req.stop;
  return body;
}

chat::ChatResult parse_openai_response(const json& body) {
  if (!body.is_object()) throw Error("the endpoint's answer is not a JSON object");
  if (body.contains("error")) {
    const json& e = body["error"];
    const std::string msg = e.is_object() && e.contains("message") && e["message"].is_string()
                                ? e["message"].get<std::string>()
                                : e.dump();
    throw Error("the endpoint answered with an error: " + msg);
  }
  if (!body.contains("choices") || !body["choices"].is_array() || body["choices"].empty() ||
      !body["choices"][0].is_object() || !body["choices"][0].contains("message") ||
      !body["choices"][0]["message"].is_object())
    throw Error("the endpoint's answer has no choices[0].message (is it an OpenAI chat.completion?)");
  const json& choice = body["choices"][0];
  const json& msg = choice["message"];
  chat::ChatResult r;
  auto text = [&](const char* key) -> std::string {
    return msg.contains(key) && msg[key].is_string() ? msg[key].get<std::string>() : std::string();
  };
  r.content = text("content");
  r.reasoning = text("reasoning_content");
  if (r.reasoning.empty()) r.reasoning = text("reasoning");  // Ollama's and some vLLM builds' name for it
  if (msg.contains("tool_calls") && msg["tool_calls"].is_array()) {
    int i = 0;
    for (const json& c : msg["tool_calls"]) {
      ++i;
      if (!c.is_object() || !c.contains("function") || !c["function"].is_object()) {
        r.errors.push_back("tool call " + std::to_string(i) + " has no function object: " + c.dump());
        continue;
      }
      const json& f = c["function"];
      chat::ToolCall call;
      call.id = c.contains("id") && c["id"].is_string() ? c["id"].get<std::string>() : "";
      call.name = f.contains("name") && f["name"].is_string() ? f["name"].get<std::string>() : "";
      const json args = f.contains("arguments") ? f["arguments"] : json::object();
      if (args.is_string()) {
        const std::string s = args.get<std::string>();
        json parsed = json::parse(s.empty() ? std::string("{}") : s, nullptr, false);
        if (parsed.is_discarded()) {
          r.errors.push_back("the arguments of the call to '" + call.name + "' are not valid JSON: " + s);
          continue;
        }
        call.arguments = parsed;
      } else {
        call.arguments = args;
      }
      r.tool_calls.push_back(std::move(call));
    }
  }
  r.finish_reason = choice.contains("finish_reason") && choice["finish_reason"].is_string()
                        ? choice["finish_reason"].get<std::string>()
                        : "stop";
  if (body.contains("usage") && body["usage"].is_object()) {
    const json& u = body["usage"];
    auto num = [](const json& o, const char* k) { return o.contains(k) && o[k].is_number() ? o[k].get<int>() : 0; };
    r.usage.prompt_tokens = num(u, "prompt_tokens");
    r.usage.completion_tokens = num(u, "completion_tokens");
    if (u.contains("prompt_tokens_details") && u["prompt_tokens_details"].is_object())
      r.usage.cached_prompt_tokens = num(u["prompt_tokens_details"], "cached_tokens");
    if (u.contains("completion_tokens_details") && u["completion_tokens_details"].is_object())
      r.usage.reasoning_tokens = num(u["completion_tokens_details"], "reasoning_tokens");
  }
  return r;
}

EndpointModel::EndpointModel(EndpointOptions opt) : opt_(std::move(opt)) {
  while (!opt_.base_url.empty() && opt_.base_url.back() == '/') opt_.base_url.pop_back();
  if (opt_.base_url.rfind("http://", 0) != 0 && opt_.base_url.rfind("https://", 0) != 0)
    throw Error("--endpoint must be an http:// or https:// OpenAI base URL (e.g. http://127.0.0.1:12434/v1), got '" +
                opt_.base_url + "'");
  if (opt_.model.empty()) throw Error("--endpoint needs --model NAME (the model the endpoint serves)");
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

namespace {
size_t append_body(char* data, size_t size, size_t n, void* out) {
  auto* s = static_cast<std::string*>(out);
  if (s->size() + size * n > (64u << 20)) return 0;  // an answer over 64 MiB is not a chat completion
  s->append(data, size * n);
  return size * n;
}
}  // namespace

chat::ChatResult EndpointModel::complete(const chat::ChatRequest& req, const DeltaFn& on_delta) {
  const std::string url = opt_.base_url + "/chat/completions";
  const std::string payload = openai_request_body(req, opt_.model).dump(-1, ' ', false, json::error_handler_t::replace);
  CURL* curl = curl_easy_init();
  if (!curl) throw Error("libcurl could not start a request");
  std::string response;
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  headers = curl_slist_append(headers, "Accept: application/json");
  if (!opt_.api_key.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + opt_.api_key).c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, payload.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(payload.size()));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, append_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, static_cast<long>(opt_.timeout_s));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 15L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  const CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) throw Error("cannot reach " + url + ": " + curl_easy_strerror(rc));
  const json body = json::parse(response, nullptr, false);
  if (status < 200 || status >= 300) {
    std::string detail = response.substr(0, 500);
    if (!body.is_discarded() && body.is_object() && body.contains("error")) {
      const json& e = body["error"];
      detail = e.is_object() && e.contains("message") && e["message"].is_string() ? e["message"].get<std::string>()
               : e.is_string()                                                     ? e.get<std::string>()
                                                                                   : e.dump();
    }
    throw Error(url + " answered HTTP " + std::to_string(status) + ": " + detail);
  }
  if (body.is_discarded()) throw Error(url + " answered with something that is not JSON: " + response.substr(0, 200));
  chat::ChatResult r = parse_openai_response(body);
  if (on_delta) {  // no streaming here: the whole answer arrives at once
    const bool more =
        r.reasoning.empty() || on_delta({chat::ChatEvent::Kind::Reasoning, r.reasoning, {}, 0, {}, "", {}});
    if (more && !r.content.empty()) on_delta({chat::ChatEvent::Kind::Content, r.content, {}, 0, {}, "", {}});
  }
  return r;
}

}  // namespace hearth::agent
