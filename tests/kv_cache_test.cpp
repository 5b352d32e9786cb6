// KV cache layout: sliding-window rings that do not grow with the context, aliased layers, truncation.
#include <gtest/gtest.h>

#include "core/error.h"
#include "core/fp16.h"
#include "models/kv_cache.h"

namespace {

using hearth::models::KvCache;
using hearth::models::KvCacheOptions;
using hearth::models::KvLayerSpec;
using hearth::models::KvType;

// Layer 0: SWA window 4; layer 1: global; layer 2 reads layer 0; layer 3 reads layer 1.
std::vector<KvLayerSpec> layout() {
  return {{2, 8, 4, 0, true}, {1, 16, 0, 1, true}, {2, 8, 4, 0, true}, {1, 16, 0, 1, true}};
}

TEST(KvCache, SlidingLayersHoldAWindowNotTheContext) {
  KvCacheOptions o;
  o.n_ctx = 1000;
  o.max_ubatch = 3;
  o.type = KvType::F32;
  KvCache kv(layout(), o);
  EXPECT_EQ(kv.capacity(0), 4 - 1 + 3);
  EXPECT_EQ(kv.capacity(1), 1000);
  EXPECT_EQ(kv.capacity(2), kv.capacity(0));
  // SWA: 6 rows x 16 floats (k and v); global: 1000 x 16 floats (k and v). Aliased layers add nothing.
  EXPECT_EQ(kv.bytes(), size_t(2 * 6 * 16 * 4 + 2 * 1000 * 16 * 4));
  EXPECT_EQ(KvCache::estimate_bytes(layout(), o), kv.bytes());
  o.n_ctx = 100000;
  KvCache big(layout(), o);
  EXPECT_EQ(big.capacity(0), 6);  // unchanged by the context length
  o.n_ctx = 2;
  KvCache tiny(layout(), o);
  EXPECT_EQ(tiny.capacity(0), 2);
}

TEST(KvCache, RingKeepsTheLastPositionsAndAliasesReadTheSource) {
  KvCacheOptions o;
  o.n_ctx = 64;
  o.max_ubatch = 2;
  o.type = KvType::F32;
  KvCache kv(layout(), o);
  std::vector<float> k(16), v(16);
  for (int p = 0; p < 20; ++p) {
    for (int i = 0; i < 16; ++i) k[size_t(i)] = float(p * 100 + i), v[size_t(i)] = float(-p);
    kv.store(0, 0, p, k.data(), v.data());
  }
  // capacity 5: positions 15..19 are held
  for (int p = 15; p < 20; ++p) {
    EXPECT_EQ(static_cast<const float*>(kv.k_row(0, 0, p))[3], float(p * 100 + 3));
    EXPECT_EQ(static_cast<const float*>(kv.v_row(2, 0, p))[0], float(-p));  // layer 2 aliases layer 0
  }
  EXPECT_THROW(kv.store(2, 0, 0, k.data(), v.data()), hearth::Error);  // aliased layers do not write
  EXPECT_THROW(kv.store(0, 0, 64, k.data(), v.data()), hearth::Error);  // beyond the context
  EXPECT_THROW(kv.store(0, 1, 0, k.data(), v.data()), hearth::Error);   // no such sequence
}

TEST(KvCache, F16RowsAreRounded) {
  KvCacheOptions o;
  o.n_ctx = 8;
  o.type = KvType::F16;
  KvCache kv(layout(), o);
  std::vector<float> k(16, 0.1f), v(16, 1.0f / 3);
  kv.store(1, 0, 5, k.data(), v.data());
  const uint16_t* kr = static_cast<const uint16_t*>(kv.k_row(3, 0, 5));
  EXPECT_EQ(kr[0], hearth::f32_to_fp16(0.1f));
  EXPECT_TRUE(kv.view(3, 0).f16);
  EXPECT_EQ(kv.row_bytes(1), 32u);
}

TEST(KvCache, TruncateRefusesWhatTheRingNoLongerHolds) {
  KvCacheOptions o;
  o.n_ctx = 64;
  o.max_ubatch = 4;  // SWA capacity 4 - 1 + 4 = 7
  KvCache kv(layout(), o);
  kv.set_n_past(0, 20);  // positions 13..19 held in the ring
  // Position n needs n-3..n-1: truncating to 17 needs 14..16 (held), to 16 needs 13..15 (held), 15 needs 12.
  EXPECT_TRUE(kv.truncate(0, 19));
  EXPECT_EQ(kv.n_past(0), 19);
  kv.set_n_past(0, 20);
  EXPECT_TRUE(kv.truncate(0, 16));
  kv.set_n_past(0, 20);
  EXPECT_FALSE(kv.truncate(0, 15));
  EXPECT_EQ(kv.n_past(0), 20);
  EXPECT_TRUE(kv.truncate(0, 0));
  EXPECT_EQ(kv.n_past(0), 0);
}

TEST(KvCache, RejectsInvalidLayouts) {
  KvCacheOptions o;
  EXPECT_THROW(KvCache({{1, 8, 0, 1, true}, {1, 8, 0, 0, true}}, o), hearth::Error);  // reads a reader
  EXPECT_THROW(KvCache({{1, 8, 0, 3, true}}, o), hearth::Error);                     // out of range
  o.n_ctx = 0;
  EXPECT_THROW(KvCache(layout(), o), hearth::Error);
}

}  // namespace
