#include "gguf/reader.h"

#include <cinttypes>
#include <cstring>
#include <limits>

#include "core/error.h"

namespace hearth::gguf {

const char* value_type_name(ValueType t) {
  switch (t) {
    case ValueType::U8: return "u8";
    case ValueType::I8: return "i8";
    case ValueType::U16: return "u16";
    case ValueType::I16: return "i16";
    case ValueType::U32: return "u32";
    case ValueType::I32: return "i32";
    case ValueType::F32: return "f32";
    case ValueType::BOOL: return "bool";
    case ValueType::STRING: return "string";
    case ValueType::ARRAY: return "array";
    case ValueType::U64: return "u64";
    case ValueType::I64: return "i64";
    case ValueType::F64: return "f64";
  }
  return "?";
}

namespace {

// Fixed element size of a scalar type; 0 for string/array.
size_t scalar_size(ValueType t) {
  switch (t) {
    case ValueType::U8: case ValueType::I8: case ValueType::BOOL: return 1;
    case ValueType::U16: case ValueType::I16: return 2;
    case ValueType::U32: case ValueType::I32: case ValueType::F32: return 4;
    case ValueType::U64: case ValueType::I64: case ValueType::F64: return 8;
    default: return 0;
  }
}

bool known_value_type(uint32_t t) { return t <= uint32_t(ValueType::F64); }

std::string quoted(std::string_view s) {
  std::string out = "'";
  for (char c : s.substr(0, 200)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > 200) out += "...";
  return out + "'";
}

// Decodes one scalar element of type t at p into (u, i, f); returns false for non-scalars.
void decode_scalar(ValueType t, const uint8_t* p, uint64_t& u, int64_t& i, double& f) {
  switch (t) {
    case ValueType::U8: u = p[0]; i = int64_t(u); break;
    case ValueType::I8: i = int8_t(p[0]); break;
    case ValueType::BOOL: u = p[0]; i = int64_t(u); break;
    case ValueType::U16: { uint16_t v; std::memcpy(&v, p, 2); u = v; i = v; break; }
    case ValueType::I16: { int16_t v; std::memcpy(&v, p, 2); i = v; break; }
    case ValueType::U32: { uint32_t v; std::memcpy(&v, p, 4); u = v; i = v; break; }
    case ValueType::I32: { int32_t v; std::memcpy(&v, p, 4); i = v; break; }
    case ValueType::U64: { std::memcpy(&u, p, 8); i = u > uint64_t(INT64_MAX) ? -1 : int64_t(u); break; }
    case ValueType::I64: { std::memcpy(&i, p, 8); break; }
    case ValueType::F32: { float v; std::memcpy(&v, p, 4); f = v; break; }
    case ValueType::F64: { std::memcpy(&f, p, 8); break; }
    default: break;
  }
}

bool is_int_type(ValueType t) {
  return t == ValueType::U8 || t == ValueType::I8 || t == ValueType::U16 || t == ValueType::I16 ||
         t == ValueType::U32 || t == ValueType::I32 || t == ValueType::U64 || t == ValueType::I64;
}

}  // namespace

// ----------------------------------------------------------------------------------------------- Value

bool Value::is_integer() const { return is_int_type(type); }

int64_t Value::as_int(std::string_view key) const {
  if (type == ValueType::BOOL) return i_;
  if (!is_int_type(type))
    throw Error("GGUF key '" + std::string(key) + "' is " + value_type_name(type) + ", expected an integer");
  if (type == ValueType::U64 && u_ > uint64_t(INT64_MAX))
    throw Error("GGUF key '" + std::string(key) + "' value " + std::to_string(u_) + " is out of range");
  return i_;
}

double Value::as_float(std::string_view key) const {
  if (is_float()) return f_;
  if (is_int_type(type)) return type == ValueType::U64 ? double(u_) : double(i_);
  throw Error("GGUF key '" + std::string(key) + "' is " + value_type_name(type) + ", expected a number");
}

bool Value::as_bool(std::string_view key) const {
  if (type == ValueType::BOOL) return u_ != 0;
  if (is_int_type(type)) return as_int(key) != 0;
  throw Error("GGUF key '" + std::string(key) + "' is " + value_type_name(type) + ", expected a bool");
}

std::string_view Value::as_string(std::string_view key) const {
  if (type != ValueType::STRING)
    throw Error("GGUF key '" + std::string(key) + "' is " + value_type_name(type) + ", expected a string");
  return s_;
}

std::vector<int64_t> Value::int_array(std::string_view key) const {
  if (type != ValueType::ARRAY || !(is_int_type(elem_type) || elem_type == ValueType::BOOL))
    throw Error("GGUF key '" + std::string(key) + "' is not an array of integers");
  const size_t es = scalar_size(elem_type);
  std::vector<int64_t> out(count);
  for (uint64_t k = 0; k < count; ++k) {
    uint64_t u = 0;
    int64_t i = 0;
    double f = 0;
    decode_scalar(elem_type, elems_.data() + k * es, u, i, f);
    if (elem_type == ValueType::U64 && u > uint64_t(INT64_MAX))
      throw Error("GGUF key '" + std::string(key) + "' element " + std::to_string(k) + " is out of range");
    out[k] = i;
  }
  return out;
}

std::vector<double> Value::float_array(std::string_view key) const {
  if (type != ValueType::ARRAY || scalar_size(elem_type) == 0 || elem_type == ValueType::BOOL)
    throw Error("GGUF key '" + std::string(key) + "' is not an array of numbers");
  const size_t es = scalar_size(elem_type);
  std::vector<double> out(count);
  for (uint64_t k = 0; k < count; ++k) {
    uint64_t u = 0;
    int64_t i = 0;
    double f = 0;
    decode_scalar(elem_type, elems_.data() + k * es, u, i, f);
    out[k] = (elem_type == ValueType::F32 || elem_type == ValueType::F64) ? f
             : elem_type == ValueType::U64                                 ? double(u)
                                                                           : double(i);
  }
  return out;
}

std::vector<std::string_view> Value::string_array(std::string_view key) const {
  if (type != ValueType::ARRAY || elem_type != ValueType::STRING)
    throw Error("GGUF key '" + std::string(key) + "' is not an array of strings");
  std::vector<std::string_view> out;
  out.reserve(count);
  const uint8_t* p = elems_.data();
  for (uint64_t k = 0; k < count; ++k) {  // lengths were validated while parsing
    uint64_t len;
    std::memcpy(&len, p, 8);
    out.emplace_back(reinterpret_cast<const char*>(p + 8), size_t(len));
    p += 8 + len;
  }
  return out;
}

std::string TensorInfo::shape_string() const {
  std::string s = "[";
  for (int d = 0; d < n_dims; ++d) s += (d ? ", " : "") + std::to_string(ne[size_t(d)]);
  return s + "]";
}

// ---------------------------------------------------------------------------------------------- Parser

class Parser {
 public:
  Parser(std::span<const uint8_t> buf, const std::string& name) : buf_(buf), name_(name) {}

  void parse(File& f, const ParseOptions& opt) {
    f.header_only_ = opt.header_only;
    f.file_size_ = opt.header_only && opt.full_file_size ? opt.full_file_size : buf_.size();
    if (buf_.size() < 4) fail("file is " + std::to_string(buf_.size()) + " bytes: too short for a GGUF header");
    if (std::memcmp(buf_.data(), "GGUF", 4) != 0) {
      if (std::memcmp(buf_.data(), "FUGG", 4) == 0) fail("big-endian GGUF files are not supported");
      fail("not a GGUF file (bad magic)");
    }
    pos_ = 4;
    const uint32_t version = u32("header: version");
    if (version == 1) fail("GGUF version 1 is not supported (only versions 2 and 3)");
    if (version != 2 && version != 3) {
      if ((version & 0xFFFF) == 0 && (version >> 16) != 0)
        fail("GGUF version field looks byte-swapped (" + std::to_string(version) +
             "): big-endian files are not supported");
      fail("unsupported GGUF version " + std::to_string(version));
    }
    f.version_ = version;
    const uint64_t n_tensors = u64("header: tensor count");
    const uint64_t n_kv = u64("header: metadata count");
    // A key/value pair takes at least 8 (key length) + 4 (type) + 1 bytes; a tensor info at least 8+4+8+4+8.
    if (n_kv > remaining() / 13)
      fail("header claims " + std::to_string(n_kv) + " metadata entries but only " + std::to_string(remaining()) +
           " bytes follow");
    if (n_tensors > remaining() / 32)
      fail("header claims " + std::to_string(n_tensors) + " tensors but only " + std::to_string(remaining()) +
           " bytes follow");

    f.kv_.reserve(size_t(n_kv));
    for (uint64_t k = 0; k < n_kv; ++k) {
      const std::string ctx = "metadata entry #" + std::to_string(k);
      std::string key(str(ctx + " key"));
      if (key.empty()) fail(ctx + " has an empty key");
      const std::string kctx = "metadata key " + quoted(key);
      if (f.kv_index_.count(key)) fail("duplicate metadata key " + quoted(key));
      const size_t start = pos_;
      const uint32_t t = u32(kctx + " type");
      Value v = value(t, kctx, 0);
      v.raw_ = buf_.subspan(start, pos_ - start);
      f.kv_index_.emplace(key, f.kv_.size());
      f.kv_.emplace_back(std::move(key), std::move(v));
    }

    if (const Value* a = f.find("general.alignment")) {
      if (a->type != ValueType::U32) fail("metadata key 'general.alignment' must be u32");
      const uint64_t al = uint64_t(a->as_int("general.alignment"));
      if (al == 0 || (al & (al - 1)) != 0 || al > (1u << 20))
        fail("metadata key 'general.alignment' = " + std::to_string(al) + " is not a power of two <= 1 MiB");
      f.alignment_ = al;
    }

    f.tensors_.reserve(size_t(n_tensors));
    for (uint64_t k = 0; k < n_tensors; ++k) {
      TensorInfo ti;
      const std::string ctx = "tensor #" + std::to_string(k);
      ti.name = std::string(str(ctx + " name"));
      const std::string tctx = "tensor " + quoted(ti.name);
      if (ti.name.empty()) fail(ctx + " has an empty name");
      if (f.tensor_index_.count(ti.name)) fail("duplicate tensor name " + quoted(ti.name));
      const uint32_t n_dims = u32(tctx + " n_dims");
      if (n_dims == 0 || n_dims > uint32_t(kMaxDims))
        fail(tctx + " has " + std::to_string(n_dims) + " dimensions (must be 1 to 4)");
      ti.n_dims = int(n_dims);
      uint64_t n_el = 1;
      for (uint32_t d = 0; d < n_dims; ++d) {
        const uint64_t ne = u64(tctx + " ne[" + std::to_string(d) + "]");
        if (ne > uint64_t(INT64_MAX)) fail(tctx + " dimension " + std::to_string(d) + " is negative");
        if (ne != 0 && n_el > uint64_t(INT64_MAX) / ne)
          fail(tctx + " shape overflows: the element count does not fit in 63 bits");
        n_el *= ne;
        ti.ne[d] = int64_t(ne);
      }
      const uint32_t type_id = u32(tctx + " type");
      const TypeTraits* tt = type_traits(type_id);
      if (!tt) fail(tctx + " has unknown type id " + std::to_string(type_id));
      ti.type = tt->type;
      if (ti.ne[0] % tt->block_size != 0)
        fail(tctx + " of type " + tt->name + " has ne[0] = " + std::to_string(ti.ne[0]) +
             ", not a multiple of the block size " + std::to_string(tt->block_size));
      const uint64_t blocks = n_el / uint64_t(tt->block_size);
      if (blocks > std::numeric_limits<uint64_t>::max() / uint64_t(tt->type_size) ||
          blocks * uint64_t(tt->type_size) > (uint64_t(1) << 48))
        fail(tctx + " is too large (" + std::to_string(n_el) + " elements)");
      ti.n_bytes = size_t(blocks * uint64_t(tt->type_size));
      ti.offset = u64(tctx + " offset");
      if (ti.offset % f.alignment_ != 0)
        fail(tctx + " offset " + std::to_string(ti.offset) + " is not a multiple of the alignment " +
             std::to_string(f.alignment_));
      f.tensor_index_.emplace(ti.name, f.tensors_.size());
      f.tensors_.push_back(std::move(ti));
    }

    // The data section starts at the next multiple of the alignment.
    const uint64_t al = f.alignment_;
    const uint64_t data_off = (uint64_t(pos_) + al - 1) / al * al;
    f.data_offset_ = data_off;
    const uint64_t limit = f.file_size_;
    if (!opt.header_only && data_off > limit && !f.tensors_.empty())
      fail("tensor data section would start at byte " + std::to_string(data_off) + ", past the end of the file (" +
           std::to_string(limit) + " bytes)");
    for (TensorInfo& ti : f.tensors_) {
      const uint64_t begin = data_off + ti.offset;
      if (ti.offset > limit || begin > limit || ti.n_bytes > limit - begin) {
        if (opt.header_only && !opt.full_file_size) continue;
        fail("tensor " + quoted(ti.name) + " (" + std::to_string(ti.n_bytes) + " bytes at data offset " +
             std::to_string(ti.offset) + ") extends past the end of the file (" + std::to_string(limit) + " bytes)");
      }
      if (!opt.header_only) ti.data = buf_.data() + begin;
    }
  }

 private:
  [[noreturn]] void fail(const std::string& msg) const { throw Error(name_ + ": " + msg); }

  size_t remaining() const { return buf_.size() - pos_; }

  void need(uint64_t n, const std::string& what) const {
    if (n > remaining())
      fail("truncated at byte " + std::to_string(pos_) + " reading " + what + " (needs " + std::to_string(n) +
           " bytes, " + std::to_string(remaining()) + " left)");
  }
  uint32_t u32(const std::string& what) {
    need(4, what);
    uint32_t v;
    std::memcpy(&v, buf_.data() + pos_, 4);
    pos_ += 4;
    return v;
  }
  uint64_t u64(const std::string& what) {
    need(8, what);
    uint64_t v;
    std::memcpy(&v, buf_.data() + pos_, 8);
    pos_ += 8;
    return v;
  }
  std::string_view str(const std::string& what) {
    const uint64_t len = u64(what + " length");
    if (len > kMaxStringBytes) fail(what + " has absurd length " + std::to_string(len));
    need(len, what);
    std::string_view s(reinterpret_cast<const char*>(buf_.data() + pos_), size_t(len));
    pos_ += size_t(len);
    return s;
  }

  Value value(uint32_t t, const std::string& ctx, int depth) {
    if (!known_value_type(t)) fail(ctx + " has unknown value type " + std::to_string(t));
    Value v;
    v.type = ValueType(t);
    const size_t ss = scalar_size(v.type);
    if (ss) {
      need(ss, ctx + " value");
      decode_scalar(v.type, buf_.data() + pos_, v.u_, v.i_, v.f_);
      if (v.type == ValueType::BOOL && buf_[pos_] > 1)
        fail(ctx + " bool value " + std::to_string(buf_[pos_]) + " is neither 0 nor 1");
      pos_ += ss;
      return v;
    }
    if (v.type == ValueType::STRING) {
      v.s_ = str(ctx);
      return v;
    }
    // ARRAY
    if (depth >= kMaxArrayDepth) fail(ctx + " nests arrays deeper than " + std::to_string(kMaxArrayDepth));
    const uint32_t et = u32(ctx + " array element type");
    if (!known_value_type(et)) fail(ctx + " array has unknown element type " + std::to_string(et));
    v.elem_type = ValueType(et);
    v.count = u64(ctx + " array length");
    const size_t es = scalar_size(v.elem_type);
    const size_t start = pos_;
    if (es) {
      if (v.count > remaining() / es)
        fail(ctx + " array of " + std::to_string(v.count) + " " + value_type_name(v.elem_type) +
             " elements exceeds the " + std::to_string(remaining()) + " bytes left");
      if (v.elem_type == ValueType::BOOL)
        for (uint64_t k = 0; k < v.count; ++k)
          if (buf_[pos_ + k] > 1) fail(ctx + " bool element " + std::to_string(k) + " is neither 0 nor 1");
      pos_ += size_t(v.count * es);
    } else if (v.elem_type == ValueType::STRING) {
      if (v.count > remaining() / 8)
        fail(ctx + " array of " + std::to_string(v.count) + " strings exceeds the " + std::to_string(remaining()) +
             " bytes left");
      for (uint64_t k = 0; k < v.count; ++k) str(ctx + " element " + std::to_string(k));
    } else {  // array of arrays: each needs at least 4 + 8 bytes
      if (v.count > remaining() / 12)
        fail(ctx + " array of " + std::to_string(v.count) + " arrays exceeds the " + std::to_string(remaining()) +
             " bytes left");
      v.nested_.reserve(size_t(v.count));
      for (uint64_t k = 0; k < v.count; ++k)
        v.nested_.push_back(value(uint32_t(ValueType::ARRAY), ctx + " element " + std::to_string(k), depth + 1));
    }
    v.elems_ = buf_.subspan(start, pos_ - start);
    return v;
  }

  std::span<const uint8_t> buf_;
  std::string name_;
  size_t pos_ = 0;
};

// ------------------------------------------------------------------------------------------------ File

File File::open(const std::string& path) {
  File f;
  f.map_ = MappedFile(path);
  f.name_ = path;
  Parser(std::span<const uint8_t>(f.map_.data(), f.map_.size()), path).parse(f, {});
  return f;
}

File File::parse(std::span<const uint8_t> bytes, const std::string& name, ParseOptions opt) {
  File f;
  f.name_ = name;
  Parser(bytes, name).parse(f, opt);
  return f;
}

const Value* File::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

namespace {
[[noreturn]] void missing(const std::string& file, std::string_view key) {
  throw Error(file + ": required metadata key '" + std::string(key) + "' is missing");
}
}  // namespace

int64_t File::get_int(std::string_view key) const {
  const Value* v = find(key);
  if (!v) missing(name_, key);
  return v->as_int(key);
}
double File::get_float(std::string_view key) const {
  const Value* v = find(key);
  if (!v) missing(name_, key);
  return v->as_float(key);
}
bool File::get_bool(std::string_view key) const {
  const Value* v = find(key);
  if (!v) missing(name_, key);
  return v->as_bool(key);
}
std::string_view File::get_string(std::string_view key) const {
  const Value* v = find(key);
  if (!v) missing(name_, key);
  return v->as_string(key);
}
std::optional<int64_t> File::opt_int(std::string_view key) const {
  const Value* v = find(key);
  return v ? std::optional<int64_t>(v->as_int(key)) : std::nullopt;
}
std::optional<double> File::opt_float(std::string_view key) const {
  const Value* v = find(key);
  return v ? std::optional<double>(v->as_float(key)) : std::nullopt;
}
std::optional<bool> File::opt_bool(std::string_view key) const {
  const Value* v = find(key);
  return v ? std::optional<bool>(v->as_bool(key)) : std::nullopt;
}
std::optional<std::string_view> File::opt_string(std::string_view key) const {
  const Value* v = find(key);
  return v ? std::optional<std::string_view>(v->as_string(key)) : std::nullopt;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& File::tensor(std::string_view name) const {
  const TensorInfo* t = find_tensor(name);
  if (!t) throw Error(name_ + ": required tensor '" + std::string(name) + "' is missing");
  return *t;
}

}  // namespace hearth::gguf
