// Shared machinery of hearth's tokenizers (internal to tokenizer/).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <queue>
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

  // The pair-merging loop both tokenizers share (llama.cpp's BPE and SPM sessions): w starts as its UTF-8
  // characters; priority(left, right) gives the merge key of two adjacent pieces, or nullopt when they do not
  // merge; the lowest key merges first, the leftmost pair on ties, until nothing merges. Each resulting piece
  // is emitted as its vocabulary id, or as byte tokens when it has none.
  template <typename Priority>
  void merge_and_emit(std::string_view w, Priority priority, std::vector<int32_t>& out) const;

  std::vector<uint32_t> attrs_;
  std::vector<float> scores_;
  std::unordered_map<std::string_view, int32_t> index_;  // views into pieces_
  std::vector<int32_t> special_;                         // matched in raw text, longest first
  std::vector<int32_t> byte_tokens_;                     // <0xXX> ids, -1 when absent
  bool add_space_prefix_ = false;
  bool clean_spaces_ = false;
};

template <typename Priority>
void VocabImpl::merge_and_emit(std::string_view w, Priority priority, std::vector<int32_t>& out) const {
  struct Symbol {
    size_t offset, length;
    int prev, next;
  };
  struct Pair {
    int left, right;
    double key;
    size_t length;  // merged length when queued: entries whose symbols changed since are skipped
  };
  struct Later {
    bool operator()(const Pair& a, const Pair& b) const {
      return a.key > b.key || (a.key == b.key && a.left > b.left);
    }
  };
  std::vector<Symbol> sym;
  for (size_t off = 0; off < w.size();) {
    const size_t len = char_len(w, off);
    sym.push_back({off, len, int(sym.size()) - 1, -1});
    off += len;
  }
  for (size_t k = 0; k + 1 < sym.size(); ++k) sym[k].next = int(k + 1);
  std::priority_queue<Pair, std::vector<Pair>, Later> q;
  auto add = [&](int l, int r) {
    if (l < 0 || r < 0) return;
    const Symbol& a = sym[size_t(l)];
    const Symbol& b = sym[size_t(r)];
    if (const std::optional<double> key = priority(w.substr(a.offset, a.length), w.substr(b.offset, b.length)))
      q.push({l, r, *key, a.length + b.length});
  };
  for (size_t k = 1; k < sym.size(); ++k) add(int(k - 1), int(k));
  while (!q.empty()) {
    const Pair p = q.top();
    q.pop();
    Symbol& l = sym[size_t(p.left)];
    Symbol& r = sym[size_t(p.right)];
    if (l.length == 0 || r.length == 0 || l.length + r.length != p.length) continue;
    l.length += r.length;
    r.length = 0;
    l.next = r.next;
    if (r.next >= 0) sym[size_t(r.next)].prev = p.left;
    add(l.prev, p.left);
    add(p.left, l.next);
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

std::unique_ptr<Tokenizer> make_gemma4_bpe(const gguf::File& f);
std::unique_ptr<Tokenizer> make_spm(const gguf::File& f);

}  // namespace hearth::tokenizer
