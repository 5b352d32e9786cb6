// hearth synth: files that llama.cpp loads and on which hearth's logits agree with llama.cpp's (the tiny
// presets, every weight type, both toy tokenizers), deterministic output whatever the thread count,
// weight encodings byte-identical to gguf-py's, and clear errors for impossible shapes.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "gguf/reader.h"
#include "run_command.h"
#include "test_data.h"
#include "tokenizer/tokenizer.h"

namespace {

namespace fs = std::filesystem;
using hearth::test::run_command;
using hearth::test::shell_quote;

std::string hearth() { return hearth::test::hearth_binary(); }

std::string scratch(const std::string& name) {
  const fs::path dir = fs::path(testing::TempDir()) / ("hearth-synth-" + std::to_string(getpid()));
  fs::create_directories(dir);
  return (dir / name).string();
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string synth(const std::string& name, const std::string& args) {
  const std::string out = scratch(name);
  auto r = run_command(hearth() + " synth -q " + args + " -o " + shell_quote(out));
  EXPECT_EQ(r.status, 0) << r.output;
  return out;
}

bool have_reference() {
  return fs::exists(hearth::test::tools_dir() + "/llamacpp-logits.sh") &&
         fs::exists(hearth::test::ref_dir() + "/node_modules/node-llama-cpp") &&
         run_command("/usr/bin/python3 -c 'import numpy'").status == 0;
}

struct ParityCase {
  const char* label;
  const char* args;
};

class SynthParity : public testing::TestWithParam<ParityCase> {};

// llama.cpp's prompt logits and 16-token greedy continuation on the synthesized file, then hearth teacher-
// forced on the same tokens, judged by compare.py (the tolerance profiles of the goldens).
TEST_P(SynthParity, LlamaCppLoadsItAndAgreesWithHearth) {
  if (!have_reference()) GTEST_SKIP() << "llama.cpp reference not installed (scripts/setup-reference.sh)";
  const ParityCase& pc = GetParam();
  const std::string model = synth(std::string(pc.label) + ".gguf", pc.args);
  const std::string ref = model + ".ref.json", cand = model + ".hearth.json";
  const std::string tools = hearth::test::tools_dir();
  auto r = run_command(shell_quote(tools + "/llamacpp-logits.sh") + " --model " + shell_quote(model) +
                       " --tokens 2,10,20,30,40,50,60,70 --n-gen 16 --full-logits --full-gen-logits --out " +
                       shell_quote(ref));
  ASSERT_EQ(r.status, 0) << "llama.cpp could not run the file:\n" << r.output;
  const auto j = nlohmann::json::parse(slurp(ref));
  std::string cont;
  const auto& toks = j["greedy"]["tokens"];
  for (size_t i = 0; i + 1 < toks.size(); ++i) {
    if (i) cont += ',';
    cont += std::to_string(toks[i].get<int>());
  }
  r = run_command(hearth() + " logits -m " + shell_quote(model) + " --tokens 2,10,20,30,40,50,60,70 --continue " + cont +
                  " --full -o " + shell_quote(cand));
  ASSERT_EQ(r.status, 0) << r.output;
  r = run_command("/usr/bin/python3 " + shell_quote(tools + "/compare.py") + " " + shell_quote(ref) + " " +
                  shell_quote(cand) + " --quiet");
  EXPECT_EQ(r.status, 0) << r.output;
  const std::string key = "worst max|dlogit| = ";
  if (const size_t at = r.output.find(key); at != std::string::npos)
    std::printf("[ synth ] %s: max|dlogit| vs llama.cpp = %s\n", pc.label,
                r.output.substr(at + key.size(), r.output.find(' ', at + key.size()) - at - key.size()).c_str());
}

INSTANTIATE_TEST_SUITE_P(
    TinyPresets, SynthParity,
    testing::Values(ParityCase{"tiny_dense", "--preset tiny-dense"},
                    ParityCase{"tiny_dense_q8_0", "--preset tiny-dense --wtype Q8_0"},
                    ParityCase{"tiny_dense_q4_0", "--preset tiny-dense --wtype Q4_0"},
                    ParityCase{"tiny_dense_bf16", "--preset tiny-dense --wtype BF16"},
                    ParityCase{"tiny_dense_spm", "--preset tiny-dense --tokenizer spm --seed 7"},
                    ParityCase{"tiny_moe", "--preset tiny-moe"},
                    ParityCase{"tiny_moe_split", "--preset tiny-moe --fused-gate-up false --expert-down-scale false"},
                    ParityCase{"tiny_ple", "--preset tiny-ple"}),
    [](const testing::TestParamInfo<ParityCase>& i) { return std::string(i.param.label); });

TEST(Synth, SameBytesWhateverTheThreadCount) {
  const std::string a = synth("det1.gguf", "--preset tiny-moe --wtype Q4_0 --threads 1");
  const std::string b = synth("det2.gguf", "--preset tiny-moe --wtype Q4_0 --threads 2");
  const std::string c = synth("det3.gguf", "--preset tiny-moe --wtype Q4_0 --seed 99");
  EXPECT_TRUE(slurp(a) == slurp(b)) << "thread count changed the output";
  EXPECT_FALSE(slurp(a) == slurp(c)) << "seed did not change the output";
}

TEST(Synth, WritesTheShapesOfThePreset) {
  const std::string p = synth("ple.gguf", "--preset tiny-ple");
  const auto f = hearth::gguf::File::open(p);
  EXPECT_EQ(f.get_string("general.architecture"), "gemma4");
  EXPECT_EQ(f.get_int("gemma4.block_count"), 10);
  EXPECT_EQ(f.get_int("gemma4.attention.shared_kv_layers"), 5);
  EXPECT_EQ(f.find("gemma4.feed_forward_length")->int_array("ffn"),
            (std::vector<int64_t>{512, 512, 512, 512, 512, 1024, 1024, 1024, 1024, 1024}));
  EXPECT_EQ(f.tensor("per_layer_token_embd.weight").shape_string(), "[640, 1024]");
  EXPECT_EQ(f.find_tensor("blk.5.attn_k.weight"), nullptr);  // KV-shared layers own no K/V
  EXPECT_NE(f.find_tensor("blk.4.attn_k.weight"), nullptr);
  const std::string m = synth("moe.gguf", "--preset tiny-moe --layers 2 --pattern SF");
  const auto g = hearth::gguf::File::open(m);
  EXPECT_EQ(g.tensor("blk.0.ffn_gate_up_exps.weight").shape_string(), "[256, 256, 16]");
  EXPECT_EQ(g.find_tensor("blk.1.attn_v.weight"), nullptr);  // K = V on full-attention layers
  EXPECT_NE(g.find_tensor("blk.0.attn_v.weight"), nullptr);
}

TEST(Synth, BuiltInVocabularyHasTheGemma4Markup) {
  const std::string p = synth("vocab.gguf", "--preset tiny-dense --layers 2");
  const auto f = hearth::gguf::File::open(p);
  auto tok = hearth::tokenizer::Tokenizer::from_gguf(f);
  EXPECT_EQ(tok->n_vocab(), 1024);
  EXPECT_EQ(tok->model(), "gemma4");
  for (const char* s : {"<|turn>", "<turn|>", "<|tool_call>", "<|\"|>", "<|channel>", "<channel|>", "<|think|>"})
    EXPECT_TRUE(tok->find(s).has_value()) << s;
  const auto ids = tok->encode("<|turn>user\nhello world<turn|>", true);
  EXPECT_EQ(ids.front(), *tok->find("<|turn>"));
  EXPECT_EQ(ids.back(), *tok->find("<turn|>"));
  EXPECT_LT(ids.size(), 12u);  // the merges cover common English
  EXPECT_EQ(tok->decode(tok->encode("hello world, naïve 日本", false)), "hello world, naïve 日本");
  EXPECT_EQ(tok->eog_ids().size(), 3u);  // <eos>, <turn|>, <|tool_response>
}

TEST(Synth, CopiesARealVocabulary) {
  const std::string v = hearth::test::testdata("vocab/ggml-vocab-gemma-4.gguf");
  HEARTH_REQUIRE_FILE(v);
  const std::string p = synth("realvocab.gguf", "--preset tiny-dense --layers 1 --pattern F --vocab " + shell_quote(v));
  const auto f = hearth::gguf::File::open(p);
  EXPECT_EQ(f.tensor("token_embd.weight").shape_string(), "[256, 262144]");
  auto tok = hearth::tokenizer::Tokenizer::from_gguf(f);
  EXPECT_EQ(tok->encode("The quick brown fox", false), (std::vector<int32_t>{818, 3823, 8864, 37423}));
}

// The Q8_0/Q4_0/BF16/F16 encoders against ../shared/tools/gguflib.py (byte-identical to gguf-py's).
TEST(Synth, WeightEncodingsMatchGgufPy) {
  if (!fs::exists(hearth::test::tools_dir() + "/gguflib.py") ||
      run_command("/usr/bin/python3 -c 'import numpy'").status != 0)
    GTEST_SKIP() << "needs ../shared/tools/gguflib.py and python3-numpy";
  const std::string f32 = synth("enc-f32.gguf", "--preset tiny-dense --layers 2 --seed 5");
  std::string script = "import sys; sys.path.insert(0, " + shell_quote(hearth::test::tools_dir()) + ")\n";
  script += R"(import gguflib as G
f = G.GGUFReader(sys.argv[1]); bad = n = 0
for wt, path in zip((G.Q8_0, G.Q4_0, G.BF16, G.F16), sys.argv[2:]):
    q = G.GGUFReader(path)
    for name in f.tensors:
        a = f.tensor(name)
        if a.ndim < 2: continue
        ti = q.tensors[name]
        with open(path, 'rb') as fh:
            fh.seek(ti['offset']); mine = fh.read(ti['nbytes'])
        n += 1; bad += mine != bytes(G.encode_tensor(a.reshape(-1, a.shape[-1]), wt))
print('checked', n, 'differ', bad); sys.exit(1 if bad or not n else 0)
)";
  const std::string py = scratch("enc.py");
  std::ofstream(py) << script;
  std::string cmd = "/usr/bin/python3 " + shell_quote(py) + " " + shell_quote(f32);
  for (const std::string t : {"Q8_0", "Q4_0", "BF16", "F16"}) {
    const std::string file = synth("enc-" + t + ".gguf", "--preset tiny-dense --layers 2 --seed 5 --wtype " + t);
    cmd.append(" ").append(shell_quote(file));
  }
  auto r = run_command(cmd);
  EXPECT_EQ(r.status, 0) << r.output;
}

TEST(Synth, ImpossibleShapesAreClearErrors) {
  const std::string out = scratch("bad.gguf");
  auto expect_error = [&](const std::string& args, const std::string& needle) {
    auto r = run_command(hearth() + " synth -q " + args + " -o " + shell_quote(out));
    EXPECT_NE(r.status, 0) << args;
    EXPECT_NE(r.output.find(needle), std::string::npos) << args << "\n" << r.output;
    EXPECT_FALSE(fs::exists(out)) << "a failed synth left a file behind";
  };
  expect_error("--preset nope", "unknown preset");
  expect_error("--preset tiny-dense --pattern SXF", "pattern");
  expect_error("--preset tiny-dense --k-eq-v some", "k_eq_v");
  expect_error("--preset tiny-ple --kv-shared 4", "KV sharing");
  expect_error("--preset tiny-dense --d-model 48 --wtype Q4_0", "multiple of 32");
  expect_error("--preset tiny-dense --wtype Q5_K", "not supported");
  expect_error("--preset tiny-dense --n-vocab 100", "at least");
}

}  // namespace
