// The grammar engine: GBNF parsing and its errors, matching over UTF-8 code points and special tokens, the
// token mask (it must agree with accept() token for token, also on the real Gemma 4 vocabulary), JSON schema
// grammars and the validator, the Gemma 4 tool-call grammar and parser, and random walks over the real
// vocabulary whose every output must parse and validate (what the chat layer relies on). Mask timings on
// the real vocabulary are printed, not asserted.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "core/error.h"
#include "runtime/grammar.h"
#include "runtime/json_schema.h"
#include "runtime/tool_grammar.h"
#include "test_data.h"
#include "tokenizer/tokenizer.h"

namespace {

using hearth::Error;
using hearth::runtime::compile_gbnf;
using hearth::runtime::Gemma4ToolTokens;
using hearth::runtime::GrammarMatcher;
using hearth::runtime::TokenIndex;
using hearth::runtime::ToolSpec;
using hearth::tokenizer::TokenType;
using nlohmann::json;

// A small vocabulary built in memory: 4 special tokens, the 256 byte tokens, some multi-character text
// tokens, one with an empty piece and one unused token.
class TestTokenizer : public hearth::tokenizer::Tokenizer {
 public:
  static constexpr int32_t kEos = 0, kCallOpen = 1, kCallClose = 2, kQuote = 3, kFirstByte = 4;
  TestTokenizer() {
    add("<eos>", TokenType::Control);
    add("<|tool_call>", TokenType::UserDefined);
    add("<tool_call|>", TokenType::UserDefined);
    add("<|\"|>", TokenType::UserDefined);
    for (int b = 0; b < 256; ++b) add(std::string(1, char(b)), TokenType::Byte);
    for (const char* p : {"ab", "abc", "hello", " world", "\"}", "{\"", "\xC3\xA9", "\xE6\x97\xA5\xE6\x9C\xAC", "12",
                          "true", "ca", "ll:", "<|", "\"|>", "call:", "{}", "a\"", "\xC3\xA9\xC3"})
      add(p, TokenType::Normal);
    add("", TokenType::Normal);
    add("<unused0>", TokenType::Unused);
    eos_ = kEos;
    eog_ = {kEos};
  }
  static int32_t byte(unsigned char b) { return kFirstByte + b; }
  int32_t id_of(std::string_view p) const { return *find(p); }

  std::vector<int32_t> encode(std::string_view, bool) const override { return {}; }
  std::string token_to_piece(int32_t id, bool render_special) const override {
    return type(id) == TokenType::Control && !render_special ? "" : piece(id);
  }
  std::string decode(const std::vector<int32_t>& ids, bool render_special) const override {
    std::string s;
    for (int32_t id : ids) s += token_to_piece(id, render_special);
    return s;
  }

 protected:
  std::optional<int32_t> lookup(std::string_view p) const override {
    // Text tokens first: the byte tokens share pieces with the one-character text they stand for.
    for (int32_t id = n_vocab() - 1; id >= 0; --id)
      if (pieces_[size_t(id)] == p) return id;
    return std::nullopt;
  }

 private:
  void add(std::string piece, TokenType t) {
    pieces_.push_back(std::move(piece));
    types_.push_back(t);
  }
};

const TestTokenizer& test_tok() {
  static const TestTokenizer tok;
  return tok;
}
std::shared_ptr<const TokenIndex> test_index() {
  static const auto idx = std::make_shared<const TokenIndex>(test_tok());
  return idx;
}

GrammarMatcher matcher(std::string_view gbnf, std::shared_ptr<const TokenIndex> idx = test_index()) {
  return GrammarMatcher(compile_gbnf(gbnf), std::move(idx));
}

// Whether the whole text is a sentence of the grammar.
bool matches(std::string_view gbnf, std::string_view text) {
  GrammarMatcher m = matcher(gbnf);
  return m.accept_text(text) && m.can_end();
}

std::vector<uint8_t> mask_of(const GrammarMatcher& m) {
  std::vector<uint8_t> mask;
  m.allowed(mask);
  return mask;
}

// The mask must say exactly which tokens accept() takes (checks every `stride`-th token).
void expect_mask_matches_accept(const GrammarMatcher& m, int32_t n_vocab, int stride = 1) {
  const std::vector<uint8_t> mask = mask_of(m);
  ASSERT_EQ(mask.size(), size_t(n_vocab));
  for (int32_t id = 0; id < n_vocab; id += stride) {
    GrammarMatcher copy = m;
    EXPECT_EQ(bool(mask[size_t(id)]), copy.accept(id)) << "token " << id;
  }
}

std::string error_of(std::string_view gbnf) {
  try {
    compile_gbnf(gbnf);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// ------------------------------------------------------------------------------------------------ GBNF

TEST(Gbnf, ParseErrorsAreClear) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"root ::= \"abc", "line 1, column 10: unterminated string literal"},
      {"root ::= [a-", "unterminated character class"},
      {"root ::= [z-a]", "reversed"},
      {"root ::= foo", "line 1, column 10: undefined rule 'foo'"},
      {"a ::= \"x\"", "root rule 'root' is not defined"},
      {"root ::= \"\\q\"", "unknown escape"},
      {"root \"x\"", "expected '::='"},
      {"root ::= \"a\"\nroot ::= \"b\"", "line 2, column 1: rule 'root' is defined twice"},
      {"root ::= (\"a\" | \"b\"", "expected ')'"},
      {"root ::= * \"a\"", "nothing to repeat"},
      {"root ::= \"a\"{3,1}", "n < m"},
      {"root ::= \"a\"{2,", "expected '}'"},
      {"root ::= \"a\"{99999}", "larger than 10000"},
      {"root ::= <[12x]>", "expected ']>'"},
      {"root ::= root \"a\"", "left recursion"},
      {"root ::= a\na ::= \"b\"? root", "left recursion"},
      {"root ::= (\"\")* \"a\"", "left recursion"},
      {"root ::= [^\\x00-\\U0010FFFF]", "matches nothing"},
      {"root ::= \"a\" )", "unexpected ')'"},
      {"root ::= \"\\xZZ\"", "invalid hexadecimal"},
  };
  for (const auto& [text, msg] : cases) {
    const std::string err = error_of(text);
    EXPECT_NE(err.find(msg), std::string::npos) << "grammar: " << text << "\nerror: " << err;
  }
  EXPECT_THROW(compile_gbnf("root ::= \"a\"", "start"), Error);
}

TEST(Gbnf, SyntaxVariants) {
  const char* g = R"(
# comment line
root ::= greeting (", " name)? "!"   # trailing comment
greeting ::= "hi"
           | "hello"
name ::= (
    [A-Z] [a-z]*
  | "\u00e9\x41"   # e-acute then A
)
)";
  EXPECT_TRUE(matches(g, "hi!"));
  EXPECT_TRUE(matches(g, "hello, Bob!"));
  EXPECT_TRUE(matches(g, "hi, \xC3\xA9" "A!"));
  EXPECT_FALSE(matches(g, "hello, bob!"));
  EXPECT_FALSE(matches(g, "hey!"));
  EXPECT_TRUE(matches("root ::= \"\\\"\\\\\\n\\t\\[\\]\"", "\"\\\n\t[]"));
  EXPECT_TRUE(matches("root ::= [\\]\\-a]+", "]-a"));
  EXPECT_TRUE(matches("root ::= \"\"", ""));
  EXPECT_TRUE(matches("root ::= start\nstart ::= \"x\"", "x"));
  GrammarMatcher m(compile_gbnf("start ::= \"x\"", "start"), test_index());
  EXPECT_TRUE(m.accept_text("x") && m.must_end());
}

// ------------------------------------------------------------------------------------- text matching

TEST(Matcher, LiteralsAndCompletion) {
  GrammarMatcher m = matcher("root ::= \"hello\" \" world\"?");
  EXPECT_FALSE(m.can_end());
  EXPECT_FALSE(m.accept_text("help"));
  EXPECT_TRUE(m.accept_text("hel"));
  EXPECT_FALSE(m.can_end());
  EXPECT_TRUE(m.accept_text("lo"));
  EXPECT_TRUE(m.can_end());
  EXPECT_FALSE(m.must_end());
  EXPECT_TRUE(m.accept_text(" world"));
  EXPECT_TRUE(m.must_end());
  EXPECT_FALSE(m.accept_text("x"));
  m.reset();
  EXPECT_FALSE(m.can_end());
  EXPECT_TRUE(m.accept_text("hello world"));
}

TEST(Matcher, ClassesAndRepetitions) {
  const char* g = "root ::= [a-c]+ [0-9]{2,3} \"x\"? [^0-9a-z]{2} .";
  for (const char* ok : {"a12AB!", "abcabc123xAB\n", "c99x--z", "b000..."})
    EXPECT_TRUE(matches(g, ok)) << ok;
  for (const char* bad : {"12AB!", "a1AB!", "a1234AB!", "a12aB!", "a12AB", "a12AB!!", "d12AB!"})
    EXPECT_FALSE(matches(g, bad)) << bad;
  EXPECT_TRUE(matches("root ::= \"ab\"{2}", "abab"));
  EXPECT_FALSE(matches("root ::= \"ab\"{2}", "ab"));
  EXPECT_TRUE(matches("root ::= (\"a\" | \"b\"){3,}", "abba"));
  EXPECT_FALSE(matches("root ::= (\"a\" | \"b\"){3,}", "ab"));
  EXPECT_TRUE(matches("root ::= \"a\"{0,2} \"b\"", "aab"));
  EXPECT_FALSE(matches("root ::= \"a\"{0,2} \"b\"", "aaab"));
  // Right recursion and deep nesting.
  const char* parens = "root ::= p\np ::= \"(\" p \")\" | \"\"";
  EXPECT_TRUE(matches(parens, std::string(200, '(') + std::string(200, ')')));
  EXPECT_FALSE(matches(parens, std::string(20, '(') + std::string(19, ')')));
  // Ambiguous alternatives stay live together.
  const char* amb = "root ::= \"a\" \"b\"* | \"a\" \"b\" \"c\" | [a-b]+ \"d\"";
  for (const char* ok : {"a", "abbb", "abc", "abd", "bd"}) EXPECT_TRUE(matches(amb, ok)) << ok;
  EXPECT_FALSE(matches(amb, "abcd"));
}

TEST(Matcher, Utf8CodePoints) {
  EXPECT_TRUE(matches("root ::= [α-ω]+", "βγ"));
  EXPECT_FALSE(matches("root ::= [α-ω]+", "a"));
  EXPECT_TRUE(matches("root ::= [^a]*", "日本語 é"));
  EXPECT_TRUE(matches("root ::= . . .", "a\xC3\xA9\xF0\x9F\x98\x80"));  // a, é, 😀: three characters
  EXPECT_FALSE(matches("root ::= . .", "\xF0\x9F\x98\x80"));
  EXPECT_TRUE(matches("root ::= \"日本\"", "日本"));
  // Invalid UTF-8 never matches, not even '.'.
  for (const char* bad : {"\xFF", "\xC0\x80", "\xED\xA0\x80", "\x80", "\xF4\x90\x80\x80", "\xE0\x80\x80"})
    EXPECT_FALSE(matches("root ::= .*", bad)) << "bytes " << int(static_cast<unsigned char>(bad[0]));
  // A character may arrive in pieces; until complete the sentence is not.
  GrammarMatcher m = matcher("root ::= [à-ÿ]");
  EXPECT_FALSE(m.accept_text("\xC2"));  // U+0080..U+00BF: not in the class
  EXPECT_TRUE(m.accept_text("\xC3"));
  EXPECT_FALSE(m.can_end());
  EXPECT_FALSE(m.accept_text("\x80"));  // U+00C0 is not in [à-ÿ]
  EXPECT_TRUE(m.accept_text("\xA9"));   // é
  EXPECT_TRUE(m.must_end());
}

TEST(Matcher, SpecialTokenTerminals) {
  const auto& tok = test_tok();
  GrammarMatcher m = matcher("root ::= <[1]> \"call:\" [a-z]+ <[2]>");
  std::vector<uint8_t> mask = mask_of(m);
  for (int32_t id = 0; id < tok.n_vocab(); ++id) EXPECT_EQ(mask[size_t(id)], id == TestTokenizer::kCallOpen) << id;
  // The text of a special token never stands in for it, and text never spells it.
  EXPECT_FALSE(m.accept_text("<|tool_call>"));
  EXPECT_FALSE(m.accept(tok.id_of("<|")));
  EXPECT_TRUE(m.accept(TestTokenizer::kCallOpen));
  EXPECT_TRUE(m.accept(tok.id_of("call:")));
  EXPECT_FALSE(m.accept(TestTokenizer::kCallClose));  // needs a letter first
  EXPECT_TRUE(m.accept(tok.id_of("abc")));
  mask = mask_of(m);
  EXPECT_TRUE(mask[TestTokenizer::kCallClose]);
  EXPECT_FALSE(mask[TestTokenizer::kQuote]);
  EXPECT_TRUE(m.accept(TestTokenizer::kCallClose));
  EXPECT_TRUE(m.must_end());

  // Special tokens never satisfy text; empty-piece and unused tokens are never allowed.
  GrammarMatcher any = matcher("root ::= .*");
  mask = mask_of(any);
  for (int32_t id :
       {TestTokenizer::kEos, TestTokenizer::kCallOpen, TestTokenizer::kQuote, tok.n_vocab() - 1, tok.n_vocab() - 2})
    EXPECT_FALSE(mask[size_t(id)]) << id;
  EXPECT_TRUE(mask[size_t(tok.id_of("hello"))]);
  EXPECT_FALSE(any.accept(TestTokenizer::kQuote));
  EXPECT_FALSE(any.accept(tok.n_vocab()));
  EXPECT_FALSE(any.accept(-1));
}

TEST(Matcher, ByteTokensBuildCharacters) {
  GrammarMatcher m = matcher("root ::= \"é\" [a-z]");
  std::vector<uint8_t> mask = mask_of(m);
  EXPECT_TRUE(mask[size_t(TestTokenizer::byte(0xC3))]);
  EXPECT_TRUE(mask[size_t(test_tok().id_of("\xC3\xA9"))]);
  EXPECT_FALSE(mask[size_t(TestTokenizer::byte(0xA9))]);
  EXPECT_FALSE(mask[size_t(TestTokenizer::byte(0xC4))]);
  ASSERT_TRUE(m.accept(TestTokenizer::byte(0xC3)));
  mask = mask_of(m);
  for (int32_t id = 0; id < test_tok().n_vocab(); ++id)
    EXPECT_EQ(mask[size_t(id)], id == TestTokenizer::byte(0xA9)) << id;  // only the byte completing é
  expect_mask_matches_accept(m, test_tok().n_vocab());
  ASSERT_TRUE(m.accept(TestTokenizer::byte(0xA9)));
  EXPECT_FALSE(m.can_end());
  EXPECT_TRUE(m.accept(test_tok().id_of("ab")) == false);
  EXPECT_TRUE(m.accept(TestTokenizer::byte('q')));
  EXPECT_TRUE(m.must_end());
  // A token ending inside a character is allowed only if some completion could match.
  GrammarMatcher e = matcher("root ::= \"é\" \"é\"");
  EXPECT_TRUE(mask_of(e)[size_t(test_tok().id_of("\xC3\xA9\xC3"))]);
  GrammarMatcher f = matcher("root ::= \"é\" \"x\"");
  EXPECT_FALSE(mask_of(f)[size_t(test_tok().id_of("\xC3\xA9\xC3"))]);
}

TEST(Matcher, MaskAgreesWithAcceptOnEveryToken) {
  const int32_t n = test_tok().n_vocab();
  // A prefix starting with '@' is preceded by the <|tool_call> token.
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"root ::= \"{\\\"\" [a-z]* \"\\\"}\" ", {"", "{", "{\"a", "{\"ab\""}},
      {"root ::= (\"ab\" | \"abc\" | \"a\\\"\")+ \"!\"?", {"", "a", "ab", "abc"}},
      {"root ::= <[1]> \"ca\" \"ll:\"? ([^<] | \"<\" [^|])* <[2]>", {"", "@", "@ca", "@call:<", "@call:<x"}},
      {"root ::= \"12\" [0-9]* | \"true\" | [\\x00-\\x7F]{1,3}", {"", "1", "t", "tr"}},
      {"root ::= \"é\"* \"日本\"", {"", "é", "\xC3"}},
  };
  for (const auto& [g, prefixes] : cases)
    for (const auto& p : prefixes) {
      GrammarMatcher m = matcher(g);
      const bool call = !p.empty() && p[0] == '@';
      if (call) {
        ASSERT_TRUE(m.accept(TestTokenizer::kCallOpen));
      }
      ASSERT_TRUE(m.accept_text(call ? p.substr(1) : p)) << g << " / " << p;
      SCOPED_TRACE(g + " after '" + p + "'");
      expect_mask_matches_accept(m, n);
    }
}

TEST(Matcher, CacheEntriesSharedAcrossGrammarsStayExact) {
  // The same string rule in different surroundings: entries made for one grammar serve the other.
  const std::string str = "str ::= \"\\\"\" ch* \"\\\"\"\nch ::= [^\"\\\\] | \"\\\\\" [\"n]\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"root ::= \"{\" str \"}\"\n" + str, "{\"ab"},
      {"root ::= \"[\" str (\",\" str)* \"]\"\n" + str, "[\"a\",\"b"},
      {"root ::= str \"ca\"?\n" + str, "\"x"},
  };
  for (int round = 0; round < 2; ++round)
    for (const auto& [g, prefix] : cases) {
      GrammarMatcher m = matcher(g);
      ASSERT_TRUE(m.accept_text(prefix)) << g;
      SCOPED_TRACE(g);
      expect_mask_matches_accept(m, test_tok().n_vocab());
    }
}

TEST(Matcher, ConcurrentMatchersShareOneGrammar) {
  const auto grammar = compile_gbnf("root ::= \"{\" ([a-z] | \"\\\"\" [^\"]* \"\\\"\")* \"}\"");
  const auto idx = std::make_shared<const TokenIndex>(test_tok());  // fresh caches, filled concurrently
  std::vector<std::vector<uint8_t>> results(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < results.size(); ++t)
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 20; ++rep) {
        GrammarMatcher m(grammar, idx);
        if (!m.accept_text("{ab\"x")) return;
        results[t] = mask_of(m);
      }
    });
  for (auto& th : threads) th.join();
  GrammarMatcher m(grammar, test_index());
  ASSERT_TRUE(m.accept_text("{ab\"x"));
  for (const auto& r : results) EXPECT_EQ(r, mask_of(m));
}

TEST(Matcher, RejectedTokenLeavesStateIntact) {
  GrammarMatcher m = matcher("root ::= \"ab\" [0-9]+");
  ASSERT_TRUE(m.accept_text("a"));
  const std::vector<uint8_t> before = mask_of(m);
  EXPECT_FALSE(m.accept(test_tok().id_of("hello")));
  EXPECT_FALSE(m.accept(TestTokenizer::kEos));
  EXPECT_FALSE(m.accept_text("bx"));
  EXPECT_EQ(mask_of(m), before);
  EXPECT_TRUE(m.accept(TestTokenizer::byte('b')));
  EXPECT_TRUE(m.accept(test_tok().id_of("12")));
  EXPECT_TRUE(m.can_end());
}

TEST(Matcher, ApplyMasksOnlyDisallowedAndHandlesEog) {
  const int32_t n = test_tok().n_vocab();
  GrammarMatcher m = matcher("root ::= \"ab\" \"c\"?");
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-5.0f, 5.0f);
  std::vector<float> orig(size_t(n), 0.0f);
  for (auto& x : orig) x = u(rng);
  for (int round = 0; round < 3; ++round) {
    std::vector<float> logits = orig;
    const std::vector<uint8_t> mask = mask_of(m);
    m.apply(logits.data(), {TestTokenizer::kEos});
    for (int32_t id = 0; id < n; ++id) {
      const bool allowed = id == TestTokenizer::kEos ? m.can_end() : bool(mask[size_t(id)]);
      if (allowed) EXPECT_EQ(logits[size_t(id)], orig[size_t(id)]) << id;
      else EXPECT_TRUE(std::isinf(logits[size_t(id)]) && logits[size_t(id)] < 0) << id;
    }
    if (round == 0) {
      ASSERT_TRUE(m.accept(test_tok().id_of("ab")));  // now complete: EOG allowed
    } else if (round == 1) {
      ASSERT_TRUE(m.accept_text("c"));
    }
  }
}

TEST(Matcher, CopiesAreIndependent) {
  GrammarMatcher a = matcher("root ::= [a-z]+ \"!\"");
  ASSERT_TRUE(a.accept_text("ab"));
  GrammarMatcher b = a;
  ASSERT_TRUE(b.accept_text("!"));
  EXPECT_TRUE(b.must_end());
  EXPECT_FALSE(a.can_end());
  EXPECT_TRUE(a.accept_text("c!"));
}

// ---------------------------------------------------------------------------------------- JSON schema

bool schema_matches(const json& schema, const std::string& doc) {
  return matches(hearth::runtime::json_schema_to_gbnf(schema), doc);
}

struct SchemaCase {
  const char* name;
  const char* schema;
  std::vector<std::string> valid;
  std::vector<std::string> invalid;  // invalid against the schema too (validate_json must say why)
};

TEST(JsonSchema, GrammarAndValidatorAgreeOnDocuments) {
  const std::vector<SchemaCase> cases = {
      {"nested object, required and optional",
       R"({"type":"object","properties":{"id":{"type":"integer"},"user":{"type":"object","properties":{"name":{"type":"string"},"email":{"type":"string"}},"required":["name"]},"ok":{"type":"boolean"}},"required":["id","user"]})",
       {R"({"id":1,"user":{"name":"a"}})", R"({"id": -20, "ok": true, "user": {"email": "x@y", "name": "b\"\u00e9"}})",
        "{\n  \"id\": 3,\n  \"user\": {\n    \"name\": \"c\"\n  }\n}", R"({"id":0,"user":{"name":""}})"},
       {R"({"id":1})", R"({"user":{"name":"a"},"id":1.5})", R"({"id":1,"user":{"email":"a"}})",
        R"({"id":1,"user":{"name":"a"},"extra":1})", R"({"id":"1","user":{"name":"a"}})"}},
      {"enum and const",
       R"({"type":"object","properties":{"color":{"enum":["red","green",3,null,{"a":[1]}]},"v":{"const":"x"}},"required":["color","v"]})",
       {R"({"color":"red","v":"x"})", R"({"color":3,"v":"x"})", R"({"color":null,"v":"x"})",
        R"({"color":{"a":[1]},"v":"x"})"},
       {R"({"color":"blue","v":"x"})", R"({"color":"red","v":"y"})", R"({"color":4,"v":"x"})"}},
      {"array bounds",
       R"({"type":"array","items":{"type":"number"},"minItems":2,"maxItems":3})",
       {"[1,2]", "[1.5, -2e10, 0]", "[ 0.25 , 3 ]"},
       {"[]", "[1]", "[1,2,3,4]", "[1,\"a\"]"}},
      {"anyOf and type arrays",
       R"({"type":"object","properties":{"a":{"anyOf":[{"type":"string"},{"type":"array","items":{"type":"integer"}}]},"b":{"type":["integer","null"]}},"required":["a","b"]})",
       {R"({"a":"s","b":null})", R"({"a":[1,2],"b":5})", R"({"a":[],"b":-1})"},
       {R"({"a":1,"b":null})", R"({"a":"s","b":"x"})", R"({"a":["x"],"b":1})"}},
      {"$ref recursion",
       R"({"$ref":"#/$defs/node","$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},"kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["v"]}}})",
       // (nlohmann::json sorts properties, so the grammar wants "kids" before "v")
       {R"({"v":1})", R"({"kids":[{"v":2},{"kids":[{"kids":[],"v":4}],"v":3}],"v":1})"},
       {R"({"kids":[]})", R"({"v":1,"kids":[{"w":2}]})", R"({"v":1,"kids":[{"v":"2"}]})"}},
      {"definitions and nullable",
       R"({"type":"object","properties":{"p":{"$ref":"#/definitions/pt"}},"required":["p"],"definitions":{"pt":{"type":"string","nullable":true}}})",
       {R"({"p":"x"})", R"({"p":null})"},
       {R"({"p":1})", R"({})"}},
      {"integer ranges and string lengths",
       R"({"type":"object","properties":{"age":{"type":"integer","minimum":-5,"exclusiveMaximum":130},"code":{"type":"string","minLength":2,"maxLength":3}},"required":["age","code"]})",
       {R"({"age":-5,"code":"ab"})", R"({"age":0,"code":"abc"})", R"({"age":129,"code":"é\n"})",
        R"({"age":99,"code":"\u00e9\u00e9"})"},
       {R"({"age":-6,"code":"ab"})", R"({"age":130,"code":"ab"})", R"({"age":1,"code":"a"})",
        R"({"age":1,"code":"abcd"})"}},
      {"non-negative numbers, fractional integer bounds, no properties",
       R"({"type":"object","properties":{"x":{"type":"number","minimum":0},"n":{"type":"integer","minimum":0.5,"maximum":3.7},"e":{"type":"object","properties":{}}},"required":["x","n","e"]})",
       {R"({"e":{},"n":1,"x":0})", R"({"e":{ },"n":3,"x":2.5e-3})"},
       {R"({"e":{},"n":0,"x":1})", R"({"e":{},"n":4,"x":1})", R"({"e":{},"n":1,"x":-1})",
        R"({"e":{"a":1},"n":1,"x":1})"}},
      {"free-form values and maps",
       R"({"type":"object","properties":{"any":{},"map":{"type":"object","additionalProperties":{"type":"integer"}}},"required":["any","map"]})",
       {R"({"any":[1,{"x":"y"},null,true],"map":{}})", R"({"any":"s","map":{"a":1,"b":2}})"},
       {R"({"any":1,"map":{"a":"1"}})"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const json schema = json::parse(c.schema);
    const std::string gbnf = hearth::runtime::json_schema_to_gbnf(schema);
    ASSERT_NO_THROW(compile_gbnf(gbnf)) << gbnf;
    for (const auto& doc : c.valid) {
      EXPECT_TRUE(matches(gbnf, doc)) << doc << "\n" << gbnf;
      EXPECT_EQ(hearth::runtime::validate_json(json::parse(doc), schema), "") << doc;
    }
    for (const auto& doc : c.invalid) {
      EXPECT_FALSE(matches(gbnf, doc)) << doc;
      EXPECT_NE(hearth::runtime::validate_json(json::parse(doc), schema), "") << doc;
    }
  }
}

TEST(JsonSchema, WhitespaceAndNumbersAreBounded) {
  const json s = json::parse(R"({"type":"object","properties":{"n":{"type":"number"}},"required":["n"]})");
  EXPECT_TRUE(schema_matches(s, "{\"n\":1}\n"));
  EXPECT_FALSE(schema_matches(s, "{" + std::string(40, ' ') + "\"n\":1}"));
  EXPECT_FALSE(schema_matches(s, "{\"n\":1\n\n\n}"));
  EXPECT_TRUE(schema_matches(s, "{\"n\":1234567890123456.25e-12}"));
  EXPECT_FALSE(schema_matches(s, "{\"n\":12345678901234567}"));
  EXPECT_FALSE(schema_matches(s, "{\"n\":1e400}"));
  EXPECT_FALSE(schema_matches(s, "{\"n\":01}"));
  EXPECT_FALSE(schema_matches(s, "{\"n\":\"\\ud800\"}"));
  // String escapes: surrogate pairs only as pairs.
  const json str = json::parse(R"({"type":"string"})");
  EXPECT_TRUE(schema_matches(str, R"("\ud83d\ude00 \u00e9 \n \" \\ \/")"));
  EXPECT_FALSE(schema_matches(str, R"("\ud83d")"));
  EXPECT_FALSE(schema_matches(str, "\"a\nb\""));
}

TEST(JsonSchema, PropertiesKeepSchemaOrderWhenOrdered) {
  const auto o = nlohmann::ordered_json::parse(
      R"({"type":"object","properties":{"b":{"type":"integer"},"a":{"type":"integer"}},"required":["a","b"]})");
  const std::string g = hearth::runtime::json_schema_to_gbnf_ordered(o);
  EXPECT_TRUE(matches(g, R"({"b":1,"a":2})"));
  EXPECT_FALSE(matches(g, R"({"a":2,"b":1})"));
  const std::string sorted = hearth::runtime::json_schema_to_gbnf(json(o));
  EXPECT_TRUE(matches(sorted, R"({"a":2,"b":1})"));
}

TEST(JsonSchema, JsonObjectGrammar) {
  const std::string g = hearth::runtime::json_object_gbnf();
  for (const char* ok : {"{}", R"({"a":[1,2,{"b":null}],"c":"d"})", "{ \"x\" : true }\n"})
    EXPECT_TRUE(matches(g, ok)) << ok;
  for (const char* bad : {"[]", "1", R"({"a":})", R"({a:1})", " {}"}) EXPECT_FALSE(matches(g, bad)) << bad;
}

TEST(JsonSchema, UnsupportedKeywordsThrow) {
  const std::vector<std::pair<const char*, const char*>> cases = {
      {R"({"type":"string","pattern":"^a"})", "'pattern'"},
      {R"({"type":"number","multipleOf":2})", "'multipleOf'"},
      {R"({"type":"number","minimum":1})", "only as minimum 0"},
      {R"({"type":"integer","minimum":5,"maximum":4})", "range is empty"},
      {R"({"not":{"type":"string"}})", "'not'"},
      {R"({"allOf":[{"type":"string"},{"maxLength":3}]})", "allOf"},
      {R"({"$ref":"other.json#/a"})", "only local $ref"},
      {R"({"$ref":"#/$defs/missing"})", "does not resolve"},
      {R"({"type":"frob"})", "unknown type"},
      {R"({"type":"object","properties":{"a":{}},"required":["b"]})", "required property 'b'"},
      {R"({"type":"array","items":[{"type":"string"}]})", "tuple"},
      {R"({"type":"object","properties":{"a":{"type":"string","format":"date","uniqueItems":true}}})", "'uniqueItems'"},
      {R"({"enum":[1,2],"type":"string"})", "no enum/const value"},
  };
  for (const auto& [schema, msg] : cases) {
    try {
      hearth::runtime::json_schema_to_gbnf(json::parse(schema));
      ADD_FAILURE() << "no error for " << schema;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(msg), std::string::npos) << schema << ": " << e.what();
    }
  }
  // Annotations and unknown non-validating keywords are fine.
  EXPECT_NO_THROW(hearth::runtime::json_schema_to_gbnf(json::parse(
      R"({"title":"t","description":"d","type":"string","format":"date-time","default":"x","examples":["y"],"x-vendor":1})")));
}

TEST(JsonSchema, ValidatorNamesThePath) {
  const json schema = json::parse(
      R"({"type":"object","properties":{"items":{"type":"array","items":{"type":"object","properties":{"name":{"type":"string"}}}}}})");
  EXPECT_EQ(hearth::runtime::validate_json(json::parse(R"({"items":[{"name":"a"},{"name":"b"}]})"), schema), "");
  const std::string m = hearth::runtime::validate_json(json::parse(R"({"items":[{"name":"a"},{"name":2}]})"), schema);
  EXPECT_NE(m.find("$.items[1].name"), std::string::npos) << m;
  EXPECT_NE(m.find("expected \"string\""), std::string::npos) << m;
  const json one_of = json::parse(R"({"oneOf":[{"type":"integer"},{"type":"number"}]})");
  EXPECT_NE(hearth::runtime::validate_json(json(1), one_of), "");  // both branches match
  EXPECT_EQ(hearth::runtime::validate_json(json(1.5), one_of), "");
  EXPECT_NE(hearth::runtime::validate_json(json(5), json::parse(R"({"type":"integer","maximum":4})")), "");
  EXPECT_EQ(hearth::runtime::validate_json(json(2.0), json::parse(R"({"type":"integer"})")), "");
  EXPECT_THROW(hearth::runtime::validate_json(json(1), json::parse(R"({"pattern":"x"})")), Error);
}

// ------------------------------------------------------------------------------------ Gemma 4 tool calls

TEST(Gemma4Tools, ParseCall) {
  auto [name, args] = hearth::runtime::parse_gemma4_call(
      R"(get_weather{city:<|"|>Paris, "FR"<|"|>,days:2,opts:{deep:[1,-2.5e3,true,null,<|"|>x{y}<|"|>],e:{}},n:[]})");
  EXPECT_EQ(name, "get_weather");
  EXPECT_EQ(
      args,
      json::parse(R"({"city":"Paris, \"FR\"","days":2,"opts":{"deep":[1,-2500.0,true,null,"x{y}"],"e":{}},"n":[]})"));
  EXPECT_TRUE(args["days"].is_number_integer());
  auto [n2, a2] = hearth::runtime::parse_gemma4_call("noargs{}");
  EXPECT_EQ(n2, "noargs");
  EXPECT_EQ(a2, json::object());
  auto [n3, a3] = hearth::runtime::parse_gemma4_call("f{ a : 1 , <|\"|>b<|\"|>:<|\"|><|\"|> }");
  EXPECT_EQ(a3, json::parse(R"({"a":1,"b":""})"));
  for (const char* bad :
       {"", "f", "{a:1}", "f{a:1", "f{a:<|\"|>x}", "f{a:1}x", "f{a:1,a:2}", "f{a:tru}", "f{a:1-}", "f{:1}", "f{a:[1,}"})
    EXPECT_THROW(hearth::runtime::parse_gemma4_call(bad), Error) << bad;
}

std::vector<ToolSpec> test_tools() {
  return {
      {"get_weather", json::parse(R"({"type":"object","properties":{"city":{"type":"string","description":"City"},
          "days":{"type":"integer","minimum":1,"maximum":14},"units":{"type":"string","enum":["celsius","fahrenheit"]}},
          "required":["city"]})")},
      {"search", json::parse(R"({"type":"object","properties":{"query":{"type":"string"},"Limit":{"type":"integer"},
          "filters":{"type":"object","properties":{"lang":{"type":"string"},"max":{"type":"number"},"exact":{"type":"boolean"}}},
          "tags":{"type":"array","items":{"type":"string"},"maxItems":3}},"required":["query","filters"]})")},
      {"ping", nullptr},
      {"free", json::parse(R"({"type":"object"})")},
  };
}

TEST(Gemma4Tools, GrammarAcceptsTemplateRenderingsOnly) {
  const std::string g = hearth::runtime::gemma4_tool_call_gbnf(
      test_tools(), false, {TestTokenizer::kCallOpen, TestTokenizer::kCallClose, TestTokenizer::kQuote});
  const auto grammar = compile_gbnf(g);
  // Renders a call as tokens: <|tool_call>, text, <|"|> markers as the quote token, <tool_call|>.
  auto run = [&](const std::string& body) {
    GrammarMatcher m(grammar, test_index());
    if (!m.accept(TestTokenizer::kCallOpen)) return false;
    std::string text = "call:" + body;
    for (size_t i = 0; i < text.size();) {
      const size_t q = text.find("<|\"|>", i);
      if (!m.accept_text(text.substr(i, q == std::string::npos ? std::string::npos : q - i))) return false;
      if (q == std::string::npos) break;
      if (!m.accept(TestTokenizer::kQuote)) return false;
      i = q + 5;
    }
    return m.accept(TestTokenizer::kCallClose) && m.must_end();
  };
  for (const char* ok :
       {R"(get_weather{city:<|"|>Paris<|"|>})", R"(get_weather{city:<|"|><|"|>,days:14,units:<|"|>celsius<|"|>})",
        R"(search{filters:{},query:<|"|>a<b<|c|><|"|>})",  // keys sorted case-insensitively
        R"(search{filters:{exact:false,lang:<|"|>en<|"|>,max:1.5},Limit:-3,query:<|"|>q<|"|>,tags:[<|"|>x<|"|>]})",
        "ping{}", "free{}", R"(free{a:1,b_2:[{c:null}],z:<|"|>s<|"|>})"})
    EXPECT_TRUE(run(ok)) << ok;
  for (const char* bad :
       {R"(get_weather{})", R"(get_weather{days:2,city:<|"|>P<|"|>})", R"(get_weather{city:<|"|>P<|"|>,days:15})",
        R"(get_weather{city:<|"|>P<|"|>,units:<|"|>kelvin<|"|>})", R"(get_weather{city:<|"|>P<|"|>,x:1})",
        R"(search{query:<|"|>a<|"|>,filters:{}})", R"(get_weather{city:"P"})", R"(get_weather{ city:<|"|>P<|"|>})",
        R"(ping{a:1})", R"(nope{})", R"(search{filters:{},query:<|"|>a<|"|>,tags:[1]})"})
    EXPECT_FALSE(run(bad)) << bad;
  // The text of a string may not spell out the quote marker.
  GrammarMatcher m(grammar, test_index());
  ASSERT_TRUE(m.accept(TestTokenizer::kCallOpen));
  ASSERT_TRUE(m.accept_text("call:get_weather{city:"));
  ASSERT_TRUE(m.accept(TestTokenizer::kQuote));
  ASSERT_TRUE(m.accept_text("<|"));
  EXPECT_FALSE(mask_of(m)[size_t(test_tok().id_of("\"|>"))]);
  EXPECT_TRUE(m.accept_text("\"|"));
  EXPECT_FALSE(m.accept_text(">"));
  EXPECT_TRUE(m.accept_text("<"));

  const std::string par = hearth::runtime::gemma4_tool_call_gbnf(
      test_tools(), true, {TestTokenizer::kCallOpen, TestTokenizer::kCallClose, TestTokenizer::kQuote});
  GrammarMatcher p(compile_gbnf(par), test_index());
  for (int k = 0; k < 2; ++k) {
    ASSERT_TRUE(p.accept(TestTokenizer::kCallOpen));
    ASSERT_TRUE(p.accept_text("call:ping{}"));
    ASSERT_TRUE(p.accept(TestTokenizer::kCallClose));
    EXPECT_TRUE(p.can_end());
    EXPECT_FALSE(p.must_end());
  }
}

TEST(Gemma4Tools, BadToolsThrow) {
  const Gemma4ToolTokens t{1, 2, 3};
  EXPECT_THROW(hearth::runtime::gemma4_tool_call_gbnf({}, false, t), Error);
  EXPECT_THROW(hearth::runtime::gemma4_tool_call_gbnf({{"a b", nullptr}}, false, t), Error);
  EXPECT_THROW(hearth::runtime::gemma4_tool_call_gbnf({{"a", nullptr}, {"a", nullptr}}, false, t), Error);
  EXPECT_THROW(hearth::runtime::gemma4_tool_call_gbnf({{"a", json::parse(R"({"type":"string"})")}}, false, t), Error);
  EXPECT_THROW(hearth::runtime::gemma4_tool_call_gbnf(
                   {{"a", json::parse(R"({"type":"object","properties":{"x:y":{"type":"string"}}})")}}, false, t),
               Error);
}

// ------------------------------------------------------------------------------- the real vocabulary

struct Vocab {
  hearth::gguf::File file;
  std::unique_ptr<hearth::tokenizer::Tokenizer> tok;
  std::shared_ptr<const TokenIndex> index;
};

const Vocab* gemma_vocab() {
  static std::unique_ptr<Vocab> v;
  const std::string path = hearth::test::testdata("vocab/ggml-vocab-gemma-4.gguf");
  if (!v && std::filesystem::exists(path)) {
    auto f = hearth::gguf::File::open(path);
    auto t = hearth::tokenizer::Tokenizer::from_gguf(f);
    const auto start = std::chrono::steady_clock::now();
    auto idx = std::make_shared<const TokenIndex>(*t);
    std::printf("[ timing ] TokenIndex over %d tokens: %.1f ms\n", idx->n_vocab(),
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    v = std::make_unique<Vocab>(Vocab{std::move(f), std::move(t), std::move(idx)});
  }
  return v.get();
}

#define REQUIRE_GEMMA_VOCAB() HEARTH_REQUIRE_FILE(hearth::test::testdata("vocab/ggml-vocab-gemma-4.gguf"))

Gemma4ToolTokens gemma_tool_tokens(const hearth::tokenizer::Tokenizer& tok) {
  return {*tok.find("<|tool_call>"), *tok.find("<tool_call|>"), *tok.find("<|\"|>")};
}

std::string render(const Vocab& v, int32_t id) {
  return v.index->is_special(id) ? v.tok->token_to_piece(id, true) : std::string(v.index->text(id));
}

// Samples tokens from the mask until the grammar may end. The first `free_steps` picks are uniform over the
// allowed tokens; after that the walk steers towards the end: EOG as soon as it is allowed, else a token
// that closes something, else one that opens nothing and is not just whitespace. Returns the rendered text.
std::string random_walk(const Vocab& v, GrammarMatcher m, uint64_t seed, const std::vector<int32_t>& closers,
                        int free_steps = 30, int max_steps = 3000) {
  std::mt19937_64 rng(seed);
  const int32_t n = v.index->n_vocab();
  const std::vector<int32_t> eog = v.tok->eog_ids();
  std::vector<float> logits(static_cast<size_t>(n), 0.0f);
  std::string out;
  std::vector<int32_t> cand, close, small;
  for (int step = 0; step < max_steps; ++step) {
    std::fill(logits.begin(), logits.end(), 0.0f);
    m.apply(logits.data(), eog);
    cand.clear();
    for (int32_t id = 0; id < n; ++id)
      if (!std::isinf(logits[size_t(id)])) cand.push_back(id);
    const bool eog_ok =
        std::any_of(eog.begin(), eog.end(), [&](int32_t id) { return !std::isinf(logits[size_t(id)]); });
    std::erase_if(cand, [&](int32_t id) { return v.tok->is_eog(id); });
    EXPECT_EQ(eog_ok, m.can_end());
    if (eog_ok && (step >= free_steps || cand.empty() || rng() % 8 == 0)) return out;
    if (cand.empty()) {
      ADD_FAILURE() << "dead end after: " << out;
      return out;
    }
    const std::vector<int32_t>* pool = &cand;
    if (step >= free_steps) {
      close.clear();
      for (int32_t id : closers)
        if (!std::isinf(logits[size_t(id)])) close.push_back(id);
      small.clear();
      if (close.empty())
        for (int32_t id : cand) {
          const std::string_view text = v.index->text(id);
          if (text.find_first_of("{[") == std::string_view::npos &&
              text.find_first_not_of(" \t\n") != std::string_view::npos)
            small.push_back(id);
        }
      pool = !close.empty() ? &close : !small.empty() ? &small : &cand;
    }
    const int32_t pick = (*pool)[size_t(rng() % pool->size())];
    if (!m.accept(pick)) {
      ADD_FAILURE() << "allowed token " << pick << " rejected after: " << out;
      return out;
    }
    out += render(v, pick);
  }
  ADD_FAILURE() << "walk did not end: " << out;
  return out;
}

std::vector<int32_t> ids_of(const Vocab& v, std::initializer_list<const char*> pieces) {
  std::vector<int32_t> ids;
  for (const char* p : pieces) ids.push_back(*v.tok->find(p));
  return ids;
}

const char* kWalkSchema = R"({
  "type": "object",
  "properties": {
    "name": {"type": "string"},
    "age": {"type": "integer", "minimum": 0, "maximum": 120},
    "score": {"type": "number"},
    "active": {"type": "boolean"},
    "role": {"enum": ["admin", "user", "guest"]},
    "tags": {"type": "array", "items": {"type": "string", "maxLength": 8}, "minItems": 1, "maxItems": 3},
    "nickname": {"type": ["string", "null"]},
    "address": {"type": "object", "properties": {"city": {"type": "string"},
                "zip": {"type": "string", "minLength": 5, "maxLength": 5}}, "required": ["city"]},
    "tree": {"$ref": "#/$defs/node"},
    "extra": {"anyOf": [{"type": "integer"}, {"type": "object", "properties": {"k": {"const": "v"}}, "required": ["k"]}]}
  },
  "required": ["name", "age", "role", "tags", "address"],
  "$defs": {"node": {"type": "object", "properties": {"value": {"type": "integer"},
            "children": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2}}, "required": ["value"]}}
})";

TEST(RealVocab, TokenIndexClassifiesTokens) {
  REQUIRE_GEMMA_VOCAB();
  const Vocab& v = *gemma_vocab();
  EXPECT_EQ(v.index->n_vocab(), 262144);
  for (const char* special : {"<|tool_call>", "<tool_call|>", "<|\"|>", "<turn|>", "<eos>"}) {
    EXPECT_TRUE(v.index->is_special(*v.tok->find(special))) << special;
    EXPECT_EQ(v.index->text(*v.tok->find(special)), "") << special;
  }
  EXPECT_EQ(v.index->text(236743), " ");
  EXPECT_EQ(v.index->text(107), "\n");
  EXPECT_FALSE(v.index->is_special(9259));
}

TEST(RealVocab, MaskAgreesWithAccept) {
  REQUIRE_GEMMA_VOCAB();
  const Vocab& v = *gemma_vocab();
  const json schema = json::parse(kWalkSchema);
  GrammarMatcher m(compile_gbnf(hearth::runtime::json_schema_to_gbnf(schema)), v.index);
  // nlohmann::json sorts the properties: active, address, age, extra, name, nickname, role, score, tags, tree.
  for (const char* prefix : {"", "{", "{\"address\": {\"city\": \"ab", "{\"address\": {\"city\": \"ab\"}, \"age\": 1",
                             "{\"address\": {\"city\": \"ab\"}, \"age\": 12, \"name\": \"x\", \"role\": \"gu"}) {
    GrammarMatcher s = m;
    ASSERT_TRUE(s.accept_text(prefix)) << prefix;
    SCOPED_TRACE(prefix);
    expect_mask_matches_accept(s, v.index->n_vocab(), 97);
  }
  const auto t = gemma_tool_tokens(*v.tok);
  GrammarMatcher g(compile_gbnf(hearth::runtime::gemma4_tool_call_gbnf(test_tools(), false, t)), v.index);
  ASSERT_TRUE(g.accept(t.call_open));
  ASSERT_TRUE(g.accept_text("call:get_weather{city:"));
  ASSERT_TRUE(g.accept(t.quote));
  for (const char* prefix : {"", "Par", "<|\"|"}) {
    GrammarMatcher s = g;
    ASSERT_TRUE(s.accept_text(prefix)) << prefix;
    SCOPED_TRACE(prefix);
    expect_mask_matches_accept(s, v.index->n_vocab(), 97);
  }
}

TEST(RealVocab, RandomWalksOverJsonSchemaAlwaysValidate) {
  REQUIRE_GEMMA_VOCAB();
  const Vocab& v = *gemma_vocab();
  const json schema = json::parse(kWalkSchema);
  const auto grammar = compile_gbnf(hearth::runtime::json_schema_to_gbnf(schema));
  const auto closers = ids_of(v, {"}", "]", "\""});
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    const std::string out = random_walk(v, GrammarMatcher(grammar, v.index), seed, closers);
    json doc;
    try {
      doc = json::parse(out);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "seed " << seed << ": not JSON (" << e.what() << "): " << out;
      continue;
    }
    EXPECT_EQ(hearth::runtime::validate_json(doc, schema), "") << "seed " << seed << ": " << out;
    if (seed == 1) std::printf("[ sample ] %s\n", out.c_str());
  }
}

TEST(RealVocab, RandomWalksOverJsonObjectAlwaysParse) {
  REQUIRE_GEMMA_VOCAB();
  const Vocab& v = *gemma_vocab();
  const auto grammar = compile_gbnf(hearth::runtime::json_object_gbnf());
  const auto closers = ids_of(v, {"}", "]", "\""});
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const std::string out = random_walk(v, GrammarMatcher(grammar, v.index), seed, closers);
    json doc;
    EXPECT_NO_THROW(doc = json::parse(out)) << out;
    EXPECT_TRUE(doc.is_object()) << out;
  }
}

TEST(RealVocab, RandomWalksOverGemmaToolCallsAlwaysParse) {
  REQUIRE_GEMMA_VOCAB();
  const Vocab& v = *gemma_vocab();
  const auto t = gemma_tool_tokens(*v.tok);
  const auto tools = test_tools();
  const auto single = compile_gbnf(hearth::runtime::gemma4_tool_call_gbnf(tools, false, t));
  const auto parallel = compile_gbnf(hearth::runtime::gemma4_tool_call_gbnf(tools, true, t));
  std::vector<int32_t> closers = ids_of(v, {"}", "]"});
  closers.push_back(t.quote);
  closers.push_back(t.call_close);
  const std::string open = "<|tool_call>call:", close = "<tool_call|>";
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    const std::string out = random_walk(v, GrammarMatcher(seed % 2 ? single : parallel, v.index), seed, closers);
    SCOPED_TRACE("seed " + std::to_string(seed) + ": " + out);
    size_t pos = 0, calls = 0;
    while (pos < out.size()) {
      ASSERT_EQ(out.compare(pos, open.size(), open), 0);
      const size_t end = out.find(close, pos);
      ASSERT_NE(end, std::string::npos);
      std::pair<std::string, json> call;
      ASSERT_NO_THROW(call = hearth::runtime::parse_gemma4_call(
                          std::string_view(out).substr(pos + open.size(), end - pos - open.size())));
      auto tool = std::find_if(tools.begin(), tools.end(), [&](const ToolSpec& s) { return s.name == call.first; });
      ASSERT_NE(tool, tools.end());
      const json schema =
          tool->parameters.is_null() ? json::parse(R"({"type":"object","properties":{}})") : tool->parameters;
      EXPECT_EQ(hearth::runtime::validate_json(call.second, schema), "");
      pos = end + close.size();
      ++calls;
    }
    EXPECT_GE(calls, 1u);
    if (seed % 2) {
      EXPECT_EQ(calls, 1u);
    }
    if (seed <= 2) std::printf("[ sample ] %s\n", out.c_str());
  }
}

// Mask times on the real vocabulary in typical states: the first call (which fills the grammar's cache for
// that state) and the mean of later calls. Printed only.
TEST(RealVocab, MaskTimings) {
  REQUIRE_GEMMA_VOCAB();
  // A fresh index, so that "first" includes filling the caches (other tests filled the shared one).
  const hearth::tokenizer::Tokenizer& tok = *gemma_vocab()->tok;
  const auto index = std::make_shared<const TokenIndex>(tok);
  const int32_t n = index->n_vocab();
  std::vector<float> logits(static_cast<size_t>(n), 0.0f);
  auto time_state = [&](const char* what, const GrammarMatcher& m) {
    auto once = [&] {
      std::fill(logits.begin(), logits.end(), 0.0f);
      const auto start = std::chrono::steady_clock::now();
      m.apply(logits.data(), tok.eog_ids());
      return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    };
    const double first = once();
    double total = 0;
    const int reps = 20;
    for (int r = 0; r < reps; ++r) total += once();
    const auto allowed = std::count_if(logits.begin(), logits.end(), [](float x) { return !std::isinf(x); });
    std::printf("[ timing ] %-42s first %8.3f ms, then %7.3f ms/token (%ld allowed)\n", what, first, total / reps,
                long(allowed));
  };
  const json schema = json::parse(kWalkSchema);
  const auto g = compile_gbnf(hearth::runtime::json_schema_to_gbnf(schema));
  GrammarMatcher m(g, index);
  time_state("JSON schema: start", m);
  ASSERT_TRUE(m.accept_text("{"));
  time_state("JSON schema: after {", m);
  ASSERT_TRUE(m.accept_text("\n  \"address\": {\"city\": \"Ad"));
  time_state("JSON schema: inside a string", m);
  ASSERT_TRUE(m.accept_text("a\"},\n  \"age\": 4"));
  time_state("JSON schema: inside an integer (0..120)", m);
  ASSERT_TRUE(m.accept_text("2,\n  \"name\": \"x\",\n  \"role\": \"user\",\n  \"score\": 3.1"));
  time_state("JSON schema: inside a number", m);

  // Another request's grammar: string bodies share their cache entries through the TokenIndex.
  GrammarMatcher other(compile_gbnf(hearth::runtime::json_schema_to_gbnf(
                           json::parse(R"({"type":"object","properties":{"q":{"type":"string"}},"required":["q"]})"))),
                       index);
  ASSERT_TRUE(other.accept_text("{\"q\": \"x"));
  time_state("another schema's grammar: inside a string", other);

  GrammarMatcher o(compile_gbnf(hearth::runtime::json_object_gbnf()), index);
  ASSERT_TRUE(o.accept_text("{\"k\": [1, {\"x\": \"ab"));
  time_state("json_object: inside a nested string", o);

  const auto t = gemma_tool_tokens(tok);
  GrammarMatcher c(compile_gbnf(hearth::runtime::gemma4_tool_call_gbnf(test_tools(), true, t)), index);
  time_state("tool call: start", c);
  ASSERT_TRUE(c.accept(t.call_open));
  time_state("tool call: after <|tool_call>", c);
  ASSERT_TRUE(c.accept_text("call:search{filters:{},query:"));
  ASSERT_TRUE(c.accept(t.quote));
  ASSERT_TRUE(c.accept_text("best pizza"));
  time_state("tool call: inside a string", c);
}

}  // namespace
