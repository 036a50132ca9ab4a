#include "app/tokens.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>

#include "core/file.h"
#include "core/sha256.h"
#include "core/strings.h"
#include "core/time_format.h"

namespace machub::app {
namespace {

using core::ErrnoStatus;

// Reads a whole file; a missing one is reported through *missing rather than as an error.
Status ReadWholeFile(const std::string& path, std::string* out, bool* missing) {
  *missing = false;
  out->clear();
  Result<std::string> text = core::ReadFileToString(path);
  if (text.ok()) {
    *out = std::move(text).value();
    return Status::Ok();
  }
  if (text.status().code() != ErrorCode::kNotFound) return text.status();
  *missing = true;
  return Status::Ok();
}

// Holds an exclusive flock for the read-modify-write of the tokens file, so two
// `machub token create` running at once cannot drop each other's entries.
class FileLock {
 public:
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the lock
  }
  Status Acquire(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) return ErrnoStatus("cannot open " + path, errno);
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) return ErrnoStatus("cannot lock " + path, errno);
    }
    return Status::Ok();
  }

 private:
  int fd_ = -1;
};

// "ID HASH [EXPIRES] [extra...]" split on blanks; missing columns are empty, a fourth
// column makes `expires` hold the rest so that it fails to parse.
void SplitTokenLine(std::string_view line, std::string_view* id, std::string_view* hex,
                    std::string_view* expires) {
  auto next = [&line]() {
    line = core::TrimWhitespace(line);
    size_t sep = line.find_first_of(" \t");
    std::string_view word = line.substr(0, sep);
    line = sep == std::string_view::npos ? std::string_view() : line.substr(sep);
    return word;
  };
  *id = next();
  *hex = next();
  *expires = core::TrimWhitespace(line);
}

std::string TokenLine(const TokenEntry& e) {
  std::string line = e.terminal_id + " " + e.sha256_hex;
  if (e.expires_at_ms != 0) line.append(" ").append(core::FormatRfc3339(e.expires_at_ms));
  if (e.manager()) line += " role=manager";
  return line;
}

// The words after the hash: an optional RFC 3339 expiry and an optional role=terminal|
// role=manager, in any order. An error text (naming no value) when a word is neither.
std::optional<std::string> ParseTokenTail(std::string_view tail, int64_t* expires_at_ms,
                                          bool* manager) {
  *expires_at_ms = 0;
  *manager = false;
  bool have_expiry = false, have_role = false;
  while (!(tail = core::TrimWhitespace(tail)).empty()) {
    const size_t sep = tail.find_first_of(" \t");
    const std::string_view word = tail.substr(0, sep);
    tail = sep == std::string_view::npos ? std::string_view() : tail.substr(sep);
    if (word.starts_with("role=")) {
      if (have_role) return "more than one role";
      have_role = true;
      if (word == "role=manager") {
        *manager = true;
      } else if (word != "role=terminal") {
        return "role must be role=terminal or role=manager";
      }
      continue;
    }
    auto ms = core::ParseRfc3339(word);
    if (!ms.ok() || have_expiry) return "after the hash: an RFC 3339 expiry and/or role=manager";
    have_expiry = true;
    *expires_at_ms = *ms;
  }
  return std::nullopt;
}

constexpr char kTokensFileHeader[] =
    "# machub terminal tokens: TERMINAL_ID SHA256HEX [EXPIRES_RFC3339] (hashes only; the\n"
    "# tokens were shown once by `machub token create`). Managed by machub; edits are kept.\n";

}  // namespace

std::string TokenSpec(const TokenEntry& e) {
  std::string item = e.terminal_id + ":" + e.sha256_hex;
  if (e.expires_at_ms != 0) item.append(":").append(core::FormatRfc3339(e.expires_at_ms));
  return item;
}

Result<TokenEntry> ParseTokenSpec(std::string_view spec, http::Role role) {
  size_t colon = spec.find(':');
  if (colon == std::string_view::npos) {
    return Status(ErrorCode::kInvalidArgument,
                  "token entry must be TERMINAL_ID:SHA256HEX (no ':' found)");
  }
  std::string_view id = spec.substr(0, colon);
  std::string_view hex = spec.substr(colon + 1);
  // An RFC 3339 expiry contains ':' itself, so it is whatever follows the hash.
  std::string_view expires;
  if (hex.size() > 64 && hex[64] == ':') {
    expires = hex.substr(65);
    hex = hex.substr(0, 64);
  }
  if (!ValidTerminalId(id)) {
    // Never echo the input: a mistyped entry may be the token itself.
    return Status(ErrorCode::kInvalidArgument,
                  "token entry: terminal id must match [A-Za-z0-9._-]{1,32}");
  }
  if (!ValidSha256Hex(hex)) {
    return Status(ErrorCode::kInvalidArgument,
                  "token entry for terminal " + std::string(id) +
                      ": hash must be 64 lower-case hex digits (the SHA-256 of the token, "
                      "see `machub token hash`), not the token itself");
  }
  int64_t expires_at_ms = 0;
  if (!expires.empty()) {
    auto ms = core::ParseRfc3339(expires);
    if (!ms.ok()) {
      return Status(ErrorCode::kInvalidArgument,
                    "token entry for terminal " + std::string(id) +
                        ": expiry must be an RFC 3339 time such as 2026-11-28T10:00:00Z");
    }
    expires_at_ms = *ms;
  }
  return TokenEntry{std::string(id), std::string(hex), expires_at_ms, role};
}

Result<std::string> GenerateToken() {
  std::array<unsigned char, 32> bytes;
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    return Status(ErrorCode::kInternal, "RAND_bytes failed");
  }
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out = "mh_";
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char b : bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 0x3f]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 0x3f]);
  return out;
}

std::string HashTokenHex(std::string_view token) { return core::Sha256Hex(token); }

std::string TokensFilePath(std::string_view data_dir) {
  std::string path = data_dir.empty() ? std::string(".") : std::string(data_dir);
  if (path.back() != '/') path.push_back('/');
  path += "tokens";
  return path;
}

Result<std::vector<TokenEntry>> LoadTokensFile(const std::string& path) {
  std::string content;
  bool missing = false;
  RETURN_IF_ERROR(ReadWholeFile(path, &content, &missing));
  std::vector<TokenEntry> entries;
  if (missing) return entries;
  std::string_view rest = content;
  int line_no = 0;
  while (!rest.empty()) {
    ++line_no;
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    size_t hash_pos = line.find('#');
    if (hash_pos != std::string_view::npos) line = line.substr(0, hash_pos);
    line = core::TrimWhitespace(line);
    if (line.empty()) continue;
    std::string_view id;
    std::string_view hex;
    std::string_view expires;
    SplitTokenLine(line, &id, &hex, &expires);
    std::string where = path + " line " + std::to_string(line_no);
    if (!ValidTerminalId(id)) {
      return Status(ErrorCode::kInvalidArgument,
                    where + ": terminal id must match [A-Za-z0-9._-]{1,32}");
    }
    if (!ValidSha256Hex(hex)) {
      return Status(ErrorCode::kInvalidArgument,
                    where +
                        ": expected `TERMINAL_ID SHA256HEX [EXPIRES_RFC3339] [role=manager]` (64 "
                        "lower-case hex digits)");
    }
    int64_t expires_at_ms = 0;
    bool manager = false;
    if (auto bad = ParseTokenTail(expires, &expires_at_ms, &manager)) {
      return Status(ErrorCode::kInvalidArgument, where + ": " + *bad);
    }
    entries.push_back(TokenEntry{std::string(id), std::string(hex), expires_at_ms,
                                 manager ? http::Role::kManager : http::Role::kTerminal});
  }
  return entries;
}

Status AppendTokens(const std::string& path, const std::vector<TokenEntry>& entries) {
  for (const TokenEntry& e : entries) {
    if (!ValidTerminalId(e.terminal_id) || !ValidSha256Hex(e.sha256_hex)) {
      return Status(ErrorCode::kInvalidArgument, "invalid token entry for " + path);
    }
  }
  FileLock lock;
  RETURN_IF_ERROR(lock.Acquire(path + ".lock"));

  std::string content;
  bool missing = false;
  RETURN_IF_ERROR(ReadWholeFile(path, &content, &missing));
  if (missing) content = kTokensFileHeader;
  if (!content.empty() && content.back() != '\n') content.push_back('\n');
  for (const TokenEntry& e : entries) content += TokenLine(e) + "\n";
  return core::ReplaceFileDurably(path, content);
}

Status RotateTokens(const std::string& path, const std::string& terminal_id,
                    const TokenEntry& new_entry, int64_t old_expires_at_ms, int* expired_count) {
  if (expired_count != nullptr) *expired_count = 0;
  if (!ValidTerminalId(terminal_id) || new_entry.terminal_id != terminal_id ||
      !ValidSha256Hex(new_entry.sha256_hex) || old_expires_at_ms == 0) {
    return Status(ErrorCode::kInvalidArgument, "invalid token rotation for " + path);
  }
  FileLock lock;
  RETURN_IF_ERROR(lock.Acquire(path + ".lock"));
  std::string content;
  bool missing = false;
  RETURN_IF_ERROR(ReadWholeFile(path, &content, &missing));
  if (missing) content = kTokensFileHeader;
  std::string out;
  int count = 0;
  bool any_manager = false;
  std::string_view rest = content;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    size_t hash_pos = line.find('#');
    std::string_view entry = line.substr(0, hash_pos);
    std::string_view comment =
        hash_pos == std::string_view::npos ? std::string_view() : line.substr(hash_pos);
    std::string_view id;
    std::string_view hex;
    std::string_view expires;
    SplitTokenLine(entry, &id, &hex, &expires);
    bool rewrite = id == terminal_id && ValidSha256Hex(hex);
    int64_t expires_ms = 0;
    bool manager = false;
    if (rewrite) {
      // A malformed tail is left for LoadTokensFile to report; an earlier expiry stays.
      rewrite = !ParseTokenTail(expires, &expires_ms, &manager) &&
                (expires_ms == 0 || expires_ms > old_expires_at_ms);
    }
    if (rewrite) {
      out += TokenLine(TokenEntry{std::string(id), std::string(hex), old_expires_at_ms,
                                  manager ? http::Role::kManager : http::Role::kTerminal});
      any_manager = any_manager || manager;
      if (!comment.empty()) out += " " + std::string(comment);
      ++count;
    } else {
      out += line;
    }
    out.push_back('\n');
  }
  TokenEntry added = new_entry;
  if (any_manager) added.role = http::Role::kManager;  // a manager's new token is a manager's
  out += TokenLine(added) + "\n";
  RETURN_IF_ERROR(core::ReplaceFileDurably(path, out));
  if (expired_count != nullptr) *expired_count = count;
  return Status::Ok();
}

Result<int64_t> ParseDurationMs(std::string_view text) {
  const Status invalid(ErrorCode::kInvalidArgument,
                       "duration must look like 24h, 90m, 2s, 1500ms, 7d or 1h30m");
  std::string_view t = core::TrimWhitespace(text);
  if (t.empty()) return invalid;
  int64_t total = 0;
  bool bare = true;
  while (!t.empty()) {
    size_t digits = 0;
    while (digits < t.size() && t[digits] >= '0' && t[digits] <= '9') ++digits;
    if (digits == 0 || digits > 12) return invalid;
    int64_t n = 0;
    for (size_t i = 0; i < digits; ++i) n = n * 10 + (t[i] - '0');
    t.remove_prefix(digits);
    size_t unit_len = 0;
    while (unit_len < t.size() && t[unit_len] >= 'a' && t[unit_len] <= 'z') ++unit_len;
    const std::string_view unit = t.substr(0, unit_len);
    t.remove_prefix(unit_len);
    int64_t scale = 0;
    if (unit.empty()) {
      if (!bare || !t.empty()) return invalid;
      scale = 1000;  // a bare number is seconds
    } else if (unit == "ms") {
      scale = 1;
    } else if (unit == "s") {
      scale = 1000;
    } else if (unit == "m") {
      scale = 60'000;
    } else if (unit == "h") {
      scale = 3'600'000;
    } else if (unit == "d") {
      scale = 86'400'000;
    } else {
      return invalid;
    }
    bare = false;
    total += n * scale;
    if (total > 100LL * 365 * 86'400'000) return invalid;  // a century is surely a typo
  }
  return total;
}

Result<DataDirLock> DataDirLock::Acquire(const std::string& dir) {
  const std::string path = dir + "/lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus("cannot open " + path, errno);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char holder[32] = {};
    ssize_t n = ::pread(fd, holder, sizeof(holder) - 1, 0);
    ::close(fd);
    if (err != EWOULDBLOCK) return ErrnoStatus("cannot lock " + path, err);
    std::string pid = n > 0 ? std::string(holder, static_cast<size_t>(n)) : "";
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    return Status(ErrorCode::kUnavailable,
                  "data folder " + dir + " is in use by another machub process" +
                      (pid.empty() ? std::string() : " (pid " + pid + ")") +
                      "; stop it first (only one serve or sync may use a data folder)");
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  ssize_t written = ::ftruncate(fd, 0) == 0 ? ::pwrite(fd, pid.data(), pid.size(), 0) : -1;
  (void)written;  // the pid only makes the message above more helpful; the lock holds anyway
  return DataDirLock(fd);
}

DataDirLock::~DataDirLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the descriptor releases the flock
}

Status EnsureDataDir(const std::string& dir) {
  if (dir.empty()) return Status(ErrorCode::kInvalidArgument, "data_dir is empty");
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      return Status(ErrorCode::kIoError, "data_dir " + dir + " exists but is not a folder");
    }
    return Status::Ok();
  }
  std::string trimmed = dir;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
  std::error_code ec;
  std::filesystem::path path(trimmed);
  if (path.has_parent_path() && !path.parent_path().empty()) {
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) {
      return Status(ErrorCode::kIoError,
                    "cannot create " + path.parent_path().string() + ": " + ec.message());
    }
  }
  if (::mkdir(trimmed.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus("cannot create data_dir " + dir, errno);
  }
  return Status::Ok();
}

}  // namespace machub::app
