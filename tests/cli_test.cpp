// The hearth binary end to end: each command on real files, and clear errors on bad input.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "run_command.h"
#include "test_data.h"

namespace {

using hearth::test::run_command;
using hearth::test::testdata;

std::string hearth() { return hearth::test::hearth_binary(); }

TEST(Cli, InspectShowsMetadataTensorsAndMemory) {
  const std::string m = testdata("models/tiny-gemma4-moe.gguf");
  HEARTH_REQUIRE_FILE(m);
  auto r = run_command(hearth() + " inspect " + m);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("general.architecture"), std::string::npos);
  EXPECT_NE(r.output.find("\"gemma4\""), std::string::npos);
  EXPECT_NE(r.output.find("F32"), std::string::npos);
  EXPECT_NE(r.output.find("KV cache"), std::string::npos);
  EXPECT_NE(r.output.find("6 layers"), std::string::npos);
}

TEST(Cli, InspectOfAVocabularyOnlyFile) {
  const std::string v = testdata("vocab/ggml-vocab-gemma-4.gguf");
  HEARTH_REQUIRE_FILE(v);
  auto r = run_command(hearth() + " inspect " + v);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("string[262144]"), std::string::npos);
  EXPECT_NE(r.output.find("vocabulary-only"), std::string::npos);
}

TEST(Cli, LogitsWritesTheGoldenFormat) {
  const std::string m = testdata("models/tiny-gemma4-dense.gguf");
  HEARTH_REQUIRE_FILE(m);
  const std::string out = ::testing::TempDir() + "/hearth-logits.json";
  auto r = run_command(hearth() + " logits -m " + m + " --tokens 2,10,20 --continue 200,100 --top 5 --full -o " + out);
  ASSERT_EQ(r.status, 0) << r.output;
  std::ifstream f(out);
  nlohmann::json j = nlohmann::json::parse(f);
  EXPECT_EQ(j["prompt"], nlohmann::json({2, 10, 20}));
  ASSERT_EQ(j["prompt_logits"].size(), 3u);
  EXPECT_EQ(j["prompt_logits"][2]["top"].size(), 5u);
  EXPECT_EQ(j["prompt_logits"][2]["logits"].size(), 1024u);
  EXPECT_EQ(j["prompt_logits"][2]["top"][0][0], j["prompt_logits"][2]["argmax"]);
  EXPECT_EQ(j["greedy"]["tokens"], nlohmann::json({200, 100}));
  EXPECT_EQ(j["greedy"]["steps"].size(), 2u);
  EXPECT_EQ(j["greedy"]["steps"][1]["pos"], 4);
  // llama.cpp's greedy continuation of P1 on this model starts 200, 100 (golden/README.md)
  EXPECT_EQ(j["prompt_logits"][2].size(), 5u);
  auto g = run_command(hearth() + " logits -m " + m + " --tokens 2,10,20,30,40,50,60,70 -n 3");
  ASSERT_EQ(g.status, 0) << g.output;
  nlohmann::json jg = nlohmann::json::parse(g.output);
  EXPECT_EQ(jg["greedy"]["tokens"], nlohmann::json({200, 100, 100}));
}

TEST(Cli, BadInputGivesAClearError) {
  auto missing = run_command(hearth() + " inspect /nonexistent/model.gguf");
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.output.find("cannot open '/nonexistent/model.gguf'"), std::string::npos) << missing.output;

  const std::string junk = ::testing::TempDir() + "/junk.gguf";
  std::ofstream(junk) << "this is not a gguf file at all";
  auto bad = run_command(hearth() + " inspect " + junk);
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.output.find("not a GGUF file"), std::string::npos) << bad.output;

  const std::string m = testdata("models/tiny-gemma4-dense.gguf");
  if (std::filesystem::exists(m)) {
    auto oov = run_command(hearth() + " logits -m " + m + " --tokens 2,99999");
    EXPECT_EQ(oov.status, 1);
    EXPECT_NE(oov.output.find("outside the vocabulary"), std::string::npos) << oov.output;
    auto list = run_command(hearth() + " logits -m " + m + " --tokens 2,x");
    EXPECT_EQ(list.status, 1);
    EXPECT_NE(list.output.find("'x' is not a token id"), std::string::npos) << list.output;
  }
  auto usage = run_command(hearth() + " frobnicate");
  EXPECT_NE(usage.status, 0);
}

TEST(Cli, GenerateStreamsTextAndReportsSpeed) {
  const std::string m = testdata("models/tiny-gemma4-dense.gguf");
  HEARTH_REQUIRE_FILE(m);
  auto r = run_command(hearth() + " generate -m " + m + " -p 'Hello world' -n 12 --temp 0 --show-tokens -t 1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("prompt: "), std::string::npos);
  EXPECT_NE(r.output.find("decode: "), std::string::npos);
  EXPECT_NE(r.output.find("tok/s"), std::string::npos);
  EXPECT_NE(r.output.find("tokens:"), std::string::npos);
  // Greedy decoding is deterministic: the same command gives the same tokens.
  auto r2 = run_command(hearth() + " generate -m " + m + " -p 'Hello world' -n 12 --temp 0 --show-tokens -t 2");
  auto tokens = [](const std::string& s) { return s.substr(s.find("tokens:")); };
  EXPECT_EQ(tokens(r.output), tokens(r2.output));
}

TEST(Cli, BenchWritesLlamaBenchRows) {
  const std::string m = testdata("models/tiny-gemma4-dense-q4_0.gguf");
  HEARTH_REQUIRE_FILE(m);
  auto r = run_command(hearth() + " bench -m " + m + " -p 16 -n 4 -t 1,2 -r 2 -o json 2>/dev/null");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto rows = nlohmann::json::parse(r.output);
  ASSERT_EQ(rows.size(), 4u);  // pp16 and tg4 at 1 and 2 threads
  EXPECT_EQ(rows[0]["n_threads"], 1);
  EXPECT_EQ(rows[0]["n_prompt"], 16);
  EXPECT_EQ(rows[1]["n_gen"], 4);
  EXPECT_EQ(rows[3]["n_threads"], 2);
  for (const auto& row : rows) {
    EXPECT_EQ(row["samples_ts"].size(), 2u);
    EXPECT_GT(row["avg_ts"].get<double>(), 0.0);
    EXPECT_TRUE(row.contains("model_filename") && row.contains("stddev_ts"));
  }
  auto md = run_command(hearth() + " bench -m " + m + " -p 8 -n 2 -t 1 -r 1");
  ASSERT_EQ(md.status, 0) << md.output;
  EXPECT_NE(md.output.find("| pp8 |"), std::string::npos) << md.output;
  EXPECT_NE(md.output.find("| tg2 |"), std::string::npos) << md.output;
  auto bad = run_command(hearth() + " bench -m " + m + " -t 0");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.output.find("thread count"), std::string::npos) << bad.output;
}

TEST(Cli, TokenizeMatchesTheVocabularyGoldens) {
  const std::string v = testdata("vocab/ggml-vocab-gemma-4.gguf");
  HEARTH_REQUIRE_FILE(v);
  auto r = run_command(hearth() + " tokenize -m " + v + " --json --special '<|turn>user\nHi<turn|>'");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  std::vector<int> ids;
  for (const auto& e : j) ids.push_back(e["id"]);
  EXPECT_EQ(ids, (std::vector<int>{2, 105, 2364, 107, 10979, 106}));
}

}  // namespace
