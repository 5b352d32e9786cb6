#include "kernels/threadpool.h"

#include <algorithm>

namespace hearth::kernels {

namespace {
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}
constexpr int kSpinIterations = 20000;
}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

int ThreadPool::default_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n ? int(n) : 1;
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t g = generation_.load(std::memory_order_acquire);
    for (int spin = 0; g == seen && spin < kSpinIterations; ++spin) {
      cpu_relax();
      g = generation_.load(std::memory_order_acquire);
    }
    if (g == seen) {
      std::unique_lock<std::mutex> lk(mu_);
      sleepers_.fetch_add(1);
      cv_.wait(lk, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      sleepers_.fetch_sub(1);
      g = generation_.load(std::memory_order_acquire);
    }
    seen = g;
    if (stop_.load()) return;
    (*job_)(index);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::dispatch(const std::function<void(int)>& job) {
  if (n_threads_ == 1) {
    job(0);
    return;
  }
  job_ = &job;
  pending_.store(n_threads_ - 1, std::memory_order_release);
  {
    // The generation bump happens under the mutex so a worker that is about to sleep cannot miss it.
    std::lock_guard<std::mutex> lk(mu_);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  if (sleepers_.load() > 0) cv_.notify_all();
  job(0);
  while (pending_.load(std::memory_order_acquire) != 0) cpu_relax();
}

void ThreadPool::run_on_all(const std::function<void(int)>& fn) { dispatch(fn); }

void ThreadPool::parallel_for(int64_t n, const RangeFn& fn, int64_t grain, int64_t cost_per_item) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t units = (n + grain - 1) / grain;
  int t = int(std::min<int64_t>(n_threads_, units));
  if (cost_per_item > 0) t = int(std::min<int64_t>(t, std::max<int64_t>(1, n * cost_per_item / kMinWorkPerThread)));
  if (t <= 1) {
    fn(0, n, 0);
    return;
  }
  // Chunks are taken first come, first served, so a thread that runs slower (a busier core, an efficiency
  // core, a VM's vCPU losing time to its neighbours) takes fewer of them instead of holding the others at the
  // barrier. The first t chunks go one to each thread. Only jobs of known, large cost are cut finer than one
  // chunk per thread: a decode step of a tiny model keeps its single hand-off.
  // A whole number of chunks per thread: 3 chunks on 2 threads kept one thread idle for a third of each small
  // matmul (the 26B-A4B experts' decode: 7.9 -> 8.4 tok/s at 2 threads with the count rounded up).
  int64_t n_chunks = t;
  if (cost_per_item > 0)
    n_chunks = std::clamp<int64_t>((n * cost_per_item / kMinWorkPerChunk + t - 1) / t * t, t,
                                   std::min<int64_t>(units, int64_t(t) * kChunksPerThread));
  std::atomic<int64_t> next{t};
  dispatch([&](int thread) {
    if (thread >= t) return;
    for (int64_t c = thread; c < n_chunks; c = next.fetch_add(1, std::memory_order_relaxed)) {
      const int64_t u0 = units * c / n_chunks, u1 = units * (c + 1) / n_chunks;
      const int64_t b = u0 * grain, e = std::min(n, u1 * grain);
      if (b < e) fn(b, e, thread);
    }
  });
}

}  // namespace hearth::kernels
