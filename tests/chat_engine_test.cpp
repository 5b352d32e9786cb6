// The chat engine end to end on small random-weight models that carry the real Gemma 4 vocabulary
// (made by `hearth synth --vocab`): tool_choice enforced by grammar, JSON Schema output, bounded thinking
// that always leaves an answer, prompt-prefix reuse, and the output parser on hand-made token streams.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "chat/engine.h"
#include "chat/gemma4_parser.h"
#include "chat/request_json.h"
#include "core/error.h"
#include "runtime/grammar.h"
#include "runtime/json_schema.h"
#include "run_command.h"
#include "synth_model.h"
#include "test_data.h"

namespace {

// Sanitizer builds check memory safety on fewer seeds (each step is ~10x slower there); release builds
// check the statistical claims on all of them.
#if defined(__SANITIZE_ADDRESS__)
constexpr int kSeeds = 10;
#else
constexpr int kSeeds = 50;
#endif

using hearth::chat::ChatEngine;
using hearth::chat::ChatEvent;
using hearth::chat::ChatRequest;
using hearth::chat::ChatResult;
using json = nlohmann::json;
namespace fs = std::filesystem;

// A 64-wide Gemma 4 with random weights and an engine on it; `vocab` empty = hearth's built-in toy vocabulary.
struct TestModel {
  std::unique_ptr<hearth::test::SynthModel> synth;
  hearth::models::Model* model = nullptr;
  hearth::tokenizer::Tokenizer* tok = nullptr;
  std::unique_ptr<ChatEngine> engine;
};

std::unique_ptr<TestModel> make_model(const std::string& vocab) {
  auto m = std::make_unique<TestModel>();
  m->synth = hearth::test::synth_model("--preset tiny-dense --d-model 64 --tied true --wtype Q8_0 --embd-type Q4_0", vocab);
  m->model = m->synth->model.get();
  m->tok = m->synth->tok.get();
  hearth::chat::EngineOptions eo;
  eo.session.n_ctx = 2048;
  eo.session.n_threads = 2;
  m->engine = std::make_unique<ChatEngine>(*m->model, *m->tok, eo);
  return m;
}

class ChatEngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string vocab = hearth::test::testdata("vocab/ggml-vocab-gemma-4.gguf");
    if (fs::exists(vocab)) real_ = make_model(vocab).release();
  }
  static void TearDownTestSuite() {
    delete real_;
    real_ = nullptr;
  }
  void SetUp() override {
    if (!real_) GTEST_SKIP() << "test data not found: vocab/ggml-vocab-gemma-4.gguf (set HEARTH_TESTDATA)";
  }
  static ChatEngine& engine() { return *real_->engine; }
  static TestModel* real_;
};
TestModel* ChatEngineTest::real_ = nullptr;

// Parameters a random model can complete: enums, bounded integers, booleans, nested objects, short arrays.
const json kWeatherTool = json::parse(R"({"type":"function","function":{"name":"get_weather",
  "description":"Current weather for a city",
  "parameters":{"type":"object","properties":{
    "city":{"type":"string","enum":["Paris","Rome","Oslo"]},
    "days":{"type":"integer","minimum":1,"maximum":14},
    "units":{"type":"string","enum":["metric","imperial"]},
    "detail":{"type":"object","properties":{"wind":{"type":"boolean"},"hourly":{"type":"boolean"}},"required":["wind"]}},
   "required":["city","days","detail"]}}})");
const json kAlarmTool = json::parse(R"({"type":"function","function":{"name":"set_alarm",
  "description":"Set an alarm",
  "parameters":{"type":"object","properties":{
    "hour":{"type":"integer","minimum":0,"maximum":23},
    "days":{"type":"array","items":{"type":"string","enum":["mon","tue","wed"]},"maxItems":3},
    "loud":{"type":"boolean"}},
   "required":["hour","loud"]}}})");

json base_request(const json& extra) {
  json body = {{"messages", json::array({{{"role", "user"}, {"content", "What is the weather in Paris?"}}})},
               {"tools", json::array({kWeatherTool, kAlarmTool})},
               {"temperature", 1.0}};
  body.update(extra);
  return body;
}

json schema_of(const std::string& tool) {
  for (const json& t : {kWeatherTool, kAlarmTool})
    if (t["function"]["name"] == tool) return t["function"]["parameters"];
  return json();
}

TEST_F(ChatEngineTest, ToolChoiceRequiredAlwaysCallsADeclaredToolWithValidArguments) {
  for (int seed = 0; seed < kSeeds; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const ChatResult r = engine().chat(hearth::chat::parse_openai_request(
        base_request({{"tool_choice", "required"}, {"parallel_tool_calls", false}, {"seed", seed}, {"max_tokens", 400}})));
    ASSERT_TRUE(r.errors.empty()) << r.errors[0];
    ASSERT_EQ(r.tool_calls.size(), 1u) << "finish " << r.finish_reason << ", content " << r.content;
    const auto& call = r.tool_calls[0];
    const json schema = schema_of(call.name);
    ASSERT_FALSE(schema.is_null()) << "undeclared tool " << call.name;
    EXPECT_EQ(hearth::runtime::validate_json(call.arguments, schema), "") << call.arguments.dump();
    EXPECT_EQ(r.finish_reason, "tool_calls");
    EXPECT_EQ(r.content, "");
  }
}

TEST_F(ChatEngineTest, ToolSchemasWithUnsupportedKeywordsAreEnforcedAsFarAsPossible) {
  // Agents send `pattern`, `format`, numeric bounds...; the request runs, the call keeps the enum.
  json tool = json::parse(R"({"type":"function","function":{"name":"lookup","parameters":{"type":"object",
      "properties":{"code":{"type":"string","enum":["AB","CD"],"pattern":"^[A-Z]+$"},
                    "n":{"type":"integer","multipleOf":2}},"required":["code"]}}})");
  const json params = tool["function"]["parameters"];
  EXPECT_EQ(hearth::chat::enforceable_tool_schema("lookup", params),
            json::parse(R"({"type":"object","properties":{"code":{"type":"string","enum":["AB","CD"]},
                           "n":{"type":"integer"}},"required":["code"]})"));
  json body = base_request({{"tool_choice", "required"}, {"seed", 3}, {"max_tokens", 200}});
  body["tools"] = json::array({tool});
  const ChatResult r = engine().chat(hearth::chat::parse_openai_request(body));
  ASSERT_EQ(r.tool_calls.size(), 1u) << r.finish_reason;
  EXPECT_TRUE(r.tool_calls[0].arguments["code"] == "AB" || r.tool_calls[0].arguments["code"] == "CD");
}

TEST_F(ChatEngineTest, ToolChoiceFunctionCallsThatFunction) {
  for (int seed = 0; seed < 10; ++seed) {
    const ChatResult r = engine().chat(hearth::chat::parse_openai_request(base_request(
        {{"tool_choice", {{"type", "function"}, {"function", {{"name", "set_alarm"}}}}}, {"seed", seed}, {"max_tokens", 400}})));
    ASSERT_GE(r.tool_calls.size(), 1u) << "seed " << seed;
    for (const auto& c : r.tool_calls) {
      EXPECT_EQ(c.name, "set_alarm");
      EXPECT_EQ(hearth::runtime::validate_json(c.arguments, schema_of("set_alarm")), "") << c.arguments.dump();
    }
  }
}

TEST_F(ChatEngineTest, ToolChoiceNoneNeverCalls) {
  for (int seed = 0; seed < kSeeds; ++seed) {
    const ChatResult r = engine().chat(
        hearth::chat::parse_openai_request(base_request({{"tool_choice", "none"}, {"seed", seed}, {"max_tokens", 24}})));
    EXPECT_TRUE(r.tool_calls.empty()) << "seed " << seed;
    EXPECT_TRUE(r.errors.empty()) << "seed " << seed;
    EXPECT_NE(r.content.find_first_not_of(" \t\n"), std::string::npos) << "seed " << seed << ": empty answer";
  }
}

TEST_F(ChatEngineTest, ToolChoiceAutoGivesTextOrValidCalls) {
  int calls = 0;
  for (int seed = 0; seed < kSeeds / 5; ++seed) {
    const ChatResult r = engine().chat(hearth::chat::parse_openai_request(base_request({{"seed", seed}, {"max_tokens", 150}})));
    EXPECT_TRUE(r.errors.empty()) << "seed " << seed << ": " << (r.errors.empty() ? "" : r.errors[0]);
    for (const auto& c : r.tool_calls) {
      EXPECT_EQ(hearth::runtime::validate_json(c.arguments, schema_of(c.name)), "") << c.name << c.arguments.dump();
      ++calls;
    }
  }
  std::printf("auto: %d tool calls in %d answers\n", calls, kSeeds / 5);
}

TEST_F(ChatEngineTest, ToolChoiceAutoStartsTheGrammarWhenTheModelOpensACall) {
  // logit_bias makes the model open a call; from <|tool_call> on the grammar must hold it to a valid one.
  const std::string open_id = std::to_string(*real_->tok->find("<|tool_call>"));
  for (int seed = 0; seed < kSeeds / 5; ++seed) {
    const ChatResult r = engine().chat(hearth::chat::parse_openai_request(base_request(
        {{"seed", seed}, {"max_tokens", 300}, {"parallel_tool_calls", false}, {"logit_bias", {{open_id, 100}}}})));
    EXPECT_TRUE(r.errors.empty()) << "seed " << seed;
    ASSERT_EQ(r.tool_calls.size(), 1u) << "seed " << seed << " finish " << r.finish_reason << " content " << r.content;
    EXPECT_EQ(hearth::runtime::validate_json(r.tool_calls[0].arguments, schema_of(r.tool_calls[0].name)), "");
    EXPECT_EQ(r.finish_reason, "tool_calls");
  }
}

TEST_F(ChatEngineTest, JsonSchemaOutputIsValid) {
  const json schema = json::parse(R"({"type":"object","properties":{
      "answer":{"type":"string","enum":["yes","no","maybe"]},
      "confidence":{"type":"integer","minimum":0,"maximum":100},
      "source":{"type":"object","properties":{
          "kind":{"type":"string","enum":["book","web"]},
          "verified":{"type":"boolean"},
          "tags":{"type":"array","items":{"type":"string","enum":["a","b"]},"maxItems":2}},
        "required":["kind","verified"]},
      "note":{"type":["boolean","null"]}},
    "required":["answer","confidence","source"]})");
  for (int seed = 0; seed < kSeeds; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    json body = {{"messages", json::array({{{"role", "user"}, {"content", "Is it raining?"}}})},
                 {"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "a"}, {"schema", schema}}}}},
                 {"seed", seed},
                 {"max_tokens", 400}};
    const ChatResult r = engine().chat(hearth::chat::parse_openai_request(body));
    ASSERT_EQ(r.finish_reason, "stop") << r.content;
    const json value = json::parse(r.content, nullptr, false);
    ASSERT_FALSE(value.is_discarded()) << r.content;
    EXPECT_EQ(hearth::runtime::validate_json(value, schema), "") << r.content;
  }
}

TEST_F(ChatEngineTest, JsonObjectOutputParses) {
  // A random model may write one very long string; an answer cut by max_tokens must still be a valid
  // prefix of a JSON object, and a finished one must parse.
  auto grammar = hearth::runtime::compile_gbnf(hearth::runtime::json_object_gbnf());
  auto index = std::make_shared<const hearth::runtime::TokenIndex>(*real_->tok);
  int finished = 0;
  for (int seed = 0; seed < std::max(3, kSeeds / 10); ++seed) {
    json body = {{"messages", json::array({{{"role", "user"}, {"content", "Give me JSON"}}})},
                 {"response_format", {{"type", "json_object"}}},
                 {"seed", seed},
                 {"max_tokens", 300}};
    const ChatResult r = engine().chat(hearth::chat::parse_openai_request(body));
    hearth::runtime::GrammarMatcher m(grammar, index);
    EXPECT_TRUE(m.accept_text(r.content)) << r.content;
    if (r.finish_reason == "length") continue;
    ++finished;
    EXPECT_TRUE(json::parse(r.content, nullptr, false).is_object()) << r.content;
  }
  std::printf("json_object: %d answers finished within 300 tokens\n", finished);
}

TEST_F(ChatEngineTest, ThinkingBudgetIsNeverExceededAndAnAnswerFollows) {
  for (int budget : {6, 12, 30, 60}) {
    for (int seed = 0; seed < kSeeds / 5; ++seed) {
      SCOPED_TRACE("budget " + std::to_string(budget) + " seed " + std::to_string(seed));
      json body = {{"messages", json::array({{{"role", "user"}, {"content", "Think, then answer."}}})},
                   {"thinking_budget", budget},
                   {"seed", seed},
                   {"max_tokens", budget + 40}};
      const ChatResult r = engine().chat(hearth::chat::parse_openai_request(body));
      EXPECT_LE(r.usage.reasoning_tokens, budget);
      EXPECT_GT(r.usage.reasoning_tokens, 0);
      EXPECT_FALSE(r.reasoning.empty());
      EXPECT_NE(r.content.find_first_not_of(" \t\n"), std::string::npos) << "empty answer";
      EXPECT_LE(r.usage.completion_tokens, budget + 40);
    }
  }
}

TEST_F(ChatEngineTest, ThinkingLeavesRoomForTheAnswerInsideMaxTokens) {
  // No explicit budget: the default is large, so max_tokens alone must keep room for the answer.
  json body = {{"messages", json::array({{{"role", "user"}, {"content", "Hi"}}})},
               {"think", true},
               {"seed", 3},
               {"max_tokens", 40}};
  const ChatResult r = engine().chat(hearth::chat::parse_openai_request(body));
  EXPECT_LT(r.usage.reasoning_tokens, 40);
  EXPECT_NE(r.content.find_first_not_of(" \t\n"), std::string::npos);
}

TEST_F(ChatEngineTest, PromptPrefixIsReusedWithIdenticalResults) {
  json first = {{"messages", json::array({{{"role", "user"}, {"content", "Tell me about the sea."}}})},
                {"temperature", 0}, {"max_tokens", 8}};
  const ChatResult a = engine().chat(hearth::chat::parse_openai_request(first));
  json second = first;
  second["messages"].push_back({{"role", "assistant"}, {"content", a.content}});
  second["messages"].push_back({{"role", "user"}, {"content", "And the mountains?"}});
  const ChatResult b = engine().chat(hearth::chat::parse_openai_request(second));
  EXPECT_GT(b.usage.cached_prompt_tokens, 8);
  // A fresh engine without the cache gives the same greedy answer.
  hearth::chat::EngineOptions eo;
  eo.session.n_ctx = 2048;
  eo.session.n_threads = 2;
  ChatEngine fresh(*real_->model, *real_->tok, eo);
  const ChatResult c = fresh.chat(hearth::chat::parse_openai_request(second));
  EXPECT_EQ(c.usage.cached_prompt_tokens, 0);
  EXPECT_EQ(b.content, c.content);
}

TEST_F(ChatEngineTest, StopStringsEndTheAnswerAndNeverReachTheClient) {
  json body = {{"messages", json::array({{{"role", "user"}, {"content", "Count."}}})}, {"temperature", 0}, {"max_tokens", 30}};
  const ChatResult full = engine().chat(hearth::chat::parse_openai_request(body));
  ASSERT_GT(full.content.size(), 6u);
  const std::string stop = full.content.substr(full.content.size() / 2, 3);
  body["stop"] = json::array({stop});
  std::string streamed;
  const ChatResult cut = engine().chat(hearth::chat::parse_openai_request(body), [&](const ChatEvent& ev) {
    if (ev.kind == ChatEvent::Kind::Content) streamed += ev.text;
    return true;
  });
  EXPECT_EQ(cut.finish_reason, "stop");
  EXPECT_EQ(cut.content, full.content.substr(0, full.content.find(stop)));
  EXPECT_EQ(streamed, cut.content);
}

TEST_F(ChatEngineTest, LogprobsDescribeEachContentToken) {
  json body = {{"messages", json::array({{{"role", "user"}, {"content", "Hi"}}})},
               {"max_tokens", 10}, {"temperature", 0}, {"logprobs", true}, {"top_logprobs", 4}};
  std::string streamed_tokens;
  const ChatResult r = engine().chat(hearth::chat::parse_openai_request(body), [&](const ChatEvent& ev) {
    for (const auto& lp : ev.logprobs) streamed_tokens += lp.token;
    return true;
  });
  ASSERT_EQ(r.logprobs.size(), size_t(r.usage.completion_tokens));
  std::string joined;
  for (const auto& lp : r.logprobs) {
    joined += lp.token;
    EXPECT_LE(lp.logprob, 0.0f);
    ASSERT_EQ(lp.top.size(), 4u);
    EXPECT_EQ(lp.top[0].first, lp.token);  // greedy: the chosen token is the most likely one
    EXPECT_FLOAT_EQ(lp.top[0].second, lp.logprob);
    double mass = 0;
    for (size_t i = 0; i < lp.top.size(); ++i) {
      mass += std::exp(double(lp.top[i].second));
      if (i) {
        EXPECT_GE(lp.top[i - 1].second, lp.top[i].second);
      }
    }
    EXPECT_LE(mass, 1.0 + 1e-5);
  }
  EXPECT_EQ(joined, r.content);
  EXPECT_EQ(streamed_tokens, r.content);
  // Not asked for: none.
  body.erase("logprobs");
  body.erase("top_logprobs");
  EXPECT_TRUE(engine().chat(hearth::chat::parse_openai_request(body)).logprobs.empty());
}

TEST_F(ChatEngineTest, TooLongPromptIsAClearError) {
  std::string big;
  for (int i = 0; i < 3000; ++i) big += "word ";
  json body = {{"messages", json::array({{{"role", "user"}, {"content", big}}})}};
  try {
    engine().chat(hearth::chat::parse_openai_request(body));
    FAIL() << "no error";
  } catch (const hearth::Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokens but the context holds 2048"), std::string::npos) << e.what();
  }
}

TEST_F(ChatEngineTest, CancellingStopsAtOnce) {
  json body = {{"messages", json::array({{{"role", "user"}, {"content", "Talk."}}})}, {"max_tokens", 100}, {"seed", 1}};
  int deltas = 0;
  const ChatResult r = engine().chat(hearth::chat::parse_openai_request(body), [&](const ChatEvent& ev) {
    return ev.kind == ChatEvent::Kind::Done || ++deltas < 3;
  });
  EXPECT_EQ(r.finish_reason, "cancelled");
  EXPECT_LE(r.usage.completion_tokens, 8);
}

// ---- the output parser on token streams written by hand ------------------------------------------------

class ParserTest : public ChatEngineTest {
 protected:
  std::vector<ChatEvent> parse(const std::string& text) {
    const auto& tok = *real_->tok;
    hearth::chat::Gemma4OutputParser p(tok, hearth::chat::Gemma4Tokens::from(tok));
    std::vector<ChatEvent> out;
    for (int32_t id : tok.encode(text, true)) p.push(id, out);
    p.finish(out);
    return out;
  }
  static std::string all(const std::vector<ChatEvent>& evs, ChatEvent::Kind k) {
    std::string s;
    for (const auto& e : evs)
      if (e.kind == k) s += e.text;
    return s;
  }
};

TEST_F(ParserTest, SplitsReasoningContentAndCalls) {
  const auto evs = parse(
      "<|channel>thought\nLet me see: 2+2.<channel|>It is 4. "
      "<|tool_call>call:get_weather{city:<|\"|>Zürich, \"CH\"<|\"|>,days:3,opts:{a:[1,true,null]}}<tool_call|>"
      "<|tool_call>call:set_alarm{hour:7,loud:false}<tool_call|>");
  EXPECT_EQ(all(evs, ChatEvent::Kind::Reasoning), "Let me see: 2+2.");
  EXPECT_EQ(all(evs, ChatEvent::Kind::Content), "It is 4. ");
  std::vector<hearth::chat::ToolCall> calls;
  for (const auto& e : evs)
    if (e.kind == ChatEvent::Kind::ToolCall) calls.push_back(e.call);
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].name, "get_weather");
  EXPECT_EQ(calls[0].arguments, json::parse(R"({"city":"Zürich, \"CH\"","days":3,"opts":{"a":[1,true,null]}})"));
  EXPECT_EQ(calls[1].arguments, json::parse(R"({"hour":7,"loud":false})"));
  EXPECT_NE(calls[0].id, calls[1].id);
}

TEST_F(ParserTest, MalformedCallsAreErrorsAndNeverLeakIntoContent) {
  for (const char* bad : {"<|tool_call>call:f{a:<|\"|>x}<tool_call|>", "<|tool_call>f{a:1}<tool_call|>",
                          "<|tool_call>call:f{a:1", "<|tool_call>call:f{a:1,}<tool_call|>"}) {
    const auto evs = parse(std::string("ok ") + bad);
    EXPECT_EQ(all(evs, ChatEvent::Kind::Content), "ok ") << bad;
    EXPECT_FALSE(all(evs, ChatEvent::Kind::Error).empty()) << bad;
    for (const auto& e : evs) EXPECT_NE(e.kind, ChatEvent::Kind::ToolCall) << bad;
  }
}

TEST_F(ParserTest, MarkupSpelledAsPlainTextStaysText) {
  // Only the special tokens are markup; the same characters as ordinary text are content.
  const auto& tok = *real_->tok;
  hearth::chat::Gemma4OutputParser p(tok, hearth::chat::Gemma4Tokens::from(tok));
  std::vector<ChatEvent> out;
  std::vector<int32_t> ids;
  for (const char* part : {"a <|", "channel", "> b"})
    for (int32_t id : tok.encode(part, /*parse_special=*/false)) ids.push_back(id);
  ASSERT_EQ(std::count(ids.begin(), ids.end(), *tok.find("<|channel>")), 0);
  for (int32_t id : ids) p.push(id, out);
  p.finish(out);
  EXPECT_EQ(all(out, ChatEvent::Kind::Content), "a <|channel> b");
}

TEST(ChatLoopWatchdog, DetectsRepeatedPatterns) {
  std::vector<int32_t> seq;
  for (int i = 0; i < 40; ++i) seq.push_back(i * 7 % 13 + i);
  EXPECT_FALSE(hearth::chat::is_looping(seq, 32));
  for (int i = 0; i < 40; ++i) seq.push_back(100 + i % 5);
  EXPECT_TRUE(hearth::chat::is_looping(seq, 32));
  std::vector<int32_t> same(64, 9);
  EXPECT_TRUE(hearth::chat::is_looping(same, 64));
  same.back() = 10;
  EXPECT_FALSE(hearth::chat::is_looping(same, 64));
}

// The built-in demo vocabulary (no downloads) runs the whole chat path: turns, tools, thinking.
TEST(ChatEngineToyVocab, ToolsAndThinkingWorkWithTheBuiltInVocabulary) {
  auto m = make_model("");
  json body = base_request({{"tool_choice", "required"}, {"seed", 5}, {"max_tokens", 300}, {"thinking_budget", 20}});
  const ChatResult r = m->engine->chat(hearth::chat::parse_openai_request(body));
  EXPECT_LE(r.usage.reasoning_tokens, 20);
  EXPECT_GT(r.usage.reasoning_tokens, 0);
  ASSERT_EQ(r.tool_calls.size() >= 1, true) << r.finish_reason;
  EXPECT_EQ(hearth::runtime::validate_json(r.tool_calls[0].arguments, schema_of(r.tool_calls[0].name)), "");
}

// ignore_eos (llama.cpp's field): an answer that ends by itself at an end-of-generation token runs on to
// max_tokens instead; a load test's "long" request must not end early on a random model.
TEST(ChatEngineToyVocab, IgnoreEosRunsToMaxTokens) {
  // The server tests' model (tiny-dense, seed 3), whose answers often end within a hundred tokens.
  auto synth = hearth::test::synth_model("--preset tiny-dense --wtype Q8_0 --seed 3", "");
  hearth::chat::EngineOptions eo;
  eo.session.n_ctx = 1024;
  eo.session.n_threads = 2;
  ChatEngine engine(*synth->model, *synth->tok, eo);
  int ended_early = 0;
  for (int seed = 0; seed < 16; ++seed) {
    json body = {{"messages", json::array({{{"role", "user"}, {"content", "Write a very long story."}}})},
                 {"max_tokens", 120}, {"seed", seed}};
    const ChatResult free_run = engine.chat(hearth::chat::parse_openai_request(body));
    if (free_run.finish_reason != "stop") continue;
    ++ended_early;
    body["ignore_eos"] = true;
    const ChatResult r = engine.chat(hearth::chat::parse_openai_request(body));
    EXPECT_EQ(r.finish_reason, "length") << "seed " << seed;
    EXPECT_EQ(r.usage.completion_tokens, 120) << "seed " << seed;
  }
  EXPECT_GT(ended_early, 0) << "no seed ended by itself: the test checks nothing";
  EXPECT_THROW(hearth::chat::parse_openai_request(
                   {{"messages", json::array({{{"role", "user"}, {"content", "x"}}})}, {"ignore_eos", "yes"}}),
               hearth::Error);
}

}  // namespace
