#pragma once
// A configured token as the hub keeps it: never the token itself, only its SHA-256, bound
// to one terminal id, with an optional expiry and a role. The tokens file and the
// configuration (src/app/tokens.h) and the API's authenticator (auth.h) share this type.

#include <cstdint>
#include <string>

namespace machub::http {

// What a token may do (docs/API.md "Roles"). A terminal token posts entries for its own
// terminal and reads one sale by id, the catalog and products. A manager token may also
// list all sales and read /v1/status and /metrics (unless metrics_public); a terminal
// token on a manager-only route answers 403 `forbidden`.
enum class Role { kTerminal, kManager };

struct TerminalToken {
  std::string terminal_id;  // [A-Za-z0-9._-]{1,32}
  std::string sha256_hex;   // SHA-256 of the token, lower-case hex; the token is never kept
  // Unix ms from which the token is refused (401 "token expired"); 0: never expires.
  // Rotation: add the new token, give the old one an expiry at now + overlap.
  int64_t expires_at_ms = 0;
  Role role = Role::kTerminal;

  bool manager() const { return role == Role::kManager; }
  bool operator==(const TerminalToken&) const = default;
};

}  // namespace machub::http
