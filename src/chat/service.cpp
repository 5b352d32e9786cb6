#include "chat/service.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/error.h"

namespace hearth::chat {

namespace {
using clock_type = std::chrono::steady_clock;

double ms_since(clock_type::time_point t) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t).count();
}

size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}
}  // namespace

// One sequence of the shared KV cache. Only the engine thread touches a slot, except `busy` and
// `kv_used`, which stats() reads under mu_.
struct ChatService::Slot {
  int seq = 0;
  bool busy = false;
  uint64_t last_used = 0;        // when it last took a job (least recently used slots are reused first)
  int64_t kv_used = 0;
  std::vector<int32_t> cached;   // the tokens whose keys and values are in the cache for `seq`
  std::shared_ptr<Job> job;
  std::unique_ptr<Generation> gen;
  std::vector<int32_t> pending;  // tokens to evaluate: the rest of the prompt, then each new token
  size_t next = 0;               // pending[next..] are not evaluated yet
  bool prefill = true;
  Usage timing;
  clock_type::time_point t_start, t_decode;
};

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
    : model_(model),
      tok_(tok),
      opt_(opt),
      shared_(make_generation_shared(tok)),
      pool_(opt.n_threads > 0 ? opt.n_threads : kernels::ThreadPool::default_threads()) {
  if (opt_.parallel < 1) throw Error("--parallel must be at least 1");
  if (opt_.n_batch < 1) throw Error("the batch size must be at least 1");
  if (model_.info().n_vocab != tok_.n_vocab())
    throw Error("the model's vocabulary (" + std::to_string(model_.info().n_vocab) + ") and tokenizer (" +
                std::to_string(tok_.n_vocab()) + ") differ");
  models::KvCacheOptions ko;
  ko.n_ctx = opt_.n_ctx;
  ko.n_seq = opt_.parallel;
  ko.type = opt_.kv_type;
  ko.max_ubatch = opt_.n_batch;
  kv_ = model_.make_cache(ko);
  for (int i = 0; i < opt_.parallel; ++i) {
    auto slot = std::make_unique<Slot>();
    slot->seq = i;
    slots_.push_back(std::move(slot));
  }
  totals_.slots = opt_.parallel;
  thread_ = std::thread([this] { engine_loop(); });
}

ChatService::~ChatService() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int ChatService::count_prompt_tokens(const ChatRequest& req) const {
  return int(prompt_tokens(effective_request(req, shared_), tok_).size());
}

std::shared_ptr<ChatService::Job> ChatService::submit(ChatRequest req, EventFn on_event) {
  check_constraints(req);
  auto job = std::make_shared<Job>();
  job->prompt_ = prompt_tokens(effective_request(req, shared_), tok_);
  const size_t n = job->prompt_.size();
  if (n >= size_t(opt_.n_ctx))
    throw Error("the prompt has " + std::to_string(n) + " tokens but the context holds " + std::to_string(opt_.n_ctx) +
                " (at least one more is needed to answer)");
  job->req_ = std::move(req);
  job->on_event_ = std::move(on_event);
  enqueue(job);
  return job;
}

std::vector<float> ChatService::embed(const std::string& text) {
  auto job = std::make_shared<Job>();
  job->is_embedding_ = true;
  job->prompt_ = tok_.encode_prompt(text, /*parse_special=*/false);
  if (job->prompt_.empty()) throw Error("the input to embed is empty");
  if (job->prompt_.size() > size_t(opt_.n_ctx))
    throw Error("the input has " + std::to_string(job->prompt_.size()) + " tokens but the context holds " +
                std::to_string(opt_.n_ctx));
  enqueue(job);
  job->wait();
  return job->embedding_;
}

void ChatService::enqueue(const std::shared_ptr<Job>& job) {
  {
    std::lock_guard lk(mu_);
    if (stopping_) throw Error("the server is shutting down");
    queue_.push_back(job);
  }
  cv_.notify_all();
}

// A queued job takes an idle slot: its prompt's prefix already in that slot's cache is kept.
void ChatService::admit(Slot& slot, std::shared_ptr<Job> job) {
  slot.job = std::move(job);
  slot.t_start = clock_type::now();
  slot.timing = Usage();
  const std::vector<int32_t>& prompt = slot.job->prompt_;
  size_t common = common_prefix(slot.cached, prompt);
  if (common == prompt.size() && common > 0) --common;  // the last token is evaluated again for its logits
  if (!kv_->truncate(slot.seq, int32_t(common))) {
    kv_->clear(slot.seq);
    common = 0;
  }
  slot.cached.resize(common);
  slot.pending.assign(prompt.begin() + std::ptrdiff_t(common), prompt.end());
  slot.next = 0;
  slot.prefill = true;
  slot.timing.prompt_tokens = int(prompt.size());
  slot.timing.cached_prompt_tokens = int(common);
  if (slot.job->is_embedding_) return;
  auto job_ptr = slot.job;
  auto on_event = [job_ptr](const ChatEvent& ev) {
    if (job_ptr->cancelled_) return false;
    return !job_ptr->on_event_ || job_ptr->on_event_(ev) || ev.kind == ChatEvent::Kind::Done;
  };
  slot.gen = std::make_unique<Generation>(slot.job->req_, shared_, on_event, std::to_string(++n_requests_) + "_");
}

// Embeddings need every row's hidden state, so they run as a forward pass of their own.
void ChatService::run_embedding(Slot& slot) {
  kv_->clear(slot.seq);
  slot.cached.clear();
  const std::vector<int32_t>& tokens = slot.job->prompt_;
  batch_.clear();
  for (size_t i = 0; i < tokens.size(); ++i) batch_.add(tokens[i], int32_t(i), slot.seq, true);
  out_.want_hidden = true;
  try {
    model_.forward(batch_, *kv_, out_, pool_);
  } catch (...) {
    out_.want_hidden = false;
    throw;
  }
  out_.want_hidden = false;
  slot.cached = tokens;
  const size_t d = size_t(model_.info().n_embd);
  std::vector<double> sum(d, 0.0);
  for (int r = 0; r < out_.n_rows; ++r)
    for (size_t i = 0; i < d; ++i) sum[i] += out_.hidden[size_t(r) * d + i];
  double norm = 0;
  for (double x : sum) norm += x * x;
  slot.job->embedding_.resize(d);
  for (size_t i = 0; i < d; ++i) slot.job->embedding_[i] = float(norm > 0 ? sum[i] / std::sqrt(norm) : 0.0);
}

// The slot's job is over: result or error to its waiter, counters, the slot back to idle.
void ChatService::complete(Slot& slot, std::exception_ptr error) {
  ChatResult result;
  if (slot.gen && !error) {
    slot.timing.decode_ms = slot.prefill ? 0.0 : ms_since(slot.t_decode);
    try {
      result = slot.gen->finish(slot.timing);
    } catch (...) {
      error = std::current_exception();
    }
  }
  std::shared_ptr<Job> job = std::move(slot.job);
  slot.gen.reset();
  slot.pending.clear();
  slot.next = 0;
  {
    std::lock_guard lk(mu_);
    slot.busy = false;
    slot.kv_used = int64_t(slot.cached.size());
    if (error) {
      ++totals_.requests_failed;
    } else if (!job->is_embedding_) {
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
  {
    std::lock_guard lk(job->mu_);
    job->result_ = std::move(result);
    job->error_ = error;
    job->finished_ = true;
  }
  job->cv_.notify_all();
}

void ChatService::engine_loop() {
  std::vector<std::pair<Slot*, size_t>> in_batch;  // the slots in this pass and how many tokens each gave
  uint64_t use_counter = 0;
  while (true) {
    // 1. Take queued jobs into idle slots (the slot whose cache shares the longest prefix first).
    std::vector<std::pair<Slot*, std::shared_ptr<Job>>> admitted;
    {
      std::unique_lock lk(mu_);
      auto any_busy = [&] {
        for (auto& s : slots_)
          if (s->busy) return true;
        return false;
      };
      cv_.wait(lk, [&] { return stopping_ || !queue_.empty() || any_busy(); });
      if (stopping_) break;
      while (!queue_.empty()) {
        // A slot whose cache would mostly survive (at least half of it is a prefix of the prompt) is the
        // same conversation: the longest such match wins. Otherwise the least recently used idle slot is
        // taken, so that other conversations' caches stay for their follow-ups.
        Slot* best = nullptr;
        size_t best_len = 0;
        for (auto& s : slots_) {
          if (s->busy) continue;
          const size_t len = common_prefix(s->cached, queue_.front()->prompt_);
          if (len > 0 && 2 * len >= s->cached.size() && len > best_len) best = s.get(), best_len = len;
        }
        if (!best)
          for (auto& s : slots_)
            if (!s->busy && (!best || s->last_used < best->last_used)) best = s.get();
        if (!best) break;
        best->busy = true;
        best->last_used = ++use_counter;
        admitted.emplace_back(best, queue_.front());
        queue_.pop_front();
      }
    }
    for (auto& [slot, job] : admitted) {
      try {
        admit(*slot, job);
        if (job->is_embedding_) {
          run_embedding(*slot);
          complete(*slot, nullptr);
        }
      } catch (...) {
        if (!slot->job) slot->job = job;
        slot->gen.reset();
        complete(*slot, std::current_exception());
      }
    }

    // 2. Cancelled jobs leave now.
    for (auto& s : slots_)
      if (s->gen && s->job->cancelled_) {
        s->gen->stop("cancelled");
        complete(*s, nullptr);
      }

    // 3. One forward pass: a token for every decoding slot first, then prompt chunks in the room left.
    batch_.clear();
    in_batch.clear();
    int room = opt_.n_batch;
    for (int pass = 0; pass < 2; ++pass)
      for (auto& sp : slots_) {
        Slot& s = *sp;
        if (!s.gen || s.next >= s.pending.size() || (pass == 0) != !s.prefill || room == 0) continue;
        const size_t take = std::min(s.pending.size() - s.next, size_t(room));
        int32_t pos = kv_->n_past(s.seq);
        const bool last = s.next + take == s.pending.size();
        for (size_t i = 0; i < take; ++i)
          batch_.add(s.pending[s.next + i], pos++, s.seq, last && i + 1 == take);
        room -= int(take);
        in_batch.emplace_back(&s, take);
      }
    if (batch_.size() == 0) continue;
    try {
      model_.forward(batch_, *kv_, out_, pool_);
    } catch (...) {
      // A failed pass leaves the caches of its sequences in doubt: fail their jobs, forget their caches.
      const std::exception_ptr error = std::current_exception();
      for (auto [s, taken] : in_batch) {
        kv_->clear(s->seq);
        s->cached.clear();
        s->gen.reset();
        complete(*s, error);
      }
      continue;
    }

    // 4. Each slot whose pending tokens are all evaluated takes its logits row and chooses its next token.
    int row = 0;
    for (auto [s, taken] : in_batch) {
      s->cached.insert(s->cached.end(), s->pending.begin() + std::ptrdiff_t(s->next),
                       s->pending.begin() + std::ptrdiff_t(s->next + taken));
      s->next += taken;
      if (s->next < s->pending.size()) continue;  // the prompt continues in the next pass
      const float* logits = out_.row(row++, model_.info().n_vocab);
      if (s->prefill) {
        s->prefill = false;
        s->timing.prompt_ms = ms_since(s->t_start);
        s->t_decode = clock_type::now();
      }
      std::optional<int32_t> next;
      try {
        next = s->gen->step(logits);
      } catch (...) {
        s->gen.reset();
        complete(*s, std::current_exception());
        continue;
      }
      if (next && kv_->n_past(s->seq) + 1 > opt_.n_ctx) {
        s->gen->stop("length");
        next.reset();
      }
      if (!next) {
        complete(*s, nullptr);
        continue;
      }
      s->pending.assign(1, *next);
      s->next = 0;
    }
    {
      std::lock_guard lk(mu_);
      for (auto [s, taken] : in_batch) s->kv_used = int64_t(s->cached.size());
    }
  }

  // Shutting down: running and queued jobs end with an error their waiters see.
  const auto shutdown = std::make_exception_ptr(Error("the server is shutting down"));
  for (auto& s : slots_)
    if (s->job) {
      if (s->gen) s->gen->stop("cancelled");
      complete(*s, nullptr);
    }
  std::deque<std::shared_ptr<Job>> left;
  {
    std::lock_guard lk(mu_);
    left.swap(queue_);
  }
  for (auto& j : left) {
    std::lock_guard lk(j->mu_);
    j->error_ = shutdown;
    j->finished_ = true;
    j->cv_.notify_all();
  }
}

ServiceStats ChatService::stats() const {
  std::lock_guard lk(mu_);
  ServiceStats s = totals_;
  s.queued = int(queue_.size());
  s.kv_cells_total = int64_t(opt_.n_ctx) * opt_.parallel;
  for (const auto& slot : slots_) {
    s.busy_slots += slot->busy;
    s.kv_cells_used += slot->kv_used;
  }
  return s;
}

}  // namespace hearth::chat
