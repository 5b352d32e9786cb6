// GGUF v2/v3 reader. Every count, length, offset and size is checked against the bytes that exist before
// it is used; a hostile or truncated file yields hearth::Error naming the key or tensor, never a crash.
// Strings and arrays are views into the (memory-mapped) file: the File must outlive them.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/mapped_file.h"
#include "gguf/types.h"

namespace hearth::gguf {

enum class ValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9,
  U64 = 10, I64 = 11, F64 = 12,
};
const char* value_type_name(ValueType t);

// One metadata value. Scalars are decoded; arrays keep a view of their elements (decoded on request).
class Value {
 public:
  ValueType type = ValueType::U8;
  // ARRAY only:
  ValueType elem_type = ValueType::U8;
  uint64_t count = 0;

  bool is_integer() const;
  bool is_float() const { return type == ValueType::F32 || type == ValueType::F64; }
  bool is_array() const { return type == ValueType::ARRAY; }

  // Scalar accessors; throw hearth::Error (naming `key`) on a type mismatch or an out-of-range value.
  int64_t as_int(std::string_view key) const;
  double as_float(std::string_view key) const;  // integers are accepted too
  bool as_bool(std::string_view key) const;
  std::string_view as_string(std::string_view key) const;

  // Array accessors (element type must fit); nested arrays are only reachable through `nested`.
  std::vector<int64_t> int_array(std::string_view key) const;    // integer or bool elements
  std::vector<double> float_array(std::string_view key) const;   // float or integer elements
  std::vector<std::string_view> string_array(std::string_view key) const;
  const std::vector<Value>& nested() const { return nested_; }

  // The exact bytes of the value (type tag included), for copying it into another file.
  std::span<const uint8_t> raw() const { return raw_; }

 private:
  friend class Parser;
  uint64_t u_ = 0;
  int64_t i_ = 0;
  double f_ = 0;
  std::string_view s_;
  std::span<const uint8_t> elems_;  // packed elements of a scalar or string array
  std::vector<Value> nested_;       // elements of an array of arrays
  std::span<const uint8_t> raw_;
};

struct TensorInfo {
  std::string name;
  GgmlType type = GgmlType::F32;
  int n_dims = 0;
  std::array<int64_t, 4> ne{1, 1, 1, 1};  // ggml order: ne[0] is contiguous
  uint64_t offset = 0;                    // relative to the data section
  size_t n_bytes = 0;
  const uint8_t* data = nullptr;          // nullptr when the file was parsed header-only

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
  std::string shape_string() const;  // "[256, 1024]"
};

struct ParseOptions {
  // Accept a prefix of a file (for example the first megabytes fetched with an HTTP Range request):
  // metadata and the tensor directory must be complete, tensor data may lie beyond the buffer.
  bool header_only = false;
  // When header_only, the real size of the whole file if known (0 = unknown): offsets are checked against it.
  uint64_t full_file_size = 0;
};

class File {
 public:
  // Memory-maps `path` and parses it. Throws hearth::Error.
  static File open(const std::string& path);
  // Parses a buffer that the caller keeps alive (fuzzing, remote headers). Throws hearth::Error.
  static File parse(std::span<const uint8_t> bytes, const std::string& name, ParseOptions opt = {});

  File(File&&) = default;
  File& operator=(File&&) = default;

  const std::string& path() const { return name_; }
  uint32_t version() const { return version_; }
  uint64_t file_size() const { return file_size_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // start of the tensor data section
  bool header_only() const { return header_only_; }

  // Metadata in file order.
  const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }
  const Value* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }
  // Typed lookups: `get_*` throw a clear error if the key is missing or has the wrong type.
  int64_t get_int(std::string_view key) const;
  double get_float(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  std::string_view get_string(std::string_view key) const;
  std::optional<int64_t> opt_int(std::string_view key) const;
  std::optional<double> opt_float(std::string_view key) const;
  std::optional<bool> opt_bool(std::string_view key) const;
  std::optional<std::string_view> opt_string(std::string_view key) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;
  const TensorInfo& tensor(std::string_view name) const;  // throws if absent

 private:
  friend class Parser;
  File() = default;
  MappedFile map_;
  std::string name_;
  uint32_t version_ = 0;
  uint64_t file_size_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  bool header_only_ = false;
  std::vector<std::pair<std::string, Value>> kv_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

// Limits that make absurd files fail fast instead of allocating without bound.
inline constexpr uint64_t kMaxStringBytes = uint64_t(1) << 30;
inline constexpr int kMaxArrayDepth = 8;
inline constexpr int kMaxDims = 4;

}  // namespace hearth::gguf
