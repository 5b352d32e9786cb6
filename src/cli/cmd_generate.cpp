// hearth generate: stream a completion of a raw prompt, then report prompt and decode speed.
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>

#include "cli/commands.h"
#include "cli/common.h"
#include "runtime/sampler.h"
#include "runtime/session.h"
#include "tokenizer/tokenizer.h"

namespace hearth::cli {

namespace {
struct GenerateArgs {
  std::string model, prompt;
  int n_predict = 128;
  runtime::SamplerParams sp;
  int64_t seed = -1;
  int threads = 0;
  int ctx = 4096;
  int batch = 512;
  std::string kv_type = "f16";
  bool show_tokens = false;
  bool ignore_eos = false;
  bool raw = false;
};

int run_generate(const GenerateArgs& a) {
  using clock = std::chrono::steady_clock;
  const auto t_load = clock::now();
  LoadedModel lm = load(a.model);
  const double load_ms = ms_since(t_load);

  runtime::SessionOptions so;
  so.n_ctx = std::min(a.ctx, lm.model->info().n_ctx_train);
  so.n_batch = a.batch;
  so.kv_type = models::kv_type_from_name(a.kv_type);
  so.n_threads = a.threads;
  runtime::Session session(*lm.model, so);

  runtime::SamplerParams sp = a.sp;
  sp.seed = a.seed >= 0 ? uint64_t(a.seed) : std::random_device{}();
  runtime::Sampler sampler(sp);

  std::vector<int32_t> prompt = lm.tok->encode_prompt(a.prompt, !a.raw);
  if (prompt.empty()) throw Error("the prompt is empty");
  if (int(prompt.size()) >= so.n_ctx)
    throw Error("the prompt has " + std::to_string(prompt.size()) + " tokens; the context holds " +
                std::to_string(so.n_ctx));
  std::fprintf(stderr, "hearth: %s (%s), %d threads, ctx %d, KV %s, seed %llu, loaded in %.0f ms\n",
               lm.model->info().name.c_str(), lm.model->info().arch.c_str(), session.pool().size(), so.n_ctx,
               a.kv_type.c_str(), static_cast<unsigned long long>(sp.seed), load_ms);

  const auto t0 = clock::now();
  const float* logits = session.eval(prompt);
  const double prompt_ms = ms_since(t0);

  tokenizer::StreamDecoder dec(*lm.tok);
  std::vector<int32_t> out;
  const int n_vocab = lm.model->info().n_vocab;
  const auto t1 = clock::now();
  for (int i = 0; i < a.n_predict; ++i) {
    const int32_t id = sampler.sample(logits, n_vocab);
    out.push_back(id);
    if (!a.ignore_eos && lm.tok->is_eog(id)) break;
    const std::string text = dec.push(id);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    if (i + 1 == a.n_predict || session.n_past() + 1 >= so.n_ctx) break;
    logits = session.eval({id});
  }
  const std::string rest = dec.flush();
  std::fwrite(rest.data(), 1, rest.size(), stdout);
  std::printf("\n");
  const double gen_ms = ms_since(t1);
  // Decode speed counts the steps that ran the model (the first token came from the prompt's logits).
  const int steps = std::max(0, int(out.size()) - 1);
  std::fprintf(stderr, "prompt: %zu tokens in %.1f ms (%.2f tok/s)\n", prompt.size(), prompt_ms,
               prompt.size() * 1000.0 / std::max(prompt_ms, 1e-3));
  std::fprintf(stderr, "decode: %d tokens in %.1f ms (%.2f tok/s)\n", steps, gen_ms,
               steps * 1000.0 / std::max(gen_ms, 1e-3));
  if (a.show_tokens) {
    std::fprintf(stderr, "tokens:");
    for (int32_t id : out) std::fprintf(stderr, " %d", id);
    std::fprintf(stderr, "\n");
  }
  return 0;
}
}  // namespace

Runner add_generate(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* c = app.add_subcommand("generate", "Complete a raw text prompt, streaming the output");
  c->add_option("-m,--model", a->model, "GGUF model file")->required();
  c->add_option("-p,--prompt", a->prompt, "Prompt text (special tokens such as <|turn> are parsed)")->required();
  c->add_option("-n,--n-predict", a->n_predict, "Tokens to generate")->capture_default_str();
  c->add_option("--temp", a->sp.temperature, "Temperature (0 = greedy)")->capture_default_str();
  c->add_option("--top-k", a->sp.top_k, "Top-k (0 = off)")->capture_default_str();
  c->add_option("--top-p", a->sp.top_p, "Top-p (1 = off)")->capture_default_str();
  c->add_option("--min-p", a->sp.min_p, "Min-p (0 = off)")->capture_default_str();
  c->add_option("--seed", a->seed, "Sampling seed (default: random, printed)");
  c->add_option("-t,--threads", a->threads, "Threads (default: all hardware threads)");
  c->add_option("-c,--ctx", a->ctx, "Context size in tokens")->capture_default_str();
  c->add_option("-b,--batch", a->batch, "Prompt batch size")->capture_default_str();
  c->add_option("--kv-type", a->kv_type, "KV cache type: f16 or f32")->capture_default_str();
  c->add_flag("--show-tokens", a->show_tokens, "Print the generated token ids at the end (stderr)");
  c->add_flag("--ignore-eos", a->ignore_eos, "Do not stop at end-of-generation tokens");
  c->add_flag("--raw", a->raw, "Do not parse special-token text in the prompt");
  return [a] { return run_generate(*a); };
}

}  // namespace hearth::cli
