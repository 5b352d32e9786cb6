// The tokenizers against llama.cpp on real vocabularies: llama.cpp's own test vectors for the Gemma 4
// vocabulary, 84 further strings with parse-special off and on, round trips through detokenisation, the
// tiny models' vocabularies (gemma4 BPE and SentencePiece), and the streaming decoder.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "test_data.h"
#include "tokenizer/tokenizer.h"

namespace {

using hearth::test::testdata;
using hearth::tokenizer::StreamDecoder;
using hearth::tokenizer::Tokenizer;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Loading the 262144-token vocabulary takes a moment; share it between tests.
struct Loaded {
  hearth::gguf::File file;
  std::unique_ptr<Tokenizer> tok;
};
const Loaded& load(const std::string& rel) {
  static std::map<std::string, std::unique_ptr<Loaded>> cache;
  auto& slot = cache[rel];
  if (!slot) {
    auto f = hearth::gguf::File::open(testdata(rel));
    auto t = Tokenizer::from_gguf(f);
    slot = std::make_unique<Loaded>(Loaded{std::move(f), std::move(t)});
  }
  return *slot;
}

std::string ids_str(const std::vector<int32_t>& v) {
  std::string s;
  for (int32_t x : v) s += std::to_string(x) + " ";
  return s;
}

bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

TEST(Tokenizer, LlamaCppVectorsForTheGemma4Vocabulary) {
  const std::string inp = testdata("vocab/ggml-vocab-gemma-4.gguf.inp");
  HEARTH_REQUIRE_FILE(inp);
  const Tokenizer& tok = *load("vocab/ggml-vocab-gemma-4.gguf").tok;
  const std::string text = read_file(inp);
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> cases;
  for (size_t pos = 0;;) {
    const size_t at = text.find(sep, pos);
    if (at == std::string::npos) {
      cases.push_back(text.substr(pos));
      break;
    }
    cases.push_back(text.substr(pos, at - pos));
    pos = at + sep.size();
  }
  std::istringstream out(read_file(inp.substr(0, inp.size() - 4) + ".out"));
  std::vector<std::string> lines;
  for (std::string line; std::getline(out, line);) lines.push_back(line);
  while (cases.size() < lines.size() && lines.back().empty()) lines.pop_back();
  ASSERT_EQ(cases.size(), 46u);
  ASSERT_GE(lines.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    std::vector<int32_t> want;
    std::istringstream ls(lines[i]);
    for (int32_t id; ls >> id;) want.push_back(id);
    EXPECT_EQ(tok.encode(cases[i], false), want) << "case " << i << ": '" << cases[i] << "'";
  }
}

void check_golden(const std::string& tok_rel, const std::string& golden_rel, size_t n_expected) {
  const std::string g = testdata(golden_rel);
  HEARTH_REQUIRE_FILE(g);
  const Tokenizer& tok = *load(tok_rel).tok;
  const auto j = nlohmann::json::parse(read_file(g));
  ASSERT_EQ(j["results"].size(), n_expected);
  EXPECT_EQ(tok.bos(), j["bos"].get<int32_t>());
  EXPECT_EQ(tok.eos(), j["eos"].get<int32_t>());
  EXPECT_EQ(tok.add_bos(), j["prepends_bos"].get<bool>());
  int differing_with_special = 0;
  for (const auto& r : j["results"]) {
    const std::string text = r["text"];
    const auto plain = r["tokens"].get<std::vector<int32_t>>();
    const auto special = r["tokens_parse_special"].get<std::vector<int32_t>>();
    const std::vector<int32_t> got = tok.encode(text, false);
    EXPECT_EQ(got, plain) << "'" << text << "'\n got  " << ids_str(got) << "\n want " << ids_str(plain);
    const std::vector<int32_t> got_s = tok.encode(text, true);
    EXPECT_EQ(got_s, special) << "(parse special) '" << text << "'\n got  " << ids_str(got_s) << "\n want "
                              << ids_str(special);
    differing_with_special += plain != special;
    // Pieces are the raw vocabulary entries.
    const auto pieces = r["pieces"].get<std::vector<std::string>>();
    for (size_t k = 0; k < plain.size() && k < pieces.size(); ++k) EXPECT_EQ(tok.piece(plain[k]), pieces[k]);
    EXPECT_EQ(tok.decode(plain), r["roundtrip"].get<std::string>()) << "'" << text << "'";

    // Streaming: every chunk is whole UTF-8 characters, and the chunks add up to the pieces' text.
    StreamDecoder sd(tok);
    std::string streamed, pieces_text;
    for (int32_t id : plain) {
      const std::string chunk = sd.push(id);
      EXPECT_TRUE(valid_utf8(chunk)) << "'" << text << "' produced a partial character";
      streamed += chunk;
      pieces_text += tok.token_to_piece(id, false);
    }
    streamed += sd.flush();
    if (valid_utf8(pieces_text)) {
      EXPECT_EQ(streamed, pieces_text);
    }
  }
  if (n_expected == 84) {
    EXPECT_EQ(differing_with_special, 13);
  }
}

TEST(Tokenizer, Gemma4VocabularyMatchesLlamaCppOn84Strings) {
  check_golden("vocab/ggml-vocab-gemma-4.gguf", "vocab/tokenizer-golden.json", 84);
}
TEST(Tokenizer, TinyGemma4ModelVocabulary) {
  check_golden("models/tiny-gemma4-dense.gguf", "golden/tok-tiny-gemma4-dense.json", 10);
}
TEST(Tokenizer, TinySentencePieceVocabulary) {
  check_golden("models/tiny-gemma4-dense-spm.gguf", "golden/tok-tiny-gemma4-dense-spm.json", 10);
}

TEST(Tokenizer, Gemma4SpecialTokensAndEndOfGeneration) {
  HEARTH_REQUIRE_FILE(testdata("vocab/ggml-vocab-gemma-4.gguf"));
  const Tokenizer& tok = *load("vocab/ggml-vocab-gemma-4.gguf").tok;
  EXPECT_EQ(tok.model(), "gemma4");
  EXPECT_EQ(tok.n_vocab(), 262144);
  EXPECT_EQ(tok.eog_ids(), (std::vector<int32_t>{1, 50, 106}));
  EXPECT_FALSE(tok.is_eog(212));  // </s> is plain text in Gemma 4
  EXPECT_EQ(tok.encode_prompt("<|turn>user\nHi<turn|>"),
            (std::vector<int32_t>{2, 105, 2364, 107, 10979, 106}));
  // Control tokens render only when asked to.
  EXPECT_EQ(tok.token_to_piece(105, false), "");
  EXPECT_EQ(tok.token_to_piece(105, true), "<|turn>");
  EXPECT_EQ(tok.decode({105, 2364}, true), "<|turn>user");
  EXPECT_THROW(tok.token_to_piece(262144, false), hearth::Error);
}

TEST(Tokenizer, EncodesOnManyThreadsAtOnce) {
  // The server tokenises on HTTP threads while the engine tokenises too: encode() must be reentrant.
  HEARTH_REQUIRE_FILE(testdata("vocab/ggml-vocab-gemma-4.gguf"));
  const Tokenizer& tok = *load("vocab/ggml-vocab-gemma-4.gguf").tok;
  const std::vector<std::string> texts = {"two three", "the cache keeps keys and values of earlier tokens",
                                          "Zürich, naïve café — ünïcödé", "  indented\n\tcode(x) { return 42; }"};
  std::vector<std::vector<int32_t>> want;
  for (const auto& t : texts) want.push_back(tok.encode(t, false));
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int th = 0; th < 4; ++th)
    threads.emplace_back([&, th] {
      for (int i = 0; i < 300; ++i) {
        const size_t k = size_t(th + i) % texts.size();
        if (tok.encode(texts[k], false) != want[k]) ++wrong;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(Tokenizer, StreamDecoderHoldsSplitCharactersAndFlushesLeftovers) {
  HEARTH_REQUIRE_FILE(testdata("vocab/ggml-vocab-gemma-4.gguf"));
  const Tokenizer& tok = *load("vocab/ggml-vocab-gemma-4.gguf").tok;
  const int32_t e2 = *tok.find("<0xE2>"), x82 = *tok.find("<0x82>"), xac = *tok.find("<0xAC>");
  StreamDecoder sd(tok);
  EXPECT_EQ(sd.push(e2), "");
  EXPECT_EQ(sd.push(x82), "");
  EXPECT_EQ(sd.push(xac), "\xE2\x82\xAC");  // €
  EXPECT_EQ(sd.push(e2), "");
  EXPECT_EQ(sd.flush(), "\xEF\xBF\xBD");  // an unfinished character becomes one U+FFFD
  EXPECT_EQ(sd.push(x82), "\xEF\xBF\xBD");  // a stray continuation byte can never complete
}

TEST(Tokenizer, FileWithoutTokenizerIsAClearError) {
  std::vector<uint8_t> bytes = {'G', 'G', 'U', 'F', 3, 0, 0, 0};
  bytes.resize(24, 0);
  const auto f = hearth::gguf::File::parse(bytes, "empty.gguf");
  try {
    Tokenizer::from_gguf(f);
    FAIL() << "expected an error";
  } catch (const hearth::Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.ggml.model"), std::string::npos) << e.what();
  }
}

}  // namespace
