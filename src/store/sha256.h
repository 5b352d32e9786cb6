// Incremental SHA-256 (OpenSSL), for verifying blobs while they stream in.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace hearth::store {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t n);
  std::string hex();  // finishes; the object is reset afterwards

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Hashes `n` bytes of a file from its start (all of it when n is UINT64_MAX). Throws hearth::Error.
std::string sha256_file(const std::string& path, uint64_t n = UINT64_MAX);

}  // namespace hearth::store
