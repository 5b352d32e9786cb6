// libFuzzer target for the GGUF reader and what reads its metadata: parse arbitrary bytes; when they parse,
// touch every value through its accessors, dequantise the first row of every tensor (an out-of-bounds read
// there is an ASan report) and build the tokenizer if the file has one. Only hearth::Error may escape the
// library; anything else (a crash, a sanitizer report, another exception) is a finding.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/error.h"
#include "gguf/reader.h"
#include "tokenizer/tokenizer.h"

namespace {

void touch(const hearth::gguf::Value& v, const std::string& key) {
  try {
    switch (v.type) {
      case hearth::gguf::ValueType::STRING: (void)v.as_string(key); break;
      case hearth::gguf::ValueType::ARRAY:
        if (v.elem_type == hearth::gguf::ValueType::STRING) (void)v.string_array(key);
        else if (v.elem_type == hearth::gguf::ValueType::ARRAY)
          for (const auto& n : v.nested()) touch(n, key);
        else
          (void)v.float_array(key);
        break;
      default: (void)v.as_float(key);
    }
  } catch (const hearth::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto file = hearth::gguf::File::parse(std::span<const uint8_t>(data, size), "fuzz.gguf");
    for (const auto& [key, value] : file.metadata()) touch(value, key);
    for (const auto& t : file.tensors()) {
      const auto& tt = hearth::gguf::type_traits(t.type);
      if (!tt.dequantize || t.n_elements() == 0) continue;
      const int64_t n = std::min<int64_t>(t.ne[0], 4096);
      std::vector<float> row(static_cast<size_t>(n));
      tt.dequantize(t.data, row.data(), n - n % tt.block_size);
    }
    if (file.has("tokenizer.ggml.model")) {
      auto tok = hearth::tokenizer::Tokenizer::from_gguf(file);
      const auto ids = tok->encode("Hello <|turn>user\n naïve 日本 \xF0\x9F\xA4\x96", true);
      (void)tok->decode(ids, true);
    }
  } catch (const hearth::Error&) {
  }
  return 0;
}
