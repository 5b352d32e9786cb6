// Gemma 4's tokenizer: SentencePiece-style BPE with explicit merges (GEMMA4.md §5.1). Spaces become U+2581,
// the text is split into runs of newlines and runs of everything else, and each run is merged from its
// UTF-8 characters by merge rank (lowest first, leftmost on ties); pieces missing from the vocabulary fall
// back to <0xXX> byte tokens.
#include <queue>

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
  struct Symbol {
    size_t offset, length;
    int prev, next;
  };
  struct Bigram {
    int left, right;
    int32_t rank;
    size_t length;  // length of the merged text when queued (stale entries are skipped)
  };
  struct Later {
    bool operator()(const Bigram& a, const Bigram& b) const {
      return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
    }
  };

  int32_t rank(std::string_view w, const Symbol& l, const Symbol& r) const {
    key_.assign(w.substr(l.offset, l.length));
    key_ += ' ';
    key_.append(w.substr(r.offset, r.length));
    auto it = ranks_.find(key_);
    return it == ranks_.end() ? -1 : it->second;
  }

  void encode_word(std::string_view w, bool newlines, std::vector<int32_t>& out) const {
    if (newlines) {
      if (auto id = lookup(w)) {
        out.push_back(*id);
        return;
      }
    }
    std::vector<Symbol> sym;
    for (size_t off = 0; off < w.size();) {
      const size_t len = char_len(w, off);
      sym.push_back({off, len, int(sym.size()) - 1, -1});
      off += len;
    }
    for (size_t k = 0; k + 1 < sym.size(); ++k) sym[k].next = int(k + 1);
    std::priority_queue<Bigram, std::vector<Bigram>, Later> q;
    auto add = [&](int l, int r) {
      if (l < 0 || r < 0) return;
      const int32_t rk = rank(w, sym[size_t(l)], sym[size_t(r)]);
      if (rk >= 0) q.push({l, r, rk, sym[size_t(l)].length + sym[size_t(r)].length});
    };
    for (size_t k = 1; k < sym.size(); ++k) add(int(k - 1), int(k));
    while (!q.empty()) {
      const Bigram b = q.top();
      q.pop();
      Symbol& l = sym[size_t(b.left)];
      Symbol& r = sym[size_t(b.right)];
      if (l.length == 0 || r.length == 0 || l.next != b.right || l.length + r.length != b.length) continue;
      l.length += r.length;
      r.length = 0;
      l.next = r.next;
      if (r.next >= 0) sym[size_t(r.next)].prev = b.left;
      add(l.prev, b.left);
      add(b.left, l.next);
    }
    for (const Symbol& s : sym) {
      if (s.length == 0) continue;
      const std::string_view piece = w.substr(s.offset, s.length);
      if (auto id = lookup(piece))
        out.push_back(*id);
      else
        append_bytes(piece, out);
    }
  }

  std::string merge_text_;
  std::unordered_map<std::string_view, int32_t> ranks_;  // "left right" -> rank
  mutable std::string key_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_gemma4_bpe(const gguf::File& f) { return std::make_unique<Gemma4Bpe>(f); }

}  // namespace hearth::tokenizer
