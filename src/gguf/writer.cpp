#include "gguf/writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "core/error.h"

namespace hearth::gguf {

namespace {

template <typename T>
void put(std::vector<uint8_t>& b, T v) {
  const size_t at = b.size();
  b.resize(at + sizeof(T));
  std::memcpy(b.data() + at, &v, sizeof(T));
}
void put_str(std::vector<uint8_t>& b, const std::string& s) {
  put<uint64_t>(b, s.size());
  b.insert(b.end(), s.begin(), s.end());
}
template <typename T>
std::vector<uint8_t> scalar(ValueType t, T v) {
  std::vector<uint8_t> b;
  put<uint32_t>(b, uint32_t(t));
  put<T>(b, v);
  return b;
}
template <typename T>
std::vector<uint8_t> array(ValueType et, const std::vector<T>& v) {
  std::vector<uint8_t> b;
  put<uint32_t>(b, uint32_t(ValueType::ARRAY));
  put<uint32_t>(b, uint32_t(et));
  put<uint64_t>(b, v.size());
  for (const T& x : v) put<T>(b, x);
  return b;
}

}  // namespace

void Writer::set(const std::string& key, std::vector<uint8_t> value) {
  for (KV& kv : kv_)
    if (kv.key == key) {
      kv.value = std::move(value);
      return;
    }
  kv_.push_back({key, std::move(value)});
}

void Writer::set_u8(const std::string& k, uint8_t v) { set(k, scalar(ValueType::U8, v)); }
void Writer::set_u32(const std::string& k, uint32_t v) { set(k, scalar(ValueType::U32, v)); }
void Writer::set_i32(const std::string& k, int32_t v) { set(k, scalar(ValueType::I32, v)); }
void Writer::set_u64(const std::string& k, uint64_t v) { set(k, scalar(ValueType::U64, v)); }
void Writer::set_f32(const std::string& k, float v) { set(k, scalar(ValueType::F32, v)); }
void Writer::set_bool(const std::string& k, bool v) { set(k, scalar(ValueType::BOOL, uint8_t(v ? 1 : 0))); }
void Writer::set_string(const std::string& k, const std::string& v) {
  std::vector<uint8_t> b;
  put<uint32_t>(b, uint32_t(ValueType::STRING));
  put_str(b, v);
  set(k, std::move(b));
}
void Writer::set_array_u32(const std::string& k, const std::vector<uint32_t>& v) {
  set(k, array(ValueType::U32, v));
}
void Writer::set_array_i32(const std::string& k, const std::vector<int32_t>& v) {
  set(k, array(ValueType::I32, v));
}
void Writer::set_array_f32(const std::string& k, const std::vector<float>& v) { set(k, array(ValueType::F32, v)); }
void Writer::set_array_bool(const std::string& k, const std::vector<bool>& v) {
  std::vector<uint8_t> u(v.begin(), v.end());
  set(k, array(ValueType::BOOL, u));
}
void Writer::set_array_string(const std::string& k, const std::vector<std::string>& v) {
  std::vector<uint8_t> b;
  put<uint32_t>(b, uint32_t(ValueType::ARRAY));
  put<uint32_t>(b, uint32_t(ValueType::STRING));
  put<uint64_t>(b, v.size());
  for (const std::string& s : v) put_str(b, s);
  set(k, std::move(b));
}
void Writer::set_raw(const std::string& k, const Value& v) {
  set(k, std::vector<uint8_t>(v.raw().begin(), v.raw().end()));
}
void Writer::set_raw_bytes(const std::string& k, std::vector<uint8_t> bytes) { set(k, std::move(bytes)); }

void Writer::set_alignment(uint32_t a) {
  if (a == 0 || (a & (a - 1))) throw Error("GGUF alignment must be a power of two");
  alignment_ = a;
  if (a != 32) set_u32("general.alignment", a);
}

size_t Writer::tensor_bytes(GgmlType type, const std::vector<int64_t>& ne) {
  const TypeTraits& tt = type_traits(type);
  if (ne.empty() || ne.size() > 4) throw Error("tensor must have 1 to 4 dimensions");
  if (ne[0] % tt.block_size) throw Error(std::string("ne[0] is not a multiple of the block size of ") + tt.name);
  size_t n = 1;
  for (int64_t x : ne) n *= size_t(x);
  return n / size_t(tt.block_size) * size_t(tt.type_size);
}

void Writer::add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> ne, Producer produce) {
  for (const Tensor& t : tensors_)
    if (t.name == name) throw Error("duplicate tensor '" + name + "'");
  const size_t nb = tensor_bytes(type, ne);
  // Offsets are assigned with the final alignment in write_to().
  tensors_.push_back({name, type, std::move(ne), nb, 0, std::move(produce)});
}

void Writer::add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> ne, std::vector<uint8_t> bytes) {
  auto shared = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
  const size_t expect = tensor_bytes(type, ne);
  if (shared->size() != expect)
    throw Error("tensor '" + name + "': " + std::to_string(shared->size()) + " bytes given, " +
                std::to_string(expect) + " expected");
  add_tensor(name, type, std::move(ne), [shared](const Emit& emit) { emit(shared->data(), shared->size()); });
}

void Writer::write_to(const std::function<void(const void*, size_t)>& out) const {
  std::vector<uint8_t> h;
  h.insert(h.end(), {'G', 'G', 'U', 'F'});
  put<uint32_t>(h, 3);
  put<uint64_t>(h, tensors_.size());
  put<uint64_t>(h, kv_.size());
  for (const KV& kv : kv_) {
    put_str(h, kv.key);
    h.insert(h.end(), kv.value.begin(), kv.value.end());
  }
  uint64_t off = 0;
  for (const Tensor& t : tensors_) {
    put_str(h, t.name);
    put<uint32_t>(h, uint32_t(t.ne.size()));
    for (int64_t x : t.ne) put<uint64_t>(h, uint64_t(x));
    put<uint32_t>(h, uint32_t(t.type));
    put<uint64_t>(h, off);
    off += (t.n_bytes + alignment_ - 1) / alignment_ * alignment_;
  }
  h.resize((h.size() + alignment_ - 1) / alignment_ * alignment_, 0);
  out(h.data(), h.size());
  static const uint8_t zeros[4096] = {};
  for (const Tensor& t : tensors_) {
    size_t written = 0;
    t.produce([&](const void* d, size_t n) {
      if (written + n > t.n_bytes) throw Error("tensor '" + t.name + "': producer wrote too many bytes");
      out(d, n);
      written += n;
    });
    if (written != t.n_bytes)
      throw Error("tensor '" + t.name + "': producer wrote " + std::to_string(written) + " of " +
                  std::to_string(t.n_bytes) + " bytes");
    size_t pad = (t.n_bytes + alignment_ - 1) / alignment_ * alignment_ - t.n_bytes;
    while (pad) {
      const size_t n = std::min(pad, sizeof zeros);
      out(zeros, n);
      pad -= n;
    }
  }
}

void Writer::write(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  std::vector<char> buf(1 << 20);  // declared first: it must outlive the FILE that buffers into it
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(tmp.c_str(), "wb"), &std::fclose);
  if (!f) throw Error("cannot create '" + tmp + "': " + std::strerror(errno));
  std::setvbuf(f.get(), buf.data(), _IOFBF, buf.size());
  try {
    write_to([&](const void* d, size_t n) {
      if (n && std::fwrite(d, 1, n, f.get()) != n) throw Error("write to '" + tmp + "' failed (disk full?)");
    });
  } catch (...) {
    f.reset();
    std::remove(tmp.c_str());
    throw;
  }
  if (std::fclose(f.release()) != 0) {
    std::remove(tmp.c_str());
    throw Error("closing '" + tmp + "' failed");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw Error("cannot rename '" + tmp + "' to '" + path + "'");
}

std::vector<uint8_t> Writer::to_bytes() const {
  std::vector<uint8_t> out;
  write_to([&](const void* d, size_t n) {
    const uint8_t* p = static_cast<const uint8_t*>(d);
    out.insert(out.end(), p, p + n);
  });
  return out;
}

}  // namespace hearth::gguf
