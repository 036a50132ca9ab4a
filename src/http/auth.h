#pragma once
// Bearer-token authentication of terminals and managers.
//
// Tokens are configured only as SHA-256 hashes (TerminalToken, api.h); several tokens may
// name the same terminal (rotation). A presented token is hashed and compared against
// EVERY configured hash with CRYPTO_memcmp, without an early exit, so the answer time
// does not depend on which hash (or how much of it) matched.
// Tokens never reach logs or error messages. Immutable after construction: thread-safe.

#include <cstdint>
#include <string>
#include <string_view>
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
};

}  // namespace machub::http
