// Gemma 4's tokenizer: SentencePiece-style BPE with explicit merges (GEMMA4.md §5.1). Spaces become U+2581,
// the text is split into runs of newlines and runs of everything else, and each run is merged from its
// UTF-8 characters by merge rank (lowest first, leftmost on ties); pieces missing from the vocabulary fall
// back to <0xXX> byte tokens.
#include "core/error.h"
#include "tokenizer/vocab_impl.h"

namespace hearth::tokenizer {

namespace {

class Gemma4Bpe final : public VocabImpl {
 public:
  explicit Gemma4Bpe(const gguf::File& f) {
    model_ = "gemma4";
    add_bos_ = true;
    load_common(f);
    add_bos_ = true;  // llama.cpp forces BOS for Gemma 4 whatever the file says
    add_space_prefix_ = false;
    clean_spaces_ = true;
    const gguf::Value* m = f.find("tokenizer.ggml.merges");
    if (!m) throw Error(f.path() + ": tokenizer.ggml.merges is missing (required by the gemma4 tokenizer)");
    const std::vector<std::string_view> merges = m->string_array("tokenizer.ggml.merges");
    size_t total = 0;
    for (std::string_view s : merges) total += s.size();
    merge_text_.reserve(total);
    ranks_.reserve(merges.size() * 2);
    for (size_t i = 0; i < merges.size(); ++i) {
      const std::string_view s = merges[i];
      if (s.size() < 2 || s.find(' ', 1) == std::string_view::npos) continue;  // llama.cpp ignores these too
      const size_t at = merge_text_.size();
      merge_text_ += s;
      ranks_.emplace(std::string_view(merge_text_).substr(at, s.size()), int32_t(i));
    }
    finish_special_tokens();
  }

  std::vector<int32_t> encode(std::string_view text, bool parse_special) const override {
    std::vector<int32_t> out;
    for (const Fragment& fr : partition(text, parse_special)) {
      if (fr.token >= 0) {
        out.push_back(fr.token);
        continue;
      }
      const std::string escaped = escape_spaces(text.substr(fr.offset, fr.length));
      // Runs of newlines vs. everything else.
      size_t i = 0;
      while (i < escaped.size()) {
        const bool nl = escaped[i] == '\n';
        size_t j = i;
        while (j < escaped.size() && (escaped[j] == '\n') == nl) ++j;
        encode_word(std::string_view(escaped).substr(i, j - i), nl, out);
        i = j;
      }
    }
    return out;
  }

 private:
  void encode_word(std::string_view w, bool newlines, std::vector<int32_t>& out) const {
    if (newlines) {
      if (auto id = lookup(w)) {
        out.push_back(*id);
        return;
      }
    }
    // Merge rank of "left right" (lower merges first). The key buffer is local: encode() runs on several
    // threads at once (HTTP threads count prompt tokens while the engine tokenises).
    std::string key;
    merge_and_emit(
        w,
        [&](std::string_view l, std::string_view r) -> std::optional<double> {
          key.assign(l);
          key += ' ';
          key.append(r);
          auto it = ranks_.find(key);
          return it == ranks_.end() ? std::nullopt : std::optional<double>(it->second);
        },
        out);
  }

  std::string merge_text_;
  std::unordered_map<std::string_view, int32_t> ranks_;  // "left right" -> rank
};

}  // namespace

std::unique_ptr<Tokenizer> make_gemma4_bpe(const gguf::File& f) { return std::make_unique<Gemma4Bpe>(f); }

}  // namespace hearth::tokenizer
