// hearth tokenize: token ids (and pieces) of a text with the model's tokenizer.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"

namespace hearth::cli {

namespace {
struct TokenizeArgs {
  std::string model, text;
  bool special = false, json = false, no_bos = false;
};

int run_tokenize(const TokenizeArgs& a) {
  const gguf::File file = gguf::File::open(a.model);
  auto tok = tokenizer::Tokenizer::from_gguf(file);
  std::vector<int32_t> ids = tok->encode(a.text, a.special);
  if (!a.no_bos && tok->add_bos()) ids.insert(ids.begin(), tok->bos());
  if (a.json) {
    nlohmann::json j = nlohmann::json::array();
    for (int32_t id : ids) j.push_back({{"id", id}, {"piece", tok->piece(id)}});
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    for (int32_t id : ids) std::printf("%6d -> '%s'\n", id, tok->piece(id).c_str());
  }
  return 0;
}
}  // namespace

Runner add_tokenize(CLI::App& app) {
  auto a = std::make_shared<TokenizeArgs>();
  CLI::App* c = app.add_subcommand("tokenize", "Print the token ids of a text");
  c->add_option("-m,--model", a->model, "GGUF file with a tokenizer (a vocabulary-only file works)")->required();
  c->add_option("text", a->text, "Text to tokenize")->required();
  c->add_flag("--special", a->special, "Parse special-token text such as <|turn>");
  c->add_flag("--json", a->json, "Print JSON [{id, piece}]");
  c->add_flag("--no-bos", a->no_bos, "Do not prepend BOS");
  return [a] { return run_tokenize(*a); };
}

}  // namespace hearth::cli
