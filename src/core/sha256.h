#pragma once
// SHA-256 and MD5 (OpenSSL) and hex helpers: the one home of the hub's digests. Thread-safe.
// Hashing cannot fail on a working host; if OpenSSL offers no SHA-256 at all the process aborts
// (there is no sane fallback).

#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>

#include "core/status.h"

namespace machub::core {

inline constexpr size_t kSha256Size = 32;  // bytes of a SHA-256 digest

// kSha256Size raw bytes.
std::string Sha256(std::string_view data);
// Incremental: Sha256Of({a, b}) == Sha256(a + b).
std::string Sha256Of(std::initializer_list<std::string_view> parts);
std::string Sha256Hex(std::string_view data);  // lower-case hex of Sha256(data)
// MD5, 16 raw bytes: only as the ETag of a single-part S3 PUT and Content-MD5, integrity
// checks the object store computes; never for security.
std::string Md5(std::string_view data);
std::string Md5Hex(std::string_view data);  // lower-case hex of Md5(data)
std::string ToHex(std::string_view bytes);  // lower-case
// Upper or lower case accepted. kInvalidArgument for an odd length or a non-hex character.
Result<std::string> FromHex(std::string_view hex);

}  // namespace machub::core
