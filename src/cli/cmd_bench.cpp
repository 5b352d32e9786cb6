// hearth bench: prompt processing and generation speed by llama-bench's method, so that each row lines up
// with ../shared/tools/llamacpp-bench.sh (llama.cpp on the same file):
//   ppN: an empty cache, then one batch of N random tokens (logits of the last one only);
//   tgN: an empty cache, then N single-token steps, each computing the full LM head;
// one untimed warm-up run per test, then -r timed repetitions; t/s = tokens / seconds per repetition.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "cli/commands.h"
#include "cli/common.h"
#include "runtime/session.h"

namespace hearth::cli {

namespace {

struct BenchArgs {
  std::string model, threads = "2,1", output = "md", kv_type = "f16";
  int n_prompt = 512, n_gen = 128, reps = 5, batch = 512;
};

struct Row {
  std::string test;
  int threads = 0, n_prompt = 0, n_gen = 0;
  std::vector<double> samples_ns;
  double avg_ts() const { return mean(ts()); }
  double stddev_ts() const {
    const auto v = ts();
    if (v.size() < 2) return 0;
    const double m = mean(v);
    double s = 0;
    for (double x : v) s += (x - m) * (x - m);
    return std::sqrt(s / double(v.size() - 1));
  }
  double median_ts() const {
    auto v = ts();
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  }
  std::vector<double> ts() const {
    std::vector<double> v;
    for (double ns : samples_ns) v.push_back(double(n_prompt + n_gen) * 1e9 / ns);
    return v;
  }
  static double mean(const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0 : s / double(v.size());
  }
};

std::vector<int> parse_threads(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) {
    const int t = std::atoi(item.c_str());
    if (t <= 0) throw Error("bad thread count '" + item + "' in -t");
    out.push_back(t);
  }
  return out;
}

int run_bench(const BenchArgs& a) {
  using clock = std::chrono::steady_clock;
  if (a.output != "md" && a.output != "json" && a.output != "jsonl") throw Error("-o must be md, json or jsonl");
  if (a.reps < 1) throw Error("-r must be at least 1");
  const auto t_load = clock::now();
  LoadedModel lm = load(a.model, /*need_tokenizer=*/false);
  const double load_ms = ms_since(t_load);
  const models::ModelInfo& info = lm.model->info();
  std::mt19937 rng(1234);
  auto random_tokens = [&](int n) {
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (auto& x : t) x = int32_t(rng() % uint32_t(info.n_vocab));
    return t;
  };

  std::vector<Row> rows;
  for (int threads : parse_threads(a.threads)) {
    runtime::SessionOptions so;
    so.n_ctx = a.n_prompt + a.n_gen + 1;
    so.n_batch = std::max(a.batch, 1);
    so.kv_type = models::kv_type_from_name(a.kv_type);
    so.n_threads = threads;
    runtime::Session s(*lm.model, so);
    auto run_pp = [&](int n) {
      s.reset();
      const auto t = random_tokens(n);
      const auto t0 = clock::now();
      s.eval(t);
      return std::chrono::duration<double, std::nano>(clock::now() - t0).count();
    };
    auto run_tg = [&](int n) {
      s.reset();
      const auto t = random_tokens(n);
      const auto t0 = clock::now();
      for (int32_t tok : t) s.eval({tok});
      return std::chrono::duration<double, std::nano>(clock::now() - t0).count();
    };
    if (a.n_prompt > 0) {
      Row r{"pp" + std::to_string(a.n_prompt), threads, a.n_prompt, 0, {}};
      run_pp(a.n_prompt);  // warm-up
      for (int i = 0; i < a.reps; ++i) r.samples_ns.push_back(run_pp(a.n_prompt));
      rows.push_back(r);
      if (a.output == "jsonl") std::fflush(stdout);
    }
    if (a.n_gen > 0) {
      Row r{"tg" + std::to_string(a.n_gen), threads, 0, a.n_gen, {}};
      run_tg(1);  // warm-up
      for (int i = 0; i < a.reps; ++i) r.samples_ns.push_back(run_tg(a.n_gen));
      rows.push_back(r);
    }
    if (a.output == "jsonl") {
      for (; !rows.empty(); rows.erase(rows.begin())) {
        const Row& r = rows.front();
        nlohmann::json j = {{"model_filename", a.model}, {"model_type", info.arch + " " + info.name},
                            {"model_size", info.weight_bytes}, {"model_n_params", info.n_params},
                            {"n_threads", r.threads}, {"n_prompt", r.n_prompt}, {"n_gen", r.n_gen}, {"test", r.test},
                            {"type_k", a.kv_type}, {"avg_ts", r.avg_ts()}, {"stddev_ts", r.stddev_ts()},
                            {"median_ts", r.median_ts()}, {"samples_ns", r.samples_ns}, {"samples_ts", r.ts()},
                            {"load_ms", load_ms}};
        std::printf("%s\n", j.dump().c_str());
        std::fflush(stdout);
      }
    }
  }
  if (a.output == "json") {
    nlohmann::json arr = nlohmann::json::array();
    for (const Row& r : rows)
      arr.push_back({{"model_filename", a.model}, {"model_type", info.arch + " " + info.name},
                     {"model_size", info.weight_bytes}, {"model_n_params", info.n_params}, {"n_threads", r.threads},
                     {"n_prompt", r.n_prompt}, {"n_gen", r.n_gen}, {"test", r.test}, {"type_k", a.kv_type},
                     {"avg_ts", r.avg_ts()}, {"stddev_ts", r.stddev_ts()}, {"median_ts", r.median_ts()},
                     {"samples_ns", r.samples_ns}, {"samples_ts", r.ts()}, {"load_ms", load_ms}});
    std::printf("%s\n", arr.dump(1).c_str());
  } else if (a.output == "md") {
    std::printf("| model | size | params | threads | test | t/s | median t/s |\n|---|---:|---:|---:|---:|---:|---:|\n");
    for (const Row& r : rows)
      std::printf("| %s | %s | %.2f B | %d | %s | %.2f ± %.2f | %.2f |\n", info.name.c_str(),
                  system::format_bytes(info.weight_bytes).c_str(), double(info.n_params) / 1e9, r.threads, r.test.c_str(),
                  r.avg_ts(), r.stddev_ts(), r.median_ts());
    std::printf("\nloaded in %.0f ms; KV %s; %d repetitions after one warm-up\n", load_ms, a.kv_type.c_str(), a.reps);
  }
  return 0;
}

}  // namespace

Runner add_bench(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* c = app.add_subcommand("bench", "Measure prompt (ppN) and generation (tgN) speed, llama-bench style");
  c->add_option("-m,--model", a->model, "GGUF model file")->required();
  c->add_option("-p,--n-prompt", a->n_prompt, "Prompt tokens (0: skip the pp test)")->capture_default_str();
  c->add_option("-n,--n-gen", a->n_gen, "Generated tokens (0: skip the tg test)")->capture_default_str();
  c->add_option("-t,--threads", a->threads, "Thread counts, comma-separated")->capture_default_str();
  c->add_option("-r,--reps", a->reps, "Timed repetitions per test")->capture_default_str();
  c->add_option("-b,--batch", a->batch, "Prompt batch size")->capture_default_str();
  c->add_option("--kv-type", a->kv_type, "KV cache type: f16 or f32")->capture_default_str();
  c->add_option("-o,--output", a->output, "md, json or jsonl")->capture_default_str();
  return [a] { return run_bench(*a); };
}

}  // namespace hearth::cli
