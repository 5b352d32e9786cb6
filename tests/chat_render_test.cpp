// The Gemma 4 renderer against the official template: tests/data/chat_render_golden.json holds
// conversations rendered by Python's Jinja2 from the `tokenizer.chat_template` of the real Gemma 4 GGUF
// (regenerate with `node scripts/chat-goldens/generate.mjs`). Also: request parsing errors, and every
// message order agents send renders without an error.
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "chat/gemma4_format.h"
#include "chat/request_json.h"
#include "core/error.h"

using hearth::chat::ChatRequest;
using hearth::chat::parse_openai_request;
using hearth::chat::render_gemma4;
using json = nlohmann::json;

namespace {

json load_goldens() {
  std::ifstream f(std::string(HEARTH_SOURCE_DIR) + "/tests/data/chat_render_golden.json");
  EXPECT_TRUE(f.good()) << "tests/data/chat_render_golden.json is missing";
  return json::parse(f);
}

// Shows where two renderings part.
std::string first_difference(const std::string& a, const std::string& b) {
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  const size_t from = i > 40 ? i - 40 : 0;
  return "at byte " + std::to_string(i) + "\n  hearth: ..." + json(a.substr(from, 120)).dump() + "\n  jinja:  ..." +
         json(b.substr(from, 120)).dump();
}

}  // namespace

TEST(ChatRender, MatchesJinjaGoldens) {
  const json g = load_goldens();
  ASSERT_GE(g["cases"].size(), 30u);
  int normalised = 0;
  for (const json& c : g["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    ChatRequest req = parse_openai_request(c["request"]);
    const std::string got = render_gemma4(req);
    const std::string want = c["expected"];
    EXPECT_EQ(got, want) << first_difference(got, want);
    normalised += c["normalised"].get<bool>();
  }
  // Both kinds are covered: conversations the template takes as they are, and ones hearth normalises.
  EXPECT_GE(normalised, 10);
  EXPECT_GE(int(g["cases"].size()) - normalised, 10);
}

TEST(ChatRender, EveryMessageOrderRenders) {
  // All role sequences of length 1..4 over the roles agents send; none may throw.
  const std::vector<json> kinds = {
      {{"role", "system"}, {"content", "s"}},
      {{"role", "developer"}, {"content", "d"}},
      {{"role", "user"}, {"content", "u"}},
      {{"role", "assistant"}, {"content", "a"}},
      {{"role", "assistant"}, {"content", nullptr},
       {"tool_calls", json::array({{{"id", "c1"}, {"type", "function"},
                                    {"function", {{"name", "f"}, {"arguments", "{\"x\":1}"}}}}})}},
      {{"role", "tool"}, {"tool_call_id", "c1"}, {"content", "{\"ok\":true}"}},
      {{"role", "tool"}, {"content", "plain"}},
      {{"role", "user"}, {"content", json::array({{{"type", "text"}, {"text", "p"}}})}},
      {{"role", "user"}, {"content", ""}},
  };
  const size_t n = kinds.size();
  int rendered = 0;
  for (int len = 1; len <= 4; ++len) {
    size_t total = 1;
    for (int i = 0; i < len; ++i) total *= n;
    for (size_t code = 0; code < total; ++code) {
      json msgs = json::array();
      for (size_t c = code, i = 0; i < size_t(len); ++i, c /= n) msgs.push_back(kinds[c % n]);
      for (bool think : {false, true}) {
        json body = {{"messages", msgs}, {"think", think}};
        const std::string p = render_gemma4(parse_openai_request(body));
        ASSERT_TRUE(p.starts_with("<bos>")) << msgs.dump();
        ASSERT_EQ(p.find("<|turn>tool"), std::string::npos) << "tool results must not become a turn: " << msgs.dump();
        ++rendered;
      }
    }
  }
  EXPECT_GT(rendered, 10000);
}

TEST(ChatRender, ToolResultsJoinTheModelTurn) {
  json body = json::parse(R"({"messages":[
    {"role":"user","content":"Weather in Paris and Rome?"},
    {"role":"assistant","tool_calls":[
      {"id":"a","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
      {"id":"b","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Rome\"}"}}]},
    {"role":"tool","tool_call_id":"b","content":"{\"temp\":25}"},
    {"role":"tool","tool_call_id":"a","content":"sunny"}]})");
  const std::string p = render_gemma4(parse_openai_request(body));
  EXPECT_NE(p.find("<|tool_call>call:get_weather{city:<|\"|>Paris<|\"|>}<tool_call|>"
                   "<|tool_call>call:get_weather{city:<|\"|>Rome<|\"|>}<tool_call|>"
                   "<|tool_response>response:get_weather{temp:25}<tool_response|>"
                   "<|tool_response>response:get_weather{value:<|\"|>sunny<|\"|>}<tool_response|>"),
            std::string::npos)
      << p;
  // The model continues its own turn: no new <|turn>model after the responses.
  EXPECT_TRUE(p.ends_with("<tool_response|><|channel>thought\n<channel|>")) << p;
}

TEST(ChatRequestJson, ClearErrors) {
  auto err = [](const char* body) {
    try {
      parse_openai_request(json::parse(body));
    } catch (const hearth::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(err(R"({})"), "messages must be an array");
  EXPECT_EQ(err(R"({"messages":[]})"), "messages must not be empty");
  EXPECT_EQ(err(R"({"messages":[{"content":"x"}]})"), "messages[0].role is missing");
  EXPECT_EQ(err(R"({"messages":[{"role":"user","content":5}]})"),
            "messages[0].content must be a string, an array of parts or null");
  EXPECT_EQ(err(R"({"messages":[{"role":"user","content":"x"}],"tool_choice":"required"})"),
            "tool_choice is \"required\" but no tools are given");
  EXPECT_EQ(err(R"({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],
                    "tool_choice":{"type":"function","function":{"name":"g"}}})"),
            "tool_choice names \"g\", which is not in tools");
  EXPECT_EQ(err(R"({"messages":[{"role":"user","content":"x"}],"reasoning_effort":"max"})"),
            "reasoning_effort must be one of none, minimal, low, medium, high (got \"max\")");
  EXPECT_EQ(err(R"({"messages":[{"role":"user","content":"x"}],"temperature":3})"), "temperature must be between 0 and 2");
  EXPECT_EQ(err(R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"xml"}})"),
            "response_format.type must be text, json_object or json_schema (got \"xml\")");
}

TEST(ChatRequestJson, ThinkingControls) {
  auto req = [](const char* extra) {
    return parse_openai_request(json::parse(std::string(R"({"messages":[{"role":"user","content":"x"}])") + extra + "}"));
  };
  EXPECT_FALSE(req("").think);
  EXPECT_TRUE(req(R"(,"think":true)").think);
  EXPECT_TRUE(req(R"(,"chat_template_kwargs":{"enable_thinking":true})").think);
  ChatRequest low = req(R"(,"reasoning_effort":"low")");
  EXPECT_TRUE(low.think);
  EXPECT_EQ(low.thinking_budget.value_or(-1), 512);
  EXPECT_FALSE(req(R"(,"think":true,"reasoning_effort":"none")").think);
  ChatRequest b = req(R"(,"thinking_budget":100,"max_completion_tokens":300)");
  EXPECT_TRUE(b.think);
  EXPECT_EQ(b.thinking_budget.value_or(-1), 100);
  EXPECT_EQ(b.max_tokens.value_or(-1), 300);
}
