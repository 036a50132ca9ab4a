#include "journal/internal.h"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <bit>
#include <cstdlib>

#include "core/sale_codec.h"
#include "core/sha256.h"
#include "core/store_event.h"

namespace machub::journal {

std::string FolderOf(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

int64_t FileSize(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
}

DiskSpace DiskSpaceOf(const std::string& path) {
  DiskSpace space;
  struct statvfs vfs {};
  if (::statvfs(FolderOf(path).c_str(), &vfs) == 0) {
    space.free_bytes = static_cast<int64_t>(vfs.f_bavail) * static_cast<int64_t>(vfs.f_frsize);
    space.total_bytes = static_cast<int64_t>(vfs.f_blocks) * static_cast<int64_t>(vfs.f_frsize);
  }
  return space;
}

namespace {
constexpr const char* kAnchorSeqKey = "chain_anchor_seq";
}  // namespace

Result<Anchor> ReadAnchor(sqlite3* db, const std::string& genesis) {
  Anchor anchor;
  anchor.hash = genesis;
  Stmt stmt(db,
            "SELECT key, value FROM meta WHERE key IN ('chain_anchor_seq', 'chain_anchor_hash')");
  if (stmt.prepare_rc() != SQLITE_OK) return SqliteError(db, stmt.prepare_rc(), "read anchor");
  std::string seq_text;
  std::string hash_hex;
  int rc;
  while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
    (ColumnText(stmt.get(), 0) == kAnchorSeqKey ? seq_text : hash_hex) = ColumnText(stmt.get(), 1);
  }
  if (rc != SQLITE_DONE) return SqliteError(db, rc, "read anchor");
  if (seq_text.empty()) return anchor;
  anchor.seq = std::strtoll(seq_text.c_str(), nullptr, 10);
  Result<std::string> hash = core::FromHex(hash_hex);
  const bool hash_ok = hash.ok();
  if (hash_ok) anchor.hash = std::move(hash).value();
  if (anchor.seq <= 0 || !hash_ok || anchor.hash.size() != 32) {
    return Status(ErrorCode::kInternal, "journal: the chain anchor in meta is malformed");
  }
  return anchor;
}

Result<int64_t> ReadIdsIndexedSeq(sqlite3* db) {
  Stmt stmt(db, "SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?1");
  if (stmt.prepare_rc() != SQLITE_OK)
    return SqliteError(db, stmt.prepare_rc(), "read ids_indexed_seq");
  BindText(stmt.get(), 1, kIdsIndexedSeqKey);
  bool found = false;
  ASSIGN_OR_RETURN(int64_t seq, QueryOptionalInt(db, stmt.get(), &found, "read ids_indexed_seq"));
  return found ? seq : 0;
}

int64_t IdHash(std::string_view id) {
  const std::string digest = core::Sha256(id);
  uint64_t key = 0;
  for (int i = 0; i < 8; ++i) key = (key << 8) | static_cast<unsigned char>(digest[i]);
  return static_cast<int64_t>(key);
}

void RecentIds::Add(int64_t hash, int64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  by_hash_.emplace(hash, seq);
}

void RecentIds::Reset(std::unordered_multimap<int64_t, int64_t> entries) {
  std::lock_guard<std::mutex> lock(mu_);
  by_hash_ = std::move(entries);
}

void RecentIds::DropThrough(int64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  std::erase_if(by_hash_, [seq](const auto& entry) { return entry.second <= seq; });
}

std::vector<int64_t> RecentIds::Seqs(int64_t hash) const {
  std::vector<int64_t> seqs;
  std::lock_guard<std::mutex> lock(mu_);
  auto [first, last] = by_hash_.equal_range(hash);
  for (auto it = first; it != last; ++it) seqs.push_back(it->second);
  return seqs;
}

std::vector<std::pair<int64_t, int64_t>> RecentIds::Between(int64_t after_seq, int64_t through_seq,
                                                            int part, int parts) const {
  const int shift = std::countr_zero(static_cast<unsigned>(parts));  // parts = 1 << shift
  auto part_of = [shift](int64_t hash) {
    return shift == 0 ? 0 : static_cast<int>(static_cast<uint64_t>(hash) >> (64 - shift));
  };
  std::vector<std::pair<int64_t, int64_t>> keys;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [hash, seq] : by_hash_) {
      if (seq > after_seq && seq <= through_seq && part_of(hash) == part) {
        keys.emplace_back(hash, seq);
      }
    }
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

size_t RecentIds::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return by_hash_.size();
}

int StepById(const RecentIds& recent, sqlite3_stmt* keys, sqlite3_stmt* stmt, std::string_view id) {
  const int64_t hash = IdHash(id);
  std::vector<int64_t> seqs = recent.Seqs(hash);
  {
    ResetOnExit reset(keys);
    sqlite3_bind_int64(keys, 1, hash);
    int rc;
    while ((rc = sqlite3_step(keys)) == SQLITE_ROW) seqs.push_back(sqlite3_column_int64(keys, 0));
    if (rc != SQLITE_DONE) return rc;
  }
  for (int64_t seq : seqs) {
    sqlite3_reset(stmt);
    sqlite3_bind_int64(stmt, 1, seq);
    BindText(stmt, 2, id);
    const int rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE) return rc;
  }
  return SQLITE_DONE;
}

int RegisterIdHash(sqlite3* db) {
  return sqlite3_create_function(
      db, "id_hash", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, nullptr,
      [](sqlite3_context* ctx, int /*argc*/, sqlite3_value** argv) {
        if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
          sqlite3_result_null(ctx);
          return;
        }
        const auto* text = reinterpret_cast<const char*>(sqlite3_value_text(argv[0]));
        const int bytes = sqlite3_value_bytes(argv[0]);
        sqlite3_result_int64(
            ctx, IdHash(std::string_view(text != nullptr ? text : "", static_cast<size_t>(bytes))));
      },
      nullptr, nullptr);
}

Receipt ReplayReceipt(sqlite3_stmt* find, const std::string& id) {
  Receipt replay;
  replay.created = false;
  replay.id = id;
  replay.seq = sqlite3_column_int64(find, 1);
  replay.receipt_no = ColumnText(find, 2);
  replay.hash = ColumnBlob(find, 3);
  replay.received_at_ms = sqlite3_column_int64(find, 4);
  replay.total = sqlite3_column_int64(find, 5);
  replay.change = sqlite3_column_int64(find, 6);
  replay.currency = ColumnText(find, 7);
  replay.type = ColumnText(find, 8);
  return replay;
}

Status IdExpired() {
  return Status(ErrorCode::kIdExpired,
                "this id was stored earlier and its row was pruned after upload; it is not "
                "stored again",
                "id");
}

Result<LastZ> ReadLastZ(sqlite3* db) {
  LastZ last;
  Stmt stmt(db,
            "SELECT key, value FROM meta WHERE key IN ('last_z_number', 'last_z_seq', "
            "'last_z_currency')");
  if (stmt.prepare_rc() != SQLITE_OK) return SqliteError(db, stmt.prepare_rc(), "read last Z");
  int rc;
  while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
    const std::string key = ColumnText(stmt.get(), 0);
    const std::string value = ColumnText(stmt.get(), 1);
    if (key == kLastZNumberKey) {
      last.number = std::strtoll(value.c_str(), nullptr, 10);
    } else if (key == kLastZSeqKey) {
      last.seq = std::strtoll(value.c_str(), nullptr, 10);
    } else {
      last.currency = value;
    }
  }
  if (rc != SQLITE_DONE) return SqliteError(db, rc, "read last Z");
  return last;
}

Result<std::variant<core::Sale, core::StoreEvent>> DecodeEntryBody(std::string_view type,
                                                                   std::string_view canonical,
                                                                   int64_t seq) {
  if (core::IsEventTypeName(type)) {
    Result<core::StoreEvent> event = core::DecodeCanonicalEvent(canonical);
    if (!event.ok()) {
      return Status(ErrorCode::kInternal, "journal: stored entry seq " + std::to_string(seq) +
                                              " does not decode: " + event.status().message());
    }
    return std::variant<core::Sale, core::StoreEvent>(std::move(event).value());
  }
  // The row was validated when it was written: the trusted decoder skips the request
  // checks (and falls back to DecodeCanonical on anything it does not expect).
  Result<core::Sale> sale = core::DecodeStoredCanonical(canonical);
  if (!sale.ok()) {
    return Status(ErrorCode::kInternal, "journal: stored sale seq " + std::to_string(seq) +
                                            " does not decode: " + sale.status().message());
  }
  return std::variant<core::Sale, core::StoreEvent>(std::move(sale).value());
}

}  // namespace machub::journal
