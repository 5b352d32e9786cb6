// The thread pool's work split: every item exactly once, chunks on grain boundaries, and large jobs shared
// out first come, first served so that a slow thread holds the others back by at most one chunk.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "kernels/threadpool.h"

namespace {

using hearth::kernels::ThreadPool;

struct Calls {
  std::mutex mu;
  std::vector<int> hits;                                  // per item
  std::vector<std::tuple<int64_t, int64_t, int>> ranges;  // (begin, end, thread)
};

void run(ThreadPool& pool, int64_t n, int64_t grain, int64_t cost, Calls& calls) {
  calls.hits.assign(size_t(n), 0);
  calls.ranges.clear();
  pool.parallel_for(n, [&](int64_t b, int64_t e, int thread) {
    std::lock_guard<std::mutex> lk(calls.mu);
    calls.ranges.emplace_back(b, e, thread);
    for (int64_t i = b; i < e; ++i) ++calls.hits[size_t(i)];
  }, grain, cost);
}

TEST(ThreadPool, EveryItemOnceOnGrainBoundaries) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    for (int64_t n : {1, 7, 1000, 4099}) {
      for (int64_t grain : {1, 16}) {
        for (int64_t cost : {int64_t(0), int64_t(1), ThreadPool::kMinWorkPerChunk}) {
          Calls calls;
          run(pool, n, grain, cost, calls);
          SCOPED_TRACE("threads " + std::to_string(threads) + " n " + std::to_string(n) + " grain " +
                       std::to_string(grain) + " cost " + std::to_string(cost));
          for (int64_t i = 0; i < n; ++i) ASSERT_EQ(calls.hits[size_t(i)], 1) << "item " << i;
          for (const auto& [b, e, thread] : calls.ranges) {
            EXPECT_LT(b, e);
            EXPECT_EQ(b % grain, 0);
            EXPECT_TRUE(e == n || e % grain == 0);
            EXPECT_GE(thread, 0);
            EXPECT_LT(thread, threads);
          }
          // Large jobs are cut into more chunks than threads; jobs of unknown cost are not.
          const int64_t units = (n + grain - 1) / grain;
          if (cost == 0 || threads == 1) {
            EXPECT_LE(int64_t(calls.ranges.size()), std::min<int64_t>(threads, units));
          }
          if (cost == ThreadPool::kMinWorkPerChunk && threads > 1) {
            EXPECT_EQ(int64_t(calls.ranges.size()),
                      std::min<int64_t>(units, int64_t(threads) * ThreadPool::kChunksPerThread));
          }
        }
      }
    }
  }
}

// A job cut finer than one chunk per thread is cut into a whole number of chunks per thread: work for 3 chunks
// on 2 threads becomes 4 (with 3, one thread sat idle for a third of the job), 5 on 3 threads becomes 6.
TEST(ThreadPool, ChunkCountIsAMultipleOfTheThreads) {
  for (auto [threads, work_chunks, expected] : {std::tuple{2, 3, 4}, std::tuple{3, 5, 6}, std::tuple{2, 4, 4}}) {
    ThreadPool pool(threads);
    Calls calls;
    const int64_t n = 1000;
    run(pool, n, 1, work_chunks * ThreadPool::kMinWorkPerChunk / n + 1, calls);  // just over work_chunks chunks
    EXPECT_EQ(int64_t(calls.ranges.size()), expected) << threads << " threads, work for " << work_chunks;
  }
}

TEST(ThreadPool, SlowThreadTakesFewerChunks) {
  // Thread 1 sleeps in every chunk it takes; the calling thread meanwhile takes the rest. With a static
  // split each would get half of the items.
  ThreadPool pool(2);
  const int64_t n = 64;
  std::atomic<int64_t> items0{0}, items1{0};
  pool.parallel_for(n, [&](int64_t b, int64_t e, int thread) {
    if (thread == 1) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      items1 += e - b;
    } else {
      items0 += e - b;
    }
  }, 1, ThreadPool::kMinWorkPerChunk);
  EXPECT_EQ(items0 + items1, n);
  EXPECT_GE(items0.load(), n * 3 / 4) << "thread 1 (slow) did " << items1.load() << " of " << n;
}

}  // namespace
