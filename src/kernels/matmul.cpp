#include "kernels/matmul.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <thread>

#include "core/error.h"
#include "core/fp16.h"
#include "core/huge_pages.h"
#include "kernels/gemm.h"
#include "kernels/simd.h"

namespace hearth::kernels {

Matrix Matrix::of(const gguf::TensorInfo& t, int64_t slice) {
  if (t.n_dims > 3 || (t.n_dims == 3 && (slice < 0 || slice >= t.ne[2])) || (t.n_dims < 3 && slice != 0))
    throw Error("tensor '" + t.name + "' " + t.shape_string() + " cannot be viewed as matrix slice " +
                std::to_string(slice));
  Matrix m;
  m.type = t.type;
  m.n_in = t.ne[0];
  m.n_out = t.ne[1];
  m.row_bytes = gguf::row_bytes(t.type, t.ne[0]);
  m.data = t.data + size_t(slice) * size_t(m.n_out) * m.row_bytes;
  m.repacked = repacked_by_llama(t.type, m.n_out);
  return m;
}

namespace {
// The packed layouts (gemm.h): Q4_0 in llama.cpp's repacked order, groups of 8 rows; Q8_0 in the block order
// of AMX machines, groups of 16.
int64_t packed_group_rows(GgmlType t) { return t == GgmlType::Q8_0 ? 16 : 8; }
size_t packed_bytes(GgmlType t, int64_t n_rows, int64_t n_in) {
  return t == GgmlType::Q8_0 ? gemm::q8_0_packed_bytes(n_rows, n_in) : gemm::q4_0_packed_bytes(n_rows, n_in);
}
bool has_packed_kernel(GgmlType t) {
  return t == GgmlType::Q8_0 ? gemm::best().q8_0_packed != nullptr
                             : t == GgmlType::Q4_0 && gemm::best().q4_0_packed != nullptr;
}
}  // namespace

Matrix Matrix::rows(int64_t r0, int64_t n) const {
  Matrix m = *this;
  m.data = row(r0);
  m.n_out = n;
  const int64_t group = packed_group_rows(type);
  m.packed = packed && r0 % group == 0 && n >= group ? packed + packed_bytes(type, r0, n_in) : nullptr;
  return m;
}

namespace {
size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }
}  // namespace

void PackedWeights::Unmap::operator()(uint8_t* p) const { unmap_huge(p, bytes); }

bool packs_at_load(GgmlType t, int64_t n_out) {
  if (!repacked_by_llama(t, n_out) || !has_packed_kernel(t) || n_out < packed_group_rows(t)) return false;
  const char* e = std::getenv("HEARTH_PACK");
  if (e && (e[0] == '0' || e[0] == '1')) return e[0] == '1';
  return gemm::best().packs_by_default;
}

void PackedWeights::pack(const std::vector<Matrix*>& matrices, const std::vector<const Matrix*>& keep_source) {
  std::vector<Matrix*> todo;
  for (Matrix* m : matrices)
    if (m && m->data && !m->packed && m->repacked && packs_at_load(m->type, m->n_out)) todo.push_back(m);
  if (todo.empty()) return;
  std::vector<size_t> offset;
  size_t total = 0;
  for (Matrix* m : todo) {
    offset.push_back(total);
    const size_t n = packed_bytes(m->type, m->n_out, m->n_in);
    total += round_up(n, 64);  // 64-byte aligned: the kernels' 64-byte loads stay in one line
    bytes_ += n;
  }
  uint8_t* region = static_cast<uint8_t*>(map_huge(total));
  if (!region) throw Error("cannot allocate " + std::to_string(total >> 20) + " MiB for packed weights");
  regions_.emplace_back(region, Unmap{total});
  std::vector<uint8_t*> dst;
  for (size_t o : offset) dst.push_back(region + o);
  // Work items: (matrix, group range) slices of about 4 MiB, shared by all cores.
  struct Item {
    size_t m;
    int64_t g0, g1;
  };
  std::vector<Item> items;
  for (size_t i = 0; i < todo.size(); ++i) {
    const int64_t gr = packed_group_rows(todo[i]->type), groups = todo[i]->n_out / gr;
    const int64_t per = std::max<int64_t>(1, int64_t(4 << 20) / int64_t(gr * todo[i]->row_bytes));
    for (int64_t g = 0; g < groups; g += per) items.push_back({i, g, std::min(groups, g + per)});
  }
  for (const Matrix* m : todo) will_need(*m);  // cold page cache: one burst of reads, not a fault per page
  std::vector<char> keep(todo.size(), 0);
  for (size_t i = 0; i < todo.size(); ++i)
    for (const Matrix* k : keep_source) keep[i] = keep[i] || (k->data == todo[i]->data);
  // The file's pages of [b, e) are no longer read: let the kernel drop them from our footprint (a later read,
  // e.g. of a row tail, faults them back in from the file).
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  auto release = [page](const uint8_t* b, const uint8_t* e) {
    const uintptr_t pb = (reinterpret_cast<uintptr_t>(b) + page - 1) & ~(page - 1);
    const uintptr_t pe = reinterpret_cast<uintptr_t>(e) & ~(page - 1);
    if (pe > pb) madvise(reinterpret_cast<void*>(pb), pe - pb, MADV_DONTNEED);
  };
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t k; (k = next.fetch_add(1)) < items.size();) {
      const Item& it = items[k];
      const Matrix& m = *todo[it.m];
      const int64_t gr = packed_group_rows(m.type);
      auto pack = m.type == GgmlType::Q8_0 ? gemm::pack_q8_0 : gemm::pack_q4_0;
      pack(m.row(it.g0 * gr), m.row_bytes, (it.g1 - it.g0) * gr, m.n_in, dst[it.m] + packed_bytes(m.type, it.g0 * gr, m.n_in));
      // Each slice's source goes as soon as it is copied, so a load never holds both whole copies (the pages
      // it shares with a neighbouring slice go with the whole matrix below).
      if (!keep[it.m]) release(m.row(it.g0 * gr), m.row(it.g1 * gr));
    }
  };
  std::vector<std::thread> threads;
  for (unsigned t = 1; t < std::max(1u, std::thread::hardware_concurrency()); ++t) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < todo.size(); ++i) {
    Matrix& m = *todo[i];
    m.packed = dst[i];
    if (!keep[i]) release(m.data, m.data + size_t(m.n_out) * m.row_bytes);
  }
}

void will_need(const Matrix& w) {
  if (!w.data) return;
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  const uintptr_t b = reinterpret_cast<uintptr_t>(w.data) & ~(page - 1);
  const uintptr_t e = reinterpret_cast<uintptr_t>(w.data) + size_t(w.n_out) * w.row_bytes;
  madvise(reinterpret_cast<void*>(b), e - b, MADV_WILLNEED);  // advice only: errors change nothing
}

ActType dot_type_of(GgmlType t, const char* what) {
  const WeightKernels* k = weight_kernels(t);
  if (!k)
    throw Error(std::string(what ? std::string("tensor '") + what + "' has type " : "type ") +
                gguf::type_name(t) + ", which hearth cannot compute with yet");
  return k->act;
}

QuantizeFn best_quantize(ActType t) {
  QuantizeFn simd_fn = nullptr;
  if (simd::enabled()) {
    const simd::Kernels& k = simd::best();
    simd_fn = t == ActType::Q8_0   ? k.quantize_q8_0
              : t == ActType::Q8_K ? k.quantize_q8_k
              : t == ActType::F16  ? k.quantize_f16
                                   : nullptr;
  }
  return simd_fn ? simd_fn : act_traits(t).quantize;
}

void encode_acts(ActType type, const float* x, int64_t n_tok, int64_t n_in, int64_t x_stride, EncodedActs& out,
                 ThreadPool& pool) {
  const ActTraits& at = act_traits(type);
  if (n_in % at.block_size)
    throw Error(std::string("activation row of ") + std::to_string(n_in) + " is not a multiple of the " + at.name +
                " block size");
  out.type = type;
  out.n_in = n_in;
  out.n_tok = n_tok;
  out.row_bytes = act_row_bytes(type, n_in);
  if (out.data.size() < out.row_bytes * size_t(n_tok)) out.data.resize(out.row_bytes * size_t(n_tok));
  const int64_t nb = n_in / 32;
  if (type == ActType::Q8_0) {
    out.block_sums.resize(size_t(n_tok * nb));
    out.block_d.resize(size_t(n_tok * nb));
  }
  const QuantizeFn quantize = best_quantize(type);
  pool.parallel_for(n_tok, [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) {
      uint8_t* row = out.data.data() + size_t(t) * out.row_bytes;
      quantize(x + t * x_stride, row, n_in);
      if (type != ActType::Q8_0) continue;
      const BlockQ8_0* blk = reinterpret_cast<const BlockQ8_0*>(row);
      for (int64_t k = 0; k < nb; ++k) {
        int32_t s = 0;
        for (int j = 0; j < 32; ++j) s += blk[k].qs[j];
        out.block_sums[size_t(t * nb + k)] = s;
        out.block_d[size_t(t * nb + k)] = fp16_to_f32(blk[k].d);
      }
    }
  });
  out.tile_layout = 0;
}

namespace {
// Fewest tokens for the AMX Q4_0 kernels: one whole tile of tokens (not tuned; below it the AVX-512 tiles run,
// which give the same bits). Q8_0 in block order has no AVX-512 prompt kernel and takes AMX from 2 tokens.
constexpr int64_t kAmxMinTokens = 16;

// acts in tile layout l (packed on first use, then reused by the next matmul of the same activations).
const uint8_t* act_tiles(const EncodedActs& acts, gemm::TileLayout l, ThreadPool& pool) {
  if (acts.tile_layout != int(l)) {
    const size_t need = gemm::act_tiles_bytes(l, acts.n_tok, acts.n_in);
    if (acts.tiles.size() < need) acts.tiles.resize(need);
    const int64_t n_tiles = (acts.n_tok + gemm::kActTileTokens - 1) / gemm::kActTileTokens;
    pool.parallel_for(n_tiles, [&](int64_t b, int64_t e, int) {
      gemm::pack_act_tiles(l, acts.data.data(), acts.row_bytes, acts.block_sums.data(), acts.block_d.data(),
                           acts.n_tok, acts.n_in, b, e, acts.tiles.data());
    }, 1, gemm::kActTileTokens * acts.n_in / 8);
    acts.tile_layout = int(l);
  }
  return acts.tiles.data();
}

// The blocked kernel for this weight type and summation order, when there is one.
gemm::Fn blocked_kernel(const Matrix& w, ActType act) {
  if (act != ActType::Q8_0) return nullptr;
  const gemm::Kernels& k = gemm::best();
  if (w.type == GgmlType::Q4_0) return w.repacked ? k.q4_0_seq : k.q4_0_lanes;
  if (w.type == GgmlType::Q8_0) return w.repacked ? k.q8_0_seq : k.q8_0_lanes;
  return nullptr;
}

// How one product runs: the blocked kernel (groups of `group` rows; the rows after the last whole group through
// the per-row dots), or per-row dots only (fn null), and the activation tile layout the kernel reads, if any.
struct Plan {
  gemm::Fn fn = nullptr;
  int64_t group = 1;
  int64_t n_groups = 0;
  bool packed = false;
  int tile_layout = 0;  // a gemm::TileLayout; 0 = the kernel reads the encoded rows
  VecDotFn dot = nullptr;
};

// allow_tiles = false keeps to the kernels that read the encoded rows (the tile kernels give the same bits,
// faster, for 4+ tokens).
Plan plan_matmul(const Matrix& w, ActType act, int64_t n_tok, bool allow_tiles) {
  Plan p;
  gemm::Fn fn = blocked_kernel(w, act);
  const bool packed = w.packed && act == ActType::Q8_0 && has_packed_kernel(w.type);
  if (packed) fn = w.type == GgmlType::Q8_0 ? gemm::best().q8_0_packed : gemm::best().q4_0_packed;
  // Prompts on AMX through the tile kernels, 16 rows per group, activations as encoded: Q4_0 from
  // kAmxMinTokens tokens, Q8_0 (block order) from 2.
  gemm::Fn amx = nullptr;
  if (fn && w.n_out >= 16 && act == ActType::Q8_0) {
    if (n_tok >= kAmxMinTokens && w.type == GgmlType::Q4_0)
      amx = packed ? gemm::best().q4_0_packed_amx : fn == gemm::best().q4_0_seq ? gemm::best().q4_0_seq_amx : nullptr;
    if (n_tok >= 2 && fn == gemm::best().q8_0_seq) amx = gemm::best().q8_0_seq_amx;
    if (n_tok >= 2 && fn == gemm::best().q8_0_packed) amx = gemm::best().q8_0_packed_amx;
  }
  if (amx) fn = amx;
  // Prefill: the AVX-512 kernels read the activations interleaved in tiles of tokens.
  if (allow_tiles && !amx && n_tok >= kTileMinTokens && act == ActType::Q8_0) {
    if (((packed && w.type == GgmlType::Q4_0) || (fn && fn == gemm::best().q4_0_seq)) && gemm::best().wide_tiles) {
      p.tile_layout = int(gemm::TileLayout::q4_0);
    } else if (fn && fn == gemm::best().q8_0_lanes && gemm::best().q8_0_wide) {
      fn = gemm::best().q8_0_wide;
      p.tile_layout = int(gemm::TileLayout::q8_0);
    }
  }
  const gemm::Fn k_wide = w.type == GgmlType::Q4_K   ? gemm::best().q4_k_wide
                          : w.type == GgmlType::Q5_K ? gemm::best().q5_k_wide
                          : w.type == GgmlType::Q6_K ? gemm::best().q6_k_wide
                                                     : nullptr;
  const bool k_quant_wide =
      allow_tiles && n_tok >= kTileMinTokens && k_wide && act == ActType::Q8_K && w.n_out >= 16;
  if (k_quant_wide) {
    fn = k_wide;
    p.tile_layout = int(gemm::TileLayout::q8_k);
  } else if (act == ActType::Q8_K) {  // decode: several rows per call
    fn = w.type == GgmlType::Q4_K   ? gemm::best().q4_k_rows
         : w.type == GgmlType::Q5_K ? gemm::best().q5_k_rows
         : w.type == GgmlType::Q6_K ? gemm::best().q6_k_rows
                                    : nullptr;
  }
  p.dot = simd::dot(w.type, n_tok >= 2 && !w.mul_mat_id, w.repacked);
  if (!fn || w.n_out < 8) {
    p.tile_layout = 0;
    return p;
  }
  p.fn = fn;
  p.packed = packed;
  p.group = amx || k_quant_wide ? 16 : packed ? packed_group_rows(w.type) : gemm::best().rows_per_group;
  p.n_groups = w.n_out / p.group;
  return p;
}

// Rows [r0, r1) of y = W · acts rows [tok0, tok0 + n_tok): whole groups [r0 / group, n_groups) through the
// blocked kernel (r0 a multiple of the group), rows from n_groups * group on through the per-row dots.
void run_rows(const Plan& p, const Matrix& w, const EncodedActs& acts, int64_t tok0, int64_t n_tok,
              const uint8_t* tiles, float* y, int64_t y_stride, int64_t r0, int64_t r1) {
  const int64_t blocked_end = std::min(r1, p.n_groups * p.group);
  if (p.fn && r0 < blocked_end) {
    thread_local std::vector<uint8_t> scratch;
    const size_t need = gemm::scratch_bytes(w.n_in);
    if (scratch.size() < need) scratch.resize(need);
    // Packed weights: the packed group holding row r0.
    const int64_t pg = packed_group_rows(w.type);
    const int64_t nb = w.n_in / 32;
    gemm::Args a;
    a.w = p.packed ? w.packed + size_t(r0 / pg) * packed_bytes(w.type, pg, w.n_in) : w.row(r0);
    a.w_row_bytes = w.row_bytes;
    a.n_rows = blocked_end - r0;
    a.n_in = w.n_in;
    a.acts = acts.row(tok0);
    a.act_row_bytes = acts.row_bytes;
    a.n_tok = n_tok;
    // Q8_0 encodings carry per-block sums and scales (an encoding reused for another type keeps stale ones).
    const bool q8_0 = acts.type == ActType::Q8_0;
    a.act_sums = q8_0 ? acts.block_sums.data() + tok0 * nb : nullptr;
    a.act_d = q8_0 ? acts.block_d.data() + tok0 * nb : nullptr;
    a.act_tiles = tiles;
    a.y = y + r0;
    a.y_stride = y_stride;
    a.scratch = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) & ~uintptr_t(63));
    p.fn(a);
    r0 = blocked_end;
  }
  for (int64_t o = r0; o < r1; ++o) {
    const uint8_t* wr = w.row(o);
    for (int64_t t = 0; t < n_tok; ++t) y[t * y_stride + o] = p.dot(wr, acts.row(tok0 + t), w.n_in);
  }
}

void check_acts(const Matrix& w, const EncodedActs& acts) {
  const WeightKernels* k = weight_kernels(w.type);
  if (!k || k->act != acts.type || acts.n_in != w.n_in) throw Error("matmul: activation encoding does not match");
}
}  // namespace

void matmul(const Matrix& w, const EncodedActs& acts, float* y, int64_t y_stride, ThreadPool& pool) {
  check_acts(w, acts);
  const int64_t n_tok = acts.n_tok;
  const Plan p = plan_matmul(w, acts.type, n_tok, true);
  const uint8_t* tiles = p.tile_layout ? act_tiles(acts, gemm::TileLayout(p.tile_layout), pool) : nullptr;
  if (p.fn) {
    pool.parallel_for(p.n_groups, [&](int64_t b, int64_t e, int) {
      run_rows(p, w, acts, 0, n_tok, tiles, y, y_stride, b * p.group, e * p.group);
    }, 1, p.group * w.n_in * n_tok);
    run_rows(p, w, acts, 0, n_tok, tiles, y, y_stride, p.n_groups * p.group, w.n_out);  // the rows after the last group
    return;
  }
  pool.parallel_for(w.n_out, [&](int64_t b, int64_t e, int) {
    run_rows(p, w, acts, 0, n_tok, tiles, y, y_stride, b, e);
  }, 16, w.n_in * n_tok);
}

void matmul_many(const std::vector<MatmulJob>& all, ThreadPool& pool) {
  std::vector<MatmulJob> jobs;  // the shared hand-off's
  for (const MatmulJob& j : all) {
    check_acts(j.w, *j.acts);
    if (j.tok0 < 0 || j.n_tok < 0 || j.tok0 + j.n_tok > j.acts->n_tok)
      throw Error("matmul_many: token range out of bounds");
    if (j.n_tok >= kTileMinTokens && j.tok0 == 0 && j.n_tok == j.acts->n_tok)
      matmul(j.w, *j.acts, j.y, j.y_stride, pool);
    else
      jobs.push_back(j);
  }
  // Work units: each job's whole row groups, then one unit for its rows after the last group (per-row dots
  // only: one unit per row). first[j] is job j's first unit.
  std::vector<Plan> plans;
  std::vector<int64_t> first{0};
  int64_t cost = 0;
  for (const MatmulJob& j : jobs) {
    plans.push_back(plan_matmul(j.w, j.acts->type, j.n_tok, false));
    const Plan& p = plans.back();
    const int64_t units = p.fn ? p.n_groups + (p.n_groups * p.group < j.w.n_out) : j.w.n_out;
    first.push_back(first.back() + (j.n_tok ? units : 0));
    cost += (j.n_tok ? j.w.n_out : 0) * j.w.n_in * j.n_tok;
  }
  const int64_t n_units = first.back();
  if (n_units == 0) return;
  pool.parallel_for(n_units, [&](int64_t b, int64_t e, int) {
    size_t j = size_t(std::upper_bound(first.begin(), first.end(), b) - first.begin()) - 1;
    for (int64_t u = b; u < e; ++j) {
      const int64_t u_end = std::min(e, first[j + 1]);
      if (u >= u_end) continue;  // a job without units
      const Plan& p = plans[j];
      const MatmulJob& jb = jobs[j];
      const int64_t lo = u - first[j], hi = u_end - first[j];
      // A unit past the last whole group is the job's rows after it.
      const int64_t r0 = p.fn ? lo * p.group : lo;
      const int64_t r1 = p.fn ? (hi > p.n_groups ? jb.w.n_out : hi * p.group) : hi;
      run_rows(p, jb.w, *jb.acts, jb.tok0, jb.n_tok, nullptr, jb.y, jb.y_stride, r0, r1);
      u = u_end;
    }
  }, 1, cost / n_units);
}

void matmul(const Matrix& w, const float* x, int64_t n_tok, int64_t x_stride, float* y, int64_t y_stride,
            ThreadPool& pool, EncodedActs& scratch) {
  encode_acts(dot_type_of(w.type), x, n_tok, w.n_in, x_stride, scratch, pool);
  matmul(w, scratch, y, y_stride, pool);
}

void dequantize_row(const Matrix& w, int64_t r, float* out) {
  const gguf::TypeTraits& tt = gguf::type_traits(w.type);
  if (!tt.dequantize) throw Error(std::string("cannot dequantize type ") + tt.name);
  tt.dequantize(w.row(r), out, w.n_in);
}

}  // namespace hearth::kernels
