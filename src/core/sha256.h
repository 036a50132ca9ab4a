#pragma once
// SHA-256 (OpenSSL) and hex helpers. Thread-safe. Hashing cannot fail on a working host;
// if OpenSSL offers no SHA-256 at all the process aborts (there is no sane fallback).

#include <initializer_list>
#include <string>
#include <string_view>

namespace machub::core {

// 32 raw bytes.
std::string Sha256(std::string_view data);
// Incremental: Sha256Of({a, b}) == Sha256(a + b).
std::string Sha256Of(std::initializer_list<std::string_view> parts);
std::string ToHex(std::string_view bytes);  // lower-case
// Upper or lower case accepted. Empty string for odd length or a non-hex character.
std::string FromHex(std::string_view hex);

}  // namespace machub::core
