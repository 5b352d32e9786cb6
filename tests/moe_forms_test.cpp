// Gemma 4 MoE experts stored in either form GGUF files use: one fused ffn_gate_up_exps (what current converters
// write: per expert, gate rows then up rows) or the split pair ffn_gate_exps + ffn_up_exps. The same weights
// must give the same logits both ways, on the prompt path (many tokens per expert: the tile kernels, one
// product per expert) and on decode (a few tokens per expert: every expert in one hand-off).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "gguf/writer.h"
#include "models/model.h"
#include "run_command.h"
#include "runtime/sampler.h"
#include "runtime/session.h"
#include "test_data.h"

namespace {

namespace fs = std::filesystem;
using hearth::gguf::File;

std::string scratch(const std::string& name) {
  const fs::path dir = fs::path(testing::TempDir()) / ("hearth-moe-forms-" + std::to_string(getpid()));
  fs::create_directories(dir);
  return (dir / name).string();
}

const std::string kFused = ".ffn_gate_up_exps.weight";

// Copies `src` to `dst` with every fused expert gate/up tensor written as the split pair (same bytes).
// Returns how many tensors were split.
int write_split_copy(const File& src, const std::string& dst) {
  hearth::gguf::Writer w;
  w.set_alignment(uint32_t(src.alignment()));
  for (const auto& [key, value] : src.metadata())
    if (key != "general.alignment") w.set_raw(key, value);
  int split = 0;
  for (const hearth::gguf::TensorInfo& t : src.tensors()) {
    std::vector<int64_t> ne(t.ne.begin(), t.ne.begin() + t.n_dims);
    const std::string& n = t.name;
    if (n.size() <= kFused.size() || n.compare(n.size() - kFused.size(), kFused.size(), kFused) != 0) {
      w.add_tensor(n, t.type, ne, std::vector<uint8_t>(t.data, t.data + t.n_bytes));
      continue;
    }
    const int64_t fe = ne[1] / 2, E = ne[2];
    const size_t row = t.n_bytes / size_t(ne[1] * E), half = size_t(fe) * row;
    const std::string block = n.substr(0, n.size() - kFused.size());
    for (const int part : {0, 1}) {  // 0: gate (the first fe rows of each expert), 1: up
      std::vector<uint8_t> bytes;
      for (int64_t e = 0; e < E; ++e) {
        const uint8_t* p = t.data + size_t(e) * 2 * half + size_t(part) * half;
        bytes.insert(bytes.end(), p, p + half);
      }
      w.add_tensor(block + (part ? ".ffn_up_exps.weight" : ".ffn_gate_exps.weight"), t.type, {ne[0], fe, E},
                   std::move(bytes));
    }
    ++split;
  }
  w.write(dst);
  return split;
}

struct Outputs {
  std::vector<float> logits;  // prompt rows, then one row per decode step
  std::vector<int32_t> generated;
};

// The prompt as one batch (all logits), then `steps` greedy tokens one at a time.
Outputs run(const std::string& path, const std::vector<int32_t>& prompt, int steps) {
  auto file = std::make_shared<const File>(File::open(path));
  auto model = hearth::models::load_model(file);
  hearth::runtime::SessionOptions so;
  so.n_ctx = 256;
  so.n_batch = 256;
  so.kv_type = hearth::models::KvType::F32;
  so.n_threads = 2;
  hearth::runtime::Session s(*model, so);
  const int V = model->info().n_vocab;
  Outputs r;
  s.eval(prompt, /*all_logits=*/true);
  r.logits.assign(s.logits().begin(), s.logits().begin() + ptrdiff_t(prompt.size() * size_t(V)));
  int32_t next = hearth::runtime::argmax(r.logits.data() + (prompt.size() - 1) * size_t(V), V);
  for (int i = 0; i < steps; ++i) {
    r.generated.push_back(next);
    const float* row = s.eval({next});
    r.logits.insert(r.logits.end(), row, row + V);
    next = hearth::runtime::argmax(row, V);
  }
  return r;
}

class MoeForms : public testing::TestWithParam<const char*> {};

TEST_P(MoeForms, FusedAndSplitGateUpGiveTheSameLogits) {
  const std::string fused = scratch(std::string("fused-") + GetParam() + ".gguf");
  const std::string split = scratch(std::string("split-") + GetParam() + ".gguf");
  const auto r = hearth::test::run_command(hearth::test::hearth_binary() + " synth -q --preset tiny-moe --wtype " +
                                           GetParam() + " --seed 11 -o " + hearth::test::shell_quote(fused));
  ASSERT_EQ(r.status, 0) << r.output;
  {
    const File f = File::open(fused);
    ASSERT_EQ(write_split_copy(f, split), int(f.get_int("gemma4.block_count")));
  }
  const File s = File::open(split);
  ASSERT_EQ(s.find_tensor("blk.0" + kFused), nullptr);
  ASSERT_EQ(s.tensor("blk.0.ffn_up_exps.weight").shape_string(), "[256, 128, 16]");

  // 48 prompt tokens x 4 experts each over 16 experts: about 12 tokens per expert (the prompt path);
  // decode: one token, 4 experts with one row each.
  std::vector<int32_t> prompt;
  for (int i = 0; i < 48; ++i) prompt.push_back(int32_t(2 + (i * 37) % 1000));
  const Outputs a = run(fused, prompt, 8), b = run(split, prompt, 8);
  EXPECT_EQ(a.generated, b.generated);
  ASSERT_EQ(a.logits.size(), b.logits.size());
  size_t differ = 0;
  float worst = 0;
  for (size_t i = 0; i < a.logits.size(); ++i) {
    differ += a.logits[i] != b.logits[i];
    worst = std::max(worst, std::fabs(a.logits[i] - b.logits[i]));
  }
  // Each output row is the same dot product whichever tensor it comes from: the same bits.
  EXPECT_EQ(differ, 0u) << "max |d| " << worst;
  fs::remove(fused);
  fs::remove(split);
}

INSTANTIATE_TEST_SUITE_P(WeightTypes, MoeForms, testing::Values("F32", "Q8_0", "Q4_0"),
                         [](const testing::TestParamInfo<const char*>& i) { return std::string(i.param); });

}  // namespace
