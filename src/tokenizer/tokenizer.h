// Tokenizers read from GGUF `tokenizer.ggml.*` keys.
//  * "gemma4": SentencePiece-style BPE with explicit merges, `▁` space escaping, newline-run pre-split and
//    byte fallback (GEMMA4.md §5), reproducing llama.cpp token for token.
//  * "llama": SentencePiece unigram-score BPE (Gemma 1-3, Llama 1/2 style vocabularies).
// Special tokens: CONTROL tokens are matched in text only with parse_special; USER_DEFINED tokens always.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/reader.h"

namespace hearth::tokenizer {

enum class TokenType : int32_t { Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Throws hearth::Error when the file has no tokenizer or an unsupported tokenizer.ggml.model.
  static std::unique_ptr<Tokenizer> from_gguf(const gguf::File& file);

  // Token ids for `text` without BOS. parse_special: match CONTROL token strings (e.g. "<|turn>").
  virtual std::vector<int32_t> encode(std::string_view text, bool parse_special) const = 0;
  // BOS (when the vocabulary adds one) followed by encode(text, parse_special).
  std::vector<int32_t> encode_prompt(std::string_view text, bool parse_special = true) const;

  // The bytes a token stands for when printed: `▁` -> ' ', <0xXX> -> that byte. CONTROL tokens give ""
  // unless render_special. May be an incomplete UTF-8 sequence (byte tokens); see StreamDecoder.
  virtual std::string token_to_piece(int32_t id, bool render_special) const = 0;
  // Whole-sequence detokenisation as llama_detokenize(remove_special=false, unparse_special=render_special),
  // including its clean-up of tokenisation spaces where the vocabulary asks for it.
  virtual std::string decode(const std::vector<int32_t>& ids, bool render_special = false) const = 0;

  int32_t n_vocab() const { return int32_t(pieces_.size()); }
  const std::string& piece(int32_t id) const { return pieces_.at(size_t(id)); }  // raw vocabulary entry
  TokenType type(int32_t id) const { return types_.at(size_t(id)); }
  std::optional<int32_t> find(std::string_view piece) const;

  int32_t bos() const { return bos_; }
  int32_t eos() const { return eos_; }
  bool add_bos() const { return add_bos_; }
  bool is_eog(int32_t id) const;  // end-of-generation set (Gemma 4: <eos>, <turn|>, <|tool_response>)
  const std::vector<int32_t>& eog_ids() const { return eog_; }
  const std::string& model() const { return model_; }

 protected:
  std::string model_;
  std::vector<std::string> pieces_;
  std::vector<TokenType> types_;
  int32_t bos_ = -1, eos_ = -1;
  bool add_bos_ = false;
  std::vector<int32_t> eog_;
  // Lookup table piece -> id, built by the implementation.
  virtual std::optional<int32_t> lookup(std::string_view piece) const = 0;
};

// Turns a stream of token ids into text without ever emitting a partial UTF-8 character: bytes of an
// incomplete sequence are held until the sequence completes (or flushed as U+FFFD at the end).
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool render_special = false) : tok_(tok), special_(render_special) {}
  std::string push(int32_t id);  // complete characters ready to print (possibly "")
  std::string flush();           // whatever is left; invalid leftovers become U+FFFD

 private:
  const Tokenizer& tok_;
  bool special_;
  std::string pending_;
};

}  // namespace hearth::tokenizer
