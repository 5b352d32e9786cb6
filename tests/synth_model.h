// Tests' small models: `hearth synth` writes a tiny random-weight Gemma 4, which is loaded and then deleted
// (the mapping stays valid, nothing is left behind).
#pragma once
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

#include "gguf/reader.h"
#include "models/model.h"
#include "run_command.h"
#include "test_data.h"
#include "tokenizer/tokenizer.h"

namespace hearth::test {

struct SynthModel {
  std::shared_ptr<const gguf::File> file;
  std::unique_ptr<models::Model> model;
  std::unique_ptr<tokenizer::Tokenizer> tok;
};

// `synth_args`: everything after `hearth synth`, e.g. "--preset tiny-dense --wtype Q8_0"; `vocab`: a GGUF whose
// vocabulary the model takes (empty: hearth's built-in toy vocabulary).
inline std::unique_ptr<SynthModel> synth_model(const std::string& synth_args, const std::string& vocab = "") {
  static int counter = 0;
  const std::filesystem::path path = std::filesystem::temp_directory_path() /
                                     ("hearth-synth-" + std::to_string(getpid()) + "-" + std::to_string(counter++) + ".gguf");
  std::string cmd = hearth_binary() + " synth " + synth_args + " -q -o " + shell_quote(path.string());
  if (!vocab.empty()) cmd += " --vocab " + shell_quote(vocab);
  const CommandResult r = run_command(cmd);
  if (r.status != 0) throw std::runtime_error("hearth synth failed: " + r.output);
  auto m = std::make_unique<SynthModel>();
  m->file = std::make_shared<const gguf::File>(gguf::File::open(path.string()));
  m->model = models::load_model(m->file);
  m->tok = tokenizer::Tokenizer::from_gguf(*m->file);
  std::filesystem::remove(path);
  return m;
}

}  // namespace hearth::test
