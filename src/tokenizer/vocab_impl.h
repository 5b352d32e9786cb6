// Shared machinery of hearth's tokenizers (internal to tokenizer/).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace hearth::tokenizer {

// A piece of the input after special-token partition: raw text (token < 0) or one special token.
struct Fragment {
  int32_t token;
  size_t offset, length;
};

// Token attributes as llama.cpp derives them from token types (and then overrides some).
enum : uint32_t {
  kAttrNormal = 1u << 0,
  kAttrUnknown = 1u << 1,
  kAttrControl = 1u << 2,
  kAttrUserDefined = 1u << 3,
  kAttrUnused = 1u << 4,
  kAttrByte = 1u << 5,
};

class VocabImpl : public Tokenizer {
 public:
  std::string token_to_piece(int32_t id, bool render_special) const override { return piece_text(id, render_special); }
  std::string decode(const std::vector<int32_t>& ids, bool render_special) const override {
    return detokenize(ids, render_special);
  }

 protected:
  void load_common(const gguf::File& f);   // pieces, types, scores, special ids, flags
  void finish_special_tokens();            // EOG set, type overrides, special-token cache, byte tokens
  std::vector<Fragment> partition(std::string_view text, bool parse_special) const;
  std::string piece_text(int32_t id, bool render_special) const;
  std::string detokenize(const std::vector<int32_t>& ids, bool render_special) const;
  void append_bytes(std::string_view s, std::vector<int32_t>& out) const;  // byte fallback
  std::optional<int32_t> lookup(std::string_view piece) const override;
  static std::string escape_spaces(std::string_view s);       // ' ' -> U+2581
  static std::string unescape_spaces(const std::string& s);   // U+2581 -> ' '
  static size_t char_len(std::string_view s, size_t offset);  // UTF-8 length from the lead byte

  std::vector<uint32_t> attrs_;
  std::vector<float> scores_;
  std::unordered_map<std::string_view, int32_t> index_;  // views into pieces_
  std::vector<int32_t> special_;                         // matched in raw text, longest first
  std::vector<int32_t> byte_tokens_;                     // <0xXX> ids, -1 when absent
  bool add_space_prefix_ = false;
  bool clean_spaces_ = false;
};

std::unique_ptr<Tokenizer> make_gemma4_bpe(const gguf::File& f);
std::unique_ptr<Tokenizer> make_spm(const gguf::File& f);

}  // namespace hearth::tokenizer
