// The blocked matrix kernels and the other SIMD helpers against the scalar references, bit for bit, on
// every dispatch target this CPU runs: random weights, several shapes and token counts (1 = decode,
// >= 4 = prefill tiles, and the leftovers), packed and unpacked layouts, and row counts that are not a
// multiple of the group size.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include "core/error.h"
#include "core/fp16.h"
#include "core/mapped_file.h"
#include "gguf/quantize.h"
#include "kernels/gemm.h"
#include "kernels/ggml_order.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "kernels/quant.h"
#include "kernels/simd.h"

namespace {

using hearth::gguf::GgmlType;
using namespace hearth::kernels;

std::vector<float> randn(size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> x(n);
  for (float& v : x) v = nd(rng);
  return x;
}

std::vector<uint8_t> weights(GgmlType t, int64_t rows, int64_t n_in, std::mt19937& rng) {
  const size_t rb = hearth::gguf::row_bytes(t, n_in);
  std::vector<uint8_t> w(rb * size_t(rows));
  for (int64_t r = 0; r < rows; ++r) {
    const auto x = randn(size_t(n_in), rng, 0.05f * float(1 + r % 7));
    hearth::gguf::encode_row(t, x.data(), n_in, w.data() + size_t(r) * rb);
  }
  return w;
}

// HEARTH_PACK for one scope, the previous value restored after: the packed-layout tests ask for packing
// (HEARTH_PACK=1) wherever a packed kernel exists, including machines whose default is not to pack.
class ScopedPackEnv {
 public:
  explicit ScopedPackEnv(const char* value) {
    if (const char* e = std::getenv("HEARTH_PACK")) saved_ = e, had_ = true;
    if (value) setenv("HEARTH_PACK", value, 1);
    else unsetenv("HEARTH_PACK");
  }
  ~ScopedPackEnv() {
    if (had_) setenv("HEARTH_PACK", saved_.c_str(), 1);
    else unsetenv("HEARTH_PACK");
  }
  ScopedPackEnv(const ScopedPackEnv&) = delete;
  ScopedPackEnv& operator=(const ScopedPackEnv&) = delete;

 private:
  std::string saved_;
  bool had_ = false;
};

// A Matrix over rows x n_in weights of type t at data, in llama.cpp's summation order for that shape on this
// machine (repacked_by_llama); tests of another order set `repacked` afterwards.
Matrix matrix_over(GgmlType t, const uint8_t* data, int64_t rows, int64_t n_in) {
  Matrix m;
  m.type = t;
  m.data = data;
  m.n_in = n_in;
  m.n_out = rows;
  m.row_bytes = hearth::gguf::row_bytes(t, n_in);
  m.repacked = repacked_by_llama(t, rows);
  return m;
}

struct Problem {
  int64_t rows, n_in, n_tok;
};

// Reference: every output is the scalar reference dot in the order the kernel promises.
std::vector<float> reference(VecDotFn dot, const std::vector<uint8_t>& w, size_t rb, const EncodedActs& acts,
                             int64_t rows) {
  std::vector<float> y(size_t(rows * acts.n_tok));
  for (int64_t t = 0; t < acts.n_tok; ++t)
    for (int64_t r = 0; r < rows; ++r) y[size_t(t * rows + r)] = dot(w.data() + size_t(r) * rb, acts.row(t), acts.n_in);
  return y;
}

// Runs a blocked kernel over `rows` rows of w and every token of acts; returns y[t * rows + r].
std::vector<float> run_kernel(gemm::Fn fn, const std::vector<uint8_t>& w, size_t rb, int64_t rows,
                              const EncodedActs& acts, uint8_t* scratch, const std::vector<uint8_t>* tiles) {
  std::vector<float> y(size_t(rows * acts.n_tok), -1.0f);
  gemm::Args a;
  a.w = w.data();
  a.w_row_bytes = rb;
  a.n_rows = rows;
  a.n_in = acts.n_in;
  a.acts = acts.data.data();
  a.act_row_bytes = acts.row_bytes;
  a.n_tok = acts.n_tok;
  a.act_sums = acts.block_sums.data();
  a.act_d = acts.block_d.data();
  a.act_tiles = tiles ? tiles->data() : nullptr;
  a.y = y.data();
  a.y_stride = rows;
  a.scratch = scratch;
  fn(a);
  return y;
}

TEST(Gemm, BlockedKernelsAreBitIdenticalToTheReferences) {
  std::mt19937 rng(7);
  ThreadPool pool(1);
  const Problem problems[] = {{8, 32, 1},   {16, 256, 1},  {16, 96, 2},   {24, 1536, 3}, {8, 256, 4},
                              {16, 512, 9}, {32, 64, 17},  {40, 128, 13}, {24, 256, 12}};
  int targets = 0;
  gemm::for_each_target([&](const gemm::Kernels& k) {
    if (!k.q4_0_seq) return;  // no fast path on this target
    ++targets;
    for (const Problem& p : problems) {
      const auto x = randn(size_t(p.n_in * p.n_tok), rng, 2.0f);
      EncodedActs acts;
      encode_acts(ActType::Q8_0, x.data(), p.n_tok, p.n_in, p.n_in, acts, pool);
      std::vector<uint8_t> scratch(gemm::scratch_bytes(p.n_in) + 32);
      auto pack_tiles = [&](gemm::TileLayout l) {
        std::vector<uint8_t> t(gemm::act_tiles_bytes(l, p.n_tok, p.n_in));
        gemm::pack_act_tiles(l, acts.data.data(), acts.row_bytes, acts.block_sums.data(), acts.block_d.data(),
                             p.n_tok, p.n_in, 0, (p.n_tok + gemm::kActTileTokens - 1) / gemm::kActTileTokens, t.data());
        return t;
      };
      const auto tiles_q4 = pack_tiles(gemm::TileLayout::q4_0), tiles_q8 = pack_tiles(gemm::TileLayout::q8_0);
      uint8_t* aligned = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(scratch.data()) + 31) & ~uintptr_t(31));
      auto run = [&](gemm::Fn fn, const std::vector<uint8_t>& w, size_t rb, bool with_scratch,
                     const std::vector<uint8_t>* tiles = nullptr) {
        return run_kernel(fn, w, rb, p.rows, acts, with_scratch ? aligned : nullptr, tiles);
      };
      const std::string what = std::string(k.target) + " rows " + std::to_string(p.rows) + " n_in " +
                               std::to_string(p.n_in) + " tokens " + std::to_string(p.n_tok);
      const auto w4 = weights(GgmlType::Q4_0, p.rows, p.n_in, rng);
      const auto w8 = weights(GgmlType::Q8_0, p.rows, p.n_in, rng);
      const size_t rb4 = hearth::gguf::row_bytes(GgmlType::Q4_0, p.n_in), rb8 = hearth::gguf::row_bytes(GgmlType::Q8_0, p.n_in);
      const auto* r4 = weight_kernels(GgmlType::Q4_0);
      const auto* r8 = weight_kernels(GgmlType::Q8_0);
      const auto want_seq = reference(r4->dot_repacked, w4, rb4, acts, p.rows);
      EXPECT_EQ(run(k.q4_0_seq, w4, rb4, true), want_seq) << "q4_0_seq " << what;
      EXPECT_EQ(run(k.q4_0_seq, w4, rb4, true, &tiles_q4), want_seq) << "q4_0_seq (tiles) " << what;
      EXPECT_EQ(run(k.q4_0_lanes, w4, rb4, true), reference(r4->dot, w4, rb4, acts, p.rows)) << "q4_0_lanes " << what;
      EXPECT_EQ(run(k.q8_0_lanes, w8, rb8, true), reference(r8->dot, w8, rb8, acts, p.rows)) << "q8_0_lanes " << what;
      EXPECT_EQ(run(k.q8_0_seq, w8, rb8, true), reference(r8->dot_repacked, w8, rb8, acts, p.rows)) << "q8_0_seq " << what;
      if (k.q8_0_packed && p.rows % 16 == 0) {
        std::vector<uint8_t> packed8(gemm::q8_0_packed_bytes(p.rows, p.n_in));
        gemm::pack_q8_0(w8.data(), rb8, p.rows, p.n_in, packed8.data());
        EXPECT_EQ(run(k.q8_0_packed, packed8, 0, false), reference(r8->dot_repacked, w8, rb8, acts, p.rows))
            << "q8_0_packed " << what;
      }
      std::vector<uint8_t> packed(gemm::q4_0_packed_bytes(p.rows, p.n_in));
      gemm::pack_q4_0(w4.data(), rb4, p.rows, p.n_in, packed.data());
      EXPECT_EQ(run(k.q4_0_packed, packed, 0, true), want_seq) << "q4_0_packed (prefill) " << what;
      EXPECT_EQ(run(k.q4_0_packed, packed, 0, true, &tiles_q4), want_seq) << "q4_0_packed (prefill, tiles) " << what;
      if (k.q8_0_wide && p.n_tok >= 4) {
        EXPECT_EQ(run(k.q8_0_wide, w8, rb8, true, &tiles_q8), reference(r8->dot, w8, rb8, acts, p.rows))
            << "q8_0_wide " << what;
      }
      EXPECT_EQ(run(k.q4_0_packed, packed, 0, false), want_seq) << "q4_0_packed (no scratch) " << what;
    }
  });
#if defined(__x86_64__)
  EXPECT_GT(targets, 0) << "no x86 target with the blocked kernels ran";
#endif
}

// The AMX prompt kernels give the block-order references' bits (Q4_0 plain and packed rows: dot_q4_0_seq;
// Q8_0: dot_q8_0_seq, the order of Q8_0 matrices on AMX machines): whole tiles of 16 tokens, a short last tile, fewer
// than 16 tokens, an odd number of blocks, and more rows than one pass (64).
TEST(Gemm, AmxKernelsAreBitIdenticalToTheReferences) {
  const gemm::Kernels& k = gemm::best();
  if (!k.q4_0_seq_amx) GTEST_SKIP() << "this CPU or OS has no AMX int8 tiles (or HEARTH_AMX=0)";
  std::mt19937 rng(13);
  ThreadPool pool(1);
  const Problem problems[] = {{16, 32, 16}, {32, 96, 17}, {80, 1536, 35}, {16, 64, 5}, {48, 256, 1}, {64, 224, 48}};
  for (const Problem& p : problems) {
    const auto x = randn(size_t(p.n_in * p.n_tok), rng, 2.0f);
    EncodedActs acts;
    encode_acts(ActType::Q8_0, x.data(), p.n_tok, p.n_in, p.n_in, acts, pool);
    std::vector<uint8_t> scratch(gemm::scratch_bytes(p.n_in) + 64);
    uint8_t* aligned = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) & ~uintptr_t(63));
    const auto w4 = weights(GgmlType::Q4_0, p.rows, p.n_in, rng);
    const size_t rb4 = hearth::gguf::row_bytes(GgmlType::Q4_0, p.n_in);
    const auto want = reference(weight_kernels(GgmlType::Q4_0)->dot_repacked, w4, rb4, acts, p.rows);
    std::vector<uint8_t> packed(gemm::q4_0_packed_bytes(p.rows, p.n_in));
    gemm::pack_q4_0(w4.data(), rb4, p.rows, p.n_in, packed.data());
    const std::string what =
        "rows " + std::to_string(p.rows) + " n_in " + std::to_string(p.n_in) + " tokens " + std::to_string(p.n_tok);
    EXPECT_EQ(run_kernel(k.q4_0_seq_amx, w4, rb4, p.rows, acts, aligned, nullptr), want) << "q4_0_seq_amx " << what;
    EXPECT_EQ(run_kernel(k.q4_0_packed_amx, packed, 0, p.rows, acts, aligned, nullptr), want)
        << "q4_0_packed_amx " << what;
    const auto w8 = weights(GgmlType::Q8_0, p.rows, p.n_in, rng);
    const size_t rb8 = hearth::gguf::row_bytes(GgmlType::Q8_0, p.n_in);
    const auto* r8 = weight_kernels(GgmlType::Q8_0);
    const auto want8 = reference(r8->dot_repacked, w8, rb8, acts, p.rows);
    EXPECT_EQ(run_kernel(k.q8_0_seq_amx, w8, rb8, p.rows, acts, aligned, nullptr), want8) << "q8_0_seq_amx " << what;
    std::vector<uint8_t> packed8(gemm::q8_0_packed_bytes(p.rows, p.n_in));
    gemm::pack_q8_0(w8.data(), rb8, p.rows, p.n_in, packed8.data());
    EXPECT_EQ(run_kernel(k.q8_0_packed_amx, packed8, 0, p.rows, acts, aligned, nullptr), want8)
        << "q8_0_packed_amx " << what;
    if (p.n_tok >= 2) {
      EXPECT_NE(want8, reference(r8->dot, w8, rb8, acts, p.rows)) << "the two Q8_0 orders " << what;
    }
  }
}

// kernels::packs_at_load (what the memory plan asks about a tied embedding table) says exactly which matrices
// PackedWeights copies, and a copy holds as many bytes as its source (the plan counts it at the source's size):
// with HEARTH_PACK unset (the machine's default), 0 (never) and 1 (wherever a packed kernel exists).
TEST(Gemm, PacksAtLoadSaysWhatPackedWeightsCopies) {
  std::mt19937 rng(5);
  const int64_t n_in = 256, rows = 64;
  for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q6_K, GgmlType::F16}) {
    // A packed kernel for this type, and the matrix in the summation order it computes (Q8_0: AMX machines).
    const gemm::Fn packed_kernel = t == GgmlType::Q4_0   ? gemm::best().q4_0_packed
                                   : t == GgmlType::Q8_0 ? gemm::best().q8_0_packed
                                                         : nullptr;
    const bool has_kernel = repacked_by_llama(t, rows) && packed_kernel != nullptr;
    for (const char* env : {static_cast<const char*>(nullptr), "0", "1"}) {
      const ScopedPackEnv pack_env(env);
      const std::string what = std::string(hearth::gguf::type_name(t)) + " HEARTH_PACK=" + (env ? env : "(unset)");
      std::vector<uint8_t> w(hearth::gguf::row_bytes(t, n_in) * size_t(rows));
      for (uint8_t& b : w) b = uint8_t(rng());  // packing copies bytes; their values do not matter here
      Matrix m = matrix_over(t, w.data(), rows, n_in);
      PackedWeights store;
      store.pack({&m}, {&m});
      const bool says = packs_at_load(t, rows);
      EXPECT_EQ(m.packed != nullptr, says) << what;
      EXPECT_EQ(store.bytes(), says ? m.row_bytes * size_t(rows) : 0u) << what;
      const bool want = has_kernel && (env ? env[0] == '1' : gemm::best().packs_by_default);
      EXPECT_EQ(says, want) << what;
    }
  }
}

// The rest of the line after `field` (e.g. "Rss:") in /proc/self/smaps for the mapping that holds `p`; empty
// when there is none.
std::string smaps_field(const void* p, const std::string& field) {
  std::ifstream f("/proc/self/smaps");
  std::string line;
  bool in = false;
  while (std::getline(f, line)) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx", &lo, &hi) == 2 && line.find(' ') != std::string::npos) {
      in = lo <= reinterpret_cast<uintptr_t>(p) && reinterpret_cast<uintptr_t>(p) < hi;
    } else if (in && line.rfind(field, 0) == 0) {
      return line.substr(field.size());
    }
  }
  return {};
}
// Resident KiB of the mapping that holds `p`, -1 when there is none.
long long mapping_rss_kib(const void* p) {
  const std::string rss = smaps_field(p, "Rss:");
  return rss.empty() ? -1 : std::atoll(rss.c_str());
}

// PackedWeights gives the file pages of what it copied back (they are no longer read), slice by slice, and
// keeps the pages of a matrix listed in keep_source (a tied embedding table still read by row lookups). Its
// copy lies on transparent huge pages where the kernel has them.
TEST(Gemm, PackingReleasesTheSourcePagesUnlessKept) {
  const int64_t n_in = 2048, rows = 8192;  // 9 MiB of Q4_0: three packing slices of about 4 MiB
  const ScopedPackEnv force("1");
  if (!packs_at_load(GgmlType::Q4_0, rows)) GTEST_SKIP() << "no packed Q4_0 kernel on this machine";
  const size_t rb = hearth::gguf::row_bytes(GgmlType::Q4_0, n_in), size = rb * size_t(rows);
  const std::string path = ::testing::TempDir() + "/hearth-pack-release-" + std::to_string(getpid()) + ".bin";
  {
    std::mt19937 rng(3);
    std::vector<uint8_t> bytes(size);
    for (uint8_t& b : bytes) b = uint8_t(rng());
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(size));
  }
  for (bool kept : {false, true}) {
    hearth::MappedFile file(path);
    Matrix m = matrix_over(GgmlType::Q4_0, file.data(), rows, n_in);
    unsigned sum = 0;
    for (size_t i = 0; i < size; i += 4096) sum += file.data()[i];  // fault every page in
    EXPECT_GE(mapping_rss_kib(file.data()), (long long)(size / 1024) - 8) << sum;
    PackedWeights store;
    store.pack({&m}, kept ? std::vector<const Matrix*>{&m} : std::vector<const Matrix*>{});
    ASSERT_NE(m.packed, nullptr);
    // The copy starts on a huge page and asks for transparent huge pages ("hg" in the mapping's VmFlags).
    EXPECT_EQ(reinterpret_cast<uintptr_t>(m.packed) % (size_t(2) << 20), 0u);
    if (std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled")) {
      EXPECT_NE(smaps_field(m.packed, "VmFlags:").find(" hg"), std::string::npos) << smaps_field(m.packed, "VmFlags:");
    }
    if (kept) {
      EXPECT_GE(mapping_rss_kib(file.data()), (long long)(size / 1024) - 8);
    } else {
      EXPECT_LE(mapping_rss_kib(file.data()), 8);  // at most the partial last page
    }
  }
  std::remove(path.c_str());
}

// Through matmul: packed weights (PackedWeights) and plain ones give the same bits, with a row count that
// leaves a tail of 5 rows outside the groups of 8, on one and two threads.
TEST(Gemm, MatmulWithPackedWeightsAndARowTail) {
  std::mt19937 rng(11);
  const int64_t n_in = 512, rows = 29;
  const auto w = weights(GgmlType::Q4_0, rows, n_in, rng);
  const ScopedPackEnv force("1");
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    for (int64_t n_tok : {1, 6, 21}) {  // 21: the AMX prompt kernels where the CPU has them
      const auto x = randn(size_t(n_in * n_tok), rng);
      // The repacked order needs a multiple of 8 rows in llama.cpp: use 24 of them.
      Matrix plain = matrix_over(GgmlType::Q4_0, w.data(), 24, n_in);
      plain.repacked = true;
      Matrix packed = plain;
      PackedWeights store;
      std::vector<uint8_t> copy = w;  // PackedWeights may release the source pages; give it its own copy
      packed.data = copy.data();
      store.pack({&packed}, {&packed});
      EXPECT_EQ(packed.packed != nullptr, gemm::best().q4_0_packed != nullptr);
      EncodedActs scratch;
      std::vector<float> y1(size_t(24 * n_tok)), y2(size_t(24 * n_tok)), y3(size_t(24 * n_tok));
      simd::set_enabled(false);
      matmul(plain, x.data(), n_tok, n_in, y1.data(), 24, pool, scratch);
      simd::set_enabled(true);
      matmul(plain, x.data(), n_tok, n_in, y2.data(), 24, pool, scratch);
      matmul(packed, x.data(), n_tok, n_in, y3.data(), 24, pool, scratch);
      EXPECT_EQ(y1, y2) << threads << " threads, " << n_tok << " tokens (blocked)";
      EXPECT_EQ(y1, y3) << threads << " threads, " << n_tok << " tokens (packed)";
      // Q8_0 with a tail of rows outside the groups.
      const auto w8 = weights(GgmlType::Q8_0, rows, n_in, rng);
      Matrix m8 = plain;
      m8.type = GgmlType::Q8_0;
      m8.data = w8.data();
      m8.n_out = rows;
      m8.row_bytes = hearth::gguf::row_bytes(GgmlType::Q8_0, n_in);
      m8.repacked = false;
      std::vector<float> z1(size_t(rows * n_tok)), z2(size_t(rows * n_tok));
      simd::set_enabled(false);
      matmul(m8, x.data(), n_tok, n_in, z1.data(), rows, pool, scratch);
      simd::set_enabled(true);
      matmul(m8, x.data(), n_tok, n_in, z2.data(), rows, pool, scratch);
      EXPECT_EQ(z1, z2) << "Q8_0 " << threads << " threads, " << n_tok << " tokens";
      // Q8_0 in the block order of AMX machines (repacked): its kernels (tiles where the CPU has them) and
      // the per-row tail against the reference.
      Matrix b8 = m8;
      b8.repacked = true;
      std::vector<float> o1(z1.size()), o2(z1.size());
      simd::set_enabled(false);
      matmul(b8, x.data(), n_tok, n_in, o1.data(), rows, pool, scratch);
      simd::set_enabled(true);
      matmul(b8, x.data(), n_tok, n_in, o2.data(), rows, pool, scratch);
      EXPECT_EQ(o1, o2) << "Q8_0 block order " << threads << " threads, " << n_tok << " tokens";
      Matrix p8 = b8;  // the same through the packed Q8_0 layout (16 rows packed, 13 in the row tail)
      std::vector<uint8_t> copy8 = w8;
      p8.data = copy8.data();
      PackedWeights store8;
      store8.pack({&p8}, {&p8});
      if (packs_at_load(GgmlType::Q8_0, rows)) {  // (not with HEARTH_AMX=0: Q8_0 is packed for AMX machines)
        EXPECT_NE(p8.packed, nullptr);
      }
      std::vector<float> o3(z1.size());
      matmul(p8, x.data(), n_tok, n_in, o3.data(), rows, pool, scratch);
      EXPECT_EQ(o1, o3) << "packed Q8_0 block order " << threads << " threads, " << n_tok << " tokens";
      // One encoding shared by Q8_0 and packed Q4_0 matmuls, whose prefill tile layouts differ: each
      // matmul must get its own layout, whatever ran before it.
      EncodedActs shared;
      encode_acts(ActType::Q8_0, x.data(), n_tok, n_in, n_in, shared, pool);
      std::vector<float> s8(z1.size()), s4(y1.size()), s8b(z1.size());
      matmul(m8, shared, s8.data(), rows, pool);
      matmul(packed, shared, s4.data(), 24, pool);
      matmul(m8, shared, s8b.data(), rows, pool);
      EXPECT_EQ(s8, z1) << "shared encoding, Q8_0 first";
      EXPECT_EQ(s4, y1) << "shared encoding, packed Q4_0 after Q8_0";
      EXPECT_EQ(s8b, z1) << "shared encoding, Q8_0 after packed Q4_0";
    }
  }
}

// Random K-quant rows: random quants and scales (Q4_K / Q5_K: 6-bit scales/mins; Q6_K: int8 scales), small
// positive d (and dmin).
std::vector<uint8_t> k_quant_weights(GgmlType t, int64_t rows, int64_t n_in, std::mt19937& rng) {
  std::vector<uint8_t> w(hearth::gguf::row_bytes(t, n_in) * size_t(rows));
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> small(0.001f, 0.02f);
  for (auto& v : w) v = uint8_t(byte(rng));
  const size_t block = hearth::gguf::row_bytes(t, 256);  // one superblock
  for (size_t b = 0; b < w.size(); b += block) {
    const uint16_t d = hearth::f32_to_fp16(small(rng)), dmin = hearth::f32_to_fp16(small(rng));
    if (t != GgmlType::Q6_K) {
      std::memcpy(&w[b], &d, 2);
      std::memcpy(&w[b + 2], &dmin, 2);
    } else {
      std::memcpy(&w[b + 208], &d, 2);
    }
  }
  return w;
}

// matmul of a random K-quant matrix (rows x 512) with SIMD on gives the bits of the scalar references (SIMD
// off), on one and two threads.
void expect_matmul_simd_matches_reference(GgmlType type, int64_t rows, int64_t n_tok, std::mt19937& rng) {
  const int64_t n_in = 512;
  const auto w = k_quant_weights(type, rows, n_in, rng);
  const Matrix m = matrix_over(type, w.data(), rows, n_in);
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    const auto x = randn(size_t(n_in * n_tok), rng);
    EncodedActs scratch;
    std::vector<float> y1(size_t(rows * n_tok)), y2(y1.size());
    simd::set_enabled(false);
    matmul(m, x.data(), n_tok, n_in, y1.data(), rows, pool, scratch);
    simd::set_enabled(true);
    matmul(m, x.data(), n_tok, n_in, y2.data(), rows, pool, scratch);
    EXPECT_EQ(y1, y2) << hearth::gguf::type_name(type) << " " << threads << " threads, " << n_tok << " tokens";
  }
}

// The K-quant prefill kernels give the reference dots' bits (whole tiles, short tiles, lone tokens),
// directly and through matmul (with a tail of rows outside the groups of 16, on one and two threads).
TEST(Gemm, KQuantWideKernelsAreBitIdenticalToTheReferences) {
  std::mt19937 rng(17);
  int targets = 0;
  auto kernel_of = [](const gemm::Kernels& k, GgmlType t) {
    return t == GgmlType::Q4_K ? k.q4_k_wide : t == GgmlType::Q5_K ? k.q5_k_wide : k.q6_k_wide;
  };
  for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
    const auto* ref = weight_kernels(type);
    gemm::for_each_target([&](const gemm::Kernels& k) {
      const gemm::Fn fn = kernel_of(k, type);
      if (!fn) return;
      ++targets;
      ThreadPool pool(1);
      const Problem problems[] = {{16, 256, 4}, {32, 512, 9}, {48, 768, 17}, {16, 256, 13}, {64, 1536, 8}};
      for (const Problem& p : problems) {
        const auto x = randn(size_t(p.n_in * p.n_tok), rng, 2.0f);
        EncodedActs acts;
        encode_acts(ActType::Q8_K, x.data(), p.n_tok, p.n_in, p.n_in, acts, pool);
        std::vector<uint8_t> tiles(gemm::act_tiles_bytes(gemm::TileLayout::q8_k, p.n_tok, p.n_in));
        gemm::pack_act_tiles(gemm::TileLayout::q8_k, acts.data.data(), acts.row_bytes, nullptr, nullptr, p.n_tok,
                             p.n_in, 0, (p.n_tok + gemm::kActTileTokens - 1) / gemm::kActTileTokens, tiles.data());
        auto w = k_quant_weights(type, p.rows, p.n_in, rng);
        const size_t rb = hearth::gguf::row_bytes(type, p.n_in);
        std::vector<uint8_t> scratch(gemm::scratch_bytes(p.n_in) + 64);
        auto y = run_kernel(fn, w, rb, p.rows, acts, scratch.data(), &tiles);
        EXPECT_EQ(y, reference(ref->dot, w, rb, acts, p.rows)) << hearth::gguf::type_name(type) << " " << k.target
                                                                << " rows " << p.rows << " n_in " << p.n_in
                                                                << " tokens " << p.n_tok;
        if (p.n_tok != 8) continue;
        // The largest integer sums the kernels can meet: every quant at its maximum, every activation at
        // +-127 (constant rows quantise to -127; negated rows to 127). Narrow accumulators would overflow here.
        const size_t block = hearth::gguf::row_bytes(type, 256);  // one superblock
        const size_t q_begin = type == GgmlType::Q6_K ? 0 : 16, q_end = type == GgmlType::Q6_K ? 192 : block;
        for (size_t b = 0; b < w.size(); b += block) std::fill(w.begin() + long(b + q_begin), w.begin() + long(b + q_end), 0xFF);
        std::vector<float> ones(size_t(p.n_in * p.n_tok), 1.0f);
        for (int64_t t = 0; t < p.n_tok; t += 2) std::fill_n(ones.begin() + t * p.n_in, p.n_in, -1.0f);
        encode_acts(ActType::Q8_K, ones.data(), p.n_tok, p.n_in, p.n_in, acts, pool);
        gemm::pack_act_tiles(gemm::TileLayout::q8_k, acts.data.data(), acts.row_bytes, nullptr, nullptr, p.n_tok,
                             p.n_in, 0, 1, tiles.data());
        y = run_kernel(fn, w, rb, p.rows, acts, scratch.data(), &tiles);
        EXPECT_EQ(y, reference(ref->dot, w, rb, acts, p.rows)) << hearth::gguf::type_name(type) << " " << k.target
                                                                << " extreme quants and activations";
      }
    });
    if (!kernel_of(gemm::best(), type)) continue;
    expect_matmul_simd_matches_reference(type, 40, 11, rng);  // 40 rows: a tail outside the groups of 16
  }
#if defined(__x86_64__)
  if (targets == 0) GTEST_SKIP() << "this CPU has no target with K-quant prefill kernels (x86 AVX2 or better)";
#endif
}

// The K-quant decode kernels (four rows at a time) give the reference dots' bits, for 1-3 tokens, directly
// and through matmul (rows outside the groups of 8 through the per-row dots).
TEST(Gemm, KQuantRowKernelsAreBitIdenticalToTheReferences) {
  std::mt19937 rng(23);
  int targets = 0;
  auto kernel_of = [](const gemm::Kernels& k, GgmlType t) {
    return t == GgmlType::Q4_K ? k.q4_k_rows : t == GgmlType::Q5_K ? k.q5_k_rows : k.q6_k_rows;
  };
  for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
    const auto* ref = weight_kernels(type);
    gemm::for_each_target([&](const gemm::Kernels& k) {
      const gemm::Fn fn = kernel_of(k, type);
      if (!fn) return;
      ++targets;
      ThreadPool pool(1);
      const Problem problems[] = {{8, 256, 1}, {16, 1536, 1}, {8, 512, 2}, {24, 768, 3}};
      for (const Problem& p : problems) {
        const auto x = randn(size_t(p.n_in * p.n_tok), rng, 2.0f);
        EncodedActs acts;
        encode_acts(ActType::Q8_K, x.data(), p.n_tok, p.n_in, p.n_in, acts, pool);
        const auto w = k_quant_weights(type, p.rows, p.n_in, rng);
        const size_t rb = hearth::gguf::row_bytes(type, p.n_in);
        EXPECT_EQ(run_kernel(fn, w, rb, p.rows, acts, nullptr, nullptr), reference(ref->dot, w, rb, acts, p.rows))
            << hearth::gguf::type_name(type) << " " << k.target << " rows " << p.rows << " n_in " << p.n_in
            << " tokens " << p.n_tok;
      }
    });
    if (!kernel_of(gemm::best(), type)) continue;
    expect_matmul_simd_matches_reference(type, 44, 1, rng);  // 44 rows: a tail outside the groups of 8
  }
#if defined(__x86_64__)
  if (targets == 0) GTEST_SKIP() << "this CPU has no target with K-quant decode kernels (x86 AVX2 or better)";
#endif
}

TEST(Gemm, SimdHelpersMatchTheirReferences) {
  std::mt19937 rng(3);
  int targets = 0;
  simd::for_each_target([&](const simd::Kernels& k) {
    ++targets;
    if (k.quantize_q8_0) {
      auto x = randn(32 * 40, rng, 3.0f);
      for (int j = 0; j < 32; ++j) x[size_t(j)] = 0.0f;  // an all-zero block
      x[40] = 0.5f;
      std::vector<uint8_t> a(act_row_bytes(ActType::Q8_0, 32 * 40)), b(a.size());
      quantize_row_q8_0(x.data(), a.data(), 32 * 40);
      k.quantize_q8_0(x.data(), b.data(), 32 * 40);
      EXPECT_EQ(a, b) << k.target;
    }
    if (k.quantize_q8_k) {
      auto x = randn(256 * 6, rng, 3.0f);
      for (int j = 0; j < 256; ++j) x[size_t(j)] = 0.0f;  // an all-zero block
      x[256 + 7] = -20.0f, x[256 + 200] = 20.0f;         // ties in magnitude: the first one sets the sign
      x[512 + 3] = 9.0f, x[512 + 6] = -9.0f;             // a tie within one vector
      x[768 + 255] = -15.0f;                             // the extreme at the block's last element
      for (int j = 0; j < 256; ++j) x[size_t(1024 + j)] = 0.5f * float(j % 7) - 1.5f;  // exact halves
      std::vector<uint8_t> a(act_row_bytes(ActType::Q8_K, 256 * 6)), b(a.size());
      quantize_row_q8_K(x.data(), a.data(), 256 * 6);
      k.quantize_q8_k(x.data(), b.data(), 256 * 6);
      EXPECT_EQ(a, b) << k.target;
    }
    if (k.geglu) {
      auto g = randn(1003, rng, 6.0f), u = randn(1003, rng);
      g[0] = -10.0f, g[1] = 10.0f, g[2] = -30.0f, g[3] = 25.0f, g[4] = 9.99f;
      std::vector<float> out(1003, 0.0f);
      const int64_t done = k.geglu(gelu_table_f32(), g.data(), u.data(), out.data(), 1003);
      EXPECT_GE(done, 1000);
      for (int64_t i = 0; i < done; ++i) EXPECT_EQ(out[size_t(i)], gelu(g[size_t(i)]) * u[size_t(i)]) << i << " " << k.target;
    }
    if (k.scale_mul) {  // rms_norm's passes: the scalar code's bits
      for (int64_t n : {1, 7, 8, 9, 255, 1536, 2817}) {
        auto x = randn(size_t(n), rng, 3.0f), w = randn(size_t(n), rng);
        if (n > 8) x[3] = 1e-30f, x[5] = -7e5f;  // a square below float's normal range, a large one
        if (k.sum_squares) {
          EXPECT_EQ(k.sum_squares(x.data(), n), sum_squares(x.data(), n)) << k.target << " n " << n;
        }
        std::vector<float> y(x.size()), z(x.size());
        const int64_t done = k.scale_mul(x.data(), w.data(), 0.37f, y.data(), n);
        EXPECT_EQ(k.scale_mul(x.data(), nullptr, 0.37f, z.data(), n), done);
        EXPECT_GT(done, n - 16);
        for (int64_t i = 0; i < done; ++i) {
          EXPECT_EQ(y[size_t(i)], (x[size_t(i)] * 0.37f) * w[size_t(i)]) << k.target << " " << i;
          EXPECT_EQ(z[size_t(i)], x[size_t(i)] * 0.37f) << k.target << " " << i;
        }
      }
    }
    if (k.dot_f32_f16 && k.sum_rows_f16) {
      for (int n : {1, 7, 64, 256, 259, 512}) {
        const auto q = randn(size_t(n), rng);
        std::vector<uint16_t> h(static_cast<size_t>(n));
        for (auto& v : h) v = hearth::f32_to_fp16(randn(1, rng)[0]);
        double want = 0;
        for (int i = 0; i < n; ++i) want += double(q[size_t(i)]) * hearth::fp16_to_f32(h[size_t(i)]);
        EXPECT_NEAR(k.dot_f32_f16(q.data(), h.data(), n), want, 1e-4 * std::sqrt(double(n))) << k.target << " n " << n;
        // Weighted sum of rows: the bits of one multiply-add per row, in row order (fused where the target
        // has FMA).
        const int n_rows = 5;
        std::vector<std::vector<uint16_t>> rows(n_rows, std::vector<uint16_t>(size_t(n)));
        std::vector<const uint16_t*> ptrs;
        for (auto& r : rows) {
          for (auto& v : r) v = hearth::f32_to_fp16(randn(1, rng)[0]);
          ptrs.push_back(r.data());
        }
        const auto w = randn(n_rows, rng);
        std::vector<float> out(size_t(n), -1.0f);
        k.sum_rows_f16(w.data(), ptrs.data(), n_rows, out.data(), n);
        for (int i = 0; i < n; ++i) {
          float a = 0;
          for (int j = 0; j < n_rows; ++j) {
            const float v = hearth::fp16_to_f32(rows[size_t(j)][size_t(i)]);
            a = k.native_fma ? std::fma(w[size_t(j)], v, a) : a + w[size_t(j)] * v;
          }
          EXPECT_EQ(out[size_t(i)], a) << k.target << " n " << n << " i " << i;
        }
        // Several heads over the same rows: each head gets the one-head kernels' bits exactly.
        for (int nq : {1, 3, 4, 8, 9}) {
          const auto qs = randn(size_t(nq * n), rng), ws = randn(size_t(nq * n_rows), rng);
          std::vector<float> dots(size_t(nq), -1.0f), sums(size_t(nq * n), -1.0f), one(static_cast<size_t>(n), 0.0f);
          k.dot_f32_f16_heads(qs.data(), n, nq, h.data(), n, dots.data(), 1);
          k.sum_rows_f16_heads(ws.data(), n_rows, nq, ptrs.data(), n_rows, sums.data(), n, n);
          for (int i = 0; i < nq; ++i) {
            EXPECT_EQ(dots[size_t(i)], k.dot_f32_f16(qs.data() + size_t(i * n), h.data(), n))
                << k.target << " heads " << nq << " head " << i << " n " << n;
            k.sum_rows_f16(ws.data() + size_t(i * n_rows), ptrs.data(), n_rows, one.data(), n);
            EXPECT_TRUE(std::equal(one.begin(), one.end(), sums.begin() + i * n))
                << k.target << " sum rows, heads " << nq << " head " << i << " n " << n;
          }
        }
        // Rounding to F16 and back, as core/fp16.h does it (ties, subnormals, overflow included).
        std::vector<float> x = randn(size_t(n), rng, 3.0f);
        std::vector<float> r(x.size());
        if (n >= 7) x[0] = 1.0f + 1.0f / 2048, x[1] = 6.0e-6f, x[2] = 70000.0f, x[3] = -65519.0f, x[4] = 1e-9f;
        if (!k.round_f16) continue;
        k.round_f16(x.data(), r.data(), n);
        for (int i = 0; i < n; ++i) EXPECT_EQ(r[size_t(i)], hearth::round_to_fp16(x[size_t(i)])) << k.target << " " << x[size_t(i)];
        ASSERT_TRUE(k.quantize_f16) << k.target;  // the same conversion, kept as F16 bits
        std::vector<uint16_t> bits(x.size());
        k.quantize_f16(x.data(), bits.data(), n);
        for (int i = 0; i < n; ++i)
          EXPECT_EQ(bits[size_t(i)], hearth::f32_to_fp16(x[size_t(i)])) << k.target << " " << x[size_t(i)];
      }
    }
  });
  EXPECT_GT(targets, 0);
}

// F32/F16 weights: the SIMD versions of ggml's vec_dot and tinyBLAS orders give the references' bits, at
// both lane widths (8: AVX2 machines, 16: AVX-512 machines), on every target.
TEST(Gemm, FloatOrdersAreBitIdenticalAtBothLaneWidths) {
  std::mt19937 rng(5);
  const ggml::Profile saved = ggml::profile();
  int checked = 0;
  simd::for_each_target([&](const simd::Kernels& k) {
    for (int wi = 0; wi < 2; ++wi) {
      ggml::set_profile({wi ? 16 : 8, false});
      for (int64_t n : {8, 16, 40, 64, 100, 256, 1536}) {
        const auto x = randn(size_t(n), rng), y = randn(size_t(n), rng);
        std::vector<uint16_t> xh(x.size()), yh(y.size());
        for (size_t i = 0; i < x.size(); ++i) xh[i] = hearth::f32_to_fp16(x[i]), yh[i] = hearth::f32_to_fp16(y[i]);
        const auto* f32 = weight_kernels(GgmlType::F32);
        const auto* f16 = weight_kernels(GgmlType::F16);
        const std::string what = std::string(k.target) + " lanes " + std::to_string(wi ? 16 : 8) + " n " + std::to_string(n);
        EXPECT_EQ(k.dot_f32_order[wi](x.data(), y.data(), n), f32->dot(x.data(), y.data(), n)) << what;
        EXPECT_EQ(k.dot_f32_tinyblas[wi](x.data(), y.data(), n), f32->dot_batched(x.data(), y.data(), n)) << what;
        EXPECT_EQ(k.dot_f16_order[wi](xh.data(), yh.data(), n), f16->dot(xh.data(), yh.data(), n)) << what;
        EXPECT_EQ(k.dot_f16_tinyblas[wi](xh.data(), yh.data(), n), f16->dot_batched(xh.data(), yh.data(), n)) << what;
        ++checked;
      }
    }
  });
  ggml::set_profile(saved);
  EXPECT_GT(checked, 0);
}

// matmul on large enough jobs that the pool cuts them into several chunks per thread (their boundaries move
// with the token count and the thread count): every thread count gives the bits of one thread, and in the
// block orders (Q4_0 and Q8_0 repacked, plain and packed; the K-quants) every token of a batch gets the bits
// it gets alone, which is what lets a server batch requests without changing their answers.
TEST(Gemm, MatmulBitsDoNotDependOnThreadsOrChunks) {
  std::mt19937 rng(29);
  const int64_t n_in = 1024, rows = 520;  // 32 groups of 16 and a tail of 8 rows
  struct Case {
    GgmlType type;
    bool repacked, packed;
  };
  const Case cases[] = {{GgmlType::Q4_0, false, false}, {GgmlType::Q4_0, true, false}, {GgmlType::Q4_0, true, true},
                        {GgmlType::Q8_0, false, false}, {GgmlType::Q8_0, true, false}, {GgmlType::Q8_0, true, true},
                        {GgmlType::Q4_K, false, false}, {GgmlType::Q6_K, false, false}};
  const int64_t max_tok = 32;
  const auto x = randn(size_t(n_in * max_tok), rng);
  const ScopedPackEnv force("1");
  for (const Case& c : cases) {
    const bool k_quant = c.type == GgmlType::Q4_K || c.type == GgmlType::Q6_K;
    std::vector<uint8_t> w = k_quant ? k_quant_weights(c.type, rows, n_in, rng) : weights(c.type, rows, n_in, rng);
    Matrix m = matrix_over(c.type, w.data(), rows, n_in);
    m.repacked = c.repacked;
    PackedWeights store;
    if (c.packed) store.pack({&m}, {&m});  // may release w's pages: w is not read again below
    const std::string what = std::string(hearth::gguf::type_name(c.type)) + (c.repacked ? " repacked" : "") +
                             (c.packed ? (m.packed ? " packed" : " (no packed kernel)") : "");
    // Each token alone, one thread.
    std::vector<float> alone(size_t(rows * max_tok));
    {
      ThreadPool pool(1);
      EncodedActs scratch;
      for (int64_t t = 0; t < max_tok; ++t)
        matmul(m, x.data() + t * n_in, 1, n_in, alone.data() + t * rows, rows, pool, scratch);
    }
    for (int64_t n_tok : {1, 3, 8, 17, 32}) {
      std::vector<float> one(size_t(rows * n_tok));
      for (int threads : {1, 2, 3}) {
        ThreadPool pool(threads);
        EncodedActs scratch;
        std::vector<float> y(size_t(rows * n_tok));
        matmul(m, x.data(), n_tok, n_in, y.data(), rows, pool, scratch);
        if (threads == 1) {
          one = y;
        } else {
          EXPECT_EQ(y, one) << what << ", " << n_tok << " tokens, " << threads << " threads";
        }
      }
      if (c.repacked || k_quant) {
        EXPECT_EQ(one, std::vector<float>(alone.begin(), alone.begin() + rows * n_tok))
            << what << ": a batch of " << n_tok << " against each token alone";
      }
    }
  }
}

// matmul_many runs several products in one hand-off (a decode step's experts): each job gets the bits
// matmul gives it alone on just its tokens, for every weight layout, a row tail, jobs without tokens, token
// ranges inside a shared encoding, and counts where matmul itself would take the tile or AMX kernels.
TEST(Gemm, MatmulManyGivesEachJobTheBitsOfItsOwnMatmul) {
  std::mt19937 rng(31);
  const int64_t n_in = 512, max_tok = 40;
  struct Case {
    GgmlType type;
    int64_t rows;
    bool repacked, mul_mat_id;
  };
  const Case cases[] = {{GgmlType::Q4_0, 72, true, true},   {GgmlType::Q4_0, 29, false, false},
                        {GgmlType::Q8_0, 520, true, true},  {GgmlType::Q8_0, 40, false, false},
                        {GgmlType::Q4_K, 37, false, true},  {GgmlType::Q6_K, 16, false, false},
                        {GgmlType::F16, 5, false, true},    {GgmlType::Q4_0, 8, true, false}};
  std::vector<std::vector<uint8_t>> store;
  std::vector<Matrix> mats;
  for (const Case& c : cases) {
    const bool k_quant = c.type == GgmlType::Q4_K || c.type == GgmlType::Q6_K;
    store.push_back(k_quant ? k_quant_weights(c.type, c.rows, n_in, rng) : weights(c.type, c.rows, n_in, rng));
    Matrix m = matrix_over(c.type, store.back().data(), c.rows, n_in);
    m.repacked = c.repacked;
    m.mul_mat_id = c.mul_mat_id;
    mats.push_back(m);
  }
  const auto x = randn(size_t(n_in * max_tok), rng);
  // Token ranges [tok0, tok0 + n): lone tokens, none, and counts that take tiles (4+) or AMX (16+) in matmul.
  const int64_t ranges[][2] = {{0, 1}, {3, 0}, {1, 3}, {4, 5}, {9, 1}, {10, 17}, {27, 2}, {29, 11}};
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    std::vector<EncodedActs> acts(mats.size());
    std::vector<MatmulJob> jobs;
    std::vector<std::vector<float>> got(mats.size()), want(mats.size());
    for (size_t i = 0; i < mats.size(); ++i) {
      encode_acts(dot_type_of(mats[i].type), x.data(), max_tok, n_in, n_in, acts[i], pool);
      const int64_t tok0 = ranges[i % 8][0], n = ranges[i % 8][1];
      got[i].assign(size_t(mats[i].n_out * std::max<int64_t>(n, 1)), -1.0f);
      want[i] = got[i];
      jobs.push_back({mats[i], &acts[i], tok0, n, got[i].data(), mats[i].n_out});
      EncodedActs own;
      if (n) matmul(mats[i], x.data() + tok0 * n_in, n, n_in, want[i].data(), mats[i].n_out, pool, own);
    }
    // And one job over a whole encoding of 6 tokens: matmul_many hands it to matmul's tile kernels.
    EncodedActs whole;
    encode_acts(dot_type_of(mats[2].type), x.data(), 6, n_in, n_in, whole, pool);
    std::vector<float> got6(size_t(mats[2].n_out * 6), -1.0f), want6 = got6;
    jobs.push_back({mats[2], &whole, 0, 6, got6.data(), mats[2].n_out});
    EncodedActs own6;
    matmul(mats[2], x.data(), 6, n_in, want6.data(), mats[2].n_out, pool, own6);
    matmul_many(jobs, pool);
    for (size_t i = 0; i < mats.size(); ++i)
      EXPECT_EQ(got[i], want[i]) << hearth::gguf::type_name(mats[i].type) << " " << mats[i].n_out << " rows, "
                                 << jobs[i].n_tok << " tokens from " << jobs[i].tok0 << ", " << threads << " threads";
    EXPECT_EQ(got6, want6) << "a whole encoding of 6 tokens, " << threads << " threads";
  }
  // A token range outside the encoding is an error, not a read past it.
  ThreadPool pool(1);
  EncodedActs a;
  encode_acts(ActType::Q8_0, x.data(), 2, n_in, n_in, a, pool);
  std::vector<float> y(size_t(mats[0].n_out * 2));
  const std::vector<MatmulJob> past_the_end = {{mats[0], &a, 1, 2, y.data(), mats[0].n_out}};
  EXPECT_THROW(matmul_many(past_the_end, pool), hearth::Error);
}

}  // namespace
