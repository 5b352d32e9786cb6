#include "chat/service.h"

#include <algorithm>

#include "core/error.h"

namespace hearth::chat {

struct ChatService::Slot {
  std::unique_ptr<ChatEngine> engine;
  std::thread thread;
  bool busy = false;
};

namespace {
size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}
}  // namespace

ChatResult ChatService::Job::wait() {
  std::unique_lock lk(mu_);
  cv_.wait(lk, [&] { return finished_; });
  if (error_) std::rethrow_exception(error_);
  return result_;
}

bool ChatService::Job::finished() {
  std::lock_guard lk(mu_);
  return finished_;
}

ChatService::ChatService(models::Model& model, const tokenizer::Tokenizer& tok, const ServiceOptions& opt)
    : model_(model), tok_(tok), opt_(opt) {
  if (opt_.parallel < 1) throw Error("--parallel must be at least 1");
  const int hw = opt_.n_threads > 0 ? opt_.n_threads : kernels::ThreadPool::default_threads();
  // The slots share the cores: each engine gets its part so that busy slots do not oversubscribe them.
  const int per_slot = std::max(1, hw / opt_.parallel);
  for (int i = 0; i < opt_.parallel; ++i) {
    auto slot = std::make_unique<Slot>();
    EngineOptions eo;
    eo.session.n_ctx = opt_.n_ctx;
    eo.session.n_threads = per_slot;
    eo.session.kv_type = opt_.kv_type;
    slot->engine = std::make_unique<ChatEngine>(model_, tok_, eo);
    slots_.push_back(std::move(slot));
  }
  totals_.slots = opt_.parallel;
  for (auto& s : slots_) s->thread = std::thread([this, sp = s.get()] { worker(*sp); });
}

ChatService::~ChatService() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
    for (auto& j : queue_) j->cancel();
  }
  cv_.notify_all();
  for (auto& s : slots_)
    if (s->thread.joinable()) s->thread.join();
  // Jobs still queued never ran: wake their waiters with an error.
  for (auto& j : queue_) {
    std::lock_guard lk(j->mu_);
    j->error_ = std::make_exception_ptr(Error("the server is shutting down"));
    j->finished_ = true;
    j->cv_.notify_all();
  }
}

int ChatService::count_prompt_tokens(const ChatRequest& req) const {
  return int(slots_.front()->engine->prompt_tokens(req).size());
}

std::shared_ptr<ChatService::Job> ChatService::submit(ChatRequest req, EventFn on_event) {
  auto job = std::make_shared<Job>();
  job->prompt_ = slots_.front()->engine->prompt_tokens(req);
  const size_t n = job->prompt_.size();
  if (n >= size_t(opt_.n_ctx))
    throw Error("the prompt has " + std::to_string(n) + " tokens but the context holds " + std::to_string(opt_.n_ctx) +
                " (at least one more is needed to answer)");
  job->req_ = std::move(req);
  job->on_event_ = std::move(on_event);
  enqueue(job);
  return job;
}

void ChatService::enqueue(const std::shared_ptr<Job>& job) {
  {
    std::lock_guard lk(mu_);
    if (stopping_) throw Error("the server is shutting down");
    queue_.push_back(job);
  }
  cv_.notify_all();
}

std::vector<float> ChatService::embed(const std::string& text) {
  // Runs as a job so that it never computes on the caller's thread and never races a chat on a slot.
  auto job = std::make_shared<Job>();
  job->is_embedding_ = true;
  job->req_.raw_prompt = text;
  job->prompt_ = tok_.encode_prompt(text, /*parse_special=*/false);
  enqueue(job);
  job->wait();
  return job->embedding_;
}

void ChatService::worker(Slot& slot) {
  while (true) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] {
        if (stopping_) return true;
        if (queue_.empty()) return false;
        // Prefer the idle slot whose cache shares the longest prefix with the next request's prompt.
        // (Idle slots' caches change only on their own thread after it takes a job under this lock.)
        const std::vector<int32_t>& want = queue_.front()->prompt_;
        const size_t mine = common_prefix(slot.engine->cached_tokens(), want);
        for (auto& other : slots_)
          if (other.get() != &slot && !other->busy && common_prefix(other->engine->cached_tokens(), want) > mine)
            return false;
        return true;
      });
      if (stopping_) return;
      job = queue_.front();
      queue_.pop_front();
      slot.busy = true;
    }
    cv_.notify_all();  // another idle slot may take the next request

    ChatResult result;
    std::exception_ptr error;
    const bool is_embedding = job->is_embedding_;
    try {
      if (is_embedding) {
        job->embedding_ = slot.engine->embed(*job->req_.raw_prompt);
      } else {
        auto on_event = [&](const ChatEvent& ev) {
          if (job->cancelled_) return false;
          return !job->on_event_ || job->on_event_(ev) || ev.kind == ChatEvent::Kind::Done;
        };
        result = slot.engine->chat(job->req_, on_event);
      }
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard lk(mu_);
      slot.busy = false;
      if (error) {
        ++totals_.requests_failed;
      } else if (!is_embedding) {
        if (result.finish_reason == "cancelled") ++totals_.requests_cancelled;
        else ++totals_.requests_done;
        totals_.prompt_tokens += uint64_t(result.usage.prompt_tokens);
        totals_.cached_prompt_tokens += uint64_t(result.usage.cached_prompt_tokens);
        totals_.completion_tokens += uint64_t(result.usage.completion_tokens);
        totals_.reasoning_tokens += uint64_t(result.usage.reasoning_tokens);
        totals_.prompt_ms += result.usage.prompt_ms;
        totals_.decode_ms += result.usage.decode_ms;
      }
    }
    cv_.notify_all();
    {
      std::lock_guard lk(job->mu_);
      job->result_ = std::move(result);
      job->error_ = error;
      job->finished_ = true;
    }
    job->cv_.notify_all();
  }
}

ServiceStats ChatService::stats() const {
  std::lock_guard lk(mu_);
  ServiceStats s = totals_;
  s.queued = int(queue_.size());
  s.busy_slots = 0;
  s.kv_cells_total = int64_t(opt_.n_ctx) * opt_.parallel;
  s.kv_cells_used = 0;
  for (const auto& slot : slots_) {
    s.busy_slots += slot->busy;
    s.kv_cells_used += slot->engine->kv_cells_used();
  }
  return s;
}

}  // namespace hearth::chat
