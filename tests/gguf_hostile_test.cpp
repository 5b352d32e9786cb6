// The GGUF reader against hostile input: a valid file cut at every byte, and a catalogue of files that lie
// (offsets, counts, lengths, types, shapes, alignment, duplicates). Each must give its own precise error,
// never a crash or an out-of-bounds read (the ASan build runs this too). With HEARTH_HOSTILE_DIR set, the
// catalogue is also written there as files (scripts/fuzz.sh seeds its corpus with them).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "run_command.h"
#include "test_data.h"

namespace {

using hearth::gguf::File;
using hearth::gguf::GgmlType;

// Little-endian GGUF bytes, written field by field.
struct Bytes {
  std::vector<uint8_t> b;
  Bytes& u32(uint32_t v) { return raw(&v, 4); }
  Bytes& u64(uint64_t v) { return raw(&v, 8); }
  Bytes& u8(uint8_t v) { return raw(&v, 1); }
  Bytes& str(const std::string& s) {
    u64(s.size());
    return raw(s.data(), s.size());
  }
  Bytes& raw(const void* p, size_t n) {
    const auto* c = static_cast<const uint8_t*>(p);
    b.insert(b.end(), c, c + n);
    return *this;
  }
  Bytes& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    raw("GGUF", 4);
    u32(version);
    u64(n_tensors);
    return u64(n_kv);
  }
  Bytes& kv_u32(const std::string& key, uint32_t v) {
    str(key);
    u32(4);
    return u32(v);
  }
  // Tensor info: name, dims, type, offset.
  Bytes& tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    str(name);
    u32(uint32_t(ne.size()));
    for (uint64_t x : ne) u64(x);
    u32(type);
    return u64(offset);
  }
  Bytes& pad_to(size_t align) {
    while (b.size() % align) b.push_back(0);
    return *this;
  }
  Bytes& zeros(size_t n) {
    b.resize(b.size() + n, 0);
    return *this;
  }
};

std::string parse_error(const std::vector<uint8_t>& bytes) {
  try {
    File::parse(bytes, "hostile.gguf");
  } catch (const hearth::Error& e) {
    return e.what();
  }
  return "";
}

// A valid file using every metadata type, nested arrays and two tensors.
std::vector<uint8_t> valid_file() {
  hearth::gguf::Writer w;
  w.set_string("general.architecture", "test");
  w.set_u8("u8", 7);
  w.set_i32("i32", -5);
  w.set_u64("u64", uint64_t(1) << 40);
  w.set_f32("f32", 0.5f);
  w.set_bool("flag", true);
  w.set_array_string("strings", {"a", "", "ccc"});
  w.set_array_f32("floats", {1.0f, 2.0f});
  w.set_array_bool("bools", {true, false, true});
  Bytes nested;  // array of 2 arrays of i32
  nested.u32(9).u32(9).u64(2).u32(5).u64(1).u32(42).u32(5).u64(2).u32(1).u32(2);
  w.set_raw_bytes("nested", nested.b);
  std::vector<uint8_t> f32(4 * 8 * 4, 0);
  w.add_tensor("a", GgmlType::F32, {8, 4}, f32);
  w.add_tensor("b", GgmlType::Q8_0, {32, 2}, std::vector<uint8_t>(68, 1));
  return w.to_bytes();
}

TEST(GgufHostile, ValidFileRoundTrips) {
  const auto bytes = valid_file();
  const File f = File::parse(bytes, "valid.gguf");
  EXPECT_EQ(f.get_int("u8"), 7);
  EXPECT_EQ(f.get_int("i32"), -5);
  EXPECT_EQ(f.get_int("u64"), int64_t(1) << 40);
  EXPECT_EQ(f.get_float("f32"), 0.5);
  EXPECT_TRUE(f.get_bool("flag"));
  EXPECT_EQ(f.find("strings")->string_array("strings"), (std::vector<std::string_view>{"a", "", "ccc"}));
  EXPECT_EQ(f.find("bools")->int_array("bools"), (std::vector<int64_t>{1, 0, 1}));
  const auto& nested = f.find("nested")->nested();
  ASSERT_EQ(nested.size(), 2u);
  EXPECT_EQ(nested[1].int_array("nested[1]"), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(f.tensor("b").n_bytes, 68u);
  EXPECT_EQ(f.tensor("b").data[0], 1);
  EXPECT_EQ(f.data_offset() % 32, 0u);
  EXPECT_THROW(f.get_int("strings"), hearth::Error);
  EXPECT_THROW(f.get_string("missing"), hearth::Error);
}

// Cut at every byte: every prefix is rejected with a truncation message (never a crash), and a prefix
// that holds the whole header parses with header_only.
TEST(GgufHostile, TruncatedAtEveryByte) {
  const auto bytes = valid_file();
  const File full = File::parse(bytes, "valid.gguf");
  const size_t header_end = full.data_offset();
  size_t data_end = 0;  // the writer pads the file after the last tensor; cutting that padding is harmless
  for (const auto& t : full.tensors()) data_end = std::max(data_end, size_t(header_end + t.offset + t.n_bytes));
  ASSERT_GT(data_end, header_end);
  for (size_t n = 0; n < data_end; ++n) {
    const std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + long(n));
    const std::string err = parse_error(cut);
    ASSERT_FALSE(err.empty()) << "a file cut to " << n << " bytes was accepted";
    const bool specific = err.find("truncated at byte") != std::string::npos || err.find("too short") != std::string::npos ||
                          err.find("bytes follow") != std::string::npos || err.find("past the end") != std::string::npos ||
                          err.find("exceeds the") != std::string::npos;
    EXPECT_TRUE(specific) << "cut at " << n << ": " << err;
    if (n >= header_end) {
      EXPECT_NE(err.find("past the end"), std::string::npos) << err;
      hearth::gguf::ParseOptions opt;
      opt.header_only = true;
      EXPECT_NO_THROW(File::parse(cut, "prefix.gguf", opt)) << n;
    }
  }
}

struct Hostile {
  const char* name;
  std::vector<uint8_t> bytes;
  const char* expect;  // substring of the error
};

std::vector<Hostile> catalogue() {
  std::vector<Hostile> h;
  auto add = [&](const char* name, const Bytes& b, const char* expect) { h.push_back({name, b.b, expect}); };
  add("empty", Bytes{}, "too short");
  add("bad-magic", Bytes{}.raw("GGML", 4).u32(3).u64(0).u64(0), "bad magic");
  add("big-endian", Bytes{}.raw("FUGG", 4).u32(3).u64(0).u64(0), "big-endian");
  add("version-1", Bytes{}.header(0, 0, 1), "version 1 is not supported");
  add("version-99", Bytes{}.header(0, 0, 99), "unsupported GGUF version 99");
  add("huge-kv-count", Bytes{}.header(0, uint64_t(1) << 62), "metadata entries but only");
  add("huge-tensor-count", Bytes{}.header(~uint64_t(0), 0), "tensors but only");
  add("huge-string", Bytes{}.header(0, 1).u64(uint64_t(1) << 60).zeros(16), "absurd length");
  add("string-past-end", Bytes{}.header(0, 1).u64(100).raw("abc", 3).zeros(10), "truncated at byte");
  add("empty-key", Bytes{}.header(0, 1).str("").u32(4).u32(1), "empty key");
  add("unknown-value-type", Bytes{}.header(0, 1).str("k").u32(13).u32(1), "metadata key 'k' has unknown value type 13");
  add("bad-bool", Bytes{}.header(0, 1).str("flag").u32(7).u8(2), "neither 0 nor 1");
  add("array-unknown-elem", Bytes{}.header(0, 1).str("arr").u32(9).u32(77).u64(1).zeros(8), "unknown element type 77");
  add("array-huge-count", Bytes{}.header(0, 1).str("arr").u32(9).u32(6).u64(uint64_t(1) << 61).zeros(16),
      "exceeds the");
  add("string-array-huge-count", Bytes{}.header(0, 1).str("toks").u32(9).u32(8).u64(uint64_t(1) << 40).zeros(16),
      "strings exceeds");
  {
    Bytes b;
    b.header(0, 1).str("deep");
    b.u32(9);
    for (int i = 0; i < 12; ++i) b.u32(9).u64(1);
    b.u32(4).u64(0).zeros(64);
    add("nested-too-deep", b, "nests arrays deeper");
  }
  add("duplicate-key", Bytes{}.header(0, 2).kv_u32("k", 1).kv_u32("k", 2), "duplicate metadata key 'k'");
  add("alignment-not-pow2", Bytes{}.header(0, 1).kv_u32("general.alignment", 24), "general.alignment");
  add("alignment-zero", Bytes{}.header(0, 1).kv_u32("general.alignment", 0), "general.alignment");
  add("alignment-wrong-type", Bytes{}.header(0, 1).str("general.alignment").u32(8).str("32"), "must be u32");
  add("tensor-empty-name", Bytes{}.header(1, 0).tensor("", {4}, 0, 0).pad_to(32).zeros(16), "empty name");
  add("tensor-zero-dims", Bytes{}.header(1, 0).tensor("w", {}, 0, 0).pad_to(32).zeros(16), "tensor 'w' has 0 dimensions");
  add("tensor-five-dims", Bytes{}.header(1, 0).tensor("w", {1, 1, 1, 1, 1}, 0, 0).pad_to(32).zeros(16),
      "has 5 dimensions");
  add("tensor-negative-dim", Bytes{}.header(1, 0).tensor("w", {4, ~uint64_t(0)}, 0, 0).pad_to(32).zeros(16),
      "dimension 1 is negative");
  add("tensor-shape-overflow",
      Bytes{}.header(1, 0).tensor("w", {uint64_t(1) << 40, uint64_t(1) << 40}, 0, 0).pad_to(32).zeros(16), "overflows");
  add("tensor-too-large", Bytes{}.header(1, 0).tensor("w", {uint64_t(1) << 30, uint64_t(1) << 30}, 0, 0).pad_to(32).zeros(16),
      "too large");
  add("tensor-unknown-type", Bytes{}.header(1, 0).tensor("w", {4}, 99, 0).pad_to(32).zeros(16), "unknown type id 99");
  add("tensor-ragged-blocks", Bytes{}.header(1, 0).tensor("w", {33}, 8, 0).pad_to(32).zeros(64),
      "not a multiple of the block size 32");
  add("tensor-misaligned", Bytes{}.header(1, 0).tensor("w", {4}, 0, 7).pad_to(32).zeros(64),
      "offset 7 is not a multiple of the alignment 32");
  add("tensor-offset-past-end", Bytes{}.header(1, 0).tensor("w", {4}, 0, 1u << 20).pad_to(32).zeros(16),
      "tensor 'w' (16 bytes at data offset 1048576) extends past the end");
  add("tensor-offset-wraps", Bytes{}.header(1, 0).tensor("w", {4}, 0, ~uint64_t(31)).pad_to(32).zeros(16),
      "extends past the end");
  add("tensor-data-short", Bytes{}.header(1, 0).tensor("w", {64}, 0, 0).pad_to(32).zeros(100),
      "tensor 'w' (256 bytes at data offset 0) extends past the end");
  add("duplicate-tensor",
      Bytes{}.header(2, 0).tensor("w", {4}, 0, 0).tensor("w", {4}, 0, 32).pad_to(32).zeros(64), "duplicate tensor name 'w'");
  return h;
}

TEST(GgufHostile, EachLieGivesItsOwnError) {
  for (const Hostile& h : catalogue()) {
    const std::string err = parse_error(h.bytes);
    EXPECT_NE(err.find(h.expect), std::string::npos) << h.name << ": expected '" << h.expect << "', got '" << err << "'";
    EXPECT_EQ(err.rfind("hostile.gguf: ", 0), 0u) << h.name << ": the error must name the file: " << err;
  }
}

// The same files on disk through the hearth binary: a clear one-line error and exit status 1.
TEST(GgufHostile, TheCliReportsThemCleanly) {
  namespace fs = std::filesystem;
  const char* keep = std::getenv("HEARTH_HOSTILE_DIR");
  const fs::path dir = keep && *keep ? fs::path(keep) : fs::path(testing::TempDir()) / ("hearth-hostile-" + std::to_string(getpid()));
  fs::create_directories(dir);
  for (const Hostile& h : catalogue()) {
    const fs::path p = dir / (std::string(h.name) + ".gguf");
    std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(h.bytes.data()), std::streamsize(h.bytes.size()));
    const auto r = hearth::test::run_command(hearth::test::hearth_binary() + " inspect " + hearth::test::shell_quote(p.string()));
    EXPECT_EQ(r.status, 1) << h.name << ": " << r.output;
    EXPECT_NE(r.output.find(h.expect), std::string::npos) << h.name << ": " << r.output;
  }
  const auto v = valid_file();
  std::ofstream(dir / "valid.gguf", std::ios::binary).write(reinterpret_cast<const char*>(v.data()), std::streamsize(v.size()));
  if (!(keep && *keep)) fs::remove_all(dir);
}

}  // namespace
