// The server's wire formats without a server: SSE chunks, OpenAI and Ollama JSON, Ollama request mapping,
// error shapes, metrics text.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "server/api_error.h"
#include "server/formats.h"
#include "server/metrics.h"
#include "server/server.h"

namespace {

using namespace hearth::server;
using hearth::chat::ChatEvent;
using json = nlohmann::json;

ChatEvent content(const std::string& t) {
  ChatEvent e;
  e.kind = ChatEvent::Kind::Content;
  e.text = t;
  return e;
}

ChatEvent done(const std::string& reason, int prompt = 5, int completion = 3, int reasoning = 0) {
  ChatEvent e;
  e.kind = ChatEvent::Kind::Done;
  e.finish_reason = reason;
  e.usage.prompt_tokens = prompt;
  e.usage.completion_tokens = completion;
  e.usage.reasoning_tokens = reasoning;
  e.usage.prompt_ms = 10;
  e.usage.decode_ms = 30;
  return e;
}

// The JSON objects of an SSE text ("data: {...}\n\n" events), and whether it ended with [DONE].
std::vector<json> sse_events(const std::string& text, bool* saw_done = nullptr) {
  std::vector<json> out;
  size_t pos = 0;
  if (saw_done) *saw_done = false;
  while (pos < text.size()) {
    const size_t end = text.find("\n\n", pos);
    EXPECT_NE(end, std::string::npos) << "event without its blank line: " << text.substr(pos);
    if (end == std::string::npos) break;
    const std::string ev = text.substr(pos, end - pos);
    EXPECT_EQ(ev.rfind("data: ", 0), 0u) << ev;
    const std::string data = ev.substr(6);
    if (data == "[DONE]") {
      if (saw_done) *saw_done = true;
    } else {
      out.push_back(json::parse(data));
    }
    pos = end + 2;
  }
  return out;
}

TEST(ServerFormats, ChatChunksFollowOpenAIsStreamShape) {
  ChatChunker c({"chatcmpl-1", "tiny", 1700000000}, /*include_usage=*/true);
  std::string all = c.begin();
  ChatEvent r;
  r.kind = ChatEvent::Kind::Reasoning;
  r.text = "hmm";
  all += c.event(r);
  all += c.event(content("Hel"));
  all += c.event(content("lo"));
  ChatEvent tc;
  tc.kind = ChatEvent::Kind::ToolCall;
  tc.call = {"call_9", "get_time", json{{"zone", "utc"}}};
  all += c.event(tc);
  all += c.event(done("tool_calls", 5, 7, 1));
  EXPECT_TRUE(c.done());
  EXPECT_EQ(c.event(content("late")), "");
  bool saw_done = false;
  auto evs = sse_events(all, &saw_done);
  ASSERT_EQ(evs.size(), 7u);
  EXPECT_TRUE(saw_done);
  for (const auto& e : evs) {
    EXPECT_EQ(e["id"], "chatcmpl-1");
    EXPECT_EQ(e["object"], "chat.completion.chunk");
    EXPECT_EQ(e["model"], "tiny");
    EXPECT_TRUE(e.contains("usage"));  // null on every chunk but the last with include_usage
  }
  EXPECT_EQ(evs[0]["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(evs[1]["choices"][0]["delta"]["reasoning_content"], "hmm");
  EXPECT_EQ(evs[2]["choices"][0]["delta"]["content"], "Hel");
  EXPECT_TRUE(evs[2]["choices"][0]["finish_reason"].is_null());
  const json& call = evs[4]["choices"][0]["delta"]["tool_calls"][0];
  EXPECT_EQ(call["index"], 0);
  EXPECT_EQ(call["id"], "call_9");
  EXPECT_EQ(call["type"], "function");
  EXPECT_EQ(call["function"]["name"], "get_time");
  EXPECT_EQ(call["function"]["arguments"], "{\"zone\":\"utc\"}");  // a JSON string, as OpenAI sends it
  EXPECT_EQ(evs[5]["choices"][0]["finish_reason"], "tool_calls");
  EXPECT_EQ(evs[5]["choices"][0]["delta"], json::object());
  EXPECT_TRUE(evs[6]["choices"].empty());
  EXPECT_EQ(evs[6]["usage"]["prompt_tokens"], 5);
  EXPECT_EQ(evs[6]["usage"]["completion_tokens"], 7);
  EXPECT_EQ(evs[6]["usage"]["total_tokens"], 12);
  EXPECT_EQ(evs[6]["usage"]["completion_tokens_details"]["reasoning_tokens"], 1);
  EXPECT_DOUBLE_EQ(evs[6]["timings"]["predicted_per_second"].get<double>(), 7 * 1000.0 / 30);
}

TEST(ServerFormats, WithoutIncludeUsageThereIsNoUsageChunk) {
  ChatChunker c({"id", "m", 1}, false);
  std::string all = c.begin();  // (one call per statement: operands of + run in any order)
  all += c.event(content("x"));
  all += c.event(done("stop"));
  auto evs = sse_events(all);
  ASSERT_EQ(evs.size(), 3u);
  for (const auto& e : evs) EXPECT_FALSE(e.contains("usage"));
  EXPECT_EQ(evs[2]["choices"][0]["finish_reason"], "stop");
}

TEST(ServerFormats, CancelledMapsToStopAndErrorsAreSSEErrorObjects) {
  EXPECT_EQ(openai_finish_reason("cancelled"), "stop");
  EXPECT_EQ(openai_finish_reason("length"), "length");
  ChatChunker c({"id", "m", 1}, false);
  auto evs = sse_events(c.error("boom"));
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0]["error"]["message"], "boom");
  EXPECT_EQ(evs[0]["error"]["type"], "server_error");
}

TEST(ServerFormats, InvalidUtf8NeverThrows) {
  ChatChunker c({"id", "m", 1}, false);
  const std::string s = c.event(content(std::string("a\xff\xfe" "b")));
  EXPECT_NE(s.find("data: "), std::string::npos);
  EXPECT_NO_THROW(json::parse(s.substr(6)));
}

TEST(ServerFormats, ChatCompletionObject) {
  hearth::chat::ChatResult r;
  r.content = "";
  r.reasoning = "think";
  r.tool_calls.push_back({"call_1", "f", json{{"a", 1}}});
  r.finish_reason = "tool_calls";
  r.usage.prompt_tokens = 10;
  r.usage.cached_prompt_tokens = 4;
  r.usage.completion_tokens = 6;
  r.usage.reasoning_tokens = 2;
  json j = chat_completion_json({"chatcmpl-x", "tiny", 5}, r);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_TRUE(j["choices"][0]["message"]["content"].is_null());  // tool calls and no text: null, as OpenAI
  EXPECT_EQ(j["choices"][0]["message"]["reasoning_content"], "think");
  EXPECT_EQ(j["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"], "{\"a\":1}");
  EXPECT_EQ(j["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
  EXPECT_EQ(j["timings"]["prompt_n"], 6);
  EXPECT_EQ(j["timings"]["cache_n"], 4);
}

TEST(ServerFormats, CompletionChunks) {
  CompletionChunker c({"cmpl-1", "tiny", 1}, true);
  std::string all = c.event(content("Once"));
  all += c.event(done("length"));
  bool saw_done = false;
  auto evs = sse_events(all, &saw_done);
  ASSERT_EQ(evs.size(), 3u);
  EXPECT_TRUE(saw_done);
  EXPECT_EQ(evs[0]["object"], "text_completion");
  EXPECT_EQ(evs[0]["choices"][0]["text"], "Once");
  EXPECT_EQ(evs[1]["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(evs[2]["usage"]["completion_tokens"], 3);
}

TEST(ServerFormats, OllamaChunksAreNdjsonLines) {
  OllamaChunker c("tiny", true, std::chrono::steady_clock::now());
  ChatEvent r;
  r.kind = ChatEvent::Kind::Reasoning;
  r.text = "hm";
  ChatEvent tc;
  tc.kind = ChatEvent::Kind::ToolCall;
  tc.call = {"c1", "f", json{{"x", true}}};
  std::string lines = c.event(r);
  lines += c.event(content("Hi"));
  lines += c.event(tc);
  lines += c.event(done("stop", 7, 2));
  std::vector<json> js;
  size_t pos = 0;
  while (pos < lines.size()) {
    const size_t nl = lines.find('\n', pos);
    ASSERT_NE(nl, std::string::npos);
    js.push_back(json::parse(lines.substr(pos, nl - pos)));
    pos = nl + 1;
  }
  ASSERT_EQ(js.size(), 4u);
  EXPECT_EQ(js[0]["message"]["thinking"], "hm");
  EXPECT_EQ(js[0]["done"], false);
  EXPECT_EQ(js[1]["message"]["content"], "Hi");
  EXPECT_EQ(js[2]["message"]["tool_calls"][0]["function"]["name"], "f");
  EXPECT_EQ(js[2]["message"]["tool_calls"][0]["function"]["arguments"], json({{"x", true}}));  // an object
  EXPECT_EQ(js[3]["done"], true);
  EXPECT_EQ(js[3]["done_reason"], "stop");
  EXPECT_EQ(js[3]["prompt_eval_count"], 7);
  EXPECT_EQ(js[3]["eval_count"], 2);
  EXPECT_EQ(js[3]["eval_duration"], 30000000);
  EXPECT_EQ(js[0]["created_at"].get<std::string>().size(), std::string("2026-01-01T00:00:00.000000000Z").size());
}

TEST(ServerFormats, OllamaChatRequestMapping) {
  json body = {{"model", "tiny"},
               {"messages",
                {{{"role", "user"}, {"content", "hi"}, {"images", {"aGk="}}},
                 {{"role", "assistant"},
                  {"content", ""},
                  {"tool_calls", {{{"function", {{"name", "f"}, {"arguments", {{"a", 1}}}}}}}}},
                 {{"role", "tool"}, {"content", "ok"}, {"tool_name", "f"}}}},
               {"format", "json"},
               {"think", true},
               {"stream", false},
               {"options", {{"num_ctx", 512}, {"num_predict", 20}, {"temperature", 0.5}, {"top_k", 10}, {"seed", 4},
                            {"ignore_eos", true}, {"stop", {"\n\n"}}}}};
  OllamaRequest o = parse_ollama_chat(body);
  EXPECT_EQ(o.model, "tiny");
  EXPECT_FALSE(o.stream);
  EXPECT_EQ(o.num_ctx, 512);
  ASSERT_EQ(o.req.messages.size(), 3u);
  EXPECT_EQ(o.req.messages[1].tool_calls[0].name, "f");
  EXPECT_EQ(o.req.messages[1].tool_calls[0].arguments, json({{"a", 1}}));
  EXPECT_EQ(o.req.messages[2].name, "f");
  EXPECT_EQ(o.req.response_format, hearth::chat::ResponseFormat::JsonObject);
  EXPECT_TRUE(o.req.think);
  EXPECT_EQ(o.req.max_tokens, 20);
  EXPECT_FLOAT_EQ(o.req.sampling.temperature, 0.5f);
  EXPECT_EQ(o.req.sampling.top_k, 10);
  EXPECT_EQ(o.req.sampling.seed, 4u);
  EXPECT_TRUE(o.req.sampling.ignore_eos);
  EXPECT_EQ(o.req.stop, std::vector<std::string>{"\n\n"});
  EXPECT_EQ(o.notes.size(), 1u);  // the image

  json schema = {{"type", "object"}, {"properties", {{"a", {{"type", "integer"}}}}}};
  OllamaRequest s = parse_ollama_chat({{"model", "tiny"}, {"messages", {{{"role", "user"}, {"content", "x"}}}},
                                       {"format", schema}, {"think", "low"}});
  EXPECT_EQ(s.req.response_format, hearth::chat::ResponseFormat::JsonSchema);
  EXPECT_EQ(s.req.json_schema, schema);
  EXPECT_TRUE(s.stream);
  EXPECT_TRUE(s.req.think);
  EXPECT_EQ(s.req.thinking_budget, 512);

  EXPECT_TRUE(parse_ollama_chat({{"model", "tiny"}}).load_only);
}

TEST(ServerFormats, OllamaErrorsNameTheField) {
  auto msg = [](const json& body) {
    try {
      parse_ollama_chat(body);
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const json m = {{{"role", "user"}, {"content", "x"}}};
  EXPECT_EQ(msg({{"messages", m}, {"options", {{"temperature", "hot"}}}}), "options.temperature must be a number");
  EXPECT_EQ(msg({{"messages", m}, {"options", {{"num_ctx", 1.5}}}}), "options.num_ctx must be an integer");
  EXPECT_EQ(msg({{"messages", m}, {"options", {{"ignore_eos", 1}}}}), "options.ignore_eos must be true or false");
  EXPECT_EQ(msg({{"messages", m}, {"options", {{"num_predict", -7}}}}).rfind("options.num_predict", 0), 0u);
  EXPECT_EQ(msg({{"messages", m}, {"format", "xml"}}).rfind("format must be", 0), 0u);
  EXPECT_EQ(msg({{"messages", m}, {"stream", "no"}}), "stream must be a boolean");
  EXPECT_EQ(msg({{"messages", {{{"role", "user"}, {"content", 3}}}}}), "messages[0].content must be a string");
  EXPECT_EQ(msg({{"messages", m}, {"think", "extreme"}}).find("reasoning_effort"), 0u);
}

TEST(ServerFormats, OllamaGenerateRawAndSystem) {
  OllamaRequest g = parse_ollama_generate({{"model", "tiny"}, {"prompt", "p"}, {"system", "s"}});
  ASSERT_EQ(g.req.messages.size(), 2u);
  EXPECT_EQ(g.req.messages[0].role, "system");
  EXPECT_FALSE(g.req.raw_prompt);
  OllamaRequest raw = parse_ollama_generate({{"model", "tiny"}, {"prompt", "<start>abc"}, {"raw", true}});
  EXPECT_EQ(raw.req.raw_prompt, "<start>abc");
  EXPECT_TRUE(parse_ollama_generate({{"model", "tiny"}, {"prompt", ""}}).load_only);
}

TEST(ServerFormats, ErrorShapes) {
  const json e = openai_error_json(model_not_found("gpt-4"));
  EXPECT_EQ(e["error"]["code"], "model_not_found");
  EXPECT_EQ(e["error"]["type"], "invalid_request_error");
  EXPECT_NE(e["error"]["message"].get<std::string>().find("gpt-4"), std::string::npos);
  EXPECT_TRUE(e["error"].contains("param"));
  EXPECT_EQ(ollama_error_json("x"), json({{"error", "x"}}));
  EXPECT_EQ(error_type_for_status(401), "authentication_error");
  EXPECT_EQ(error_type_for_status(500), "server_error");
  EXPECT_EQ(bad_request("m").status, 400);
}

TEST(ServerFormats, Base64) {
  EXPECT_EQ(base64_encode("", 0), "");
  EXPECT_EQ(base64_encode("f", 1), "Zg==");
  EXPECT_EQ(base64_encode("fo", 2), "Zm8=");
  EXPECT_EQ(base64_encode("foo", 3), "Zm9v");
  EXPECT_EQ(base64_encode("foobar", 6), "Zm9vYmFy");
  const float one = 1.0f;
  EXPECT_EQ(base64_encode(&one, 4), "AACAPw==");
}

TEST(ServerMetrics, PrometheusText) {
  Metrics m;
  m.count_request("/v1/chat/completions", 200);
  m.count_request("/v1/chat/completions", 200);
  m.count_request("other", 404);
  m.observe_ttft(0.02);
  m.observe_ttft(3);
  hearth::chat::ServiceStats s;
  s.slots = 2;
  s.busy_slots = 1;
  s.completion_tokens = 100;
  s.decode_ms = 500;
  const std::string t = m.render(s);
  EXPECT_NE(t.find("hearth_http_requests_total{route=\"/v1/chat/completions\",status=\"200\"} 2\n"), std::string::npos);
  EXPECT_NE(t.find("hearth_http_requests_total{route=\"other\",status=\"404\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("hearth_time_to_first_token_seconds_bucket{le=\"0.025\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("hearth_time_to_first_token_seconds_bucket{le=\"5\"} 2\n"), std::string::npos);
  EXPECT_NE(t.find("hearth_time_to_first_token_seconds_bucket{le=\"+Inf\"} 2\n"), std::string::npos);
  EXPECT_NE(t.find("hearth_time_to_first_token_seconds_count 2\n"), std::string::npos);
  EXPECT_NE(t.find("hearth_decode_tokens_per_second 200\n"), std::string::npos);
  EXPECT_NE(t.find("# TYPE hearth_slots_busy gauge\nhearth_slots_busy 1\n"), std::string::npos);
  EXPECT_GT(Metrics::resident_bytes(), 0u);
  EXPECT_EQ(prom_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

TEST(ServerRoutes, Labels) {
  EXPECT_EQ(Server::route_label("/v1/chat/completions"), "/v1/chat/completions");
  EXPECT_EQ(Server::route_label("/v1/models/x"), "/v1/models/{id}");
  EXPECT_EQ(Server::route_label("/api/chat"), "/api/chat");
  EXPECT_EQ(Server::route_label("/etc/passwd"), "other");
}

TEST(ServerModel, NamesAClientMayUse) {
  ServedModel m;
  m.id = "demo";
  m.path = "out/demo.gguf";
  EXPECT_TRUE(m.matches("demo"));
  EXPECT_TRUE(m.matches("demo:latest"));
  EXPECT_TRUE(m.matches("demo.gguf"));
  EXPECT_TRUE(m.matches("out/demo.gguf"));
  EXPECT_FALSE(m.matches("demo2"));
  EXPECT_FALSE(m.matches("gpt-4"));
}

}  // namespace
