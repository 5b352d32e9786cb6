// hearth logits: llama.cpp-comparable logits in the golden JSON format of ../shared/tools/README.md.
// The prompt is evaluated as one batch with logits at every position; then either the --continue tokens
// are fed one per step (teacher forcing) or -n greedy tokens are generated, recording logits after each.
#include <cstdio>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "cli/commands.h"
#include "cli/common.h"
#include "runtime/sampler.h"
#include "runtime/session.h"

namespace hearth::cli {

namespace {
struct LogitsArgs {
  std::string model, tokens, cont, out, logits_bin, kv_type = "f32";
  int n_gen = 0, top = 20, threads = 0, ctx = 0;
  bool full = false;
};

nlohmann::json pack(int pos, int32_t token, const float* row, int n_vocab, int top, bool full) {
  std::vector<int32_t> idx(static_cast<size_t>(n_vocab));
  std::iota(idx.begin(), idx.end(), 0);
  const int k = std::min(top, n_vocab);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                    [&](int32_t a, int32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
  nlohmann::json j = {{"pos", pos}, {"token", token}, {"argmax", runtime::argmax(row, n_vocab)}};
  nlohmann::json t = nlohmann::json::array();
  for (int i = 0; i < k; ++i) t.push_back(nlohmann::json::array({idx[size_t(i)], double(row[idx[size_t(i)]])}));
  j["top"] = std::move(t);
  if (full) j["logits"] = std::vector<double>(row, row + n_vocab);
  return j;
}

int run_logits(const LogitsArgs& a) {
  LoadedModel lm = load(a.model, /*need_tokenizer=*/false);
  const std::vector<int32_t> prompt = parse_id_list(a.tokens);
  const std::vector<int32_t> cont = a.cont.empty() ? std::vector<int32_t>{} : parse_id_list(a.cont);
  if (prompt.empty()) throw Error("--tokens is empty");
  if (!cont.empty() && a.n_gen) throw Error("use either --continue or --n-gen, not both");
  const int n_vocab = lm.model->info().n_vocab;
  const int n_steps = cont.empty() ? std::max(0, a.n_gen - 1) : int(cont.size());

  runtime::SessionOptions so;
  so.n_ctx = a.ctx ? a.ctx : std::max<int>(512, int(prompt.size()) + n_steps + 1);
  so.n_batch = std::max<int>(512, int(prompt.size()));
  so.kv_type = models::kv_type_from_name(a.kv_type);
  so.n_threads = a.threads;
  runtime::Session s(*lm.model, so);

  std::FILE* bin = nullptr;
  if (!a.logits_bin.empty() && !(bin = std::fopen(a.logits_bin.c_str(), "wb")))
    throw Error("cannot write '" + a.logits_bin + "'");
  const bool inline_full = a.full && !bin;
  auto side = [&](const float* row) {
    if (bin && std::fwrite(row, sizeof(float), size_t(n_vocab), bin) != size_t(n_vocab))
      throw Error("write to '" + a.logits_bin + "' failed");
  };

  nlohmann::json j;
  j["model"] = std::filesystem::path(a.model).filename().string();
  j["engine"] = "hearth";
  j["settings"] = {{"threads", s.pool().size()}, {"ctx", so.n_ctx}, {"kv_type", a.kv_type},
                   {"prompt_as_one_batch", true}, {"teacher_forced", !cont.empty()}};
  j["prompt"] = prompt;
  s.eval(prompt, /*all_logits=*/true);
  nlohmann::json pl = nlohmann::json::array();
  std::vector<float> last(s.logits().end() - n_vocab, s.logits().end());
  for (size_t i = 0; i < prompt.size(); ++i) {
    const float* row = s.logits().data() + i * size_t(n_vocab);
    pl.push_back(pack(int(i), prompt[i], row, n_vocab, a.top, inline_full));
    side(row);
  }
  j["prompt_logits"] = std::move(pl);

  std::vector<int32_t> tokens;
  nlohmann::json steps = nlohmann::json::array();
  int32_t next = runtime::argmax(last.data(), n_vocab);
  for (int st = 0; st < n_steps; ++st) {
    const int32_t feed = cont.empty() ? next : cont[size_t(st)];
    tokens.push_back(feed);
    const float* row = s.eval({feed});
    steps.push_back(pack(int(prompt.size()) + st, feed, row, n_vocab, a.top, inline_full));
    side(row);
    next = runtime::argmax(row, n_vocab);
  }
  if (cont.empty() && a.n_gen > 0) tokens.push_back(next);
  j["greedy"] = {{"n", tokens.size()}, {"tokens", tokens}, {"steps", std::move(steps)}};
  if (bin) {
    std::fclose(bin);
    j["logits_bin"] = {{"file", std::filesystem::path(a.logits_bin).filename().string()},
                       {"dtype", "float32-le"},
                       {"rows", prompt.size() + size_t(n_steps)},
                       {"n_vocab", n_vocab},
                       {"row_order", "prompt positions, then greedy steps"}};
  }
  const std::string text = j.dump();
  if (a.out.empty() || a.out == "-") {
    std::printf("%s\n", text.c_str());
  } else {
    std::ofstream f(a.out);
    f << text << "\n";
    if (!f) throw Error("cannot write '" + a.out + "'");
  }
  return 0;
}
}  // namespace

Runner add_logits(CLI::App& app) {
  auto a = std::make_shared<LogitsArgs>();
  CLI::App* c = app.add_subcommand("logits", "Write logits in the llama.cpp golden JSON format");
  c->add_option("-m,--model", a->model, "GGUF model file")->required();
  c->add_option("--tokens", a->tokens, "Prompt token ids, comma-separated (include BOS yourself)")->required();
  c->add_option("--continue", a->cont, "Token ids fed one per step after the prompt (teacher forcing)");
  c->add_option("-n,--n-gen", a->n_gen, "Generate this many greedy tokens instead of --continue");
  c->add_option("--top", a->top, "Top-k entries per position")->capture_default_str();
  c->add_flag("--full", a->full, "Include the full logits of every position");
  c->add_option("--logits-bin", a->logits_bin, "Write full logits to this raw float32 file instead");
  c->add_option("-o,--out", a->out, "Output JSON file (default stdout)");
  c->add_option("--kv-type", a->kv_type, "KV cache type (the goldens use f32)")->capture_default_str();
  c->add_option("-t,--threads", a->threads, "Threads");
  c->add_option("-c,--ctx", a->ctx, "Context size (default: enough for the run, at least 512)");
  return [a] { return run_logits(*a); };
}

}  // namespace hearth::cli
