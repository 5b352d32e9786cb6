// AMX int8 prompt kernels (gemm_amx.h). The tiles are programmed with inline assembly: GCC 12's tile
// intrinsics are asm statements without memory clobbers, which would let the compiler move our stores of
// the unpacked weights past the tile loads that read them.
#include "kernels/gemm_amx.h"

// GCC 12 reports the AVX-512 intrinsics' internal _mm512_undefined_* values as maybe-uninitialized once
// they are inlined (a known false positive; Highway silences it the same way in the other kernel files).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) && defined(__linux__)
#define HEARTH_AMX_BUILD 1
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kernels/transpose_avx512.h"
#endif

namespace hearth::kernels::gemm::amx {

#ifdef HEARTH_AMX_BUILD
namespace {

bool detect() {
  if (const char* e = std::getenv("HEARTH_AMX"); e && e[0] == '0') return false;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  if (!(d & (1u << 24)) || !(d & (1u << 25))) return false;  // AMX-TILE, AMX-INT8
  if (!__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512vl") ||
      !__builtin_cpu_supports("avx512dq"))
    return false;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return false;  // OSXSAVE
  uint32_t lo = 0, hi = 0;
  asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  if ((lo & (3u << 17)) != (3u << 17)) return false;  // XTILECFG and XTILEDATA state enabled by the OS
  // Linux (5.16+) hands out the 8 KiB tile data state only to processes that ask for it.
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

#define HEARTH_AMX_FN __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,f16c,fma")))
#define TILE_LOAD(t, p, stride) \
  asm volatile("tileloadd (%0,%1,1), %%tmm" #t ::"r"(p), "r"(int64_t(stride)) : "memory")
#define TILE_STORE(t, p, stride) \
  asm volatile("tilestored %%tmm" #t ", (%0,%1,1)" ::"r"(p), "r"(int64_t(stride)) : "memory")
#define TILE_ZERO(t) asm volatile("tilezero %%tmm" #t ::)
#define TILE_DPBSSD(c, a, b) asm volatile("tdpbssd %%tmm" #b ", %%tmm" #a ", %%tmm" #c ::)  // c += a (s8) x b (s8)

// Palette 1. Two sets of three tiles (A acts, B weights, C sums) so consecutive blocks overlap:
// tmm0/tmm3 = A: n_tok rows of 32 signed quants; tmm1/tmm4 = B: 8 rows of 64 bytes (16 weight rows x 4
// quants: the VNNI layout); tmm2/tmm5 = C: n_tok rows of 16 int32.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};
void configure(int n_tok) {
  TileConfig c;
  for (int set = 0; set < 2; ++set) {
    c.rows[3 * set] = uint8_t(n_tok), c.colsb[3 * set] = 32;
    c.rows[3 * set + 1] = 8, c.colsb[3 * set + 1] = 64;
    c.rows[3 * set + 2] = uint8_t(n_tok), c.colsb[3 * set + 2] = 64;
  }
  asm volatile("ldtilecfg %0" ::"m"(c));
}
void release() { asm volatile("tilerelease" ::); }

// Unpacked layout of sixteen rows (the B tiles): per block, 8 x 64 bytes where bytes 4r..4r+3 of vector k
// are quants 4k..4k+3 of row r as signed bytes (Q4_0: nibble - 8), then the sixteen scales as float.
constexpr size_t kBlock = 8 * 64 + 16 * 4;
constexpr int64_t kRowsPerPass = 64;  // 4 x kBlock x blocks: what gemm::scratch_bytes holds

HEARTH_AMX_FN inline void store_signed(uint8_t* dst, __m512i q) {
  const __m512i m = _mm512_set1_epi8(0x0F), eight = _mm512_set1_epi8(8);
  _mm512_store_si512(dst, _mm512_sub_epi8(_mm512_and_si512(q, m), eight));
  _mm512_store_si512(dst + 256, _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(q, 4), m), eight));
}

HEARTH_AMX_FN void unpack_rows16(const uint8_t* w, size_t row_bytes, int64_t nb, uint8_t* dst) {
  for (int64_t b = 0; b < nb; ++b, dst += kBlock) {
    const uint8_t* x = w + size_t(b) * 18;
    __m512i v[4];
    x86::transpose16x4(x + 2, row_bytes, v);
    for (int k = 0; k < 4; ++k) store_signed(dst + 64 * k, v[k]);  // low nibbles: quants 4k.., high: 16 + 4k..
    alignas(32) uint16_t d16[16];
    for (int r = 0; r < 16; ++r) std::memcpy(&d16[r], x + size_t(r) * row_bytes, 2);
    _mm512_store_ps(dst + 512, _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(d16))));
  }
}

HEARTH_AMX_FN void unpack_packed_pair(const uint8_t* g0, const uint8_t* g1, int64_t nb, uint8_t* dst) {
  for (int64_t b = 0; b < nb; ++b, dst += kBlock) {
    const uint8_t* b0 = g0 + size_t(b) * kQ4_0PackedBlockBytes;
    const uint8_t* b1 = g1 + size_t(b) * kQ4_0PackedBlockBytes;
    for (int k = 0; k < 4; ++k)
      store_signed(dst + 64 * k, _mm512_inserti64x4(_mm512_zextsi256_si512(_mm256_loadu_si256(
                                                         reinterpret_cast<const __m256i*>(b0 + 16 + 32 * k))),
                                                     _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b1 + 16 + 32 * k)),
                                                     1));
    const __m512 d = _mm512_insertf32x8(
        _mm512_zextps256_ps512(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b0)))),
        _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b1))), 1);
    _mm512_store_ps(dst + 512, d);
  }
}

HEARTH_AMX_FN void unpack_q8_0_rows16(const uint8_t* w, size_t row_bytes, int64_t nb, uint8_t* dst) {
  for (int64_t b = 0; b < nb; ++b, dst += kBlock) {
    const uint8_t* x = w + size_t(b) * 34;
    __m512i v[4];
    for (int half = 0; half < 2; ++half) {  // quants 16 half + 4k .. +3 to vector 4 half + k
      x86::transpose16x4(x + 2 + 16 * half, row_bytes, v);
      for (int k = 0; k < 4; ++k) _mm512_store_si512(dst + 64 * (4 * half + k), v[k]);
    }
    alignas(32) uint16_t d16[16];
    for (int r = 0; r < 16; ++r) std::memcpy(&d16[r], x + size_t(r) * row_bytes, 2);
    _mm512_store_ps(dst + 512, _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(d16))));
  }
}

// Packed Q8_0 (gemm.h: quants plus 128) back to the unpacked layout above: signed quants, so the tile
// multiply needs no correction per token, and float scales. Once per pass, then met by every tile of tokens.
HEARTH_AMX_FN void unpack_q8_0_packed16(const uint8_t* src, int64_t nb, uint8_t* dst) {
  const __m512i bias = _mm512_set1_epi8(char(0x80));
  const uint8_t* scales = src + size_t(nb) * 512;
  for (int64_t b = 0; b < nb; ++b, dst += kBlock) {
    const uint8_t* q = src + size_t(b) * 512;
    for (int k = 0; k < 8; ++k)
      _mm512_store_si512(dst + 64 * k, _mm512_xor_si512(_mm512_loadu_si512(q + 64 * k), bias));
    _mm512_store_ps(dst + 512, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales + 32 * b))));
  }
}

// acc[t] (lane r = weight row r) += float(sum of block b) * (dw * da) for each token t: the reference's
// per-block step, on the sums the tile multiply left in c (row t = token t); w = the unpacked group.
template <bool kFull>
HEARTH_AMX_FN inline void add_block(__m512 acc[16], const int32_t* c, const uint8_t* w, const Args& a, int64_t nb,
                                    int64_t t0, int64_t b, int nt) {
  const __m512 dw = _mm512_load_ps(w + size_t(b) * kBlock + 512);
  const float* act_d = a.act_d + t0 * nb + b;
#pragma GCC unroll 16
  for (int t = 0; t < 16; ++t)
    if (kFull || t < nt) {
      const __m512 s = _mm512_cvtepi32_ps(_mm512_load_si512(c + 16 * t));
      acc[t] = _mm512_fmadd_ps(s, _mm512_mul_ps(dw, _mm512_set1_ps(act_d[t * nb])), acc[t]);
    }
}

// Sixteen unpacked rows (w) x nt tokens from t0 over every block. Two blocks per step on the two tile sets;
// a step's sums are added one step later, so the vector loads of a tile store's buffer never wait for a store
// still in flight (they cannot forward from it, and they would hold up the next step's tile work).
template <bool kFull>
HEARTH_AMX_FN void tile16(const uint8_t* w, int64_t nb, const Args& a, int64_t t0, int nt, int64_t row0) {
  alignas(64) int32_t sums[2][2][256];  // [step parity][tile set]
  __m512 acc[16];
#pragma GCC unroll 16
  for (int t = 0; t < 16; ++t) acc[t] = _mm512_setzero_ps();
  const uint8_t* q = a.acts + size_t(t0) * a.act_row_bytes + 2;  // block b's quants at q + 34 b
  const int64_t stride = int64_t(a.act_row_bytes);
  const int64_t steps = (nb + 1) / 2;
  for (int64_t s = 0; s <= steps; ++s) {
    const int64_t b = 2 * s;
    int32_t* c = sums[s & 1][0];
    if (s < steps) {
      TILE_LOAD(0, q + 34 * b, stride);
      TILE_LOAD(1, w + size_t(b) * kBlock, 64);
      TILE_ZERO(2);
      TILE_DPBSSD(2, 0, 1);
      TILE_STORE(2, c, 64);
      if (b + 1 < nb) {
        TILE_LOAD(3, q + 34 * (b + 1), stride);
        TILE_LOAD(4, w + size_t(b + 1) * kBlock, 64);
        TILE_ZERO(5);
        TILE_DPBSSD(5, 3, 4);
        TILE_STORE(5, c + 256, 64);
      }
    }
    if (s > 0) {  // the previous step's two blocks
      const int64_t pb = b - 2;
      const int32_t* pc = sums[(s - 1) & 1][0];
      add_block<kFull>(acc, pc, w, a, nb, t0, pb, nt);
      if (pb + 1 < nb) add_block<kFull>(acc, pc + 256, w, a, nb, t0, pb + 1, nt);
    }
  }
#pragma GCC unroll 16
  for (int t = 0; t < 16; ++t)
    if (kFull || t < nt) _mm512_storeu_ps(a.y + (t0 + t) * a.y_stride + row0, acc[t]);
}

// Rows in passes of kRowsPerPass (unpacked once, then met by every tile of 16 tokens), then the tokens
// left over after the last whole tile on a tile configuration of their own.
enum class Weights { q4_0_rows, q4_0_packed, q8_0_rows, q8_0_packed };

template <Weights kW>
HEARTH_AMX_FN void prompt(const Args& a) {
  const int64_t nb = a.n_in / 32, full = a.n_tok / 16 * 16;
  const int rest = int(a.n_tok - full);
  auto group = [&](int64_t j) { return a.scratch + size_t(j) * size_t(nb) * kBlock; };  // j-th unpacked group
  for (int64_t g = 0; g < a.n_rows; g += kRowsPerPass) {
    const int64_t groups = std::min(kRowsPerPass, a.n_rows - g) / 16;
    for (int64_t j = 0; j < groups; ++j) {
      uint8_t* dst = group(j);
      if constexpr (kW == Weights::q4_0_packed) {
        const size_t group_bytes = size_t(nb) * kQ4_0PackedBlockBytes;
        const uint8_t* src = a.w + size_t((g + 16 * j) / 8) * group_bytes;
        unpack_packed_pair(src, src + group_bytes, nb, dst);
      } else if constexpr (kW == Weights::q4_0_rows) {
        unpack_rows16(a.w + size_t(g + 16 * j) * a.w_row_bytes, a.w_row_bytes, nb, dst);
      } else if constexpr (kW == Weights::q8_0_rows) {
        unpack_q8_0_rows16(a.w + size_t(g + 16 * j) * a.w_row_bytes, a.w_row_bytes, nb, dst);
      } else {
        unpack_q8_0_packed16(a.w + size_t((g + 16 * j) / 16) * size_t(nb) * kQ8_0PackedBlockBytes, nb, dst);
      }
    }
    if (full) {
      configure(16);
      for (int64_t t0 = 0; t0 < full; t0 += 16)
        for (int64_t j = 0; j < groups; ++j)
          tile16<true>(group(j), nb, a, t0, 16, g + 16 * j);
    }
    if (rest) {
      configure(rest);
      for (int64_t j = 0; j < groups; ++j)
        tile16<false>(group(j), nb, a, full, rest, g + 16 * j);
    }
  }
  release();
}

}  // namespace

bool available() {
  static const bool ok = detect();
  return ok;
}
void q4_0_seq(const Args& a) { prompt<Weights::q4_0_rows>(a); }
void q4_0_packed(const Args& a) { prompt<Weights::q4_0_packed>(a); }
void q8_0_seq(const Args& a) { prompt<Weights::q8_0_rows>(a); }
void q8_0_packed(const Args& a) { prompt<Weights::q8_0_packed>(a); }

#else
bool available() { return false; }
void q4_0_seq(const Args&) { std::abort(); }
void q4_0_packed(const Args&) { std::abort(); }
void q8_0_seq(const Args&) { std::abort(); }
void q8_0_packed(const Args&) { std::abort(); }
#endif

}  // namespace hearth::kernels::gemm::amx
