#include "http/auth.h"

#include <algorithm>
#include <cctype>
#include <utility>

#include "core/clock.h"
#include "core/sha256.h"
#include "core/strings.h"

namespace machub::http {
std::string HashToken(std::string_view token) { return core::Sha256Hex(token); }

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
  by_digest_.reserve(tokens_.size());
  for (size_t i = 0; i < tokens_.size(); ++i) {
    TerminalToken& token = tokens_[i];
    token.sha256_hex = core::AsciiLower(token.sha256_hex);
    Result<std::string> digest = core::FromHex(token.sha256_hex);
    if (digest.ok() && digest->size() == core::kSha256Size) {
      by_digest_.emplace_back(std::move(*digest), i);
    }
  }
  std::sort(by_digest_.begin(), by_digest_.end());  // ties by index: configuration order
}

Result<Principal> TokenAuthenticator::Authenticate(std::string_view authorization,
                                                   int64_t now_ms) const {
  const std::string_view token = BearerToken(authorization);
  if (token.empty()) return Status(ErrorCode::kUnauthorized, "missing bearer token");
  const std::string presented = core::Sha256(token);
  auto it = std::lower_bound(by_digest_.begin(), by_digest_.end(), presented,
                             [](const std::pair<std::string, size_t>& entry,
                                const std::string& digest) { return entry.first < digest; });
  bool expired = false;
  for (; it != by_digest_.end() && it->first == presented; ++it) {
    const TerminalToken& entry = tokens_[it->second];
    if (entry.expires_at_ms == 0 || now_ms < entry.expires_at_ms) {
      return Principal{entry.terminal_id, entry.role};
    }
    expired = true;
  }
  // Saying "expired" tells the holder only what they already know (the token was once
  // valid) and tells the operator why a rotated-out terminal fails.
  return Status(ErrorCode::kUnauthorized, expired ? "token expired" : "unknown token");
}

Result<Principal> TokenAuthenticator::Authenticate(std::string_view authorization) const {
  return Authenticate(authorization, core::SystemClock().NowMs());
}

}  // namespace machub::http
