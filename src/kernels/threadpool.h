// A persistent pool of worker threads. parallel_for cuts [0, n) into contiguous chunks that the threads take
// first come, first served (large jobs: up to kChunksPerThread each); the calling thread takes part, and
// workers spin briefly before sleeping so that back-to-back small jobs (one per matmul in a decode step) do
// not pay a futex round trip each.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace hearth::kernels {

class ThreadPool {
 public:
  // fn(begin, end, thread_index) processes items [begin, end).
  using RangeFn = std::function<void(int64_t begin, int64_t end, int thread)>;

  explicit ThreadPool(int n_threads = 1);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  // Splits [0, n) into contiguous chunks (multiples of `grain` except the last) and runs them: one per thread,
  // or, where cost_per_item leaves each chunk kMinWorkPerChunk, up to kChunksPerThread per thread.
  // cost_per_item (rough multiply-adds per item, 0 = unknown): when known, only as many threads take part
  // as have at least kMinWorkPerThread of it each, so small jobs (tiny models) skip the hand-off.
  void parallel_for(int64_t n, const RangeFn& fn, int64_t grain = 1, int64_t cost_per_item = 0);
  static constexpr int64_t kMinWorkPerThread = int64_t(1) << 16;
  static constexpr int kChunksPerThread = 8;
  static constexpr int64_t kMinWorkPerChunk = int64_t(1) << 20;
  // Runs fn(thread_index) once on every thread.
  void run_on_all(const std::function<void(int thread)>& fn);

  static int default_threads();  // physical-ish core count, at least 1

 private:
  void worker(int index);
  void dispatch(const std::function<void(int)>& job);

  int n_threads_;
  std::vector<std::thread> workers_;
  const std::function<void(int)>* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<int> sleepers_{0};
};

}  // namespace hearth::kernels
