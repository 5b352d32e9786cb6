#include "tokenizer/toy_vocab.h"

#include <map>
#include <set>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace hearth::tokenizer {

namespace {

// Training text for the toy merges (written for hearth).
constexpr const char* kCorpus = R"(
hearth runs language models on your own computer. it reads a model file, loads the weights, and turns
a prompt into tokens. each layer mixes the tokens with attention and then transforms every position
with a feed forward network. some layers only look at a sliding window of recent tokens, while the
global layers see the whole context. the model then predicts the next token, one at a time, and the
text appears on the screen as it is written. the weights in a test file are random, so the words have
no meaning, but two engines that run the same file must agree on every number they compute.
hello world. the quick brown fox jumps over the lazy dog. what is the capital of france? paris is the
capital of france. how many goals did the team score in the final? there were three goals in the
second half and one in the first. numbers such as 0 1 2 3 4 5 6 7 8 9 10 42 100 1000 2022 appear
in questions about sport, money and time. the user asks a question and the assistant gives an answer.
memory bandwidth limits how fast tokens are generated, and compute limits how fast a prompt is read.
the cache keeps keys and values of earlier tokens so that they are not computed again. a tool call
asks a program to run a query on a database and returns the rows as a result for the model to read.
)";

constexpr const char* kSpace = "\xe2\x96\x81";

struct ToyToken {
  std::string text;
  TokenType type;
};

std::vector<std::pair<std::string, std::string>> train_merges(size_t n_merges) {
  std::map<std::string, int> words;
  std::istringstream in(kCorpus);
  for (std::string w; in >> w;) ++words[kSpace + w];
  std::vector<std::pair<std::vector<std::string>, int>> seqs;
  for (const auto& [w, count] : words) {
    std::vector<std::string> syms;
    for (size_t i = 0; i < w.size();) {
      const size_t n = (static_cast<unsigned char>(w[i]) >= 0xE0) ? 3 : 1;  // corpus is ASCII plus U+2581
      syms.push_back(w.substr(i, n));
      i += n;
    }
    seqs.push_back({std::move(syms), count});
  }
  std::vector<std::pair<std::string, std::string>> merges;
  while (merges.size() < n_merges) {
    std::map<std::pair<std::string, std::string>, int> pairs;
    for (const auto& [syms, count] : seqs)
      for (size_t i = 0; i + 1 < syms.size(); ++i) pairs[{syms[i], syms[i + 1]}] += count;
    if (pairs.empty()) break;
    // Highest count; ties go to the pair that sorts last (deterministic).
    auto best = pairs.begin();
    for (auto it = pairs.begin(); it != pairs.end(); ++it)
      if (it->second >= best->second) best = it;
    const auto [a, b] = best->first;
    merges.push_back({a, b});
    for (auto& [syms, count] : seqs) {
      std::vector<std::string> out;
      for (size_t i = 0; i < syms.size(); ++i) {
        if (i + 1 < syms.size() && syms[i] == a && syms[i + 1] == b) {
          out.push_back(a + b);
          ++i;
        } else {
          out.push_back(syms[i]);
        }
      }
      syms.swap(out);
    }
  }
  return merges;
}

}  // namespace

int write_toy_vocab(gguf::Writer& w, int n_vocab, ToyKind kind) {
  std::vector<ToyToken> toks = {{"<pad>", TokenType::Control}, {"<eos>", TokenType::Control},
                                {"<bos>", TokenType::Control}, {"<unk>", TokenType::Control},
                                {"<mask>", TokenType::Control}};
  // Gemma 4 markup, with the token types of the real vocabulary.
  for (const char* t : {"<|turn>", "<turn|>", "<|think|>", "<|tool>", "<tool|>", "<|image>", "<|audio>", "<|image|>",
                        "<|audio|>", "<image|>", "<audio|>", "<|video|>"})
    toks.push_back({t, TokenType::Control});
  for (const char* t : {"<|tool_call>", "<tool_call|>", "<|tool_response>", "<tool_response|>", "<|\"|>", "<|channel>",
                        "<channel|>"})
    toks.push_back({t, TokenType::UserDefined});
  static const char* hex = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) toks.push_back({std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">", TokenType::Byte});
  toks.push_back({kSpace, TokenType::Normal});
  for (int c = 33; c < 127; ++c) toks.push_back({std::string(1, char(c)), TokenType::Normal});
  toks.push_back({"\n", TokenType::Normal});
  toks.push_back({"\n\n", TokenType::Normal});
  const size_t fixed = toks.size();
  if (n_vocab < int(fixed) + 1)
    throw Error("the built-in vocabulary needs at least " + std::to_string(fixed + 1) + " tokens (asked for " +
                std::to_string(n_vocab) + ")");

  std::set<std::string> have;
  for (const ToyToken& t : toks) have.insert(t.text);
  std::vector<std::string> merge_lines;
  for (const auto& [a, b] : train_merges(size_t(n_vocab) - fixed)) {
    if (!have.insert(a + b).second) continue;
    toks.push_back({a + b, TokenType::Normal});
    merge_lines.push_back(a + " " + b);
  }
  for (int k = 0; int(toks.size()) < n_vocab; ++k) toks.push_back({"<unused" + std::to_string(k) + ">", TokenType::Unused});

  std::vector<std::string> texts;
  std::vector<int32_t> types;
  std::vector<float> scores;
  for (size_t i = 0; i < toks.size(); ++i) {
    texts.push_back(toks[i].text);
    types.push_back(int32_t(toks[i].type));
    const bool special = toks[i].type == TokenType::Control || toks[i].type == TokenType::Unused;
    scores.push_back(special ? -1000.0f : kind == ToyKind::Bpe ? 0.0f : -float(i));
  }
  w.set_string("tokenizer.ggml.model", kind == ToyKind::Bpe ? "gemma4" : "llama");
  w.set_array_string("tokenizer.ggml.tokens", texts);
  w.set_array_f32("tokenizer.ggml.scores", scores);
  w.set_array_i32("tokenizer.ggml.token_type", types);
  if (kind == ToyKind::Bpe) w.set_array_string("tokenizer.ggml.merges", merge_lines);
  w.set_u32("tokenizer.ggml.bos_token_id", 2);
  w.set_u32("tokenizer.ggml.eos_token_id", 1);
  w.set_u32("tokenizer.ggml.unknown_token_id", 3);
  w.set_u32("tokenizer.ggml.padding_token_id", 0);
  w.set_u32("tokenizer.ggml.mask_token_id", 4);
  w.set_bool("tokenizer.ggml.add_space_prefix", false);
  w.set_bool("tokenizer.ggml.add_bos_token", true);
  return n_vocab;
}

int copy_vocab(gguf::Writer& w, const gguf::File& src) {
  const gguf::Value* toks = src.find("tokenizer.ggml.tokens");
  if (!toks || !toks->is_array()) throw Error(src.path() + ": has no tokenizer (tokenizer.ggml.tokens is missing)");
  for (const auto& [key, value] : src.metadata())
    if (key.rfind("tokenizer.", 0) == 0) w.set_raw(key, value);
  return int(toks->count);
}

}  // namespace hearth::tokenizer
