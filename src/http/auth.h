#pragma once
// Bearer-token authentication of terminals and managers.
//
// Tokens are configured only as SHA-256 hashes (TerminalToken, api.h); several tokens may
// name the same terminal (rotation). A presented token is hashed and its digest looked up
// by binary search in the configured digests, sorted once at construction: a lookup costs
// O(log n) with thousands of tokens, not one comparison per configured token. The search's
// timing depends only on the presented token's SHA-256, which tells an attacker nothing
// about any configured token (finding a token for a digest means inverting SHA-256): the
// secret is the token, and it is never compared directly.
// Tokens never reach logs or error messages. Immutable after construction: thread-safe.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "http/api.h"

namespace machub::http {

// The token of an `Authorization: Bearer <token>` header value (scheme case-insensitive,
// surrounding spaces ignored); empty when the header is absent, of another scheme, or
// the token is empty.
std::string_view BearerToken(std::string_view authorization);

// Who presented a valid token: the terminal id it is bound to and its role.
struct Principal {
  std::string terminal_id;
  Role role = Role::kTerminal;
};

class TokenAuthenticator {
 public:
  // Hashes are normalised to lower case; entries that are not 64 hex digits can never
  // match (the caller validates configuration and reports them).
  explicit TokenAuthenticator(std::vector<TerminalToken> tokens);

  // The terminal id and role bound to the bearer token in `authorization` (the header
  // value), or kUnauthorized ("missing bearer token" / "unknown token" / "token expired").
  // A token whose entry has expires_at_ms != 0 is valid while now_ms < expires_at_ms; when
  // the same hash has several entries, the first one still valid counts.
  Result<Principal> Authenticate(std::string_view authorization, int64_t now_ms) const;
  // The same at the system clock's current time.
  Result<Principal> Authenticate(std::string_view authorization) const;

 private:
  std::vector<TerminalToken> tokens_;
  // (binary SHA-256 digest, index into tokens_), sorted; equal digests keep the order of
  // tokens_, so "the first entry still valid" is the first in configuration order.
  std::vector<std::pair<std::string, size_t>> by_digest_;
};

}  // namespace machub::http
