#pragma once
// What the SqliteJournal source files share (not part of any contract; include only from
// src/journal/*.cc): tuning constants, the journal's wrappers over sqlite/sqlite.h (they
// prefix every error with "journal: "), the chain anchor, the schema steps and the
// read-connection pool types.

#include <sqlite3.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "core/sale.h"
#include "core/status.h"
#include "journal/sqlite_journal.h"
#include "sqlite/sqlite.h"

namespace machub::journal {

inline constexpr int kBusyTimeoutMs = 5000;
// The WAL is reused after a complete checkpoint, not shrunk; this caps what stays on disk.
inline constexpr int64_t kJournalSizeLimit = 64LL * 1024 * 1024;
inline constexpr size_t kMaxIdleReads = 4;

using sqlite::BindBlob;
using sqlite::BindText;
using sqlite::ColumnBlob;
using sqlite::ColumnText;
using sqlite::Exec;
using sqlite::ResetOnExit;
using sqlite::Stmt;

inline std::string JournalWhat(std::string_view what) { return "journal: " + std::string(what); }
inline Status SqliteError(sqlite3* db, int rc, std::string_view what) {
  return sqlite::ToStatus(db, rc, JournalWhat(what));
}
inline Status StepDone(sqlite3* db, sqlite3_stmt* stmt, std::string_view what) {
  return sqlite::StepDone(db, stmt, JournalWhat(what));
}
inline Result<int64_t> QueryInt(sqlite3* db, const char* sql, std::string_view what) {
  return sqlite::QueryInt(db, sql, JournalWhat(what));
}
inline Result<int64_t> QueryOptionalInt(sqlite3* db, sqlite3_stmt* stmt, bool* found,
                                        std::string_view what) {
  return sqlite::QueryOptionalInt(db, stmt, found, JournalWhat(what));
}

// The folder of `path` ("." when it has none), and a file's size (0 when absent).
std::string FolderOf(const std::string& path);
int64_t FileSize(const std::string& path);
// Free and total bytes of the filesystem holding `path` (0, 0 when unknown).
struct DiskSpace {
  int64_t free_bytes = 0;
  int64_t total_bytes = 0;
};
DiskSpace DiskSpaceOf(const std::string& path);

inline void RaiseMax(std::atomic<int64_t>& max, int64_t value) {
  int64_t seen = max.load(std::memory_order_relaxed);
  while (value > seen && !max.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
  }
}

// ---- finding a row by its id (schema v8, internal.cc) ----
// sales has no index on id (a random key: one more random page per sale, docs/JOURNAL.md
// "v8"). An id is found through its IdHash, the first 8 bytes of SHA-256 over the id's
// bytes, big-endian, as a signed 64-bit integer, in two places:
//   - the table sale_ids(id_hash, seq), written in bulk: every row up to meta
//     "ids_indexed_seq". Once JournalOptions::id_keys_flush_rows rows are missing from
//     it, the next kIdKeyParts commits each add the keys of one part of the key range
//     (disjoint parts touch disjoint pages, so the pages written are those of one bulk
//     write, and each commit carries an eighth of it); the last also advances
//     ids_indexed_seq. Prune adds them all at once;
//   - RecentIds, in memory: the rows after that (LoadState reads them back at open).
// Either gives candidate seqs; the id itself is compared on the row, so nothing relies on
// the hash being unique.
int64_t IdHash(std::string_view id);
// Registers the SQL function id_hash(text) (IdHash) on `db`, for the migration, the bulk
// writes and Prune. SQLITE_OK or the error code.
int RegisterIdHash(sqlite3* db);

inline constexpr const char* kIdsIndexedSeqKey = "ids_indexed_seq";
inline constexpr int kIdKeyParts = 8;
// meta "ids_indexed_seq": the seq through which sale_ids holds every row's key (0 when
// absent). The one reader of it, for the bulk write, LoadState and IntegrityCheck.
Result<int64_t> ReadIdsIndexedSeq(sqlite3* db);

// The rows not yet in sale_ids (or written there by a Prune since): id hash -> seq. It
// holds every row after ids_indexed_seq (LoadState reads them, the writer adds each row
// it inserts, and only a committed bulk write drops them), so a bulk write takes its keys
// from here instead of reading the rows back.
// Shared by the writer (adds at insert, drops after a bulk write commits) and the reads.
// A stale entry is harmless: its seq no longer holds the id, and lookups compare it.
class RecentIds {
 public:
  void Add(int64_t hash, int64_t seq);
  void Reset(std::unordered_multimap<int64_t, int64_t> entries);
  void DropThrough(int64_t seq);  // every entry with a seq <= `seq`
  std::vector<int64_t> Seqs(int64_t hash) const;
  // The entries with a seq in (after_seq, through_seq] and a hash in part `part` of
  // `parts` (a power of two: the hashes whose top bits, read unsigned, are `part`; each
  // part is one contiguous range of keys), as (hash, seq) sorted: the keys one step of a
  // bulk write adds to sale_ids, in the index's order.
  std::vector<std::pair<int64_t, int64_t>> Between(int64_t after_seq, int64_t through_seq, int part,
                                                   int parts) const;
  size_t size() const;

 private:
  mutable std::mutex mu_;
  std::unordered_multimap<int64_t, int64_t> by_hash_;
};

// Steps `stmt` (bound here: ?1 a seq, ?2 the id; its columns are the caller's) onto the
// row whose id is `id`: SQLITE_ROW, SQLITE_DONE when no row has it, or the SQLite error.
// `keys` is "SELECT seq FROM sale_ids WHERE id_hash = ?1" on the same connection. The
// caller resets `stmt` (ResetOnExit) after reading the row.
int StepById(const RecentIds& recent, sqlite3_stmt* keys, sqlite3_stmt* stmt, std::string_view id);

// ---- append.cc ----
// A sale's receipt number, "<terminal_id>-" and its counter (at least 6 digits), and the
// counter back from one (nullopt when `receipt_no` is not of that form).
std::string ReceiptNo(const std::string& terminal_id, int64_t counter);
std::optional<int64_t> ReceiptCounter(std::string_view terminal_id, std::string_view receipt_no);

// The chain anchor: the last pruned sale (seq 0 and the genesis hash when none was).
struct Anchor {
  int64_t seq = 0;
  std::string hash;
};
Result<Anchor> ReadAnchor(sqlite3* db, const std::string& genesis);

// ---- schema.cc ----
// The schema version this binary writes (the number of migration steps).
extern const int kSchemaVersion;
// Brings the database to kSchemaVersion, one transaction per step (read inside BEGIN
// IMMEDIATE, so two processes opening a fresh file cannot both run a step).
// kInvalidArgument for a newer schema.
Status MigrateSchema(sqlite3* db);
// Binds the database to `store_id` (first open) or checks that it belongs to it
// (kInvalidArgument otherwise): the chain's genesis depends on the store.
Status BindStore(sqlite3* db, const std::string& store_id);

// ---- the writer's prepared statements (sqlite_journal.cc, append.cc, events.cc) ----
struct SqliteJournal::WriterStatements {
  sqlite3_stmt* begin = nullptr;
  sqlite3_stmt* commit = nullptr;
  sqlite3_stmt* rollback = nullptr;
  sqlite3_stmt* find = nullptr;
  sqlite3_stmt* exists = nullptr;          // the original of a refund/void: its canonical bytes
  sqlite3_stmt* reversals = nullptr;       // refunds and voids already stored against a sale
  sqlite3_stmt* id_keys = nullptr;         // sale_ids by hash (StepById)
  sqlite3_stmt* id_keys_insert = nullptr;  // one key into sale_ids (WriteIdKeys)
  sqlite3_stmt* insert = nullptr;
  sqlite3_stmt* upsert_terminal = nullptr;
  // The id index (schema v5): the ids of pruned rows, written by Prune (ledger_store.cc).
  sqlite3_stmt* id_find = nullptr;
  sqlite3_stmt* drawer_open = nullptr;  // store events (schema v6, events.cc)
  sqlite3_stmt* drawer_close = nullptr;
  sqlite3_stmt* meta_put = nullptr;
  sqlite3_stmt* entries_after = nullptr;   // the entries a Z report covers
  sqlite3_stmt* offline_insert = nullptr;  // offline card payments (schema v7, offline.cc)
  sqlite3_stmt* offline_find = nullptr;
  sqlite3_stmt* offline_resolve = nullptr;
  sqlite3_stmt* offline_of_sale = nullptr;

  ~WriterStatements() {
    for (sqlite3_stmt* stmt :
         {begin, commit, rollback, find, exists, reversals, id_keys, id_keys_insert, insert,
          upsert_terminal, id_find, drawer_open, drawer_close, meta_put, entries_after,
          offline_insert, offline_find, offline_resolve, offline_of_sale}) {
      sqlite3_finalize(stmt);
    }
  }
};

// The Receipt of an idempotent replay from the writer's `find` statement, stepped onto
// its row (columns: canonical, seq, receipt_no, hash, received_at_ms, total, change,
// currency, type).
Receipt ReplayReceipt(sqlite3_stmt* find, const std::string& id);
// The answer to an id that is only in the id index (its row pruned): kIdExpired.
Status IdExpired();

// ---- store events (issue #8) ----
// meta keys of the last Z report (absent before the first one).
inline constexpr const char* kLastZNumberKey = "last_z_number";
inline constexpr const char* kLastZSeqKey = "last_z_seq";
inline constexpr const char* kLastZCurrencyKey = "last_z_currency";

struct LastZ {
  int64_t number = 0;  // 0: none yet
  int64_t seq = 0;
  std::string currency;
};
Result<LastZ> ReadLastZ(sqlite3* db);

// An OfflineLimits amount ("500.00") in thousandths of a unit; -1 when empty (no limit);
// kInvalidArgument (naming `name`) when it is not a decimal with at most 3 decimals.
Result<int64_t> ParseOfflineLimit(const std::string& text, std::string_view name);

// A row's body decoded by its `type` column: a sale (sale, refund, void) or a store
// event. kInternal (with the seq) when the stored bytes do not decode.
Result<std::variant<core::Sale, core::StoreEvent>> DecodeEntryBody(std::string_view type,
                                                                   std::string_view canonical,
                                                                   int64_t seq);

// ---- reads: the read-only connection pool ----
struct SqliteJournal::ReadConnection {
  sqlite3* db = nullptr;
  std::map<std::string, sqlite3_stmt*, std::less<>> stmts;

  ~ReadConnection() {
    for (auto& [sql, stmt] : stmts) sqlite3_finalize(stmt);
    sqlite3_close_v2(db);
  }

  // Statements are cached per connection: reads repeat the same few queries.
  Result<sqlite3_stmt*> Prepare(std::string_view sql) {
    auto it = stmts.find(sql);
    if (it != stmts.end()) return it->second;
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) return SqliteError(db, rc, "prepare read");
    stmts.emplace(std::string(sql), stmt);
    return stmt;
  }
};

class SqliteJournal::ReadLease {
 public:
  ReadLease(SqliteJournal* journal, std::unique_ptr<ReadConnection> conn)
      : journal_(journal), conn_(std::move(conn)) {}
  ReadLease(ReadLease&& other) noexcept : journal_(other.journal_), conn_(std::move(other.conn_)) {}
  ReadLease& operator=(ReadLease&&) = delete;
  ~ReadLease() {
    if (conn_) journal_->ReleaseRead(std::move(conn_));
  }
  ReadConnection* operator->() const { return conn_.get(); }

 private:
  SqliteJournal* journal_;
  std::unique_ptr<ReadConnection> conn_;
};

// Ends a read transaction opened with BEGIN on a read connection (one snapshot).
struct EndRead {
  sqlite3* db;
  ~EndRead() { Exec(db, "COMMIT"); }
};

}  // namespace machub::journal
