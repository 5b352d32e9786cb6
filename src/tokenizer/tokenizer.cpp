// Placeholder until the tokenizer lands (see tokenizer.h for the contract).
#include "tokenizer/tokenizer.h"

#include "core/error.h"

namespace hearth::tokenizer {

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const gguf::File& file) {
  throw Error(file.path() + ": tokenizer not implemented yet");
}
std::vector<int32_t> Tokenizer::encode_prompt(std::string_view text, bool parse_special) const {
  std::vector<int32_t> ids;
  if (add_bos_) ids.push_back(bos_);
  auto rest = encode(text, parse_special);
  ids.insert(ids.end(), rest.begin(), rest.end());
  return ids;
}
std::optional<int32_t> Tokenizer::find(std::string_view piece) const { return lookup(piece); }
bool Tokenizer::is_eog(int32_t id) const {
  for (int32_t e : eog_)
    if (e == id) return true;
  return false;
}
std::string StreamDecoder::push(int32_t id) { return tok_.token_to_piece(id, special_); }
std::string StreamDecoder::flush() { return {}; }

}  // namespace hearth::tokenizer
