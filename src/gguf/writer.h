// GGUF v3 writer: metadata, tensor directory, aligned data. Tensor data is produced on demand by a
// callback, so multi-gigabyte files (hearth synth --preset 26b-a4b) stream in bounded memory.
// The file is written to PATH.tmp and renamed into place only when complete.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "gguf/types.h"

namespace hearth::gguf {

class Writer {
 public:
  // Tensor bytes are requested once, in file order; the callback appends exactly n_bytes through `emit`
  // (in as many pieces as it likes).
  using Emit = std::function<void(const void* data, size_t n)>;
  using Producer = std::function<void(const Emit& emit)>;

  void set_u8(const std::string& key, uint8_t v);
  void set_u32(const std::string& key, uint32_t v);
  void set_i32(const std::string& key, int32_t v);
  void set_u64(const std::string& key, uint64_t v);
  void set_f32(const std::string& key, float v);
  void set_bool(const std::string& key, bool v);
  void set_string(const std::string& key, const std::string& v);
  void set_array_u32(const std::string& key, const std::vector<uint32_t>& v);
  void set_array_i32(const std::string& key, const std::vector<int32_t>& v);
  void set_array_f32(const std::string& key, const std::vector<float>& v);
  void set_array_bool(const std::string& key, const std::vector<bool>& v);
  void set_array_string(const std::string& key, const std::vector<std::string>& v);
  // Copies a value read from another GGUF byte for byte (any type, nested arrays included).
  void set_raw(const std::string& key, const Value& v);
  // Escape hatch for tests that need malformed files: the bytes that follow the key, verbatim.
  void set_raw_bytes(const std::string& key, std::vector<uint8_t> typed_value_bytes);

  void add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> ne, Producer produce);
  void add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> ne, std::vector<uint8_t> bytes);

  void set_alignment(uint32_t a);  // also written as general.alignment when != 32
  void write(const std::string& path) const;  // throws hearth::Error
  std::vector<uint8_t> to_bytes() const;      // whole file in memory (tests, small files)

  static size_t tensor_bytes(GgmlType type, const std::vector<int64_t>& ne);

 private:
  struct KV {
    std::string key;
    std::vector<uint8_t> value;  // type tag + payload
  };
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> ne;
    size_t n_bytes;
    uint64_t offset;
    Producer produce;
  };
  void set(const std::string& key, std::vector<uint8_t> value);
  void write_to(const std::function<void(const void*, size_t)>& out) const;

  std::vector<KV> kv_;
  std::vector<Tensor> tensors_;
  uint32_t alignment_ = 32;
};

}  // namespace hearth::gguf
