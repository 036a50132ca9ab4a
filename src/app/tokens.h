#pragma once
// Terminal tokens: generation, hashing, and the tokens file `<data_dir>/tokens`.
//
// A token is a bearer secret shown once (by `machub token create`); the hub keeps only its
// SHA-256 as lower-case hex, bound to one terminal id, with a role (terminal, or manager:
// docs/API.md "Roles"). The tokens file holds one entry per line,
// `TERMINAL_ID SHA256HEX [EXPIRES_RFC3339] [role=manager]`; blank lines and `#` comments
// (whole line or after the entry) are ignored. The file is created with mode 0600 and only ever
// replaced whole (temporary file + fsync + rename + fsync of the folder), so a crash leaves either
// the old or the new file, never half of one.
//
// Thread-safety: the functions are stateless; AppendTokens serializes concurrent writers
// (also across processes) with an flock on `<path>.lock`.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/text.h"
#include "http/token.h"

namespace machub::app {

// One entry of the tokens file or the configuration (http/token.h).
using TokenEntry = http::TerminalToken;

// The terminal id format of API.md and a token hash's form (core/text.h).
using core::ValidSha256Hex;
using core::ValidTerminalId;

// Parses the configuration form "TERMINAL_ID:SHA256HEX" or
// "TERMINAL_ID:SHA256HEX:EXPIRES_RFC3339" (e.g. "T01:<hash>:2026-11-28T10:00:00Z").
// kInvalidArgument with a message
// that says what is wrong (never echoes more than the terminal id part).
// `role` is the entry's role (the config key manager_tokens uses the same form).
Result<TokenEntry> ParseTokenSpec(std::string_view spec, http::Role role = http::Role::kTerminal);

// The configuration form of an entry: "TERMINAL_ID:SHA256HEX[:EXPIRES_RFC3339]".
std::string TokenSpec(const TokenEntry& entry);

// "mh_" + base64url (no padding) of 32 bytes from OpenSSL's RAND_bytes: 46 characters,
// all of [A-Za-z0-9_-], safe in shell words, URLs and headers. kInternal when the
// random generator fails.
Result<std::string> GenerateToken();

// SHA-256 of the token bytes as lower-case hex (same as http::HashToken).
std::string HashTokenHex(std::string_view token);

// "<data_dir>/tokens".
std::string TokensFilePath(std::string_view data_dir);

// Reads a tokens file. A missing file is an empty list (not an error). A malformed line is
// kInvalidArgument naming the file and line number; other read errors are kIoError.
Result<std::vector<TokenEntry>> LoadTokensFile(const std::string& path);

// Appends entries to the tokens file (creating it, mode 0600; its folder must exist):
// reads the current file, writes old + new lines to `<path>.tmp.<pid>`, fsyncs it, renames
// it over `path` and fsyncs the folder. Existing lines (comments included) are kept
// byte for byte. kIoError on any failure (the old file is then unchanged).
Status AppendTokens(const std::string& path, const std::vector<TokenEntry>& entries);

// Token rotation: under the same lock and atomic replacement as AppendTokens, gives
// every entry of `terminal_id` in the tokens file that has no expiry, or a later one, the
// expiry `old_expires_at_ms` (keeping its role), and appends `new_entry` (its terminal
// must be terminal_id; it gets the manager role when an entry it replaces had it).
// Lines of other terminals and comments are kept byte for byte. *expired_count (may be
// null) receives how many entries got the expiry. kIoError on any failure (the old file
// is then unchanged).
Status RotateTokens(const std::string& path, const std::string& terminal_id,
                    const TokenEntry& new_entry, int64_t old_expires_at_ms,
                    int* expired_count = nullptr);

// A duration such as "24h", "90m", "2s", "1500ms", "7d" or "1h30m" (or a bare number of
// seconds) in milliseconds; must be >= 0. kInvalidArgument otherwise.
Result<int64_t> ParseDurationMs(std::string_view text);

// Creates the data folder `dir` (missing parents with the default mode, the folder itself
// with 0700) when it does not exist; an existing folder is left as it is. kIoError when it
// cannot be created or exists as something other than a folder.
Status EnsureDataDir(const std::string& dir);

// An exclusive lock on a data folder (flock on `<dir>/lock`, which also records the
// holder's pid). `machub serve` and `machub sync --once` hold it for their lifetime so that
// two processes never cut and upload batches from one journal; the kernel drops it when the
// holder exits, even by SIGKILL. Read-only commands (`status`, `journal verify`) need none.
class DataDirLock {
 public:
  // kUnavailable with the holder's pid when another process holds the lock; kIoError when
  // the lock file cannot be opened.
  static Result<DataDirLock> Acquire(const std::string& dir);
  DataDirLock(DataDirLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  DataDirLock& operator=(DataDirLock&&) = delete;
  DataDirLock(const DataDirLock&) = delete;
  ~DataDirLock();

 private:
  explicit DataDirLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace machub::app
