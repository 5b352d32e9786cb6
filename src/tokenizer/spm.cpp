// SentencePiece-style tokenizer for `tokenizer.ggml.model = "llama"` vocabularies (Llama 1/2, Gemma 1-3 and
// files converted that way): no merge list; adjacent symbols are merged greedily by the score of the
// merged piece (highest first, leftmost on ties), starting from UTF-8 characters. A space is prepended to
// raw text that starts the input or follows a special token when add_space_prefix is set. Pieces that are
// not in the vocabulary fall back to <0xXX> byte tokens. Same results as llama.cpp's SPM session.
#include <queue>

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
  struct Symbol {
    size_t offset, length;
    int prev, next;
  };
  struct Bigram {
    int left, right;
    float score;
    size_t length;
  };
  struct Lower {  // max-heap on score, then the leftmost pair
    bool operator()(const Bigram& a, const Bigram& b) const {
      return a.score < b.score || (a.score == b.score && a.left > b.left);
    }
  };

  void encode_text(std::string_view w, std::vector<int32_t>& out) const {
    if (w.empty()) return;
    std::vector<Symbol> sym;
    for (size_t off = 0; off < w.size();) {
      const size_t len = char_len(w, off);
      sym.push_back({off, len, int(sym.size()) - 1, -1});
      off += len;
    }
    for (size_t k = 0; k + 1 < sym.size(); ++k) sym[k].next = int(k + 1);
    std::priority_queue<Bigram, std::vector<Bigram>, Lower> q;
    auto add = [&](int l, int r) {
      if (l < 0 || r < 0) return;
      const Symbol& a = sym[size_t(l)];
      const std::string_view merged = w.substr(a.offset, a.length + sym[size_t(r)].length);
      if (auto id = lookup(merged)) q.push({l, r, scores_[size_t(*id)], merged.size()});
    };
    for (size_t k = 1; k < sym.size(); ++k) add(int(k - 1), int(k));
    while (!q.empty()) {
      const Bigram b = q.top();
      q.pop();
      Symbol& l = sym[size_t(b.left)];
      Symbol& r = sym[size_t(b.right)];
      if (l.length == 0 || r.length == 0 || l.length + r.length != b.length) continue;
      l.length += r.length;
      r.length = 0;
      l.next = r.next;
      if (r.next >= 0) sym[size_t(r.next)].prev = b.left;
      add(l.prev, b.left);
      add(b.left, l.next);
    }
    for (int i = 0; i != -1; i = sym[size_t(i)].next) {
      const std::string_view piece = w.substr(sym[size_t(i)].offset, sym[size_t(i)].length);
      if (auto id = lookup(piece))
        out.push_back(*id);
      else
        append_bytes(piece, out);
    }
  }
};

}  // namespace

std::unique_ptr<Tokenizer> make_spm(const gguf::File& f) { return std::make_unique<Spm>(f); }

}  // namespace hearth::tokenizer
