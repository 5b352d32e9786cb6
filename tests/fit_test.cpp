// The memory plan (system/memory_plan.h) on header-only GGUFs with the four real Gemma 4 configurations, the
// hardware probe on a fake /proc and cgroup tree, and `hearth fit` end to end under a simulated memory limit.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "fit_header.h"
#include "gguf/reader.h"
#include "run_command.h"
#include "system/hardware.h"
#include "system/memory_plan.h"
#include "test_data.h"

namespace {

namespace fs = std::filesystem;
using hearth::gguf::GgmlType;
using hearth::system::ModelShape;
using hearth::test::gemma4_header;
using hearth::test::Gemma4Variant;
using hearth::test::kGemma4Variants;
using hearth::test::run_command;

constexpr int64_t kContexts[4] = {4096, 32768, 131072, 262144};

// Hand-computed from GEMMA4.md §1 (F16 cache, one sequence), in MiB:
//  E2B:  12 own SWA layers x min(ctx,512) x 1 head x 256 x (K+V) x 2 B + 3 global x ctx x 1 x 512 x 2 x 2 B
//  E4B:  20 SWA x min(ctx,512) x 2 x 256 x 2 x 2 B + 4 global x ctx x 2 x 512 x 2 x 2 B
//  26B:  25 SWA x min(ctx,1024) x 8 x 256 x 2 x 2 B + 5 global x ctx x 2 x 512 x 2 x 2 B
//  31B:  50 SWA x min(ctx,1024) x 16 x 256 x 2 x 2 B + 10 global x ctx x 4 x 512 x 2 x 2 B
// (26B/31B global layers share one K=V projection but still cache K (normed, roped) and V (neither)
// separately, GEMMA4.md §4.4, as llama.cpp and hearth's runtime do.)
// e.g. E2B at 4096: 12 x 512 x 1024 B = 6 MiB + 3 x 4096 x 2048 B = 24 MiB -> 30 MiB.
constexpr uint64_t MiB = 1 << 20;
constexpr uint64_t kExpectedMiB[4][4] = {
    {30, 198, 774, 1542},       // E2B
    {84, 532, 2068, 4116},      // E4B
    {280, 840, 2760, 5320},     // 26B-A4B
    {1120, 3360, 11040, 21280}, // 31B
};

// The same numbers from the formula, written out per variant (no hearth code involved).
uint64_t formula_kv(const Gemma4Variant& v, int64_t ctx, double bytes_per_elem) {
  const int own = v.layers - v.shared_kv;
  double total = 0;
  for (int l = 0; l < own; ++l) {
    const bool global = l % v.global_every == v.global_every - 1;
    if (global) total += double(ctx) * v.kv_global * 512 * 2 * bytes_per_elem;
    else total += double(std::min<int64_t>(ctx, v.window)) * v.kv_swa * 256 * 2 * bytes_per_elem;
  }
  return uint64_t(total);
}

TEST(FitPlan, KvCacheOfTheFourGemma4ConfigsEqualsHandComputedValues) {
  for (int vi = 0; vi < 4; ++vi) {
    const Gemma4Variant& v = kGemma4Variants[vi];
    // Parse from a buffer that stays alive (the File views it).
    auto w = gemma4_header(v);
    const std::vector<uint8_t> bytes = w.bytes();
    hearth::gguf::ParseOptions po;
    po.header_only = true;
    const hearth::gguf::File f = hearth::gguf::File::parse(bytes, v.name, po);
    const ModelShape m = ModelShape::from_gguf(f);
    EXPECT_EQ(m.n_layer, v.layers);
    EXPECT_EQ(m.weight_bytes, w.weight_bytes()) << v.name;
    for (int ci = 0; ci < 4; ++ci) {
      const int64_t ctx = kContexts[ci];
      const uint64_t kv = hearth::system::kv_cache_bytes(m, ctx, GgmlType::F16);
      EXPECT_EQ(kv, kExpectedMiB[vi][ci] * MiB) << v.name << " ctx " << ctx;
      EXPECT_EQ(kv, formula_kv(v, ctx, 2.0)) << v.name << " ctx " << ctx;
      EXPECT_EQ(hearth::system::kv_cache_bytes(m, ctx, GgmlType::F32), formula_kv(v, ctx, 4.0)) << v.name;
      EXPECT_EQ(hearth::system::kv_cache_bytes(m, ctx, GgmlType::Q8_0), formula_kv(v, ctx, 34.0 / 32.0)) << v.name;
    }
  }
}

TEST(FitPlan, SharedKvLayersOwnNothingAndSlidingLayersStopGrowingAtTheWindow) {
  auto w = gemma4_header(kGemma4Variants[0]);  // E2B: layers 15..34 share
  const std::vector<uint8_t> bytes = w.bytes();
  hearth::gguf::ParseOptions po;
  po.header_only = true;
  const hearth::gguf::File f = hearth::gguf::File::parse(bytes, "e2b", po);
  const ModelShape m = ModelShape::from_gguf(f);
  hearth::system::PlanOptions o;
  o.ctx = 32768;
  const auto p = hearth::system::make_plan(m, o);
  ASSERT_EQ(p.kv_per_layer.size(), 35u);
  for (int l = 15; l < 35; ++l) EXPECT_EQ(p.kv_per_layer[size_t(l)], 0u) << l;
  EXPECT_EQ(p.kv_per_layer[0], 512u * 256 * 2 * 2);     // SWA: W positions, K and V
  EXPECT_EQ(p.kv_per_layer[4], 32768u * 512 * 2 * 2);   // global
  o.ctx = 300;  // below the window: the sliding layers hold ctx positions
  EXPECT_EQ(hearth::system::make_plan(m, o).kv_per_layer[0], 300u * 256 * 2 * 2);
  // Parallel slots multiply the cache.
  o.ctx = 4096;
  const uint64_t one = hearth::system::make_plan(m, o).kv;
  o.parallel = 3;
  EXPECT_EQ(hearth::system::make_plan(m, o).kv, 3 * one);
  // Total is the sum of its parts.
  const auto q = hearth::system::make_plan(m, o);
  EXPECT_EQ(q.total, q.weights + q.kv + q.ring + q.compute + q.extras);
  EXPECT_EQ(q.ring, 3u * 12 * 511 * 256 * 2 * 2);  // runtime ring: W - 1 + 512 rows per sliding layer
}

// A tied LM head (no output.weight) is read from a packed copy where the runtime packs the table's type, while
// the table's rows stay for token lookups: the plan counts that copy, and only then.
TEST(FitPlan, PackedCopyOfATiedEmbeddingTableIsCounted) {
  hearth::gguf::ParseOptions po;
  po.header_only = true;
  auto tied_w = gemma4_header(kGemma4Variants[0], GgmlType::Q4_0);  // E2B, token_embd Q4_0, tied
  const std::vector<uint8_t> tied_bytes = tied_w.bytes();
  const ModelShape tied = ModelShape::from_gguf(hearth::gguf::File::parse(tied_bytes, "e2b", po));
  const uint64_t table = 262144ull * (1536 / 32) * 18;
  EXPECT_EQ(tied.tied_embd_bytes, table);
  EXPECT_EQ(tied.tied_embd_type, GgmlType::Q4_0);

  hearth::system::PlanOptions o;
  const auto none = hearth::system::make_plan(tied, o);  // no predicate: nothing packed
  EXPECT_EQ(none.packed, 0u);
  std::vector<std::pair<GgmlType, int64_t>> asked;
  o.packs_at_load = [&](GgmlType t, int64_t rows) {
    asked.push_back({t, rows});
    return t == GgmlType::Q4_0;
  };
  const auto with = hearth::system::make_plan(tied, o);
  EXPECT_EQ(with.packed, table);
  EXPECT_EQ(with.total, none.total + table);
  EXPECT_EQ(with.total, with.weights + with.kv + with.ring + with.compute + with.packed + with.extras);
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0].first, GgmlType::Q4_0);
  EXPECT_EQ(asked[0].second, 262144);  // the LM head's rows: the vocabulary
  o.packs_at_load = [](GgmlType, int64_t) { return false; };
  EXPECT_EQ(hearth::system::make_plan(tied, o).packed, 0u);

  // A separate output.weight: the LM head is packed in place of its own pages; nothing extra.
  auto untied_w = gemma4_header(kGemma4Variants[0], GgmlType::Q4_0);
  untied_w.tensor("output.weight", GgmlType::Q4_0, {1536, 262144});
  const std::vector<uint8_t> untied_bytes = untied_w.bytes();
  const ModelShape untied = ModelShape::from_gguf(hearth::gguf::File::parse(untied_bytes, "e2b", po));
  EXPECT_EQ(untied.tied_embd_bytes, 0u);
  o.packs_at_load = [](GgmlType, int64_t) { return true; };
  EXPECT_EQ(hearth::system::make_plan(untied, o).packed, 0u);
}

TEST(FitPlan, LargestContextIsTheLargestThatFits) {
  auto w = gemma4_header(kGemma4Variants[3]);  // 31B
  const std::vector<uint8_t> bytes = w.bytes();
  hearth::gguf::ParseOptions po;
  po.header_only = true;
  const hearth::gguf::File f = hearth::gguf::File::parse(bytes, "31b", po);
  const ModelShape m = ModelShape::from_gguf(f);
  hearth::system::PlanOptions o;
  o.ctx = 262144;
  const uint64_t usable = m.weight_bytes + 4 * (uint64_t(1) << 30);  // weights + 4 GiB
  const auto r = hearth::system::check_fit(m, o, usable);
  EXPECT_FALSE(r.fits);
  ASSERT_GT(r.largest_ctx, 0);
  EXPECT_EQ(r.largest_ctx % 256, 0);
  hearth::system::PlanOptions at = o;
  at.ctx = r.largest_ctx;
  EXPECT_LE(hearth::system::make_plan(m, at).total, r.budget);
  at.ctx = r.largest_ctx + 256;
  EXPECT_GT(hearth::system::make_plan(m, at).total, r.budget);
  // Not even the weights: largest context 0.
  EXPECT_EQ(hearth::system::check_fit(m, o, m.weight_bytes / 2).largest_ctx, 0);
  // Plenty: fits, largest = trained context.
  const auto big = hearth::system::check_fit(m, o, m.weight_bytes * 4);
  EXPECT_TRUE(big.fits);
  EXPECT_EQ(big.largest_ctx, 262144);
}

TEST(FitPlan, LoadersRefuseWhatDoesNotFitAndNameTheLargestContext) {
  auto w = gemma4_header(kGemma4Variants[2]);  // 26B-A4B
  const std::vector<uint8_t> bytes = w.bytes();
  hearth::gguf::ParseOptions po;
  po.header_only = true;
  const hearth::gguf::File f = hearth::gguf::File::parse(bytes, "26b", po);
  const ModelShape m = ModelShape::from_gguf(f);
  hearth::system::PlanOptions o;
  o.ctx = 262144;
  const uint64_t usable = m.weight_bytes + (uint64_t(4) << 30);
  const auto r = hearth::system::check_fit(m, o, usable);
  ASSERT_FALSE(r.fits);
  try {
    hearth::system::require_fit(m, o, usable, "cgroup v2 memory.max", false);
    FAIL() << "expected an error";
  } catch (const hearth::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("does not fit"), std::string::npos) << msg;
    EXPECT_NE(msg.find("largest context that fits is " + std::to_string(r.largest_ctx)), std::string::npos) << msg;
    EXPECT_NE(msg.find("cgroup v2 memory.max"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--force"), std::string::npos) << msg;
  }
  EXPECT_FALSE(hearth::system::require_fit(m, o, usable, "x", true).fits);  // --force
  o.ctx = r.largest_ctx;
  EXPECT_TRUE(hearth::system::require_fit(m, o, usable, "x", false).fits);
  // Smaller quants: the largest one whose weights fit with the same KV cache and buffers.
  o.ctx = 262144;
  const std::map<std::string, uint64_t> quants = {{"Q8_0", m.weight_bytes},
                                                  {"Q6_K", m.weight_bytes * 8 / 10},
                                                  {"Q4_K_M", m.weight_bytes * 6 / 10},
                                                  {"Q2_K", m.weight_bytes * 3 / 10}};
  EXPECT_EQ(hearth::system::smaller_quant_that_fits(r, quants), "Q6_K");
  EXPECT_EQ(hearth::system::smaller_quant_that_fits(hearth::system::check_fit(m, o, m.weight_bytes * 4 / 5), quants), "Q2_K");
  EXPECT_EQ(hearth::system::smaller_quant_that_fits(hearth::system::check_fit(m, o, 1 << 30), quants), "");
}

TEST(FitPlan, RequireFitFileReadsEverySplitPart) {
  const fs::path dir = fs::temp_directory_path() / ("hearth-fit-split-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto w = gemma4_header(kGemma4Variants[0]);  // E2B
  uint64_t d1 = 0, d2 = 0;
  const std::vector<uint8_t> h1 = w.bytes(&d1);
  hearth::test::HeaderWriter p2;
  p2.str("general.architecture", "gemma4");
  p2.tensor("extra.weight", GgmlType::F32, {1024, 1024});
  const std::vector<uint8_t> h2 = p2.bytes(&d2);
  const std::string f1 = (dir / "m-00001-of-00002.gguf").string(), f2 = (dir / "m-00002-of-00002.gguf").string();
  std::ofstream(f1, std::ios::binary).write(reinterpret_cast<const char*>(h1.data()), std::streamsize(h1.size()));
  std::ofstream(f2, std::ios::binary).write(reinterpret_cast<const char*>(h2.data()), std::streamsize(h2.size()));
  fs::resize_file(f1, h1.size() + d1);
  fs::resize_file(f2, h2.size() + d2);
  hearth::system::PlanOptions o;
  ::setenv("HEARTH_MEM_LIMIT", "1G", 1);
  try {
    hearth::system::require_fit_file(f1, o, false);
    ADD_FAILURE() << "expected an error";
  } catch (const hearth::Error& e) {
    EXPECT_NE(std::string(e.what()).find("HEARTH_MEM_LIMIT"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("does not fit at any context"), std::string::npos) << e.what();
  }
  const auto r = hearth::system::require_fit_file(f1, o, true);
  EXPECT_EQ(r.plan.weights, w.weight_bytes() + 4u * 1024 * 1024);
  ::unsetenv("HEARTH_MEM_LIMIT");
  fs::remove_all(dir);
}

TEST(FitPlan, KvTypeNames) {
  EXPECT_EQ(hearth::system::kv_type_from_name("Q8_0"), GgmlType::Q8_0);
  EXPECT_EQ(hearth::system::kv_type_from_name("f16"), GgmlType::F16);
  EXPECT_THROW(hearth::system::kv_type_from_name("q3"), hearth::Error);
}

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("hearth-fit-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

void write(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << s;
}

TEST(FitHardware, ParsesMeminfoAndSizes) {
  const std::string mi = "MemTotal:       16000000 kB\nMemFree:         1000 kB\nMemAvailable:    8000000 kB\n";
  EXPECT_EQ(hearth::system::meminfo_value(mi, "MemAvailable"), uint64_t(8000000) * 1024);
  EXPECT_EQ(hearth::system::meminfo_value(mi, "Nope"), std::nullopt);
  EXPECT_EQ(hearth::system::parse_size("8G"), uint64_t(8) << 30);
  EXPECT_EQ(hearth::system::parse_size("512MiB"), uint64_t(512) << 20);
  EXPECT_EQ(hearth::system::parse_size("1.5g"), uint64_t(3) << 29);
  EXPECT_EQ(hearth::system::parse_size("1234"), 1234u);
  EXPECT_EQ(hearth::system::parse_size("max"), std::nullopt);
  EXPECT_THROW(hearth::system::parse_size("12X"), hearth::Error);
  EXPECT_THROW(hearth::system::parse_size("-1"), hearth::Error);
}

TEST(FitHardware, CgroupV2LimitCapsMemAvailable) {
  TempDir t;
  hearth::system::ProbePaths p;
  p.meminfo = (t.path() / "meminfo").string();
  p.cgroup_self = (t.path() / "self_cgroup").string();
  p.cgroup_root = (t.path() / "cg").string();
  write(p.meminfo, "MemTotal: 16777216 kB\nMemAvailable: 8388608 kB\n");  // 16 GiB, 8 GiB available
  write(p.cgroup_self, "0::/user.slice/app\n");
  write(t.path() / "cg/user.slice/app/memory.max", "4294967296\n");      // 4 GiB
  write(t.path() / "cg/user.slice/app/memory.current", "1073741824\n");  // 1 GiB used
  write(t.path() / "cg/user.slice/memory.max", "max\n");
  ::unsetenv("HEARTH_MEM_LIMIT");
  auto hw = hearth::system::probe(p);
  EXPECT_EQ(hw.mem_total, uint64_t(16) << 30);
  EXPECT_EQ(hw.mem_available, uint64_t(8) << 30);
  ASSERT_TRUE(hw.cgroup_limit.has_value());
  EXPECT_EQ(*hw.cgroup_limit, uint64_t(4) << 30);
  EXPECT_EQ(hw.usable, uint64_t(3) << 30);
  EXPECT_EQ(hw.usable_source, "cgroup v2 memory.max");
  EXPECT_GE(hw.cores, 1);
  // An ancestor's tighter limit wins.
  write(t.path() / "cg/user.slice/memory.max", "2147483648\n");
  write(t.path() / "cg/user.slice/memory.current", "1610612736\n");  // 1.5 GiB of 2 used
  hw = hearth::system::probe(p);
  EXPECT_EQ(hw.usable, uint64_t(1) << 29);
  // Unlimited cgroup: MemAvailable.
  write(t.path() / "cg/user.slice/memory.max", "max\n");
  write(t.path() / "cg/user.slice/app/memory.max", "max\n");
  hw = hearth::system::probe(p);
  EXPECT_FALSE(hw.cgroup_limit.has_value());
  EXPECT_EQ(hw.usable, uint64_t(8) << 30);
  // The simulated limit wins over everything.
  hw = hearth::system::probe(p, uint64_t(1) << 30);
  EXPECT_EQ(hw.usable, uint64_t(1) << 30);
  EXPECT_EQ(hw.usable_source, "--mem-limit");
}

TEST(FitHardware, CgroupV1Limit) {
  TempDir t;
  hearth::system::ProbePaths p;
  p.meminfo = (t.path() / "meminfo").string();
  p.cgroup_self = (t.path() / "self_cgroup").string();
  p.cgroup_root = (t.path() / "cg").string();
  write(p.meminfo, "MemTotal: 16777216 kB\nMemAvailable: 8388608 kB\n");
  write(p.cgroup_self, "5:cpu,cpuacct:/docker/x\n4:memory:/docker/x\n");
  write(t.path() / "cg/memory/docker/x/memory.limit_in_bytes", "2147483648\n");
  write(t.path() / "cg/memory/docker/x/memory.usage_in_bytes", "0\n");
  ::unsetenv("HEARTH_MEM_LIMIT");
  const auto hw = hearth::system::probe(p);
  EXPECT_EQ(hw.usable, uint64_t(2) << 30);
  EXPECT_EQ(hw.usable_source, "cgroup v1 memory.limit_in_bytes");
  // "No limit" in v1 is a huge number.
  write(t.path() / "cg/memory/docker/x/memory.limit_in_bytes", "9223372036854771712\n");
  EXPECT_EQ(hearth::system::probe(p).usable, uint64_t(8) << 30);
}

TEST(FitCli, FitsDoesNotFitAndLargestContextUnderASimulatedLimit) {
  TempDir t;
  const Gemma4Variant& v = kGemma4Variants[2];  // 26B-A4B
  auto w = gemma4_header(v);
  uint64_t data_size = 0;
  const std::vector<uint8_t> bytes = w.bytes(&data_size);
  const std::string file = (t.path() / "26b.gguf").string();
  std::ofstream(file, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  fs::resize_file(file, bytes.size() + data_size);  // sparse: the tensor data is never read
  const std::string hearth = hearth::test::hearth_binary();

  // Plenty of memory: fits, exit 0, the JSON plan carries the hand-computed KV number.
  const uint64_t weights = w.weight_bytes();
  const std::string big = std::to_string(weights + (uint64_t(8) << 30));
  auto r = run_command("HEARTH_MEM_LIMIT=" + big + " " + hearth + " fit " + file + " --ctx 32768 --json");
  ASSERT_EQ(r.status, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  EXPECT_TRUE(j["fits"].get<bool>());
  EXPECT_EQ(j["plan"]["kv_cache"].get<uint64_t>(), 840 * MiB);
  EXPECT_EQ(j["plan"]["weights"].get<uint64_t>(), weights);
  EXPECT_EQ(j["machine"]["usable_source"], "HEARTH_MEM_LIMIT");

  // weights + 4 GiB (minus the 5 % margin): 256k context does not fit -> exit 3 with the largest context that does.
  const std::string small = std::to_string(weights + (uint64_t(4) << 30));
  r = run_command("HEARTH_MEM_LIMIT=" + small + " " + hearth + " fit " + file + " --ctx 262144 --json");
  ASSERT_EQ(r.status, 3) << r.output;
  j = nlohmann::json::parse(r.output);
  EXPECT_FALSE(j["fits"].get<bool>());
  const int64_t largest = j["largest_ctx"].get<int64_t>();
  EXPECT_GT(largest, 1024);
  EXPECT_LT(largest, 262144);
  // At that context it fits; one step (256) more does not.
  r = run_command("HEARTH_MEM_LIMIT=" + small + " " + hearth + " fit " + file + " --ctx " + std::to_string(largest));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("fits: yes"), std::string::npos) << r.output;
  r = run_command("HEARTH_MEM_LIMIT=" + small + " " + hearth + " fit " + file + " --ctx " + std::to_string(largest + 256));
  EXPECT_EQ(r.status, 3) << r.output;
  EXPECT_NE(r.output.find("fits: NO"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("largest context that fits: " + std::to_string(largest)), std::string::npos) << r.output;

  // serve and run refuse to load it (before touching the weights) and name the largest context that fits.
  for (const char* cmd : {" serve --port 0 ", " run "}) {
    r = run_command("HEARTH_MEM_LIMIT=" + small + " " + hearth + cmd + file + " --ctx 262144 </dev/null");
    EXPECT_EQ(r.status, 1) << cmd << r.output;
    EXPECT_NE(r.output.find("does not fit"), std::string::npos) << cmd << r.output;
    EXPECT_NE(r.output.find("largest context that fits is " + std::to_string(largest)), std::string::npos)
        << cmd << r.output;
    EXPECT_NE(r.output.find("--force"), std::string::npos) << cmd << r.output;
  }

  // Human output names the plan's parts.
  r = run_command(hearth + " fit " + file + " --mem-limit 4G");
  EXPECT_EQ(r.status, 3) << r.output;
  EXPECT_NE(r.output.find("weights alone do not fit"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("KV cache"), std::string::npos);
  EXPECT_NE(r.output.find("--mem-limit"), std::string::npos);

  // Bad input: clear errors.
  r = run_command(hearth + " fit " + file + " --kv-type q3");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("unknown KV cache type"), std::string::npos) << r.output;
}

TEST(FitCli, RealModelFile) {
  const std::string m = hearth::test::testdata("models/tiny-gemma4-dense.gguf");
  HEARTH_REQUIRE_FILE(m);
  auto r = run_command(hearth::test::hearth_binary() + " fit " + m + " --json --ctx 64");
  ASSERT_EQ(r.status, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  EXPECT_GT(j["plan"]["weights"].get<uint64_t>(), 0u);
  EXPECT_EQ(j["plan"]["ctx"].get<int64_t>(), 64);
}

}  // namespace
