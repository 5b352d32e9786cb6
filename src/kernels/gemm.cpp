// Blocked quantised matrix kernels, compiled once per Highway target and chosen at run time (gemm.h).
// x86 targets with AVX2 or better use raw intrinsics (maddubs/madd, or vpdpbusd where AVX-512 VNNI is
// there); other targets have no fast path yet and matmul falls back to the per-row dot products.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/gemm.cpp"
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL 1  // compile the AVX-512 VNNI target too (opt-in in Highway 1.0)
#endif
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// Must come after foreach_target.h.
#include "hwy/highway.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "core/fp16.h"
#include "kernels/gemm.h"
#include "kernels/gemm_amx.h"
#include "kernels/quant.h"
#include "kernels/transpose_avx512.h"

HWY_BEFORE_NAMESPACE();
namespace hearth::kernels::gemm::HWY_NAMESPACE {

#undef HEARTH_GEMM_X86
#undef HEARTH_GEMM_VNNI
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
#define HEARTH_GEMM_X86 1
#if HWY_TARGET <= HWY_AVX3_DL
#define HEARTH_GEMM_VNNI 1
#endif

HWY_INLINE float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_f32(h);
}
HWY_INLINE __m256i load32_bcast(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}
// acc + per-lane sums of 4 adjacent products u[i] * s[i] (u unsigned bytes, s signed bytes).
HWY_INLINE __m256i dot_u8s8(__m256i acc, __m256i u, __m256i s) {
#ifdef HEARTH_GEMM_VNNI
  return _mm256_dpbusd_epi32(acc, u, s);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}
// Per-lane sums of 4 adjacent products of two signed byte vectors (|x| <= 128, |y| <= 127).
HWY_INLINE __m256i dot_s8s8(__m256i x, __m256i y) {
  return dot_u8s8(_mm256_setzero_si256(), _mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}
HWY_INLINE float hsum8(__m256 v) {  // ggml's order: halves, then pairs, then the last two
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
// A Q4_0 block's 32 quants as unsigned nibbles in element order (low nibbles 0-15, high nibbles 16-31).
HWY_INLINE __m256i q4_nibbles(const uint8_t* qs) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i m = _mm_set1_epi8(0x0F);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), m), _mm_and_si128(raw, m));
}

// Whether this is an Intel CPU: the decode kernels' software prefetch distances and levels were measured
// per vendor (AMD: Zen 3 and Zen 5; Intel: a Sapphire-Rapids-class Xeon).
HWY_INLINE bool intel_cpu() {
  static const bool intel = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    __cpuid(0, a, b, c, d);
    return b == 0x756e6547 && d == 0x49656e69 && c == 0x6c65746e;  // "GenuineIntel"
  }();
  return intel;
}

// Prefetches the line at p of a weight stream that decode reads once per token: into L2 when l2 (intel_cpu()),
// else into L1 (what the AMD measurements used). On the Sapphire-Rapids-class Xeon, E2B tg into L1 / into L2,
// tok/s at 2 and 1 threads, runs alternating: Q4_K_M (K-quant rows) 12.4 / 13.6 and 6.8 / 7.5 in one
// session, 13.9 / 14.5 and 7.7 / 8.0 in a later one; Q8_0 packed 11.0 / 11.4 and 6.2 / 6.25; Q4_0 with
// HEARTH_PACK=0 (SeqFew) 14.3 / 14.8 and 7.85 / 8.1. Packed Q4_0 was no faster into L2 and stays in L1.
HWY_INLINE void prefetch_stream(const void* p, bool l2) {
  if (l2) _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T1);
  else _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0);
}

// Requests a region of `bytes` (a group of rows, read later) a few lines per block over the `n_blocks` blocks of
// the group before it: ceil(lines / n_blocks) per block until all are asked for. (Spreading them exactly took
// two 64-bit divisions per block: without them the eight-adjacent-rows Q4_0 decode kernel went from 24.2 to
// 26.0 GB/s in cache, DecodeQ4_0.)
class GroupPrefetch {
 public:
  GroupPrefetch(size_t bytes, int64_t n_blocks)
      : lines_((bytes + 63) / 64), per_block_((lines_ + size_t(n_blocks) - 1) / size_t(n_blocks)) {}
  HWY_INLINE void step(const uint8_t* region) {
    const size_t end = std::min(line_ + per_block_, lines_);
    for (; line_ < end; ++line_) _mm_prefetch(reinterpret_cast<const char*>(region + 64 * line_), _MM_HINT_T0);
  }

 private:
  size_t lines_, per_block_, line_ = 0;
};

// How far ahead on each row the decode kernels that read several rows as sequential runs (q4_0_seq_few,
// q8_0_seq_rows16) prefetch. Sapphire-Rapids-class Xeon, DramQ4_0 with runs of 8 rows: 128 bytes 11.8 / 24.1
// GB/s (1 / 2 threads), 512 15.1 / 30.3, 768 14.8 / 29.8, 1024 14.2 / 28.1. AMD cores wanted the packed
// kernel's prefetch three times as far (q4_0_prefetch_bytes): the same factor here, not measured.
HWY_INLINE size_t row_prefetch_bytes() { return intel_cpu() ? 512 : 1536; }

// The run traversals' store: lane r of a pass holds row p + r * run (its row in the r-th run of the call).
HWY_INLINE void store_run_lanes(const float* lanes, int n_lanes, float* y_at_p, int64_t run) {
  for (int r = 0; r < n_lanes; ++r) y_at_p[r * run] = lanes[r];
}

// 8x8 transpose of 32-bit elements: out[k] lane r = in[r] lane k.
HWY_INLINE void transpose8(const __m256i in[8], __m256i out[8]) {
  __m256i t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_epi32(in[2 * i], in[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_epi32(in[2 * i], in[2 * i + 1]);
  }
  for (int i = 0; i < 2; ++i) {
    u[4 * i + 0] = _mm256_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 1] = _mm256_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 2] = _mm256_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    u[4 * i + 3] = _mm256_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int k = 0; k < 4; ++k) {
    out[k] = _mm256_permute2x128_si256(u[k], u[k + 4], 0x20);
    out[k + 4] = _mm256_permute2x128_si256(u[k], u[k + 4], 0x31);
  }
}

constexpr size_t kPackedBlock = 8 * 32 + 8 * 4;
constexpr size_t kQ4PackedBlock = kQ4_0PackedBlockBytes;
constexpr int64_t kGroupsPerPass = 8;  // 8-row groups unpacked into scratch per prefill pass (scratch_bytes)

// One Q4_0 block of eight rows (w[k] lane r = unsigned quants 4k..4k+3 of row r, dw their scales) against
// token tok's Q8_0 block b: acc + float(block isum) * (dw * da), the reference's per-block step.
template <int NT>
HWY_INLINE __m256 q4_0_seq_block(const __m256i w[8], __m256 dw, const Args& a, int64_t tok, int64_t b, int64_t nb,
                                 __m256 acc) {
  const uint8_t* q = a.acts + size_t(tok) * a.act_row_bytes + size_t(b) * 34 + 2;
  __m256i isum;
  if (NT == 1) {  // independent partial sums (exact integers): one chain of eight vpdpbusd is latency-bound
    __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
    __m256i s2 = _mm256_setzero_si256(), s3 = _mm256_setzero_si256();
    s0 = dot_u8s8(s0, w[0], load32_bcast(q + 0));
    s1 = dot_u8s8(s1, w[1], load32_bcast(q + 4));
    s2 = dot_u8s8(s2, w[2], load32_bcast(q + 8));
    s3 = dot_u8s8(s3, w[3], load32_bcast(q + 12));
    s0 = dot_u8s8(s0, w[4], load32_bcast(q + 16));
    s1 = dot_u8s8(s1, w[5], load32_bcast(q + 20));
    s2 = dot_u8s8(s2, w[6], load32_bcast(q + 24));
    s3 = dot_u8s8(s3, w[7], load32_bcast(q + 28));
    isum = _mm256_add_epi32(_mm256_add_epi32(s0, s1), _mm256_add_epi32(s2, s3));
  } else {  // several tokens in flight already give independent chains
    isum = _mm256_setzero_si256();
    for (int k = 0; k < 8; ++k) isum = dot_u8s8(isum, w[k], load32_bcast(q + 4 * k));
  }
  isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(8 * a.act_sums[tok * nb + b]));
  const __m256 scale = _mm256_mul_ps(dw, _mm256_set1_ps(a.act_d[tok * nb + b]));
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), scale, acc);
}

// Q4_0 x Q8_0, llama.cpp's repacked order: per row and token, acc = fma(block_isum, dw * da, acc).
// Eight rows at a time: their blocks are unpacked once into "lane = row" form (vector k holds bytes
// 4k..4k+3 of each row), so one vpdpbusd per 4 bytes advances all eight rows for a token.
template <int NT>
HWY_INLINE void q4_0_seq_tile(const uint8_t* pk, int64_t nb, const Args& a, int64_t t0, int64_t g) {
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = pk + size_t(b) * kPackedBlock;
    const __m256 dw = _mm256_load_ps(reinterpret_cast<const float*>(blk + 256));
    __m256i w[8];
    for (int k = 0; k < 8; ++k) w[k] = _mm256_load_si256(reinterpret_cast<const __m256i*>(blk + 32 * k));
    for (int t = 0; t < NT; ++t) acc[t] = q4_0_seq_block<NT>(w, dw, a, t0 + t, b, nb, acc[t]);
  }
  for (int t = 0; t < NT; ++t) _mm256_storeu_ps(a.y + (t0 + t) * a.y_stride + g, acc[t]);
}

// Lane r = sum of the eight int32 lanes of v[r].
HWY_INLINE __m256i reduce8(const __m256i v[8]) {
  const __m256i h01 = _mm256_hadd_epi32(v[0], v[1]), h23 = _mm256_hadd_epi32(v[2], v[3]);
  const __m256i h45 = _mm256_hadd_epi32(v[4], v[5]), h67 = _mm256_hadd_epi32(v[6], v[7]);
  const __m256i a = _mm256_hadd_epi32(h01, h23), b = _mm256_hadd_epi32(h45, h67);
  return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
}

// Few tokens (decode): no packing. Each row's block meets the token's activation block directly and the
// eight per-row lane vectors are reduced with horizontal adds. Q8_0 weights (dot_q8_0_seq: the block order of
// AMX machines), at most three tokens; Q4_0 has its own form below (q4_0_seq_few).
// The eight rows of a pass come from eight runs of consecutive rows, as in q4_0_seq_few (lane r is row
// p + r * run): eight sequential streams. One thread from memory (DramTarget/Q8_0, AVX2 target): eight adjacent
// rows, the region two groups ahead prefetched a slice per block, 9.3 GB/s; runs 15.3.
void Q8_0SeqFew(const Args& a) {
  const size_t ahead = row_prefetch_bytes();
  constexpr size_t kBlockBytes = 34;
  const int64_t nb = a.n_in / 32, run = a.n_rows / 8;
  const size_t s = size_t(run) * a.w_row_bytes;
  for (int64_t p = 0; p < run; ++p) {
    const uint8_t* base = a.w + size_t(p) * a.w_row_bytes;
    __m256 acc[3] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t b = 0; b < nb; ++b) {
      __m256i wq[8];
      const uint8_t* blk0 = base + size_t(b) * kBlockBytes;
      alignas(16) uint16_t hs[8];
      for (int r = 0; r < 8; ++r) {
        const uint8_t* qs = blk0 + size_t(r) * s + 2;
        _mm_prefetch(reinterpret_cast<const char*>(qs + ahead), _MM_HINT_T0);
        std::memcpy(&hs[r], qs - 2, 2);
        wq[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs));
      }
      const __m256 dw = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(hs)));  // exact
      for (int64_t t = 0; t < a.n_tok; ++t) {
        const uint8_t* q = a.acts + size_t(t) * a.act_row_bytes + size_t(b) * 34 + 2;
        const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
        __m256i v[8];
        for (int r = 0; r < 8; ++r) v[r] = dot_s8s8(wq[r], av);
        const __m256i isum = reduce8(v);
        const __m256 scale = _mm256_mul_ps(dw, _mm256_set1_ps(a.act_d[t * nb + b]));
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), scale, acc[t]);
      }
    }
    for (int64_t t = 0; t < a.n_tok; ++t) {
      alignas(32) float o[8];
      _mm256_store_ps(o, acc[t]);
      store_run_lanes(o, 8, a.y + t * a.y_stride + p, run);
    }
  }
}

// Few tokens (decode), Q4_0 rows as stored (MoE experts; packing off), in quant.h dot_q4_0_seq's order. Eight
// rows at a time, rows i and i+4 sharing one 256-bit register (16 raw bytes each, split into low and high
// nibbles), so a block of eight rows takes four nibble splits, and its eight row sums come out of three horizontal
// adds (in row order) instead of reduce8's six adds and two lane permutes.
// Which eight rows: the call's rows are cut into eight runs of n / 8 consecutive rows, and pass p takes row p of
// each run. Across the passes each run is then read start to end: eight long sequential streams, each in its own
// 4 KiB pages, which the L2 streamer follows, plus a T0 prefetch row_prefetch_bytes() ahead on each row (into
// the next row of its run near a row's end). Eight consecutive rows instead (one 12.7 KB region read at eight points,
// the region two groups ahead prefetched a slice per block): 10.5 GB/s from memory on one thread, 20.6 on two
// (DramQ4_0); runs of 3, 8 and 16 rows without prefetch 11.9 / 12.3 / 14.6 on one thread; with the 512-byte
// prefetch and runs of n / 8 rows (3072 there) 15.6 / 31.9, level with the packed layout (15.9 / 33.4).
template <int NT>
void q4_0_seq_few(const Args& a) {
  const size_t ahead = row_prefetch_bytes();
  const int64_t nb = a.n_in / 32;
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const int64_t run = a.n_rows / 8;
  const size_t rb = a.w_row_bytes, s = size_t(run) * rb, s3 = 3 * s;
  for (int64_t p = 0; p < run; ++p) {
    const uint8_t* p0 = a.w + size_t(p) * rb + 2;  // pass p's first row's first block's quants
    __m256 acc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
    const uint8_t* act = a.acts + 2;
    for (int64_t b = 0; b < nb; ++b, p0 += 18, act += 34) {
      const uint8_t* p3 = p0 + s3;
      // Rows (0,4), (1,5), (2,6), (3,7) of the pass as pairs; addresses from p0, p3, s and 3 * s.
      const uint8_t* lo_row[4] = {p0, p0 + s, p0 + 2 * s, p3};
      const uint8_t* hi_row[4] = {p0 + 4 * s, p3 + 2 * s, p3 + s3, p3 + 4 * s};
      for (int i = 0; i < 4; ++i) {
        _mm_prefetch(reinterpret_cast<const char*>(lo_row[i] + ahead), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(hi_row[i] + ahead), _MM_HINT_T0);
      }
      __m256i lo[4], hi[4];
      for (int i = 0; i < 4; ++i) {
        const __m256i x = _mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lo_row[i]))),
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(hi_row[i])), 1);
        lo[i] = _mm256_and_si256(x, m4);
        hi[i] = _mm256_and_si256(_mm256_srli_epi16(x, 4), m4);
      }
      alignas(16) uint16_t hs[8];  // (a gather of the eight scales measured the same)
      for (int r = 0; r < 8; ++r) std::memcpy(&hs[r], p0 - 2 + size_t(r) * s, 2);
      const __m256 dw = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(hs)));  // exact
      for (int t = 0; t < NT; ++t) {
        const uint8_t* q = act + size_t(t) * a.act_row_bytes;
        const __m256i alo = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)));
        const __m256i ahi = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16)));
        __m256i d[4];
        for (int i = 0; i < 4; ++i) d[i] = dot_u8s8(dot_u8s8(_mm256_setzero_si256(), lo[i], alo), hi[i], ahi);
        // d[i]: lanes 0-3 partial sums of row i, lanes 4-7 of row i+4; three hadds give rows 0..7 in order.
        const __m256i rows = _mm256_hadd_epi32(_mm256_hadd_epi32(d[0], d[1]), _mm256_hadd_epi32(d[2], d[3]));
        const __m256i isum = _mm256_sub_epi32(rows, _mm256_set1_epi32(8 * a.act_sums[t * nb + b]));
        const __m256 scale = _mm256_mul_ps(dw, _mm256_set1_ps(a.act_d[t * nb + b]));
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), scale, acc[t]);
      }
    }
    for (int t = 0; t < NT; ++t) {
      alignas(32) float o[8];
      _mm256_store_ps(o, acc[t]);
      store_run_lanes(o, 8, a.y + t * a.y_stride + p, run);
    }
  }
}

void Q4_0SeqFew(const Args& a) {
  if (a.n_tok == 1) return q4_0_seq_few<1>(a);
  if (a.n_tok == 2) return q4_0_seq_few<2>(a);
  q4_0_seq_few<3>(a);
}

// Q8_0 in the block order for any number of tokens, three at a time (AMX machines take prompts to the
// tile kernels; this serves decode there, and prompts where a test emulates such a machine).
void Q8_0Seq(const Args& a) {
  const int64_t nb = a.n_in / 32;
  for (int64_t t0 = 0; t0 < a.n_tok; t0 += 3) {
    Args s = a;
    s.acts += size_t(t0) * a.act_row_bytes;
    s.act_sums += t0 * nb;
    s.act_d += t0 * nb;
    s.y += t0 * a.y_stride;
    s.n_tok = std::min<int64_t>(3, a.n_tok - t0);
    Q8_0SeqFew(s);
  }
}

// Decode (one token) streams each weight byte once: software prefetch 4 KB ahead. E2B Q8_0 tg on Zen 3 (AVX2),
// one thread, alternating runs: ~2.85 tok/s without, ~3.2-4.2 with (2 KB and 8 KB were no better).
constexpr size_t kLanesPrefetchBytes = 4096;
// ggml's AVX2 vec_dot order for Q8_0-activation products: per row and token an 8-lane float accumulator,
// acc = fma(dw * da, float(lane sums of the block), acc), then hsum8. Weight blocks stay in registers for
// four tokens at a time.
template <bool kQ4, int NT>
HWY_INLINE void lanes_row(const Args& a, int64_t r, int64_t t0, int64_t nb) {
  const bool l2 = intel_cpu();
  const uint8_t* wrow = a.w + size_t(r) * a.w_row_bytes;
  const size_t wbs = kQ4 ? 18 : 34;
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = wrow + size_t(b) * wbs;
    if (NT == 1) prefetch_stream(blk + kLanesPrefetchBytes, l2);
    const float dw = half_at(blk);
    const __m256i wq = kQ4 ? _mm256_sub_epi8(q4_nibbles(blk + 2), _mm256_set1_epi8(8))
                           : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
    for (int t = 0; t < NT; ++t) {
      const int64_t tok = t0 + t;
      const uint8_t* q = a.acts + size_t(tok) * a.act_row_bytes + size_t(b) * 34 + 2;
      const __m256i p = dot_s8s8(wq, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q)));
      acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * a.act_d[tok * nb + b]), _mm256_cvtepi32_ps(p), acc[t]);
    }
  }
  for (int t = 0; t < NT; ++t) a.y[(t0 + t) * a.y_stride + r] = hsum8(acc[t]);
}

template <bool kQ4>
void Lanes(const Args& a) {
  const int64_t nb = a.n_in / 32;
  // Rows in passes of 16: a tile of four tokens' activations stays in L1 while it meets all of them.
  for (int64_t r0 = 0; r0 < a.n_rows; r0 += 16) {
    const int64_t r1 = std::min<int64_t>(a.n_rows, r0 + 16);
    int64_t t0 = 0;
    for (; t0 + 4 <= a.n_tok; t0 += 4)
      for (int64_t r = r0; r < r1; ++r) lanes_row<kQ4, 4>(a, r, t0, nb);
    for (; t0 < a.n_tok; ++t0)
      for (int64_t r = r0; r < r1; ++r) lanes_row<kQ4, 1>(a, r, t0, nb);
  }
}
void Q8_0Lanes(const Args& a) { Lanes<false>(a); }
void Q4_0Lanes(const Args& a) { Lanes<true>(a); }

// How far ahead packed Q4_0 decode prefetches, in bytes (16 or 48 blocks). E2B Q4_0 tg, one thread: on Zen 5,
// 8 blocks (1 KB) streamed at ~15 tok/s and 48 (7 KB) at ~19; on a Sapphire-Rapids-class Xeon (packed weights
// on huge pages) 48 gave 7.9 tok/s, 32 8.2, 24 9.4, 16 10.8, 8 10.8, none 9.7 (two threads: 14.3 at 48, 19.1
// at 16). Intel's L2 streamer wants the near lines; AMD's wants them far ahead.
HWY_INLINE size_t q4_0_prefetch_bytes() {
  return (intel_cpu() ? 16 : 48) * kQ4PackedBlock;
}

// Q4_0 in hearth's packed layout (gemm.h): per 8 rows and block, 8 fp16 scales then four vectors whose
// lane r holds raw quant bytes 4k..4k+3 of row r (low nibbles = elements 4k.., high = 16 + 4k..).
template <int NT>
HWY_INLINE void packed_tile(const uint8_t* grp, int64_t nb, const Args& a, int64_t t0, int64_t g, size_t ahead) {
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  const __m256i m = _mm256_set1_epi8(0x0F);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = grp + size_t(b) * kQ4PackedBlock;
    _mm_prefetch(reinterpret_cast<const char*>(blk + ahead), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(blk + ahead + 64), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(blk + ahead + 128), _MM_HINT_T0);
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
    __m256i w[8];
    for (int k = 0; k < 4; ++k) {
      const __m256i p = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16 + 32 * k));
      w[k] = _mm256_and_si256(p, m);
      w[k + 4] = _mm256_and_si256(_mm256_srli_epi16(p, 4), m);
    }
    for (int t = 0; t < NT; ++t) acc[t] = q4_0_seq_block<NT>(w, dw, a, t0 + t, b, nb, acc[t]);
  }
  for (int t = 0; t < NT; ++t) _mm256_storeu_ps(a.y + (t0 + t) * a.y_stride + g, acc[t]);
}

// One Q6_K superblock's 256 quants (ql: 4 bits, qh: 2 bits) as unsigned bytes 0..63 in element order, to o
// (32-byte aligned): elements 128h + 32m + l.
HWY_INLINE void q6_k_row_quants(const uint8_t* x, uint8_t* o) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
  for (int h = 0; h < 2; ++h, o += 128) {
    const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 64 * h));
    const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 64 * h + 32));
    const __m256i hb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 128 + 32 * h));
    const __m256i v0 = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(hb, m2), 4));
    const __m256i v1 = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                       _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m2), 4));
    const __m256i v2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                       _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m2), 4));
    const __m256i v3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                       _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), m2), 4));
    _mm256_store_si256(reinterpret_cast<__m256i*>(o), v0);
    _mm256_store_si256(reinterpret_cast<__m256i*>(o + 32), v1);
    _mm256_store_si256(reinterpret_cast<__m256i*>(o + 64), v2);
    _mm256_store_si256(reinterpret_cast<__m256i*>(o + 96), v3);
  }
}

#ifndef HEARTH_GEMM_VNNI
#include "kernels/gemm_kquant_avx2.inc"  // K-quant prefill without VNNI (compiled per target)
#endif
#include "kernels/gemm_kquant_rows.inc"  // K-quant decode, four rows at a time (compiled per target)

#ifdef HEARTH_GEMM_VNNI
// AVX-512: sixteen rows (two packed groups) per vector. Scratch holds, per block, eight 64-byte vectors
// whose lane r (rows 0-7 from the first group, 8-15 from the second) is unsigned quants 4k..4k+3 of row
// r, then the sixteen scales as float; the same per-lane arithmetic as q4_0_seq_block, so the same bits.
// Highway 1.0's AVX3_DL target compiles for "avxvnni" (VEX, 256-bit) but selects CPUs by the AVX512_VNNI
// bit, so the 512-bit forms are safe wherever this target runs; these functions ask the compiler for them.
#define HEARTH_WIDE __attribute__((target("avx512vnni")))
constexpr size_t kWideBlock = 2 * kPackedBlock;

HEARTH_WIDE inline void unpack_pair(const uint8_t* g0, const uint8_t* g1, int64_t nb, uint8_t* dst) {
  const __m512i m = _mm512_set1_epi8(0x0F);
  for (int64_t b = 0; b < nb; ++b, dst += kWideBlock) {
    const uint8_t* b0 = g0 + size_t(b) * kQ4PackedBlock;
    const uint8_t* b1 = g1 + size_t(b) * kQ4PackedBlock;
    for (int k = 0; k < 4; ++k) {
      const __m512i p = _mm512_inserti64x4(
          _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b0 + 16 + 32 * k))),
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b1 + 16 + 32 * k)), 1);
      _mm512_storeu_si512(dst + 64 * k, _mm512_and_si512(p, m));
      _mm512_storeu_si512(dst + 64 * (k + 4), _mm512_and_si512(_mm512_srli_epi16(p, 4), m));
    }
    const __m512 d = _mm512_insertf32x8(
        _mm512_castps256_ps512(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b0)))),
        _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b1))), 1);
    _mm512_storeu_ps(dst + 512, d);
  }
}

// Sixteen rows x NT tokens over every block; accumulators stay in registers for the whole row.
template <int NT>
HEARTH_WIDE inline void wide_tile(const uint8_t* pk, const uint8_t* act, int64_t nb, const Args& a, int64_t t0,
                                  int64_t g) {
  __m512 acc[NT];
#pragma GCC unroll 8
  for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = pk + size_t(b) * kWideBlock;
    const int32_t* qd = reinterpret_cast<const int32_t*>(act + size_t(b) * kActTileBlock);
    __m512i isum[NT];
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) isum[t] = _mm512_set1_epi32(qd[64 + t]);  // exact integer sums from here
    // Token-inner order: consecutive instructions belong to independent chains.
#pragma GCC unroll 8
    for (int k = 0; k < 8; ++k) {
      const __m512i w = _mm512_loadu_si512(blk + 64 * k);
#pragma GCC unroll 8
      for (int t = 0; t < NT; ++t) isum[t] = _mm512_dpbusd_epi32(isum[t], w, _mm512_set1_epi32(qd[8 * k + t]));
    }
    const __m512 dw = _mm512_loadu_ps(blk + 512);
    const float* da = reinterpret_cast<const float*>(qd + 72);
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t)
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_mul_ps(dw, _mm512_set1_ps(da[t])), acc[t]);
  }
#pragma GCC unroll 8
  for (int t = 0; t < NT; ++t) _mm512_storeu_ps(a.y + (t0 + t) * a.y_stride + g, acc[t]);
}

using x86::transpose16x4;

// Sixteen plain Q4_0 rows into the wide layout.
HEARTH_WIDE inline void unpack_rows16(const uint8_t* w, size_t row_bytes, int64_t nb, uint8_t* dst) {
  const __m512i m = _mm512_set1_epi8(0x0F);
  for (int64_t b = 0; b < nb; ++b, dst += kWideBlock) {
    const uint8_t* x = w + size_t(b) * 18;
    __m512i v[4];
    transpose16x4(x + 2, row_bytes, v);
    for (int k = 0; k < 4; ++k) {  // bytes 4k..4k+3: low nibbles = elements 4k.., high = 16 + 4k..
      _mm512_storeu_si512(dst + 64 * k, _mm512_and_si512(v[k], m));
      _mm512_storeu_si512(dst + 64 * (k + 4), _mm512_and_si512(_mm512_srli_epi16(v[k], 4), m));
    }
    alignas(32) uint16_t d16[16];
    for (int r = 0; r < 16; ++r) std::memcpy(&d16[r], x + size_t(r) * row_bytes, 2);
    _mm512_storeu_ps(dst + 512, _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(d16))));
  }
}

// Every tile of tokens (Args::act_tiles, act_block bytes per block) over `groups` unpacked groups of 16 rows
// in scratch (group_bytes apart; rows g, g + 16, ...): Tile::run<NT> for 8 tokens, else 4, then lone tokens.
template <class Tile>
HEARTH_WIDE inline void run_token_tiles(const Args& a, int64_t nb, size_t act_block, int64_t groups,
                                        size_t group_bytes, int64_t g) {
  for (int64_t t0 = 0; t0 < a.n_tok; t0 += kActTileTokens) {
    const int nt = int(std::min<int64_t>(kActTileTokens, a.n_tok - t0));
    const uint8_t* act = a.act_tiles + size_t(t0 / kActTileTokens) * size_t(nb) * act_block;
    for (int64_t j = 0; j < groups; ++j) {
      const uint8_t* w = a.scratch + j * group_bytes;
      int done = 0;
      if (nt == 8) {
        Tile::template run<8>(w, act, nb, a, t0, g + 16 * j);
        done = 8;
      } else if (nt >= 4) {
        Tile::template run<4>(w, act, nb, a, t0, g + 16 * j);
        done = 4;
      }
      // A token's activations sit at int32 offset t in each interleaved section (gemm.h).
      for (int t = done; t < nt; ++t) Tile::template run<1>(w, act + 4 * t, nb, a, t0 + t, g + 16 * j);
    }
  }
}

struct Q4_0Tile {
  template <int NT>
  HEARTH_WIDE static void run(const uint8_t* w, const uint8_t* act, int64_t nb, const Args& a, int64_t t0, int64_t g) {
    wide_tile<NT>(w, act, nb, a, t0, g);
  }
};

// Prefill over `pairs` pairs of 8-row groups starting at row g: unpack the weights (from packed groups at
// src, or from plain rows at src), then run every tile of tokens (Args::act_tiles) over every pair.
HEARTH_WIDE void wide_pass(const uint8_t* src, bool packed, int64_t nb, int64_t pairs, const Args& a, int64_t g) {
  const size_t group_bytes = size_t(nb) * kQ4PackedBlock, pair_bytes = size_t(nb) * kWideBlock;
  for (int64_t j = 0; j < pairs; ++j) {
    if (packed)
      unpack_pair(src + 2 * j * group_bytes, src + (2 * j + 1) * group_bytes, nb, a.scratch + j * pair_bytes);
    else
      unpack_rows16(src + size_t(16 * j) * a.w_row_bytes, a.w_row_bytes, nb, a.scratch + j * pair_bytes);
  }
  run_token_tiles<Q4_0Tile>(a, nb, kActTileBlock, pairs, pair_bytes, g);
}

// Q8_0 x Q8_0 in the lanes order (q8_0_lanes) with AVX-512: two tokens per vector (lanes 0-7 token 2p,
// 8-15 token 2p + 1), four rows x NP token pairs per tile. Activations come as unsigned (q + 128), so
// one vpdpbusd gives each lane's four products plus 128 x the lane's weight sum, which the start value
// (-128 x that sum, from one more vpdpbusd per row and block) cancels: exact integer lane sums, then
// acc = fma(dw * da, float(lane sum), acc) and the reference's final lane sum, so the same bits.
constexpr size_t kQ8TileBlock = 4 * 64 + 8 * 4;

template <int NP>
HEARTH_WIDE inline void q8_wide_tile(const Args& a, int64_t r0, const uint8_t* act, int64_t nb, int64_t t0, int nt) {
  __m512 acc[4][NP];
#pragma GCC unroll 4
  for (int r = 0; r < 4; ++r)
#pragma GCC unroll 4
    for (int p = 0; p < NP; ++p) acc[r][p] = _mm512_setzero_ps();
  const __m512i c128 = _mm512_set1_epi8(char(0x80));
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* ab = act + size_t(b) * kQ8TileBlock;
    const float* da = reinterpret_cast<const float*>(ab + 256);
    __m512 dap[NP];
#pragma GCC unroll 4
    for (int p = 0; p < NP; ++p)
      dap[p] = _mm512_insertf32x8(_mm512_set1_ps(da[2 * p]), _mm256_set1_ps(da[2 * p + 1]), 1);
#pragma GCC unroll 4
    for (int r = 0; r < 4; ++r) {
      const uint8_t* wb = a.w + size_t(r0 + r) * a.w_row_bytes + size_t(b) * 34;
      const __m512i w = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + 2)));
      const __m512i start = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), c128, w));
      const __m512 dw = _mm512_set1_ps(half_at(wb));
#pragma GCC unroll 4
      for (int p = 0; p < NP; ++p) {
        const __m512i s = _mm512_dpbusd_epi32(start, _mm512_loadu_si512(ab + 64 * p), w);
        acc[r][p] = _mm512_fmadd_ps(_mm512_mul_ps(dw, dap[p]), _mm512_cvtepi32_ps(s), acc[r][p]);
      }
    }
  }
  for (int r = 0; r < 4; ++r)
    for (int p = 0; p < NP; ++p) {
      alignas(64) float v[16];
      _mm512_store_ps(v, acc[r][p]);
      for (int h = 0; h < 2; ++h) {
        const int t = 2 * p + h;
        if (t >= nt) break;
        const float* l = v + 8 * h;  // (hi + lo), then pairs (0,2) (1,3), then the two, as hsum8
        const float s0 = l[4] + l[0], s1 = l[5] + l[1], s2 = l[6] + l[2], s3 = l[7] + l[3];
        a.y[(t0 + t) * a.y_stride + r0 + r] = (s0 + s2) + (s1 + s3);
      }
    }
}

// Rows in passes of 64 (their weights stay in L2 while every token tile meets them), tiles of 4 rows.
HEARTH_WIDE void Q8_0Wide(const Args& a) {
  const int64_t nb = a.n_in / 32;
  for (int64_t rp = 0; rp < a.n_rows; rp += 64) {
    const int64_t re = std::min<int64_t>(a.n_rows, rp + 64);
    for (int64_t t0 = 0; t0 < a.n_tok; t0 += kActTileTokens) {
      const int nt = int(std::min<int64_t>(kActTileTokens, a.n_tok - t0));
      const uint8_t* act = a.act_tiles + size_t(t0 / kActTileTokens) * size_t(nb) * kQ8TileBlock;
      for (int64_t r0 = rp; r0 < re; r0 += 4) {
        switch ((nt + 1) / 2) {
          case 4: q8_wide_tile<4>(a, r0, act, nb, t0, nt); break;
          case 3: q8_wide_tile<3>(a, r0, act, nb, t0, nt); break;
          case 2: q8_wide_tile<2>(a, r0, act, nb, t0, nt); break;
          default: q8_wide_tile<1>(a, r0, act, nb, t0, nt); break;
        }
      }
    }
  }
}

// acc + token tok's block b against sixteen rows (w[k] lane r = quants 4k..4k+3 of row r plus 128, dw their
// scales): the exact integer block sums less 128 x the activations' block sum, then the reference's one
// multiply-add (dot_q8_0_seq). The one-token chain is split in two (vpdpbusd latency).
HEARTH_WIDE inline __m512 q8_0_seq_block16(const __m512i w[8], __m512 dw, const Args& a, int64_t tok, int64_t b,
                                          int64_t nb, __m512 acc) {
  const uint8_t* q = a.acts + size_t(tok) * a.act_row_bytes + size_t(b) * 34 + 2;
  __m512i s0 = _mm512_set1_epi32(-128 * a.act_sums[tok * nb + b]), s1 = _mm512_setzero_si512();
  for (int k = 0; k < 8; k += 2) {
    int32_t q0, q1;
    std::memcpy(&q0, q + 4 * k, 4);
    std::memcpy(&q1, q + 4 * k + 4, 4);
    s0 = _mm512_dpbusd_epi32(s0, w[k], _mm512_set1_epi32(q0));
    s1 = _mm512_dpbusd_epi32(s1, w[k + 1], _mm512_set1_epi32(q1));
  }
  const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(a.act_d[tok * nb + b]));
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), scale, acc);
}

// Q8_0 in the block order (dot_q8_0_seq) for a few tokens (decode on AMX machines) with AVX-512: sixteen rows
// per vector (lane = row), transposed on the fly and offset to unsigned (q + 128), so one vpdpbusd per four
// quants advances all sixteen rows; 128 x the token's block sum comes off afterwards (exact integers), then the
// reference's float step (q8_0_seq_block16). Row r of the pass is row p + r * run of the call (Q8_0SeqWide).
template <int NT>
HEARTH_WIDE inline void q8_0_seq_rows16(const Args& a, int64_t p, int64_t run, int64_t t0, int64_t nb) {
  const size_t ahead = row_prefetch_bytes();
  const size_t s = size_t(run) * a.w_row_bytes;  // from one row of the pass to the next
  const uint8_t* base = a.w + size_t(p) * a.w_row_bytes;
  const __m512i flip = _mm512_set1_epi8(char(0x80));
  __m512 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* x = base + size_t(b) * 34;
    for (int r = 0; r < 16; ++r)
      _mm_prefetch(reinterpret_cast<const char*>(x + size_t(r) * s + ahead), _MM_HINT_T0);
    __m512i w[8];
    transpose16x4(x + 2, s, w);
    transpose16x4(x + 18, s, w + 4);
    for (int k = 0; k < 8; ++k) w[k] = _mm512_xor_si512(w[k], flip);
    alignas(32) uint16_t d16[16];
    for (int r = 0; r < 16; ++r) std::memcpy(&d16[r], x + size_t(r) * s, 2);
    const __m512 dw = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(d16)));
    for (int t = 0; t < NT; ++t) acc[t] = q8_0_seq_block16(w, dw, a, t0 + t, b, nb, acc[t]);
  }
  for (int t = 0; t < NT; ++t) {
    alignas(64) float o[16];
    _mm512_store_ps(o, acc[t]);
    store_run_lanes(o, 16, a.y + (t0 + t) * a.y_stride + p, run);
  }
}
// The rows (all but a last group of eight) are cut into sixteen runs of consecutive rows, and each pass takes
// one row of each run, as in q4_0_seq_few: sixteen sequential streams instead of one region read at sixteen
// points (with the region one group ahead prefetched a slice per block). DramQ8_0 (588 MB, one token): 12.4 ->
// 15.8 GB/s on one thread, 25.3 -> 32.3 on two; in cache (DecodeQ8_0) the same.
HEARTH_WIDE void Q8_0SeqWide(const Args& a) {
  const int64_t nb = a.n_in / 32, rows16 = a.n_rows / 16 * 16, run = rows16 / 16;
  for (int64_t t0 = 0; t0 < a.n_tok; t0 += 3) {
    const int64_t nt = std::min<int64_t>(3, a.n_tok - t0);
    for (int64_t p = 0; p < run; ++p) {
      if (nt == 3) q8_0_seq_rows16<3>(a, p, run, t0, nb);
      else if (nt == 2) q8_0_seq_rows16<2>(a, p, run, t0, nb);
      else q8_0_seq_rows16<1>(a, p, run, t0, nb);
    }
  }
  if (rows16 < a.n_rows) {  // a last group of eight
    Args rest = a;
    rest.w += size_t(rows16) * a.w_row_bytes;
    rest.y += rows16;
    rest.n_rows = a.n_rows - rows16;
    Q8_0Seq(rest);
  }
}

// The same on packed Q8_0 (gemm.h): the group's quants stream in order, already transposed and unsigned.
template <int NT>
HEARTH_WIDE inline void q8_0_packed_rows16(const Args& a, const uint8_t* grp, int64_t r0, int64_t t0, int64_t nb) {
  const bool l2 = intel_cpu();
  const uint16_t* scales = reinterpret_cast<const uint16_t*>(grp + size_t(nb) * 512);
  __m512 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = grp + size_t(b) * 512;
    // Every line of the block 2 KB ahead. E2B Q8_0 tg on a Sapphire-Rapids-class Xeon, 2 / 1 threads:
    // 11.3 / 6.15 tok/s prefetching two lines of each block, 11.8 / 6.6 all eight (1 and 4 KB ahead no better).
    for (int l = 0; l < 8; ++l) prefetch_stream(blk + 2048 + 64 * l, l2);
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales + 16 * b)));
    __m512i w[8];
    for (int k = 0; k < 8; ++k) w[k] = _mm512_loadu_si512(blk + 64 * k);
    for (int t = 0; t < NT; ++t) acc[t] = q8_0_seq_block16(w, dw, a, t0 + t, b, nb, acc[t]);
  }
  for (int t = 0; t < NT; ++t) _mm512_storeu_ps(a.y + (t0 + t) * a.y_stride + r0, acc[t]);
}

HEARTH_WIDE void Q8_0Packed(const Args& a) {
  const int64_t nb = a.n_in / 32;
  const size_t group_bytes = size_t(nb) * kQ8_0PackedBlockBytes;
  for (int64_t t0 = 0; t0 < a.n_tok; t0 += 3) {
    const int64_t nt = std::min<int64_t>(3, a.n_tok - t0);
    for (int64_t r0 = 0; r0 < a.n_rows; r0 += 16) {
      const uint8_t* grp = a.w + size_t(r0 / 16) * group_bytes;
      if (nt == 3) q8_0_packed_rows16<3>(a, grp, r0, t0, nb);
      else if (nt == 2) q8_0_packed_rows16<2>(a, grp, r0, t0, nb);
      else q8_0_packed_rows16<1>(a, grp, r0, t0, nb);
    }
  }
}

// Q4_K and Q5_K x Q8_K with AVX-512, lane = row (sixteen rows per vector). The references (quant.cpp dot_q4_k, dot_q5_k) sum
// integers per superblock (sumi = sum of scale x sub-block dot, summ = sum of min x pair of bsums) and
// then does sum += d_a * d * float(sumi) - d_a * dmin * float(summ); the integers are exact in any order
// and the float steps are the same per lane, so the bits are the reference's.
// Unpacked layout of sixteen rows for one superblock (transpose16x4): 64 quant vectors (sub-block j, dword k at vector
// 8j + k: lane r = quants 32j + 4k .. +3 of row r, one per byte), 8 scale vectors (int32), 8 min vectors
// (int16 pairs m, m), then d and dmin (float).
constexpr size_t kQ4KWide = 64 * 64 + 8 * 64 + 8 * 64 + 2 * 64;
constexpr size_t kQ4KScales = 64 * 64, kQ4KMins = kQ4KScales + 8 * 64, kQ4KD = kQ4KMins + 8 * 64;
constexpr size_t kQ8KTileBlock = (512 + 64 + 8) * 4;

// Q5_K (kQ5) unpacks to the same layout with quants 0..31: the fifth bit of element 32j + l is bit j of qh[l].
template <bool kQ5>
HEARTH_WIDE inline void unpack_q4_or_q5_k(const uint8_t* w, size_t row_bytes, int64_t nsb, uint8_t* dst) {
  constexpr size_t kBlockBytes = kQ5 ? 176 : 144, kQs = kQ5 ? 48 : 16;
  const __m512i m = _mm512_set1_epi8(0x0F), bit4 = _mm512_set1_epi8(0x10);
  for (int64_t sb = 0; sb < nsb; ++sb, dst += kQ4KWide) {
    const uint8_t* x = w + size_t(sb) * kBlockBytes;
    for (int half = 0; half < 2; ++half) {
      __m512i h[4];  // Q5_K: qh dwords 4 * half + i (the same high-bit bytes serve every chunk)
      if constexpr (kQ5) transpose16x4(x + 16 + 16 * half, row_bytes, h);
      for (int c = 0; c < 4; ++c) {  // dword k of chunk c: low nibbles -> sub-block 2c, high -> 2c + 1
        __m512i v[4];
        transpose16x4(x + kQs + 32 * c + 16 * half, row_bytes, v);
        for (int i = 0; i < 4; ++i) {
          const int k = 4 * half + i;
          __m512i lo = _mm512_and_si512(v[i], m), hi = _mm512_and_si512(_mm512_srli_epi16(v[i], 4), m);
          if constexpr (kQ5) {  // bit j of each qh byte to bit 4 (16-bit shifts; the mask keeps each byte's own)
            lo = _mm512_or_si512(lo, _mm512_and_si512(_mm512_slli_epi16(_mm512_srli_epi16(h[i], 2 * c), 4), bit4));
            hi = _mm512_or_si512(hi, _mm512_and_si512(_mm512_slli_epi16(_mm512_srli_epi16(h[i], 2 * c + 1), 4), bit4));
          }
          _mm512_storeu_si512(dst + 64 * (16 * c + k), lo);
          _mm512_storeu_si512(dst + 64 * (16 * c + 8 + k), hi);
        }
      }
    }
    int32_t* sc = reinterpret_cast<int32_t*>(dst + kQ4KScales);
    int16_t* mn = reinterpret_cast<int16_t*>(dst + kQ4KMins);
    float* d = reinterpret_cast<float*>(dst + kQ4KD);
    for (int r = 0; r < 16; ++r) {
      const uint8_t* xr = x + size_t(r) * row_bytes;
      uint32_t u[4];
      const uint8_t* sm = k_scales_mins(xr + 4, u);  // 0-7 the scales, 8-15 the mins
      for (int j = 0; j < 8; ++j) {
        sc[16 * j + r] = sm[j];
        mn[32 * j + 2 * r] = mn[32 * j + 2 * r + 1] = int16_t(sm[8 + j]);
      }
      d[r] = half_at(xr);
      d[16 + r] = half_at(xr + 2);
    }
  }
}

// The integer sums of one superblock for NT tokens, shared by the K-quant tiles: sumi = sum over the
// kSubs sub-blocks (64 / kSubs dwords each) of scale x (quants . activations), and pairs = sum over the 8
// int16 pair vectors at blk + pairs_at of (m, m') x (bsum 2p, bsum 2p + 1). Exact integers.
template <int NT, int kSubs>
HEARTH_WIDE inline void k_quant_sums(const uint8_t* blk, size_t scales_at, size_t pairs_at, const int32_t* ad,
                                     __m512i sumi[NT], __m512i pairs[NT]) {
  constexpr int kDwords = 64 / kSubs;
  __m512i s[NT];
#pragma GCC unroll 8
  for (int t = 0; t < NT; ++t) sumi[t] = _mm512_setzero_si512();
  for (int j = 0; j < kSubs; ++j) {
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) s[t] = _mm512_setzero_si512();
#pragma GCC unroll 8
    for (int k = 0; k < kDwords; ++k) {
      const __m512i w = _mm512_loadu_si512(blk + 64 * (kDwords * j + k));
#pragma GCC unroll 8
      for (int t = 0; t < NT; ++t)
        s[t] = _mm512_dpbusd_epi32(s[t], w, _mm512_set1_epi32(ad[8 * (kDwords * j + k) + t]));
    }
    const __m512i sc = _mm512_loadu_si512(blk + scales_at + 64 * j);
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) sumi[t] = _mm512_add_epi32(sumi[t], _mm512_mullo_epi32(s[t], sc));
  }
#pragma GCC unroll 8
  for (int t = 0; t < NT; ++t) pairs[t] = _mm512_setzero_si512();
#pragma GCC unroll 8
  for (int p = 0; p < 8; ++p) {
    const __m512i m = _mm512_loadu_si512(blk + pairs_at + 64 * p);
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) pairs[t] = _mm512_dpwssd_epi32(pairs[t], m, _mm512_set1_epi32(ad[512 + 8 * p + t]));
  }
}

// Q6_K x Q8_K with AVX-512, lane = row, in the reference order (quant.cpp dot_q6_k): quants as unsigned
// 0..63, sumi = sum of scale j x (sub-block j dot) - 32 x sum of scale j x bsum j (exact integers), then
// sum += d_a * d * float(sumi) per lane. Unpacked layout of sixteen rows per superblock: 64 quant vectors
// (vector i: lane r = quants 4i..4i+3 of row r), 16 scale vectors (int32), 8 scale-pair vectors (int16
// pairs of scales 2p, 2p + 1), then d (float).
constexpr size_t kQ6KScales = 64 * 64, kQ6KPairs = kQ6KScales + 16 * 64, kQ6KD = kQ6KPairs + 8 * 64;
constexpr size_t kQ6KWide = kQ6KD + 64;

HEARTH_WIDE inline void unpack_q6_k(const uint8_t* w, size_t row_bytes, int64_t nsb, uint8_t* dst) {
  alignas(64) uint8_t q[16][256];  // the sixteen rows' quants of one superblock in element order
  for (int64_t sb = 0; sb < nsb; ++sb, dst += kQ6KWide) {
    int32_t* sc = reinterpret_cast<int32_t*>(dst + kQ6KScales);
    int16_t* pairs = reinterpret_cast<int16_t*>(dst + kQ6KPairs);
    float* d = reinterpret_cast<float*>(dst + kQ6KD);
    for (int r = 0; r < 16; ++r) {
      const uint8_t* x = w + size_t(r) * row_bytes + size_t(sb) * 210;
      q6_k_row_quants(x, q[r]);
      const int8_t* s8 = reinterpret_cast<const int8_t*>(x + 192);
      for (int j = 0; j < 16; ++j) sc[16 * j + r] = s8[j];
      for (int p = 0; p < 8; ++p) {
        pairs[32 * p + 2 * r] = s8[2 * p];
        pairs[32 * p + 2 * r + 1] = s8[2 * p + 1];
      }
      d[r] = half_at(x + 208);
    }
    for (int c = 0; c < 16; ++c) {  // 16-byte chunk c = dwords 4c..4c+3
      __m512i v[4];
      transpose16x4(q[0] + 16 * c, 256, v);
      for (int k = 0; k < 4; ++k) _mm512_storeu_si512(dst + 64 * (4 * c + k), v[k]);
    }
  }
}

// The K-quant kernels' shape, for the tile and driver below: bytes per unpacked superblock of 16 rows, the
// unpack, where k_quant_sums finds the scales and pairs, and the reference's float term of one superblock
// (yd = the token's d_a) from its integer sums.
template <bool kQ5>  // Q4_K, or Q5_K (the same arithmetic on quants with a fifth bit)
struct Q4KOrQ5KWide {
  static constexpr size_t kBlock = kQ4KWide, kScalesAt = kQ4KScales, kPairsAt = kQ4KMins;
  static constexpr int kSubs = 8;
  HEARTH_WIDE static void unpack(const uint8_t* w, size_t rb, int64_t nsb, uint8_t* dst) {
    unpack_q4_or_q5_k<kQ5>(w, rb, nsb, dst);
  }
  // d_a * d * sumi - d_a * dmin * summ
  HEARTH_WIDE static __m512 term(const uint8_t* blk, __m512 yd, __m512i sumi, __m512i summ) {
    const __m512 dw = _mm512_loadu_ps(blk + kQ4KD), dmin = _mm512_loadu_ps(blk + kQ4KD + 64);
    const __m512 x = _mm512_mul_ps(_mm512_mul_ps(yd, dw), _mm512_cvtepi32_ps(sumi));
    return _mm512_sub_ps(x, _mm512_mul_ps(_mm512_mul_ps(yd, dmin), _mm512_cvtepi32_ps(summ)));
  }
};
struct Q6KWide {
  static constexpr size_t kBlock = kQ6KWide, kScalesAt = kQ6KScales, kPairsAt = kQ6KPairs;
  static constexpr int kSubs = 16;
  HEARTH_WIDE static void unpack(const uint8_t* w, size_t rb, int64_t nsb, uint8_t* dst) { unpack_q6_k(w, rb, nsb, dst); }
  // d_a * d * (sumi - 32 * corr): the quants were q + 32
  HEARTH_WIDE static __m512 term(const uint8_t* blk, __m512 yd, __m512i sumi, __m512i corr) {
    const __m512i si = _mm512_sub_epi32(sumi, _mm512_slli_epi32(corr, 5));
    return _mm512_mul_ps(_mm512_mul_ps(yd, _mm512_loadu_ps(blk + kQ6KD)), _mm512_cvtepi32_ps(si));
  }
};

// Sixteen rows x NT tokens of a K-quant matrix over every superblock; acc += term, as the reference's sum +=.
template <class K, int NT>
HEARTH_WIDE inline void k_quant_tile(const uint8_t* wk, const uint8_t* act, int64_t nsb, const Args& a, int64_t t0,
                                     int64_t g) {
  __m512 acc[NT];
#pragma GCC unroll 8
  for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t sb = 0; sb < nsb; ++sb) {
    const uint8_t* blk = wk + size_t(sb) * K::kBlock;
    const int32_t* ad = reinterpret_cast<const int32_t*>(act + size_t(sb) * kQ8KTileBlock);
    __m512i sumi[NT], pairs[NT];
    k_quant_sums<NT, K::kSubs>(blk, K::kScalesAt, K::kPairsAt, ad, sumi, pairs);
    const float* da = reinterpret_cast<const float*>(ad + 576);
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) acc[t] = _mm512_add_ps(acc[t], K::term(blk, _mm512_set1_ps(da[t]), sumi[t], pairs[t]));
  }
#pragma GCC unroll 8
  for (int t = 0; t < NT; ++t) _mm512_storeu_ps(a.y + (t0 + t) * a.y_stride + g, acc[t]);
}

template <class K>
struct KQuantTile {
  template <int NT>
  HEARTH_WIDE static void run(const uint8_t* w, const uint8_t* act, int64_t nsb, const Args& a, int64_t t0, int64_t g) {
    k_quant_tile<K, NT>(w, act, nsb, a, t0, g);
  }
};

// Rows in passes of 32 (two unpacked groups of 16 in scratch), every token tile over each group.
template <class K>
HEARTH_WIDE void k_quant_wide(const Args& a) {
  const int64_t nsb = a.n_in / 256;
  const size_t group_bytes = size_t(nsb) * K::kBlock;
  for (int64_t g = 0; g < a.n_rows; g += 32) {
    const int64_t ng = std::min<int64_t>(2, (a.n_rows - g) / 16);
    for (int64_t j = 0; j < ng; ++j)
      K::unpack(a.w + size_t(g + 16 * j) * a.w_row_bytes, a.w_row_bytes, nsb, a.scratch + j * group_bytes);
    run_token_tiles<KQuantTile<K>>(a, nsb, kQ8KTileBlock, ng, group_bytes, g);
  }
}
HEARTH_WIDE void Q4_KWide(const Args& a) { k_quant_wide<Q4KOrQ5KWide<false>>(a); }
HEARTH_WIDE void Q5_KWide(const Args& a) { k_quant_wide<Q4KOrQ5KWide<true>>(a); }
HEARTH_WIDE void Q6_KWide(const Args& a) { k_quant_wide<Q6KWide>(a); }
#endif

// Q4_0 rows as stored, in the repacked order (MoE experts, or packing turned off): AVX-512 targets take
// sixteen rows at a time through the wide tile; the rest unpack each group of eight rows into scratch.
void Q4_0Seq(const Args& a) {
  if (a.n_tok < 4) return Q4_0SeqFew(a);
  const int64_t nb = a.n_in / 32;
  int64_t g0 = 0;
#ifdef HEARTH_GEMM_VNNI
  if (a.act_tiles && a.scratch)  // AVX-512: sixteen rows at a time, unpacked straight from the rows
    while (g0 + 16 <= a.n_rows) {
      const int64_t pairs = std::min<int64_t>(kGroupsPerPass / 2, (a.n_rows - g0) / 16);
      wide_pass(a.w + size_t(g0) * a.w_row_bytes, false, nb, pairs, a, g0);
      g0 += 16 * pairs;
    }
#endif
  uint8_t* pk = a.scratch;
  const size_t group_bytes = 8 * a.w_row_bytes;
  for (int64_t g = g0; g < a.n_rows; g += 8) {
    // The next group's rows are one contiguous region: prefetch it a slice per block, so the reads below
    // (which hop between eight rows) find it in cache.
    const uint8_t* next = a.w + size_t(g + 8) * a.w_row_bytes;
    const bool has_next = g + 8 < a.n_rows;
    GroupPrefetch ahead(group_bytes, nb);
    for (int64_t b = 0; b < nb; ++b) {
      if (has_next) ahead.step(next);
      __m256i rows[8], w[8];
      alignas(32) float dw[8];
      for (int r = 0; r < 8; ++r) {
        const uint8_t* blk = a.w + size_t(g + r) * a.w_row_bytes + size_t(b) * 18;
        dw[r] = half_at(blk);
        rows[r] = q4_nibbles(blk + 2);
      }
      transpose8(rows, w);
      uint8_t* dst = pk + size_t(b) * kPackedBlock;
      for (int k = 0; k < 8; ++k) _mm256_store_si256(reinterpret_cast<__m256i*>(dst + 32 * k), w[k]);
      std::memcpy(dst + 256, dw, 32);
    }
    int64_t t0 = 0;
    for (; t0 + 4 <= a.n_tok; t0 += 4) q4_0_seq_tile<4>(pk, nb, a, t0, g);
    for (; t0 < a.n_tok; ++t0) q4_0_seq_tile<1>(pk, nb, a, t0, g);
  }
}

void Q4_0Packed(const Args& a) {
  const int64_t nb = a.n_in / 32;
  const size_t ahead = q4_0_prefetch_bytes();
  for (int64_t g = 0; g < a.n_rows; g += 8) {
    const uint8_t* grp = a.w + size_t(g / 8) * size_t(nb) * kQ4PackedBlock;
#ifdef HEARTH_GEMM_VNNI
    if (a.n_tok >= 4 && a.scratch && a.act_tiles && a.n_rows - g >= 16) {
      const int64_t pairs = std::min<int64_t>(kGroupsPerPass / 2, (a.n_rows - g) / 16);
      wide_pass(grp, true, nb, pairs, a, g);
      g += 16 * pairs - 8;  // the loop adds the last 8
      continue;
    }
#endif
    if (a.n_tok >= 4 && a.scratch) {
      // Prefill: unpack up to kGroupsPerPass groups into scratch (the layout of Q4_0Seq), then run every
      // token tile over all of them, so each tile's activations are loaded once per pass, not per group.
      const int64_t ng = std::min<int64_t>(kGroupsPerPass, (a.n_rows - g) / 8);
      const __m256i m = _mm256_set1_epi8(0x0F);
      for (int64_t j = 0; j < ng; ++j) {
        const uint8_t* gp = grp + size_t(j) * size_t(nb) * kQ4PackedBlock;
        for (int64_t b = 0; b < nb; ++b) {
          const uint8_t* blk = gp + size_t(b) * kQ4PackedBlock;
          uint8_t* dst = a.scratch + (size_t(j) * size_t(nb) + size_t(b)) * kPackedBlock;
          for (int k = 0; k < 4; ++k) {
            const __m256i p = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16 + 32 * k));
            _mm256_store_si256(reinterpret_cast<__m256i*>(dst + 32 * k), _mm256_and_si256(p, m));
            _mm256_store_si256(reinterpret_cast<__m256i*>(dst + 32 * (k + 4)),
                               _mm256_and_si256(_mm256_srli_epi16(p, 4), m));
          }
          _mm256_store_ps(reinterpret_cast<float*>(dst + 256),
                          _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk))));
        }
      }
      int64_t t0 = 0;
      for (; t0 + 4 <= a.n_tok; t0 += 4)
        for (int64_t j = 0; j < ng; ++j)
          q4_0_seq_tile<4>(a.scratch + size_t(j) * size_t(nb) * kPackedBlock, nb, a, t0, g + 8 * j);
      for (; t0 < a.n_tok; ++t0)
        for (int64_t j = 0; j < ng; ++j)
          q4_0_seq_tile<1>(a.scratch + size_t(j) * size_t(nb) * kPackedBlock, nb, a, t0, g + 8 * j);
      g += 8 * (ng - 1);  // the loop adds the last 8
      continue;
    }
    int64_t t0 = 0;
    for (; t0 + 4 <= a.n_tok; t0 += 4) packed_tile<4>(grp, nb, a, t0, g, ahead);
    for (; t0 < a.n_tok; ++t0) packed_tile<1>(grp, nb, a, t0, g, ahead);
  }
}
#endif  // x86 AVX2+

Kernels GetKernels() {
  Kernels k;
  k.target = hwy::TargetName(HWY_TARGET);
#ifdef HEARTH_GEMM_X86
  k.q4_0_seq = Q4_0Seq;
  k.q8_0_seq = Q8_0Seq;
  k.q8_0_lanes = Q8_0Lanes;
  k.q4_0_lanes = Q4_0Lanes;
  k.q4_0_packed = Q4_0Packed;
  // On Intel, rows as stored (each call's rows read as eight or sixteen sequential runs) stream faster than the
  // packed layouts (one stream per group of rows). Sapphire-Rapids-class Xeon, 1 / 2 threads, as stored vs
  // packed: SlicesQ4_0 16.0 / 32.0-34.3 vs 14.0-15.3 / 29.8-30.4 GB/s, SlicesQ8_0 15.9-16.6 / 34.4-35.2 vs
  // 14.9-15.3 / 29.4-30.3; E2B Q4_0 tg64 11.8-12.1 / 23.7-24.7 vs 10.4-11.4 / 21.6-22.5 tok/s (prompts level,
  // with and without AMX), E2B Q8_0 6.5 / 13.1-13.2 vs 6.0 / 11.3-11.7, 26B-A4B Q4_0 tg32 6.7-6.8 / 13.1 vs
  // 6.3 / 12.3-12.5; and no copy at load (1.6-6.2 s for E2B) into anonymous memory, which unlike the page cache
  // cannot be dropped under pressure (a tied LM head was even held twice). AMD (Zen 3, Zen 5) measured packed Q4_0
  // fastest before the run traversals existed; it keeps packing until measured again.
  k.packs_by_default = !intel_cpu();
  k.q4_k_rows = Q4_KRows;
  k.q5_k_rows = Q5_KRows;
  k.q6_k_rows = Q6_KRows;
#ifndef HEARTH_GEMM_VNNI
  k.q4_k_wide = Q4_K8;
  k.q5_k_wide = Q5_K8;
  k.q6_k_wide = Q6_K8;
#endif
#endif
#ifdef HEARTH_GEMM_VNNI
  k.wide_tiles = true;
  k.q8_0_wide = Q8_0Wide;
  k.q8_0_seq = Q8_0SeqWide;
  k.q8_0_packed = Q8_0Packed;
  if (amx::available()) {
    k.q4_0_seq_amx = amx::q4_0_seq;
    k.q4_0_packed_amx = amx::q4_0_packed;
    k.q8_0_seq_amx = amx::q8_0_seq;
    k.q8_0_packed_amx = amx::q8_0_packed;
  }
  k.q4_k_wide = Q4_KWide;
  k.q5_k_wide = Q5_KWide;
  k.q6_k_wide = Q6_KWide;
#endif
  return k;
}

}  // namespace hearth::kernels::gemm::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "kernels/simd.h"

namespace hearth::kernels::gemm {

HWY_EXPORT(GetKernels);

void pack_q4_0(const uint8_t* w, size_t row_bytes, int64_t n_rows, int64_t n_in, uint8_t* dst) {
  const int64_t nb = n_in / 32;
  for (int64_t g = 0; g < n_rows / 8; ++g)
    for (int64_t b = 0; b < nb; ++b, dst += kQ4_0PackedBlockBytes)
      for (int r = 0; r < 8; ++r) {
        const uint8_t* blk = w + size_t(g * 8 + r) * row_bytes + size_t(b) * 18;
        std::memcpy(dst + 2 * r, blk, 2);
        for (int k = 0; k < 4; ++k) std::memcpy(dst + 16 + 32 * k + 4 * r, blk + 2 + 4 * k, 4);
      }
}

void pack_q8_0(const uint8_t* w, size_t row_bytes, int64_t n_rows, int64_t n_in, uint8_t* dst) {
  const int64_t nb = n_in / 32;
  for (int64_t g = 0; g < n_rows / 16; ++g, dst += size_t(nb) * kQ8_0PackedBlockBytes) {
    uint8_t* scales = dst + size_t(nb) * 512;
    for (int64_t b = 0; b < nb; ++b)
      for (int r = 0; r < 16; ++r) {
        const uint8_t* blk = w + size_t(g * 16 + r) * row_bytes + size_t(b) * 34;
        std::memcpy(scales + 32 * b + 2 * r, blk, 2);
        for (int k = 0; k < 8; ++k)
          for (int i = 0; i < 4; ++i) dst[512 * b + 64 * k + 4 * r + i] = uint8_t(blk[2 + 4 * k + i] ^ 0x80);
      }
  }
}

size_t scratch_bytes(int64_t n_in) {  // kGroupsPerPass unpacked groups
  return 8 * size_t(n_in / 32) * (8 * 32 + 8 * 4) + 64;
}

void pack_act_tiles(TileLayout l, const uint8_t* acts, size_t row_bytes, const int32_t* sums, const float* d,
                    int64_t n_tok, int64_t n_in, int64_t tile_begin, int64_t tile_end, uint8_t* dst) {
  const int64_t nb = tile_blocks(l, n_in);
  const size_t block_bytes = tile_block_bytes(l);
  for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
    uint8_t* out = dst + size_t(tile) * size_t(nb) * block_bytes;
    const int64_t t0 = tile * kActTileTokens, nt = std::min<int64_t>(kActTileTokens, n_tok - t0);
    for (int64_t b = 0; b < nb; ++b, out += block_bytes) {
      if (l == TileLayout::q8_k) {
        int32_t* qd = reinterpret_cast<int32_t*>(out);
        for (int64_t t = 0; t < nt; ++t) {
          const uint8_t* blk = acts + size_t(t0 + t) * row_bytes + size_t(b) * 292;  // BlockQ8_K
          for (int i = 0; i < 64; ++i) std::memcpy(&qd[8 * i + t], blk + 4 + 4 * i, 4);
          for (int j = 0; j < 8; ++j) {
            int16_t bs[2];
            std::memcpy(bs, blk + 260 + 4 * j, 4);
            qd[512 + 8 * j + t] = int32_t(uint32_t(uint16_t(bs[0])) | (uint32_t(uint16_t(bs[1])) << 16));
          }
          std::memcpy(&qd[576 + t], blk, 4);
        }
        continue;
      }
      if (l == TileLayout::q8_0) {
        for (int64_t t = 0; t < kActTileTokens; ++t) {
          uint8_t* qu = out + 32 * t;  // 64p + 32h with t = 2p + h
          float scale = 0;
          if (t < nt) {
            const uint8_t* q = acts + size_t(t0 + t) * row_bytes + size_t(b) * 34 + 2;
            for (int j = 0; j < 32; ++j) qu[j] = uint8_t(q[j] ^ 0x80);  // int8 + 128
            scale = d[(t0 + t) * nb + b];
          } else {
            std::memset(qu, 0x80, 32);
          }
          std::memcpy(out + 256 + 4 * t, &scale, 4);
        }
        continue;
      }
      int32_t* qd = reinterpret_cast<int32_t*>(out);
      for (int64_t t = 0; t < nt; ++t) {
        const uint8_t* q = acts + size_t(t0 + t) * row_bytes + size_t(b) * 34 + 2;
        for (int k = 0; k < 8; ++k) std::memcpy(&qd[8 * k + t], q + 4 * k, 4);
        qd[64 + t] = -8 * sums[(t0 + t) * nb + b];
        std::memcpy(&qd[72 + t], &d[(t0 + t) * nb + b], 4);
      }
    }
  }
}

void for_each_target(const std::function<void(const Kernels&)>& fn) {
  simd::run_on_each_target([&] { fn(HWY_DYNAMIC_DISPATCH(GetKernels)()); });
}

const Kernels& best() {
  static const Kernels fast = HWY_DYNAMIC_DISPATCH(GetKernels)();
  static const Kernels none{};
  return simd::enabled() ? fast : none;
}

}  // namespace hearth::kernels::gemm
#endif  // HWY_ONCE
