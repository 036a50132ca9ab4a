#include "core/sha256.h"

#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

namespace machub::core {
namespace {

// Fetched once: in OpenSSL 3 the EVP_sha256() shortcut does an implicit provider fetch
// on every EVP_DigestInit, which costs more than hashing a sale.
const EVP_MD* Md() {
  static const EVP_MD* md = [] {
    EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (fetched == nullptr) {
      // No error path fits a hash function; an OpenSSL without SHA-256 is a broken host.
      std::fputs("machub: OpenSSL provides no SHA-256\n", stderr);
      std::abort();
    }
    return fetched;
  }();
  return md;
}

struct CtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

[[noreturn]] void Fail() {
  std::fputs("machub: SHA-256 failed\n", stderr);
  std::abort();
}

}  // namespace

std::string Sha256(std::string_view data) { return Sha256Of({data}); }

std::string Sha256Of(std::initializer_list<std::string_view> parts) {
  // One context per thread, reset by each init: no allocation per hash.
  thread_local std::unique_ptr<EVP_MD_CTX, CtxDeleter> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestInit_ex2(ctx.get(), Md(), nullptr) != 1) Fail();
  for (std::string_view part : parts) {
    if (EVP_DigestUpdate(ctx.get(), part.data(), part.size()) != 1) Fail();
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx.get(), digest, &len) != 1 || len != 32) Fail();
  return std::string(reinterpret_cast<const char*>(digest), len);
}

std::string Sha256Hex(std::string_view data) { return ToHex(Sha256(data)); }

std::string Md5(std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out, &len, EVP_md5(), nullptr) != 1 || len != 16) {
    std::fputs("machub: MD5 failed\n", stderr);
    std::abort();
  }
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string Md5Hex(std::string_view data) { return ToHex(Md5(data)); }

std::string ToHex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(bytes.size() * 2, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    const auto b = static_cast<unsigned char>(bytes[i]);
    out[2 * i] = kHex[b >> 4];
    out[2 * i + 1] = kHex[b & 0xF];
  }
  return out;
}

Result<std::string> FromHex(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  const Status bad(ErrorCode::kInvalidArgument, "not an even number of hex digits");
  if (hex.size() % 2 != 0) return bad;
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    const int hi = nibble(hex[2 * i]);
    const int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return bad;
    out[i] = static_cast<char>(hi << 4 | lo);
  }
  return out;
}

}  // namespace machub::core
