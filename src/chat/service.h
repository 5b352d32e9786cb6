// The engine behind a server: requests queue here and run on one engine thread, never on the caller's
// (HTTP) thread. Continuous batching: `parallel` slots are sequences of one KV cache, and every step runs one
// forward pass over all busy slots — one token for each decoding slot plus a chunk of each new prompt — so
// the weights are read once per step for all of them, and a request joins or leaves between steps. Every
// slot keeps its last conversation; a request goes to the idle slot whose cache shares the longest prefix
// with its prompt, and only the rest of the prompt is evaluated. Cancelling (on_event returning false, or
// Job::cancel()) frees the slot at the next step.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "chat/generation.h"
#include "chat/types.h"
#include "kernels/threadpool.h"
#include "models/model.h"
#include "tokenizer/tokenizer.h"

namespace hearth::chat {

struct ServiceOptions {
  int parallel = 1;      // slots
  int n_ctx = 4096;      // per slot
  int n_threads = 0;     // compute threads (0: one per hardware thread)
  int n_batch = 512;     // most tokens in one forward pass (prompt chunks are cut to fit)
  models::KvType kv_type = models::KvType::F16;
};

struct ServiceStats {
  int queued = 0, busy_slots = 0, slots = 0;
  int64_t kv_cells_used = 0, kv_cells_total = 0;
  uint64_t requests_done = 0, requests_failed = 0, requests_cancelled = 0;
  uint64_t prompt_tokens = 0, cached_prompt_tokens = 0, completion_tokens = 0, reasoning_tokens = 0;
  double prompt_ms = 0, decode_ms = 0;  // summed over requests
};

class ChatService {
 public:
  using EventFn = std::function<bool(const ChatEvent&)>;

  class Job {
   public:
    void cancel() { cancelled_ = true; }
    // Blocks until the request finished (Done delivered) or failed; rethrows the engine's error
    // (hearth::Error: a bad request, e.g. a prompt longer than the context).
    ChatResult wait();
    bool finished();

   private:
    friend class ChatService;
    ChatRequest req_;
    std::vector<int32_t> prompt_;  // the request's prompt tokens (slot choice by shared prefix)
    bool is_embedding_ = false;
    std::vector<float> embedding_;
    EventFn on_event_;
    std::atomic<bool> cancelled_{false};
    std::mutex mu_;
    std::condition_variable cv_;
    bool finished_ = false;
    ChatResult result_;
    std::exception_ptr error_;
  };

  ChatService(models::Model& model, const tokenizer::Tokenizer& tok, const ServiceOptions& opt);
  ~ChatService();  // cancels queued and running jobs, joins the engine threads

  // Queues a request. `on_event` runs on an engine thread for every delta and the final Done event;
  // returning false cancels the request. Throws hearth::Error at once for a request that cannot fit
  // (prompt tokens >= the slot's context).
  std::shared_ptr<Job> submit(ChatRequest req, EventFn on_event = {});

  // Prompt tokens of a request as the engine will see them (rendering + tokenisation only).
  int count_prompt_tokens(const ChatRequest& req) const;

  // Mean-pooled final hidden state (the LM head's input, after the final norm) of `text`, L2-normalised;
  // runs on an engine slot like a chat request. Throws hearth::Error when the text does not fit.
  std::vector<float> embed(const std::string& text);

  ServiceStats stats() const;
  const ServiceOptions& options() const { return opt_; }
  const models::Model& model() const { return model_; }
  const tokenizer::Tokenizer& tokenizer() const { return tok_; }

 private:
  struct Slot;
  void engine_loop();
  void admit(Slot& slot, std::shared_ptr<Job> job);
  void run_embedding(Slot& slot);
  void complete(Slot& slot, std::exception_ptr error);
  void enqueue(const std::shared_ptr<Job>& job);
  std::shared_ptr<const runtime::TokenIndex> token_index();
  const std::vector<uint8_t>& visible_tokens();

  models::Model& model_;
  const tokenizer::Tokenizer& tok_;
  ServiceOptions opt_;
  GenerationShared shared_;
  kernels::ThreadPool pool_;
  std::unique_ptr<models::KvCache> kv_;
  models::Batch batch_;
  models::ForwardOutput out_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::shared_ptr<const runtime::TokenIndex> index_;
  std::vector<uint8_t> visible_;
  uint64_t n_requests_ = 0;

  mutable std::mutex mu_;  // guards queue_, stopping_, totals_ and the slots' busy/kv_used fields
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stopping_ = false;
  ServiceStats totals_;
  std::thread thread_;
};

}  // namespace hearth::chat
