// The request scheduler with continuous batching: several requests share each forward pass and give
// exactly what they give alone; cancelling frees a slot; follow-ups reuse their slot's prefix; embeddings.
#include <filesystem>
#include <memory>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "chat/engine.h"
#include "chat/request_json.h"
#include "chat/service.h"
#include "core/error.h"
#include "synth_model.h"
#include "test_data.h"

namespace {

using hearth::chat::ChatEvent;
using hearth::chat::ChatResult;
using hearth::chat::ChatService;
using json = nlohmann::json;
namespace fs = std::filesystem;

// The built-in toy vocabulary keeps this test independent of shared data (and quick).
hearth::test::SynthModel* model() {
  static hearth::test::SynthModel* m = hearth::test::synth_model("--preset tiny-dense --wtype Q8_0").release();
  return m;
}

hearth::chat::ChatRequest request(const std::string& text, int max_tokens, int seed = 0, double temp = 0) {
  return hearth::chat::parse_openai_request({{"messages", json::array({{{"role", "user"}, {"content", text}}})},
                                             {"max_tokens", max_tokens},
                                             {"temperature", temp},
                                             {"seed", seed}});
}

ChatResult alone(const hearth::chat::ChatRequest& req) {
  hearth::chat::EngineOptions eo;
  eo.session.n_ctx = 1024;
  eo.session.n_threads = 1;
  hearth::chat::ChatEngine engine(*model()->model, *model()->tok, eo);
  return engine.chat(req);
}

TEST(ChatService, BatchedRequestsGiveWhatTheyGiveAlone) {
  hearth::chat::ServiceOptions so;
  so.parallel = 3;
  so.n_ctx = 1024;
  so.n_threads = 2;
  so.n_batch = 24;  // small, so that prompts are split into chunks and share passes with decoding slots
  ChatService service(*model()->model, *model()->tok, so);
  const std::vector<std::string> texts = {"the cache keeps keys", "a tool call asks a program", "hello",
                                          "it reads a model file and loads the weights", "one", "two three"};
  std::vector<std::shared_ptr<ChatService::Job>> jobs;
  std::vector<std::string> streamed(texts.size());
  for (size_t i = 0; i < texts.size(); ++i)
    jobs.push_back(service.submit(request(texts[i], 20, int(i), i % 2 ? 0.8 : 0.0), [&streamed, i](const ChatEvent& ev) {
      if (ev.kind == ChatEvent::Kind::Content) streamed[i] += ev.text;
      return true;
    }));
  std::vector<ChatResult> results;
  for (auto& j : jobs) results.push_back(j->wait());
  // (The model is evaluated by one thread at a time: the references run after the service is idle.)
  for (size_t i = 0; i < texts.size(); ++i) {
    SCOPED_TRACE(texts[i]);
    const ChatResult& got = results[i];
    const ChatResult want = alone(request(texts[i], 20, int(i), i % 2 ? 0.8 : 0.0));
    EXPECT_EQ(got.content, want.content);
    EXPECT_EQ(got.usage.completion_tokens, want.usage.completion_tokens);
    EXPECT_EQ(got.finish_reason, want.finish_reason);
    EXPECT_EQ(streamed[i], got.content);
  }
  const auto st = service.stats();
  EXPECT_EQ(st.requests_done, texts.size());
  EXPECT_EQ(st.busy_slots, 0);
  EXPECT_EQ(st.queued, 0);
}

TEST(ChatService, CancelledRequestFreesItsSlotAndOthersFinish) {
  hearth::chat::ServiceOptions so;
  so.parallel = 1;
  so.n_ctx = 1024;
  so.n_threads = 2;
  ChatService service(*model()->model, *model()->tok, so);
  int deltas = 0;
  auto cancelled = service.submit(request("talk", 500, 1, 1.0), [&](const ChatEvent& ev) {
    return ev.kind == ChatEvent::Kind::Done || ++deltas < 3;
  });
  auto next = service.submit(request("hello", 5));  // queued behind it on the only slot
  const ChatResult c = cancelled->wait();
  EXPECT_EQ(c.finish_reason, "cancelled");
  EXPECT_LE(c.usage.completion_tokens, 6);
  EXPECT_EQ(next->wait().usage.completion_tokens, 5);
  auto other = service.submit(request("again", 500, 2, 1.0));
  other->cancel();
  EXPECT_EQ(other->wait().finish_reason, "cancelled");
  const auto st = service.stats();
  EXPECT_EQ(st.requests_cancelled, 2u);
  EXPECT_EQ(st.busy_slots, 0);
}

TEST(ChatService, FollowUpReusesItsConversationsSlot) {
  hearth::chat::ServiceOptions so;
  so.parallel = 2;
  so.n_ctx = 1024;
  so.n_threads = 2;
  ChatService service(*model()->model, *model()->tok, so);
  json conv = {{"messages", json::array({{{"role", "user"}, {"content", "the cache keeps keys and values"}}})},
               {"max_tokens", 6}, {"temperature", 0}};
  const ChatResult a = service.submit(hearth::chat::parse_openai_request(conv))->wait();
  service.submit(request("something else entirely", 4))->wait();  // takes the other slot
  conv["messages"].push_back({{"role", "assistant"}, {"content", a.content}});
  conv["messages"].push_back({{"role", "user"}, {"content", "and then?"}});
  const ChatResult b = service.submit(hearth::chat::parse_openai_request(conv))->wait();
  EXPECT_GT(b.usage.cached_prompt_tokens, 8);
  EXPECT_EQ(b.content, alone(hearth::chat::parse_openai_request(conv)).content);
}

TEST(ChatService, TooLongPromptAndBadSchemaAreErrors) {
  hearth::chat::ServiceOptions so;
  so.n_ctx = 64;
  ChatService service(*model()->model, *model()->tok, so);
  std::string big;
  for (int i = 0; i < 100; ++i) big += "word ";
  EXPECT_THROW(service.submit(request(big, 4)), hearth::Error);
  auto bad = hearth::chat::parse_openai_request(json::parse(R"({"messages":[{"role":"user","content":"x"}],
      "response_format":{"type":"json_schema","json_schema":{"schema":{"type":"string","pattern":"a+"}}}})"));
  EXPECT_THROW(service.submit(bad), hearth::Error);  // refused before it queues
  EXPECT_EQ(service.submit(request("still serving", 3))->wait().usage.completion_tokens, 3);
}

TEST(ChatService, EmbeddingsAreNormalisedAndDeterministic) {
  hearth::chat::ServiceOptions so;
  so.parallel = 2;
  so.n_ctx = 256;
  ChatService service(*model()->model, *model()->tok, so);
  const std::vector<float> a = service.embed("the cache keeps keys");
  const std::vector<float> b = service.embed("the cache keeps keys");
  const std::vector<float> c = service.embed("a different sentence");
  ASSERT_EQ(a.size(), size_t(model()->model->info().n_embd));
  double norm = 0, dot_ab = 0, dot_ac = 0;
  for (size_t i = 0; i < a.size(); ++i) norm += a[i] * a[i], dot_ab += a[i] * b[i], dot_ac += a[i] * c[i];
  EXPECT_NEAR(norm, 1.0, 1e-4);
  EXPECT_NEAR(dot_ab, 1.0, 1e-4);
  EXPECT_LT(dot_ac, 0.999);
  // The same vector as the single-sequence engine computes.
  hearth::chat::EngineOptions eo;
  eo.session.n_ctx = 256;
  hearth::chat::ChatEngine engine(*model()->model, *model()->tok, eo);
  const std::vector<float> e = engine.embed("the cache keeps keys");
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], e[i], 1e-5) << i;
}

}  // namespace
