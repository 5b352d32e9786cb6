#include "store/sha256.h"

#include <openssl/evp.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace hearth::store {

struct Sha256::Impl {
  EVP_MD_CTX* ctx = nullptr;
};

Sha256::Sha256() : impl_(new Impl) {
  impl_->ctx = EVP_MD_CTX_new();
  if (!impl_->ctx || EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr) != 1) throw Error("sha256: OpenSSL init failed");
}
Sha256::~Sha256() { EVP_MD_CTX_free(impl_->ctx); }

void Sha256::update(const void* data, size_t n) {
  if (n && EVP_DigestUpdate(impl_->ctx, data, n) != 1) throw Error("sha256: update failed");
}

std::string Sha256::hex() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(impl_->ctx, md, &len) != 1) throw Error("sha256: final failed");
  EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr);
  static const char* hexd = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hexd[md[i] >> 4];
    out += hexd[md[i] & 15];
  }
  return out;
}

std::string sha256_file(const std::string& path, uint64_t n) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw Error("cannot open '" + path + "': " + std::strerror(errno));
  Sha256 h;
  std::vector<char> buf(1 << 20);
  uint64_t left = n;
  while (left > 0) {
    const size_t want = size_t(std::min<uint64_t>(left, buf.size()));
    const size_t got = std::fread(buf.data(), 1, want, f);
    if (got == 0) break;
    h.update(buf.data(), got);
    left -= got;
  }
  const bool err = std::ferror(f);
  std::fclose(f);
  if (err) throw Error("read error on '" + path + "'");
  if (n != UINT64_MAX && left) throw Error("'" + path + "' is shorter than expected");
  return h.hex();
}

}  // namespace hearth::store
