// Grammar-constrained decoding: GBNF grammars compiled once, a per-vocabulary token trie, and a per-sequence
// matcher that masks the logits of every token the grammar does not allow next.
//
// GBNF (llama.cpp style): rules `name ::= alternatives`; string literals "..." with escapes \n \r \t \\ \"
// \' \[ \] \- \/ \xHH \uHHHH \UHHHHHHHH; character classes [a-z0-9_] and negated [^"\\]; `.` any character;
// grouping ( ); alternation |; postfix * + ? {m} {m,} {m,n}; comments #...; and special-token terminals
// <[ID]> that match exactly the token with that id. Characters are Unicode code points over UTF-8: a class
// never matches part of a character or an invalid UTF-8 sequence. Newlines end a rule except inside
// parentheses, after `|`, or before a line that starts with `|`.
//
// How masking stays fast on a 262144-token vocabulary: the matcher state is a set of pushdown stacks of
// grammar positions. For a stack, the tokens accepted without leaving its top k frames do not depend on
// the frames below, so they are computed once by walking a byte trie of every token piece (pruning dead
// subtrees) and cached. The walk also records the trie nodes where those frames may end with bytes left
// over (only where the next character can follow them at all); at run time just those subtrees are walked
// again from the frames below. k starts at 1 and grows while that list is long (a rule for one string
// character ends after every character; the loop around it does not). Inside a JSON string a mask is then
// a bitset copy plus the few hundred tokens that contain a closing quote. Cache entries are shared by every
// grammar used with the same TokenIndex, keyed by the grammar fragment they depend on, so the one-time
// walk of a string body happens once per process, not once per request.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::tokenizer {
class Tokenizer;
}

namespace hearth::runtime {

// An immutable compiled grammar, shared between sequences (and threads). It also holds the lazily filled
// per-vocabulary mask cache, which is internally synchronised.
struct Grammar;

// Throws hearth::Error on a syntax error (with line and column), an undefined rule, a missing root rule,
// or left recursion (a rule that can reach itself without consuming input, e.g. `x ::= x "a"` or `("")*`).
std::shared_ptr<const Grammar> compile_gbnf(std::string_view text, std::string_view root = "root");

// The vocabulary as the matcher sees it; built once per vocabulary and shared by all matchers
// (read-only after construction, so thread-safe).
//  * Text tokens (Normal, Byte, Unknown, Undefined types) match by the bytes of token_to_piece(id, false).
//  * Control and UserDefined tokens match ONLY special-token terminals <[ID]>, never text, so markup such as
//    "<|tool_call>" can never be spelled out of text pieces and a special token never satisfies text.
//  * Unused tokens and text tokens with an empty piece are never allowed except through <[ID]>.
class TokenIndex {
 public:
  explicit TokenIndex(const tokenizer::Tokenizer& tok);
  ~TokenIndex();
  TokenIndex(const TokenIndex&) = delete;
  TokenIndex& operator=(const TokenIndex&) = delete;

  int32_t n_vocab() const;
  bool is_special(int32_t id) const;     // Control / UserDefined
  std::string_view text(int32_t id) const;  // the bytes a text token matches ("" for the others)

  struct Impl;  // defined in grammar.cpp
  const Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

struct MaskCache;  // per (grammar, vocabulary); defined in grammar.cpp

// Per-sequence state. Copyable (copies share the grammar, the index and the mask cache).
// One matcher must not be used from two threads at once; distinct matchers may.
class GrammarMatcher {
 public:
  GrammarMatcher(std::shared_ptr<const Grammar> g, std::shared_ptr<const TokenIndex> idx);

  // Sets to -INFINITY the logit of every token the grammar does not allow next; `logits` holds n_vocab()
  // values. The end-of-generation tokens `eog` are allowed iff can_end() (whatever the grammar says of them).
  // Allowed logits are left untouched.
  void apply(float* logits, const std::vector<int32_t>& eog) const;
  // mask[id] = 1 if the grammar allows token id next (resized to n_vocab; no EOG rule).
  void allowed(std::vector<uint8_t>& mask) const;
  // Advances over one token; returns false, leaving the state unchanged, if the token is not allowed.
  bool accept(int32_t token);
  // Advances over raw UTF-8 text (only character terminals can match it); false and unchanged if rejected.
  // The text may end inside a character, which then has to be completed by what follows.
  bool accept_text(std::string_view utf8);
  bool can_end() const;   // the input so far is a complete sentence of the grammar
  bool must_end() const;  // complete, and nothing more may follow
  void reset();

 private:
  void compute_mask(std::vector<uint64_t>& bits) const;

  std::shared_ptr<const Grammar> g_;
  std::shared_ptr<const TokenIndex> idx_;
  std::shared_ptr<MaskCache> cache_;
  // The live stacks, bottom first; each top is a terminal position. An empty stack means "complete".
  // Sorted and unique.
  std::vector<std::vector<uint32_t>> stacks_;
  std::string pending_;  // bytes of a character that the last token left incomplete
};

}  // namespace hearth::runtime
