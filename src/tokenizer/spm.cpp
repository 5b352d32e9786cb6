// SentencePiece-style tokenizer for `tokenizer.ggml.model = "llama"` vocabularies (Llama 1/2, Gemma 1-3 and
// files converted that way): no merge list; adjacent symbols are merged greedily by the score of the
// merged piece (highest first, leftmost on ties), starting from UTF-8 characters. A space is prepended to
// raw text that starts the input or follows a special token when add_space_prefix is set. Pieces that are
// not in the vocabulary fall back to <0xXX> byte tokens. Same results as llama.cpp's SPM session.
#include "tokenizer/vocab_impl.h"

namespace hearth::tokenizer {

namespace {

class Spm final : public VocabImpl {
 public:
  explicit Spm(const gguf::File& f) {
    model_ = "llama";
    bos_ = 1;  // SentencePiece defaults; the GGUF keys override them
    eos_ = 2;
    add_bos_ = true;
    add_space_prefix_ = true;
    load_common(f);
    clean_spaces_ = false;
    finish_special_tokens();
  }

  std::vector<int32_t> encode(std::string_view text, bool parse_special) const override {
    std::vector<int32_t> out;
    bool prev_special = true;  // the start of the input counts as "after a special token"
    for (const Fragment& fr : partition(text, parse_special)) {
      if (fr.token >= 0) {
        out.push_back(fr.token);
        prev_special = true;
        continue;
      }
      std::string raw;
      if (add_space_prefix_ && prev_special) raw = " ";
      raw.append(text.substr(fr.offset, fr.length));
      encode_text(escape_spaces(raw), out);
      prev_special = false;
    }
    return out;
  }

 private:
  void encode_text(std::string_view w, std::vector<int32_t>& out) const {
    // Score of the merged piece when it is a token (higher merges first, so the key is its negation).
    merge_and_emit(
        w,
        [&](std::string_view l, std::string_view r) -> std::optional<double> {
          // l and r are adjacent in w, so the merged piece is the span that covers both.
          const std::optional<int32_t> id = lookup(std::string_view(l.data(), l.size() + r.size()));
          return id ? std::optional<double>(-double(scores_[size_t(*id)])) : std::nullopt;
        },
        out);
  }
};

}  // namespace

std::unique_ptr<Tokenizer> make_spm(const gguf::File& f) { return std::make_unique<Spm>(f); }

}  // namespace hearth::tokenizer
