// Attention over a KV cache: several query heads of one KV group at once (attend_heads) give each head
// exactly the bits attend_head gives it, for F16 and F32 caches, with the SIMD kernels on and off, over a
// ring that wraps and spans that are not multiples of the vector width.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "core/fp16.h"
#include "kernels/attention.h"
#include "kernels/simd.h"

namespace {

using namespace hearth::kernels;

TEST(Attention, GroupedHeadsMatchOneHeadAtATime) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (bool f16 : {true, false})
    for (bool simd_on : {true, false})
      for (int head_dim : {256, 80}) {
        const int n_kv = 2, capacity = 40, nh = 8;
        const size_t row_elems = size_t(n_kv * head_dim), esz = f16 ? 2 : 4;
        std::vector<uint8_t> k(size_t(capacity) * row_elems * esz), v(k.size());
        for (size_t i = 0; i < size_t(capacity) * row_elems; ++i) {
          const float a = nd(rng), b = nd(rng);
          if (f16) {
            const uint16_t ha = hearth::f32_to_fp16(a), hb = hearth::f32_to_fp16(b);
            std::memcpy(&k[2 * i], &ha, 2);
            std::memcpy(&v[2 * i], &hb, 2);
          } else {
            std::memcpy(&k[4 * i], &a, 4);
            std::memcpy(&v[4 * i], &b, 4);
          }
        }
        KvView kv{k.data(), v.data(), row_elems * esz, capacity, f16};
        std::vector<float> q(size_t(nh * head_dim));
        for (float& x : q) x = 0.2f * nd(rng);
        simd::set_enabled(simd_on);
        for (auto [lo, hi] : {std::pair{0, 0}, std::pair{3, 27}, std::pair{30, 66}}) {  // 30..66 wraps the ring
          const int n = hi - lo + 1;
          for (int kv_head : {0, 1}) {
            std::vector<float> together(q.size(), -1.0f), alone(q.size(), -2.0f), scores(size_t(nh * n));
            attend_heads(q.data(), nh, kv_head, head_dim, kv, lo, hi, together.data(), scores.data(), true);
            for (int h = 0; h < nh; ++h)
              attend_head(q.data() + h * head_dim, kv_head, head_dim, kv, lo, hi, alone.data() + h * head_dim,
                          scores.data(), true);
            EXPECT_EQ(together, alone) << (f16 ? "F16" : "F32") << " cache, SIMD " << simd_on << ", head_dim "
                                       << head_dim << ", cells " << lo << ".." << hi << ", KV head " << kv_head;
          }
        }
        simd::set_enabled(true);
      }
}

}  // namespace
