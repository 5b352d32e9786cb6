// Vocabulary loading, special-token partition, detokenisation and the streaming decoder, shared by the
// BPE (gemma4) and SentencePiece (llama) tokenizers. The behaviour follows llama.cpp's llama-vocab so that
// token ids agree exactly (../shared/testdata/vocab/README.md lists the details that matter).
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "tokenizer/vocab_impl.h"

namespace hearth::tokenizer {

namespace {

// End-of-generation tokens are recognised by their text, as llama.cpp does.
constexpr const char* kEogTexts[] = {
    "<|eot_id|>", "<|im_end|>",  "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>", "<|endoftext|>", "</s>",
    "<|eom_id|>", "<EOT>",       "_<EOT>",  "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>",
    "<|tool_response>",
};

size_t utf8_len(unsigned char c) {
  static const size_t lookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return lookup[c >> 4];
}

}  // namespace

// ------------------------------------------------------------------------------------------- VocabImpl

void VocabImpl::load_common(const gguf::File& f) {
  const gguf::Value* toks = f.find("tokenizer.ggml.tokens");
  if (!toks) throw Error(f.path() + ": no tokenizer (metadata key 'tokenizer.ggml.tokens' is missing)");
  std::vector<std::string_view> t = toks->string_array("tokenizer.ggml.tokens");
  if (t.empty() || t.size() > (size_t(1) << 24))
    throw Error(f.path() + ": tokenizer.ggml.tokens has " + std::to_string(t.size()) + " entries");
  const size_t n = t.size();
  pieces_.reserve(n);
  for (std::string_view s : t) pieces_.emplace_back(s);

  types_.assign(n, TokenType::Normal);
  if (const gguf::Value* tt = f.find("tokenizer.ggml.token_type")) {
    std::vector<int64_t> v = tt->int_array("tokenizer.ggml.token_type");
    if (v.size() != n)
      throw Error(f.path() + ": tokenizer.ggml.token_type has " + std::to_string(v.size()) + " entries for " +
                  std::to_string(n) + " tokens");
    for (size_t i = 0; i < n; ++i) {
      if (v[i] < 0 || v[i] > 6) throw Error(f.path() + ": token " + std::to_string(i) + " has invalid type " + std::to_string(v[i]));
      types_[i] = TokenType(v[i]);
    }
  }
  scores_.assign(n, 0.0f);
  if (const gguf::Value* sc = f.find("tokenizer.ggml.scores")) {
    std::vector<double> v = sc->float_array("tokenizer.ggml.scores");
    if (v.size() != n) throw Error(f.path() + ": tokenizer.ggml.scores has the wrong length");
    for (size_t i = 0; i < n; ++i) scores_[i] = float(v[i]);
  }
  index_.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) index_.emplace(std::string_view(pieces_[i]), int32_t(i));  // first id wins

  attrs_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    switch (types_[i]) {
      case TokenType::Unknown: attrs_[i] = kAttrUnknown; break;
      case TokenType::Control: attrs_[i] = kAttrControl; break;
      case TokenType::UserDefined: attrs_[i] = kAttrUserDefined; break;
      case TokenType::Unused: attrs_[i] = kAttrUnused; break;
      case TokenType::Byte: attrs_[i] = kAttrByte; break;
      default: attrs_[i] = kAttrNormal; break;
    }
  }

  auto id_key = [&](const char* key, int32_t def) -> int32_t {
    const std::optional<int64_t> v = f.opt_int(key);
    if (!v) return def;
    if (*v < 0 || *v >= int64_t(n)) throw Error(f.path() + ": " + key + " = " + std::to_string(*v) + " is not a token id");
    return int32_t(*v);
  };
  bos_ = id_key("tokenizer.ggml.bos_token_id", bos_);
  eos_ = id_key("tokenizer.ggml.eos_token_id", eos_);
  add_bos_ = f.opt_bool("tokenizer.ggml.add_bos_token").value_or(add_bos_);
  add_space_prefix_ = f.opt_bool("tokenizer.ggml.add_space_prefix").value_or(add_space_prefix_);
}

void VocabImpl::finish_special_tokens() {
  const size_t n = pieces_.size();
  // End-of-generation set; each such token is treated as a control token (llama.cpp's override).
  eog_.clear();
  for (size_t i = 0; i < n; ++i) {
    for (const char* t : kEogTexts)
      if (pieces_[i] == t) {
        eog_.push_back(int32_t(i));
        attrs_[i] |= kAttrControl;
        break;
      }
  }
  if (eos_ >= 0 && std::find(eog_.begin(), eog_.end(), eos_) == eog_.end()) eog_.push_back(eos_);
  // Gemma 4: `</s>` is ordinary text there, not an end of generation.
  const auto has = [&](const char* text) {
    for (int32_t id : eog_)
      if (pieces_[size_t(id)] == text) return id;
    return int32_t(-1);
  };
  if (has("<|tool_response>") >= 0) {
    if (const int32_t s = has("</s>"); s >= 0) {
      eog_.erase(std::find(eog_.begin(), eog_.end(), s));
      attrs_[size_t(s)] = kAttrNormal;
    }
  }
  std::sort(eog_.begin(), eog_.end());

  // Special tokens matched in raw text, longest first.
  special_.clear();
  for (size_t i = 0; i < n; ++i)
    if ((attrs_[i] & (kAttrControl | kAttrUserDefined | kAttrUnknown)) && !pieces_[i].empty())
      special_.push_back(int32_t(i));
  std::stable_sort(special_.begin(), special_.end(),
                   [&](int32_t a, int32_t b) { return pieces_[size_t(a)].size() > pieces_[size_t(b)].size(); });

  // Byte-fallback tokens <0xXX>.
  byte_tokens_.assign(256, -1);
  static const char* hex = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    const char buf[7] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>', 0};
    if (auto it = index_.find(std::string_view(buf, 6)); it != index_.end()) byte_tokens_[size_t(b)] = it->second;
  }
}

std::vector<Fragment> VocabImpl::partition(std::string_view text, bool parse_special) const {
  std::vector<Fragment> frags;
  if (text.empty()) return frags;
  frags.push_back({-1, 0, text.size()});
  for (int32_t id : special_) {
    const uint32_t a = attrs_[size_t(id)];
    if (!parse_special && (a & (kAttrControl | kAttrUnknown))) continue;
    const std::string_view needle = pieces_[size_t(id)];
    std::vector<Fragment> next;
    next.reserve(frags.size() + 4);
    for (const Fragment& fr : frags) {
      if (fr.token >= 0) {
        next.push_back(fr);
        continue;
      }
      size_t pos = fr.offset;
      const size_t end = fr.offset + fr.length;
      for (;;) {
        const size_t m = text.substr(0, end).find(needle, pos);
        if (m == std::string_view::npos) break;
        if (m > pos) next.push_back({-1, pos, m - pos});
        next.push_back({id, m, needle.size()});
        pos = m + needle.size();
      }
      if (pos < end) next.push_back({-1, pos, end - pos});
    }
    frags.swap(next);
  }
  return frags;
}

std::string VocabImpl::piece_text(int32_t id, bool render_special) const {
  if (id < 0 || size_t(id) >= pieces_.size())
    throw Error("token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                std::to_string(pieces_.size() - 1) + ")");
  const uint32_t a = attrs_[size_t(id)];
  const std::string& t = pieces_[size_t(id)];
  if ((a & (kAttrControl | kAttrUnknown)) && !render_special) return {};
  if (a & (kAttrControl | kAttrUnknown | kAttrUserDefined)) return t;
  if (a & kAttrNormal) return unescape_spaces(t);
  if (a & kAttrByte) {
    if (t.size() == 6 && t.compare(0, 3, "<0x") == 0) return std::string(1, char(std::stoi(t.substr(3, 2), nullptr, 16)));
    return t;
  }
  return {};  // unused tokens print nothing
}

std::string VocabImpl::escape_spaces(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (char c : s) {
    if (c == ' ')
      out += "\xe2\x96\x81";
    else
      out += c;
  }
  return out;
}

std::string VocabImpl::unescape_spaces(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    if (s.compare(i, 3, "\xe2\x96\x81") == 0) {
      out += ' ';
      i += 3;
    } else {
      out += s[i++];
    }
  }
  return out;
}

std::string VocabImpl::detokenize(const std::vector<int32_t>& ids, bool render_special) const {
  std::string text;
  bool strip_space = add_space_prefix_;
  for (int32_t id : ids) {
    std::string p = piece_text(id, render_special);
    if (strip_space && !p.empty() && p[0] == ' ') p.erase(0, 1);
    strip_space = false;
    text += p;
  }
  if (!clean_spaces_ || text.empty()) return text;
  // llama.cpp's clean-up of tokenisation spaces: three in-place passes over the bytes (each pass writes
  // behind the position it reads, so it reads the previous pass's text).
  char* t = text.data();
  int64_t total = int64_t(text.size());
  {  // " ?" " !" " ." " ,"
    const int64_t n = total;
    total = 1;
    for (int64_t i = 1; i < n; ++i) {
      const char x = t[i];
      if (t[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) --total;
      t[total++] = x;
    }
  }
  {  // " ' " -> "'"
    const int64_t n = total;
    total = 1;
    for (int64_t i = 1; i < n; ++i) {
      const char x = t[i];
      if (x == '\'' && i + 1 < n && t[i - 1] == ' ' && t[i + 1] == ' ') {
        --total;
        t[++i] = '\0';
      }
      t[total++] = x;
    }
  }
  {  // " 's" " 'm" " 're" " 've"
    const int64_t n = total;
    total = 1;
    for (int64_t i = 1; i < n; ++i) {
      const char x = t[i];
      if (t[i - 1] == ' ' && x == '\'' && i + 1 < n) {
        const char x1 = t[i + 1];
        if (x1 == 's' || x1 == 'm' || (i + 2 < n && ((x1 == 'r' && t[i + 2] == 'e') || (x1 == 'v' && t[i + 2] == 'e'))))
          --total;
      }
      t[total++] = x;
    }
  }
  text.resize(size_t(total));
  return text;
}

void VocabImpl::append_bytes(std::string_view s, std::vector<int32_t>& out) const {
  for (unsigned char c : s) {
    const int32_t id = byte_tokens_[c];
    if (id >= 0) {
      out.push_back(id);
    } else if (auto it = index_.find(std::string_view(reinterpret_cast<const char*>(&c), 1)); it != index_.end()) {
      out.push_back(it->second);
    }  // a vocabulary without byte fallback drops the byte, as llama.cpp does
  }
}

std::optional<int32_t> VocabImpl::lookup(std::string_view piece) const {
  auto it = index_.find(piece);
  return it == index_.end() ? std::nullopt : std::optional<int32_t>(it->second);
}

size_t VocabImpl::char_len(std::string_view s, size_t offset) {
  return std::min(s.size() - offset, utf8_len(static_cast<unsigned char>(s[offset])));
}

// ------------------------------------------------------------------------------------------ Tokenizer

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const gguf::File& file) {
  const std::optional<std::string_view> model = file.opt_string("tokenizer.ggml.model");
  if (!model) throw Error(file.path() + ": no tokenizer (metadata key 'tokenizer.ggml.model' is missing)");
  if (*model == "gemma4") return make_gemma4_bpe(file);
  if (*model == "llama") return make_spm(file);
  throw Error(file.path() + ": tokenizer model '" + std::string(*model) +
              "' is not supported (supported: gemma4, llama)");
}

std::vector<int32_t> Tokenizer::encode_prompt(std::string_view text, bool parse_special) const {
  std::vector<int32_t> ids;
  if (add_bos_ && bos_ >= 0) ids.push_back(bos_);
  std::vector<int32_t> rest = encode(text, parse_special);
  ids.insert(ids.end(), rest.begin(), rest.end());
  return ids;
}

std::optional<int32_t> Tokenizer::find(std::string_view piece) const { return lookup(piece); }

bool Tokenizer::is_eog(int32_t id) const { return std::binary_search(eog_.begin(), eog_.end(), id); }

// -------------------------------------------------------------------------------------- StreamDecoder

namespace {
// Length of the valid UTF-8 sequence starting at s[i] (1-4), 0 when it is incomplete at the end of s,
// -1 when the bytes there can never form a valid character.
int utf8_sequence(const std::string& s, size_t i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  int len;
  uint32_t min;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) len = 2, min = 0x80;
  else if (c >= 0xE0 && c <= 0xEF) len = 3, min = 0x800;
  else if (c >= 0xF0 && c <= 0xF4) len = 4, min = 0x10000;
  else return -1;
  uint32_t cp = c & (0x3F >> (len - 1));
  for (int k = 1; k < len; ++k) {
    if (i + size_t(k) >= s.size()) return 0;
    const unsigned char d = static_cast<unsigned char>(s[i + size_t(k)]);
    if ((d & 0xC0) != 0x80) return -1;
    cp = (cp << 6) | (d & 0x3F);
    if (k == 1 && len == 3 && c == 0xE0 && d < 0xA0) return -1;   // overlong
    if (k == 1 && len == 3 && c == 0xED && d >= 0xA0) return -1;  // surrogates
    if (k == 1 && len == 4 && c == 0xF0 && d < 0x90) return -1;   // overlong
    if (k == 1 && len == 4 && c == 0xF4 && d >= 0x90) return -1;  // beyond U+10FFFF
  }
  return cp >= min ? len : -1;
}
constexpr const char* kReplacement = "\xEF\xBF\xBD";
}  // namespace

std::string StreamDecoder::push(int32_t id) {
  pending_ += tok_.token_to_piece(id, special_);
  std::string out;
  size_t i = 0;
  while (i < pending_.size()) {
    const int n = utf8_sequence(pending_, i);
    if (n == 0) break;  // wait for the rest of this character
    if (n < 0) {
      out += kReplacement;
      ++i;
      continue;
    }
    out.append(pending_, i, size_t(n));
    i += size_t(n);
  }
  pending_.erase(0, i);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = pending_.empty() ? "" : kReplacement;  // an incomplete character at the end
  pending_.clear();
  return out;
}

}  // namespace hearth::tokenizer
