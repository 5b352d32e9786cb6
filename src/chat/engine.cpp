#include "chat/engine.h"

#include <chrono>

#include "chat/generation.h"
#include "core/error.h"
#include "runtime/grammar.h"

namespace hearth::chat {

namespace {
using clock_type = std::chrono::steady_clock;

double ms_since(clock_type::time_point t) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t).count();
}
}  // namespace

ChatEngine::ChatEngine(models::Model& model, const tokenizer::Tokenizer& tok, const EngineOptions& opt)
    : model_(model), tok_(tok), opt_(opt), session_(model, opt.session) {
  if (model_.info().n_vocab != tok_.n_vocab())
    throw Error("the model's vocabulary (" + std::to_string(model_.info().n_vocab) + ") and tokenizer (" +
                std::to_string(tok_.n_vocab()) + ") differ");
  shared_ = make_generation_shared(tok_);
  shared_.default_thinking_budget = opt_.default_thinking_budget;
  shared_.loop_window = opt_.loop_window;
}

ChatEngine::~ChatEngine() = default;

std::vector<int32_t> ChatEngine::prompt_tokens(const ChatRequest& req) const {
  return chat::prompt_tokens(effective_request(req, shared_), tok_);
}

std::vector<float> ChatEngine::embed(const std::string& text) {
  const std::vector<int32_t> tokens = tok_.encode_prompt(text, /*parse_special=*/false);
  if (tokens.empty()) throw Error("the input to embed is empty");
  if (int(tokens.size()) > session_.n_ctx())
    throw Error("the input has " + std::to_string(tokens.size()) + " tokens but the context holds " +
                std::to_string(session_.n_ctx()));
  set_cached({});
  std::vector<float> v = session_.mean_hidden(tokens);
  set_cached(tokens);
  double norm = 0;
  for (float x : v) norm += double(x) * x;
  if (norm > 0)
    for (float& x : v) x = float(x / std::sqrt(norm));
  return v;
}

void ChatEngine::set_cached(std::vector<int32_t> tokens) {
  cached_ = std::move(tokens);
  n_cached_.store(int64_t(cached_.size()), std::memory_order_relaxed);
}

ChatResult ChatEngine::chat(const ChatRequest& req, const std::function<bool(const ChatEvent&)>& on_event) {
  const auto t_start = clock_type::now();
  Generation gen(req, shared_, on_event, std::to_string(++n_requests_) + "_");
  const std::vector<int32_t>& prompt = gen.prompt();
  const int n_ctx = session_.n_ctx();
  if (int(prompt.size()) >= n_ctx)
    throw Error("the prompt has " + std::to_string(prompt.size()) + " tokens but the context holds " +
                std::to_string(n_ctx) + " (at least one more is needed to answer)");

  // Reuse the cached prefix; the last prompt token is always evaluated again for its logits.
  size_t common = 0;
  while (common < cached_.size() && common < prompt.size() && cached_[common] == prompt[common]) ++common;
  if (common == prompt.size()) --common;
  if (!session_.truncate(int32_t(common))) {
    session_.reset();
    common = 0;
  }
  set_cached({prompt.begin(), prompt.begin() + std::ptrdiff_t(common)});
  const float* logits = session_.eval({prompt.begin() + std::ptrdiff_t(common), prompt.end()});
  set_cached(prompt);
  Usage timing;
  timing.prompt_tokens = int(prompt.size());
  timing.cached_prompt_tokens = int(common);
  timing.prompt_ms = ms_since(t_start);

  const auto t_decode = clock_type::now();
  while (std::optional<int32_t> next = gen.step(logits)) {
    if (session_.n_past() + 1 > n_ctx) {
      gen.stop("length");
      break;
    }
    logits = session_.eval({*next});
    cached_.push_back(*next);
    n_cached_.store(int64_t(cached_.size()), std::memory_order_relaxed);
  }
  timing.decode_ms = ms_since(t_decode);
  return gen.finish(timing);
}

}  // namespace hearth::chat
