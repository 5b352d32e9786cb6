// JSON Schema -> GBNF, and a validator for the same subset.
//
// Supported (the subset OpenAI structured outputs allow, plus a little): type object (properties in schema
// order, required ones mandatory, optional ones optional), array (items, minItems/maxItems), string (enum,
// const, minLength/maxLength; format ignored), number (minimum 0 only), integer (minimum, maximum,
// exclusiveMinimum/Maximum in both draft styles, within 16 digits), boolean, null, type arrays like
// ["string","null"], enum/const of any JSON value, anyOf/oneOf, a one-element allOf, $ref to any JSON pointer
// in the document ("#/$defs/...", "#/definitions/...", "#"; recursion allowed), OpenAPI's `nullable: true`. Annotations (description, title,
// default, examples, format, $comment, ...) and unknown non-validating keywords are ignored.
// Keywords that change validity but are not implemented (pattern, multipleOf, other bounds on numbers,
// uniqueItems, prefixItems, not, if/then/else, ...) throw hearth::Error naming the keyword and its path.
//
// Objects: with `properties` (even empty), additionalProperties is false unless given; a grammar never
// generates extra keys even when they are allowed (what it generates stays valid). Without `properties`,
// additionalProperties (absent or true: any value) gives the value schema of arbitrary keys.
//
// Whitespace: at most 4 blanks, then at most two newlines each followed by at most 32 blanks, between tokens
// and after the document, so pretty-printed output fits and a model cannot loop on whitespace. Numbers are
// bounded too (16 integer digits, 16 fraction digits, 2 exponent digits) so every generated number parses.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace hearth::runtime {

// GBNF (root rule "root") for JSON documents valid against `schema`. nlohmann::json keeps object keys
// sorted, so properties come in sorted order here; json_schema_to_gbnf_ordered keeps the schema's own order
// (parse the request with nlohmann::ordered_json to use it).
std::string json_schema_to_gbnf(const nlohmann::json& schema);
std::string json_schema_to_gbnf_ordered(const nlohmann::ordered_json& schema);
// Any JSON object (response_format json_object).
std::string json_object_gbnf();

// Validates `value` against the same schema subset; "" when valid, else a message naming the path of the
// first violation ("$.items[2].name: expected string, got number"). Throws hearth::Error for an unsupported
// or malformed schema (as the grammar conversion does). oneOf means exactly one branch (JSON Schema), while
// grammars treat it like anyOf: a value matching several oneOf branches can be generated but fails here.
std::string validate_json(const nlohmann::json& value, const nlohmann::json& schema);

// A GBNF string literal (with quotes) matching exactly `bytes` (UTF-8).
std::string gbnf_literal(std::string_view bytes);

// Builds the rules for schema-constrained values; shared by json_schema_to_gbnf and the Gemma 4 tool-call
// grammar, which writes the same values in its own syntax (bare keys sorted as the chat template's dictsort
// sorts them, strings between <|"|> tokens, no whitespace).
class SchemaGrammarBuilder {
 public:
  enum class Syntax { Json, Gemma4 };
  // `quote_token`: id of <|"|> (Gemma4 only).
  explicit SchemaGrammarBuilder(Syntax syntax, int32_t quote_token = -1);
  ~SchemaGrammarBuilder();

  // Name of a rule matching the values valid against `schema`. `document` is what $refs resolve against
  // and must outlive the builder; `hint` names the rule.
  std::string value(const nlohmann::ordered_json& schema, const nlohmann::ordered_json& document,
                    const std::string& hint);
  // Name of the optional-whitespace rule ("" in the Gemma 4 syntax, which has none).
  std::string whitespace();
  // Adds `hint ::= body` (under a unique name, returned).
  std::string rule(const std::string& hint, const std::string& body);
  // The whole grammar: "root ::= root_body" followed by every rule added.
  std::string gbnf(const std::string& root_body) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace hearth::runtime
