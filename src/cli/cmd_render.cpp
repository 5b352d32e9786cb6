// hearth render: the exact prompt hearth feeds the model for an OpenAI chat-completions request body
// (plus hearth's `think`), for anyone debugging a conversation or a template.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "chat/gemma4_format.h"
#include "chat/request_json.h"
#include "cli/commands.h"
#include "cli/common.h"

namespace hearth::cli {

namespace {
struct RenderArgs {
  std::string model, request;
  bool tokens = false;
};

int run_render(const RenderArgs& a) {
  const nlohmann::json body = read_json_file(a.request);
  const chat::ChatRequest req = chat::parse_openai_request(body);
  const std::string prompt = chat::render_gemma4(req);
  if (!a.tokens) {
    std::fwrite(prompt.data(), 1, prompt.size(), stdout);
    std::printf("\n");
    return 0;
  }
  if (a.model.empty()) throw Error("--tokens needs -m MODEL (its tokenizer)");
  const gguf::File file = gguf::File::open(a.model);
  auto tok = tokenizer::Tokenizer::from_gguf(file);
  const std::vector<int32_t> ids = tok->encode(prompt, /*parse_special=*/true);
  for (int32_t id : ids) std::printf("%6d -> '%s'\n", id, tok->piece(id).c_str());
  std::printf("%zu tokens\n", ids.size());
  return 0;
}
}  // namespace

Runner add_render(CLI::App& app) {
  auto a = std::make_shared<RenderArgs>();
  CLI::App* c = app.add_subcommand("render", "Print the prompt hearth renders for a chat-completions request");
  c->add_option("-m,--model", a->model, "GGUF model (only needed with --tokens)");
  c->add_option("request", a->request, "Request body JSON file (- for stdin)")->required();
  c->add_flag("--tokens", a->tokens, "Print the prompt's token ids instead of its text");
  return [a] { return run_render(*a); };
}

}  // namespace hearth::cli
