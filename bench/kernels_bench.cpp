// Micro-benchmarks of the matrix kernels on E2B-sized matrices: decode (one token; reported as GB/s of
// weights streamed) and prefill (512 tokens; reported as GFLOP/s, 2 flops per multiply-add).
//   build/bench/kernels_bench [--benchmark_filter=Decode]
#include <benchmark/benchmark.h>

#include <cstring>
#include <string>
#include <random>
#include <vector>

#include "core/fp16.h"
#include "gguf/quantize.h"
#include "kernels/gemm.h"
#include "kernels/matmul.h"
#include "kernels/simd.h"
#include "kernels/threadpool.h"

namespace {

using hearth::gguf::GgmlType;
using namespace hearth::kernels;

struct Fixture {
  std::vector<uint8_t> w;
  Matrix m;
  PackedWeights packed;
  std::vector<float> x, y;
  Fixture(GgmlType t, int64_t n_in, int64_t n_out, int64_t n_tok, bool pack) {
    std::mt19937 rng(1);
    std::normal_distribution<float> nd(0.0f, 0.05f);
    const size_t rb = hearth::gguf::row_bytes(t, n_in);
    w.resize(rb * size_t(n_out));
    std::vector<float> row(static_cast<size_t>(n_in));
    if (t == GgmlType::Q4_K || t == GgmlType::Q6_K) {  // no encoder for these: random quants, sane scales
      for (uint8_t& v : w) v = uint8_t(rng());
      const size_t bb = t == GgmlType::Q4_K ? 144 : 210, d_at = t == GgmlType::Q4_K ? 0 : 208;
      const uint16_t d = hearth::f32_to_fp16(0.01f);
      for (size_t b = 0; b < w.size(); b += bb) {
        std::memcpy(&w[b + d_at], &d, 2);
        if (t == GgmlType::Q4_K) std::memcpy(&w[b + 2], &d, 2);
      }
    } else if (t == GgmlType::Q4_1 || t == GgmlType::Q5_0 || t == GgmlType::Q5_1 || t == GgmlType::Q5_K) {
      // No encoder for these either: random quants, d = 0.01 (and a min of -0.01 where the block has one).
      for (uint8_t& v : w) v = uint8_t(rng());
      const size_t bb = t == GgmlType::Q4_1 ? 20 : t == GgmlType::Q5_0 ? 22 : t == GgmlType::Q5_1 ? 24 : 176;
      const uint16_t d = hearth::f32_to_fp16(0.01f), m = hearth::f32_to_fp16(t == GgmlType::Q5_K ? 0.01f : -0.01f);
      for (size_t b = 0; b < w.size(); b += bb) {
        std::memcpy(&w[b], &d, 2);
        if (t != GgmlType::Q5_0) std::memcpy(&w[b + 2], &m, 2);
      }
    } else {
      for (int64_t r = 0; r < n_out; ++r) {
        for (float& v : row) v = nd(rng);
        hearth::gguf::encode_row(t, row.data(), n_in, w.data() + size_t(r) * rb);
      }
    }
    m.type = t;
    m.data = w.data();
    m.n_in = n_in;
    m.n_out = n_out;
    m.row_bytes = rb;
    m.repacked = repacked_by_llama(t, n_out);
    if (pack) packed.pack({&m}, {&m});
    x.resize(size_t(n_in * n_tok));
    for (float& v : x) v = nd(rng) * 20.0f;
    y.resize(size_t(n_out * n_tok));
  }
};

void run(benchmark::State& st, GgmlType t, int64_t n_in, int64_t n_out, int64_t n_tok, bool pack) {
  Fixture f(t, n_in, n_out, n_tok, pack);
  ThreadPool pool(int(st.range(0)));
  EncodedActs scratch;
  for (auto _ : st) {
    matmul(f.m, f.x.data(), n_tok, n_in, f.y.data(), n_out, pool, scratch);
    benchmark::DoNotOptimize(f.y.data());
  }
  const double iters = double(st.iterations());
  if (n_tok == 1)
    st.counters["GB/s"] = benchmark::Counter(iters * double(f.w.size()) / 1e9, benchmark::Counter::kIsRate);
  else
    st.counters["GFLOP/s"] = benchmark::Counter(iters * 2.0 * double(n_in * n_out * n_tok) / 1e9, benchmark::Counter::kIsRate);
}

// E2B's largest projections: the FFN gate/up (1536 -> 6144) and down (6144 -> 1536).
void DecodeQ4_0Packed(benchmark::State& st) { run(st, GgmlType::Q4_0, 1536, 6144, 1, true); }
void DecodeQ4_0(benchmark::State& st) { run(st, GgmlType::Q4_0, 1536, 6144, 1, false); }
void DecodeQ8_0(benchmark::State& st) { run(st, GgmlType::Q8_0, 1536, 6144, 1, false); }
// Packed only where Q8_0 has a packed layout (the block order of AMX machines); elsewhere as DecodeQ8_0.
void DecodeQ8_0Packed(benchmark::State& st) { run(st, GgmlType::Q8_0, 1536, 6144, 1, true); }
// Decode from memory rather than cache: 620 MB of 26B-A4B-wide rows (hidden 2816), more than any cache of the
// machines measured (a Sapphire-Rapids-class VM reports 480 MB of L3; 100 MB still ran from it).
void DramQ4_0(benchmark::State& st) { run(st, GgmlType::Q4_0, 2816, 393216, 1, false); }
void DramQ4_0Packed(benchmark::State& st) { run(st, GgmlType::Q4_0, 2816, 393216, 1, true); }
void DramQ8_0(benchmark::State& st) { run(st, GgmlType::Q8_0, 2816, 196608, 1, false); }
// Decode as a model runs it: the same 620 MB (Q4_0; Q8_0 1.1 GB) in products of 4096 rows (26B-A4B's Q
// projection: 6.2 MB in Q4_0), one after another, so each product starts its streams afresh. Packed or as
// stored: what gemm::Kernels::packs_by_default should say on a CPU.
void run_slices(benchmark::State& st, GgmlType t, int64_t n_out, bool pack) {
  constexpr int64_t n_in = 2816, slice = 4096;
  Fixture f(t, n_in, n_out, 1, pack);
  ThreadPool pool(int(st.range(0)));
  EncodedActs acts;
  encode_acts(dot_type_of(t), f.x.data(), 1, n_in, n_in, acts, pool);
  for (auto _ : st) {
    for (int64_t r = 0; r < n_out; r += slice) matmul(f.m.rows(r, slice), acts, f.y.data() + r, n_out, pool);
    benchmark::DoNotOptimize(f.y.data());
  }
  st.counters["GB/s"] = benchmark::Counter(double(st.iterations()) * double(f.w.size()) / 1e9,
                                           benchmark::Counter::kIsRate);
}
void SlicesQ4_0(benchmark::State& st) { run_slices(st, GgmlType::Q4_0, 393216, false); }
void SlicesQ4_0Packed(benchmark::State& st) { run_slices(st, GgmlType::Q4_0, 393216, true); }
void SlicesQ8_0(benchmark::State& st) { run_slices(st, GgmlType::Q8_0, 196608, false); }
void SlicesQ8_0Packed(benchmark::State& st) { run_slices(st, GgmlType::Q8_0, 196608, true); }
void DecodeQ4_0Down(benchmark::State& st) { run(st, GgmlType::Q4_0, 6144, 1536, 1, true); }
void PrefillQ4_0Packed(benchmark::State& st) { run(st, GgmlType::Q4_0, 1536, 6144, 512, true); }
void PrefillQ4_0Down(benchmark::State& st) { run(st, GgmlType::Q4_0, 6144, 1536, 512, true); }
void PrefillQ4_K(benchmark::State& st) { run(st, GgmlType::Q4_K, 1536, 6144, 512, false); }
void PrefillQ5_K(benchmark::State& st) { run(st, GgmlType::Q5_K, 1536, 6144, 512, false); }
void PrefillQ6_K(benchmark::State& st) { run(st, GgmlType::Q6_K, 1536, 6144, 512, false); }
void DecodeQ4_K(benchmark::State& st) { run(st, GgmlType::Q4_K, 1536, 6144, 1, false); }
void DecodeQ6_K(benchmark::State& st) { run(st, GgmlType::Q6_K, 1536, 6144, 1, false); }
void PrefillQ8_0(benchmark::State& st) { run(st, GgmlType::Q8_0, 1536, 6144, 512, false); }
// Packed where Q8_0 has a packed layout (AMX machines: the default for Q8_0 files there).
void PrefillQ8_0Packed(benchmark::State& st) { run(st, GgmlType::Q8_0, 1536, 6144, 512, true); }
void PrefillQ8_0PackedDown(benchmark::State& st) { run(st, GgmlType::Q8_0, 6144, 1536, 512, true); }
void DecodeQ4_1(benchmark::State& st) { run(st, GgmlType::Q4_1, 1536, 6144, 1, false); }
void DecodeQ5_0(benchmark::State& st) { run(st, GgmlType::Q5_0, 1536, 6144, 1, false); }
void DecodeQ5_1(benchmark::State& st) { run(st, GgmlType::Q5_1, 1536, 6144, 1, false); }
void DecodeQ5_K(benchmark::State& st) { run(st, GgmlType::Q5_K, 1536, 6144, 1, false); }
void DecodeBF16(benchmark::State& st) { run(st, GgmlType::BF16, 1536, 6144, 1, false); }

BENCHMARK(DecodeQ4_0Packed)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(DecodeQ4_0)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(DecodeQ8_0)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(DecodeQ8_0Packed)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(DramQ4_0)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(DramQ4_0Packed)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(DramQ8_0)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(SlicesQ4_0)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(SlicesQ4_0Packed)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(SlicesQ8_0)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(SlicesQ8_0Packed)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(DecodeQ4_0Down)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(PrefillQ4_0Packed)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(PrefillQ4_0Down)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(PrefillQ4_K)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(PrefillQ5_K)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(PrefillQ6_K)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(DecodeQ4_K)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(DecodeQ6_K)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(PrefillQ8_0)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(PrefillQ8_0Packed)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(PrefillQ8_0PackedDown)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(DecodeQ4_1)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(DecodeQ5_0)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(DecodeQ5_1)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(DecodeQ5_K)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(DecodeBF16)->Arg(1)->Arg(2)->UseRealTime();

// A kernel call over the fixture's stored rows: all n_out rows, n_tok tokens, output token-major (y_stride =
// n_out). The caller adds the activations in the form its kernel reads.
gemm::Args fixture_args(Fixture& f, int64_t n_in, int64_t n_out, int64_t n_tok) {
  gemm::Args a;
  a.w = f.w.data();
  a.w_row_bytes = f.m.row_bytes;
  a.n_rows = n_out;
  a.n_in = n_in;
  a.n_tok = n_tok;
  a.y = f.y.data();
  a.y_stride = n_out;
  return a;
}

// K-quant prefill on one thread for every dispatch target this CPU runs (so an AVX-512 machine also shows
// the AVX2 kernels laptops get): the blocked kernel ("wide"), and the per-row SIMD dots it replaces ("rows").
void register_k_quant_targets() {
  for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
    const std::string type = hearth::gguf::type_name(t);
    gemm::for_each_target([&](const gemm::Kernels& k) {
      const gemm::Fn fn = t == GgmlType::Q4_K ? k.q4_k_wide : t == GgmlType::Q5_K ? k.q5_k_wide : k.q6_k_wide;
      if (!fn) return;
      benchmark::RegisterBenchmark(("PrefillTarget/" + type + "/wide/" + k.target).c_str(), [t, fn](benchmark::State& st) {
        const int64_t n_in = 1536, n_out = 6144, n_tok = 512;
        Fixture f(t, n_in, n_out, n_tok, false);
        ThreadPool pool(1);
        EncodedActs acts;
        encode_acts(ActType::Q8_K, f.x.data(), n_tok, n_in, n_in, acts, pool);
        std::vector<uint8_t> tiles(gemm::act_tiles_bytes(gemm::TileLayout::q8_k, n_tok, n_in));
        gemm::pack_act_tiles(gemm::TileLayout::q8_k, acts.data.data(), acts.row_bytes, nullptr, nullptr, n_tok, n_in, 0,
                             (n_tok + gemm::kActTileTokens - 1) / gemm::kActTileTokens, tiles.data());
        std::vector<uint8_t> scratch(gemm::scratch_bytes(n_in) + 64);
        gemm::Args a = fixture_args(f, n_in, n_out, n_tok);
        a.act_tiles = tiles.data();
        a.scratch = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) & ~uintptr_t(63));
        for (auto _ : st) {
          fn(a);
          benchmark::DoNotOptimize(f.y.data());
        }
        st.counters["GFLOP/s"] = benchmark::Counter(double(st.iterations()) * 2.0 * double(n_in * n_out * n_tok) / 1e9,
                                                    benchmark::Counter::kIsRate);
      })->UseRealTime()->Unit(benchmark::kMillisecond);
    });
    simd::for_each_target([&](const simd::Kernels& k) {
      const VecDotFn dot = t == GgmlType::Q4_K ? k.dot_q4_k : t == GgmlType::Q5_K ? k.dot_q5_k : k.dot_q6_k;
      if (!dot) return;
      benchmark::RegisterBenchmark(("PrefillTarget/" + type + "/rows/" + k.target).c_str(), [t, dot](benchmark::State& st) {
        const int64_t n_in = 1536, n_out = 1536, n_tok = 128;  // smaller: the per-row dots are slow
        Fixture f(t, n_in, n_out, n_tok, false);
        ThreadPool pool(1);
        EncodedActs acts;
        encode_acts(ActType::Q8_K, f.x.data(), n_tok, n_in, n_in, acts, pool);
        for (auto _ : st) {
          for (int64_t o = 0; o < n_out; ++o)
            for (int64_t tok = 0; tok < n_tok; ++tok) f.y[size_t(tok * n_out + o)] = dot(f.m.row(o), acts.row(tok), n_in);
          benchmark::DoNotOptimize(f.y.data());
        }
        st.counters["GFLOP/s"] = benchmark::Counter(double(st.iterations()) * 2.0 * double(n_in * n_out * n_tok) / 1e9,
                                                    benchmark::Counter::kIsRate);
      })->UseRealTime()->Unit(benchmark::kMillisecond);
    });
  }
}

// Decode from memory on one thread for every dispatch target (so an AVX-512 machine also shows the AVX2 kernels
// laptops get): Q4_0 and Q8_0 rows as stored (the MoE experts' path), as DramQ4_0 / DramQ8_0.
void register_dram_targets() {
  for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q8_0}) {
    gemm::for_each_target([&](const gemm::Kernels& k) {
      const gemm::Fn fn = t == GgmlType::Q4_0 ? k.q4_0_seq : k.q8_0_seq;
      if (!fn) return;
      const std::string name = std::string("DramTarget/") + hearth::gguf::type_name(t) + "/" + k.target;
      benchmark::RegisterBenchmark(name.c_str(), [t, fn](benchmark::State& st) {
        const int64_t n_in = 2816, n_out = t == GgmlType::Q4_0 ? 393216 : 196608;
        Fixture f(t, n_in, n_out, 1, false);
        ThreadPool pool(1);
        EncodedActs acts;
        encode_acts(ActType::Q8_0, f.x.data(), 1, n_in, n_in, acts, pool);
        gemm::Args a = fixture_args(f, n_in, n_out, 1);
        a.acts = acts.data.data();
        a.act_row_bytes = acts.row_bytes;
        a.act_sums = acts.block_sums.data();
        a.act_d = acts.block_d.data();
        for (auto _ : st) {
          fn(a);
          benchmark::DoNotOptimize(f.y.data());
        }
        st.counters["GB/s"] = benchmark::Counter(double(st.iterations()) * double(f.w.size()) / 1e9,
                                                 benchmark::Counter::kIsRate);
      })->UseRealTime();
    });
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_k_quant_targets();
  register_dram_targets();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
