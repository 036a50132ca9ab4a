#include "http/auth.h"

#include <openssl/crypto.h>

#include <cctype>
#include <utility>

#include "core/clock.h"
#include "core/sha256.h"
#include "core/strings.h"

namespace machub::http {
namespace {

constexpr size_t kHexSha256Size = 64;

}  // namespace

std::string HashToken(std::string_view token) { return core::ToHex(core::Sha256(token)); }

std::string_view BearerToken(std::string_view authorization) {
  std::string_view value = core::TrimSpaceTab(authorization);
  constexpr std::string_view kScheme = "bearer";
  if (value.size() <= kScheme.size()) return {};
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(value[i])) != kScheme[i]) return {};
  }
  if (value[kScheme.size()] != ' ' && value[kScheme.size()] != '\t') return {};
  return core::TrimSpaceTab(value.substr(kScheme.size()));
}

TokenAuthenticator::TokenAuthenticator(std::vector<TerminalToken> tokens)
    : tokens_(std::move(tokens)) {
  for (TerminalToken& token : tokens_) token.sha256_hex = core::AsciiLower(token.sha256_hex);
}

Result<Principal> TokenAuthenticator::Authenticate(std::string_view authorization,
                                                   int64_t now_ms) const {
  const std::string_view token = BearerToken(authorization);
  if (token.empty()) return Status(ErrorCode::kUnauthorized, "missing bearer token");
  const std::string presented = HashToken(token);
  // Compare against every entry; remember the match instead of returning from the loop.
  const TerminalToken* match = nullptr;
  bool expired = false;
  for (const TerminalToken& entry : tokens_) {
    if (entry.sha256_hex.size() != kHexSha256Size) continue;
    const bool equal =
        CRYPTO_memcmp(entry.sha256_hex.data(), presented.data(), kHexSha256Size) == 0;
    const bool live = entry.expires_at_ms == 0 || now_ms < entry.expires_at_ms;
    if (equal && live && match == nullptr) match = &entry;
    if (equal && !live) expired = true;
  }
  if (match == nullptr) {
    // Saying "expired" tells the holder only what they already know (the token was once
    // valid) and tells the operator why a rotated-out terminal fails.
    return Status(ErrorCode::kUnauthorized, expired ? "token expired" : "unknown token");
  }
  return Principal{match->terminal_id, match->role};
}

Result<Principal> TokenAuthenticator::Authenticate(std::string_view authorization) const {
  return Authenticate(authorization, core::SystemClock().NowMs());
}

}  // namespace machub::http
