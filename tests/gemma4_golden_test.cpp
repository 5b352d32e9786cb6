// Gemma 4 forward pass against llama.cpp's golden logits (../shared/testdata/golden), teacher-forced, with
// the tolerance profiles of ../shared/tools/compare.py (see ../shared/testdata/golden/README.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "kernels/ggml_order.h"
#include "models/model.h"
#include "runtime/sampler.h"
#include "runtime/session.h"
#include "test_data.h"

namespace {

using hearth::test::testdata;
using json = nlohmann::json;

struct Profile {
  double tol, tie, min_top1;
  int max_outliers;
};

// compare.py's profiles, picked from the model name the same way.
Profile profile_for(const std::string& model) {
  for (const char* k : {"q4_0", "q8_0", "bf16", "f16", "moe"}) {
    if (model.find(k) == std::string::npos) continue;
    const std::string key = k;
    if (key == "q4_0" || key == "q8_0") return {0.5, 1e-3, 0.95, 0};
    if (key == "bf16" || key == "f16") return {1e-1, 1e-3, 1.0, 0};
    return {2e-2, 1e-3, 1.0, 2};
  }
  return {2e-2, 1e-3, 1.0, 0};
}

struct Golden {
  std::string model;
  std::vector<int32_t> prompt, tokens;
  std::vector<std::vector<float>> rows;  // prompt positions, then greedy steps
  std::vector<int32_t> argmax;
  std::vector<float> gap;  // top1 - top2 of the golden row
};

Golden read_golden(const std::string& path) {
  std::ifstream f(path);
  json j = json::parse(f);
  Golden g;
  g.model = j["model"];
  g.prompt = j["prompt"].get<std::vector<int32_t>>();
  g.tokens = j["greedy"]["tokens"].get<std::vector<int32_t>>();
  auto add = [&](const json& e) {
    g.rows.push_back(e["logits"].get<std::vector<float>>());
    g.argmax.push_back(e["argmax"]);
    g.gap.push_back(float(double(e["top"][0][1]) - double(e["top"][1][1])));
  };
  for (const json& e : j["prompt_logits"]) add(e);
  for (const json& e : j["greedy"]["steps"]) add(e);
  return g;
}

// Evaluates the golden prompt as one batch (or in chunks of n_batch), then feeds the golden greedy tokens
// one per step; returns one logits row per golden row.
std::vector<std::vector<float>> run_teacher_forced(const std::string& model_path, const Golden& g, int n_batch,
                                                   hearth::models::KvType kv, int threads = 2) {
  auto file = std::make_shared<const hearth::gguf::File>(hearth::gguf::File::open(model_path));
  auto model = hearth::models::load_model(file);
  hearth::runtime::SessionOptions so;
  so.n_ctx = 512;
  so.n_batch = n_batch;
  so.kv_type = kv;
  so.n_threads = threads;
  hearth::runtime::Session s(*model, so);
  const int V = model->info().n_vocab;
  std::vector<std::vector<float>> rows;
  s.eval(g.prompt, /*all_logits=*/true);
  for (size_t i = 0; i < g.prompt.size(); ++i)
    rows.emplace_back(s.logits().begin() + ptrdiff_t(i * size_t(V)), s.logits().begin() + ptrdiff_t((i + 1) * size_t(V)));
  for (size_t j = 0; j + 1 < g.tokens.size(); ++j) {
    const float* r = s.eval({g.tokens[j]});
    rows.emplace_back(r, r + V);
  }
  return rows;
}

struct Verdict {
  bool ok = true;
  double worst = 0;
  int top1 = 0, n = 0;
  std::string report;
};

// compare.py's rules: per-position max|d| <= tol, top-1 agreement (near-ties excused), MoE router-flip spikes.
Verdict compare(const Golden& g, const std::vector<std::vector<float>>& cand, Profile p) {
  Verdict v;
  int outliers = 0;
  double tol = p.tol;
  for (size_t i = 0; i < g.rows.size(); ++i) {
    double d = 0;
    for (size_t k = 0; k < g.rows[i].size(); ++k) d = std::max(d, std::fabs(double(g.rows[i][k]) - cand[i][k]));
    const int am = hearth::runtime::argmax(cand[i].data(), int(cand[i].size()));
    const bool top1 = am == g.argmax[i];
    const bool near_tie = g.gap[i] < p.tie;
    v.worst = std::max(v.worst, d);
    v.top1 += top1;
    ++v.n;
    const bool bad_d = !(d <= tol);
    const bool bad_t = p.min_top1 >= 1.0 && !(top1 || near_tie);
    const bool spike = 5.0 * p.tol < d && d <= 2.0;
    if ((bad_d || bad_t) && spike && outliers < p.max_outliers) {
      ++outliers;
      tol = std::max(tol, 1e-1);
      v.report += "row " + std::to_string(i) + " excused as router flip (|d| " + std::to_string(d) + ")\n";
    } else if (bad_d || bad_t) {
      v.ok = false;
      v.report += "row " + std::to_string(i) + " FAIL |d| " + std::to_string(d) + (top1 ? "" : " top-1 differs") + "\n";
    }
  }
  if (p.min_top1 < 1.0 && double(v.top1) / v.n < p.min_top1) {
    v.ok = false;
    v.report += "top-1 agreement " + std::to_string(v.top1) + "/" + std::to_string(v.n) + " below the minimum\n";
  }
  return v;
}

struct Case {
  std::string golden;  // file in golden/
  std::string model;   // file in models/
};

std::vector<Case> golden_cases() {
  std::vector<Case> c;
  for (const char* m : {"tiny-gemma4-dense", "tiny-gemma4-dense-f16", "tiny-gemma4-dense-bf16", "tiny-gemma4-dense-q8_0",
                        "tiny-gemma4-dense-q4_0", "tiny-gemma4-dense-spm", "tiny-gemma4-moe", "tiny-gemma4-ple"})
    for (const char* p : {"p1", "p2"}) c.push_back({std::string(m) + "-" + p + ".json", std::string(m) + ".gguf"});
  c.push_back({"tiny-gemma4-dense-p1-t1.json", "tiny-gemma4-dense.gguf"});
  return c;
}

// The goldens were made on an AMD Zen 4 (AVX-512, AVX512-BF16): emulate llama.cpp's summation orders there.
const hearth::kernels::ggml::Profile kZen4{16, true};

// Every test here emulates the golden machine and restores this machine's profile afterwards.
class ZenProfile : public ::testing::Environment {
 public:
  void SetUp() override {
    native_ = hearth::kernels::ggml::profile();
    hearth::kernels::ggml::set_profile(kZen4);
  }
  void TearDown() override { hearth::kernels::ggml::set_profile(native_); }

 private:
  hearth::kernels::ggml::Profile native_;
};
const auto* const kZenEnv = ::testing::AddGlobalTestEnvironment(new ZenProfile);

class GoldenTest : public ::testing::TestWithParam<Case> {};

TEST_P(GoldenTest, TeacherForcedLogitsMatchLlamaCpp) {
  const Case& c = GetParam();
  const std::string gpath = testdata("golden/" + c.golden), mpath = testdata("models/" + c.model);
  HEARTH_REQUIRE_FILE(gpath);
  HEARTH_REQUIRE_FILE(mpath);
  const Golden g = read_golden(gpath);
  const auto cand = run_teacher_forced(mpath, g, 512, hearth::models::KvType::F32);
  ASSERT_EQ(cand.size(), g.rows.size());
  const Verdict v = compare(g, cand, profile_for(g.model));
  EXPECT_TRUE(v.ok) << c.golden << ": worst " << v.worst << "\n" << v.report;
  // Beyond the tolerance: hearth reproduces llama.cpp's arithmetic order, so the logits are identical.
  EXPECT_EQ(v.worst, 0.0) << c.golden << " is no longer bit-exact with llama.cpp";
  std::printf("%s: worst max|dlogit| %.3e, top-1 %d/%d\n", c.golden.c_str(), v.worst, v.top1, v.n);
}

INSTANTIATE_TEST_SUITE_P(AllGoldens, GoldenTest, ::testing::ValuesIn(golden_cases()),
                         [](const ::testing::TestParamInfo<Case>& i) {
                           std::string n = i.param.golden.substr(0, i.param.golden.size() - 5);
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

// The prompt evaluated in small chunks (and one token at a time) must agree with the one-batch goldens:
// exercises the sliding-window ring buffer (window 16, P2 has 48 tokens) across batch boundaries.
TEST(GoldenChunked, SmallBatchesMatch) {
  for (const char* m : {"tiny-gemma4-dense", "tiny-gemma4-ple", "tiny-gemma4-moe"}) {
    const std::string gpath = testdata(std::string("golden/") + m + "-p2.json");
    const std::string mpath = testdata(std::string("models/") + m + ".gguf");
    HEARTH_REQUIRE_FILE(gpath);
    const Golden g = read_golden(gpath);
    for (int nb : {1, 5, 16}) {
      const auto cand = run_teacher_forced(mpath, g, nb, hearth::models::KvType::F32, 1);
      const Verdict v = compare(g, cand, profile_for(g.model));
      EXPECT_TRUE(v.ok) << m << " n_batch " << nb << ": worst " << v.worst << "\n" << v.report;
    }
  }
}

// hearth's default F16 cache against llama.cpp's own F16-cache + flash-attention run, with the looser
// tolerances the golden README gives for that calibration (llama.cpp differs from itself by that much:
// its CPU flash attention even accumulates V in F16). Quantized models: top-1 on >= 90 % of positions
// (llama.cpp's own greedy path diverges on dense-q4_0 between its two settings).
TEST(GoldenKvF16, DefaultCacheAgreesWithLlamaCppDefaults) {
  for (const char* m : {"tiny-gemma4-dense", "tiny-gemma4-moe", "tiny-gemma4-ple", "tiny-gemma4-dense-q8_0",
                        "tiny-gemma4-dense-q4_0"}) {
    const std::string gpath = testdata(std::string("golden/") + m + "-p1-kvf16-fa.json");
    HEARTH_REQUIRE_FILE(gpath);
    const Golden g = read_golden(gpath);
    const auto cand = run_teacher_forced(testdata(std::string("models/") + m + ".gguf"), g, 512,
                                         hearth::models::KvType::F16);
    Profile p = profile_for(g.model);
    p.tie = 5e-3;
    p.tol = p.min_top1 < 1.0 ? 1.0 : 1e-1;
    if (p.min_top1 < 1.0) p.min_top1 = 0.9;
    const Verdict v = compare(g, cand, p);
    EXPECT_TRUE(v.ok) << m << ": worst " << v.worst << "\n" << v.report;
  }
}

// Two sequences in one batch (different prompts, interleaved) give the same logits as each alone.
TEST(GoldenBatching, TwoSequencesShareABatch) {
  const std::string mpath = testdata("models/tiny-gemma4-ple.gguf");
  HEARTH_REQUIRE_FILE(mpath);
  auto file = std::make_shared<const hearth::gguf::File>(hearth::gguf::File::open(mpath));
  auto model = hearth::models::load_model(file);
  const int V = model->info().n_vocab;
  hearth::kernels::ThreadPool pool(2);
  const std::vector<int32_t> a = {2, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150, 160, 170, 180, 190};
  const std::vector<int32_t> b = {2, 11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22};
  auto alone = [&](const std::vector<int32_t>& t) {
    hearth::models::KvCacheOptions ko;
    ko.n_ctx = 64;
    ko.type = hearth::models::KvType::F32;
    auto kv = model->make_cache(ko);
    hearth::models::Batch batch;
    for (size_t i = 0; i < t.size(); ++i) batch.add(t[i], int32_t(i), 0, true);
    hearth::models::ForwardOutput out;
    model->forward(batch, *kv, out, pool);
    return out.logits;
  };
  const std::vector<float> la = alone(a), lb = alone(b);
  hearth::models::KvCacheOptions ko;
  ko.n_ctx = 64;
  ko.n_seq = 2;
  ko.type = hearth::models::KvType::F32;
  auto kv = model->make_cache(ko);
  hearth::models::Batch batch;
  std::vector<std::pair<int, size_t>> order;
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    if (i < a.size()) batch.add(a[i], int32_t(i), 0, true), order.push_back({0, i});
    if (i < b.size()) batch.add(b[i], int32_t(i), 1, true), order.push_back({1, i});
  }
  hearth::models::ForwardOutput out;
  model->forward(batch, *kv, out, pool);
  double worst = 0;
  for (size_t r = 0; r < order.size(); ++r) {
    const std::vector<float>& ref = order[r].first == 0 ? la : lb;
    for (int k = 0; k < V; ++k)
      worst = std::max(worst, std::fabs(double(out.logits[r * size_t(V) + size_t(k)]) -
                                        ref[order[r].second * size_t(V) + size_t(k)]));
  }
  EXPECT_LT(worst, 1e-4);
  EXPECT_EQ(kv->n_past(0), int32_t(a.size()));
  EXPECT_EQ(kv->n_past(1), int32_t(b.size()));
}

// Invalid batches are refused with a clear error and leave the cache untouched.
TEST(GoldenBatching, BadBatchesAreRejected) {
  const std::string mpath = testdata("models/tiny-gemma4-dense.gguf");
  HEARTH_REQUIRE_FILE(mpath);
  auto file = std::make_shared<const hearth::gguf::File>(hearth::gguf::File::open(mpath));
  auto model = hearth::models::load_model(file);
  hearth::kernels::ThreadPool pool(1);
  hearth::models::KvCacheOptions ko;
  ko.n_ctx = 8;
  auto kv = model->make_cache(ko);
  hearth::models::ForwardOutput out;
  auto run = [&](std::vector<int32_t> tok, std::vector<int32_t> pos, std::vector<int32_t> seq) {
    hearth::models::Batch b;
    for (size_t i = 0; i < tok.size(); ++i) b.add(tok[i], pos[i], seq[i], true);
    model->forward(b, *kv, out, pool);
  };
  EXPECT_THROW(run({2, 5000}, {0, 1}, {0, 0}), hearth::Error);     // token outside the vocabulary
  EXPECT_THROW(run({2, -1}, {0, 1}, {0, 0}), hearth::Error);       // negative token
  EXPECT_THROW(run({2, 3}, {0, 2}, {0, 0}), hearth::Error);        // gap in positions
  EXPECT_THROW(run({2}, {1}, {0}), hearth::Error);                 // does not continue the cache
  EXPECT_THROW(run({2}, {0}, {1}), hearth::Error);                 // no such sequence
  EXPECT_THROW(run(std::vector<int32_t>(9, 2), {0, 1, 2, 3, 4, 5, 6, 7, 8}, std::vector<int32_t>(9, 0)),
               hearth::Error);                                      // beyond the context
  EXPECT_EQ(kv->n_past(0), 0);
  run({2, 10}, {0, 1}, {0, 0});
  EXPECT_EQ(kv->n_past(0), 2);
}

}  // namespace
