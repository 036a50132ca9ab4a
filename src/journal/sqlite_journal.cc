#include "journal/sqlite_journal.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <utility>

#include "core/chain.h"
#include "core/log.h"
#include "core/refund_rules.h"
#include "core/sale_codec.h"
#include "core/sha256.h"

namespace machub::journal {
namespace {

constexpr int kBusyTimeoutMs = 5000;
// The WAL is reused after a complete checkpoint, not shrunk; this caps what stays on disk.
constexpr int64_t kJournalSizeLimit = 64LL * 1024 * 1024;
constexpr size_t kMaxIdleReads = 4;

// Migration i brings user_version from i to i+1. Append new steps; never edit old ones
// (a deployed database has already run them).
constexpr const char* kMigrations[] = {
    // v1: the sale journal.
    R"sql(
CREATE TABLE meta(
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE terminals(
  terminal_id TEXT PRIMARY KEY,
  last_receipt INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE sales(
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  terminal_id TEXT NOT NULL,
  receipt_no TEXT NOT NULL,
  type TEXT NOT NULL CHECK (type IN ('sale', 'refund', 'void')),
  ref TEXT REFERENCES sales(id),
  created_at_ms INTEGER NOT NULL,
  received_at_ms INTEGER NOT NULL,
  clock_skew INTEGER NOT NULL,
  currency TEXT NOT NULL,
  total INTEGER NOT NULL,
  change INTEGER NOT NULL,
  canonical TEXT NOT NULL,
  prev_hash BLOB NOT NULL,
  hash BLOB NOT NULL,
  uploaded INTEGER NOT NULL DEFAULT 0
);
)sql",
    // v2: upload bookkeeping for sync/ (batches, the backlog index) and pruning (an index
    // for the foreign key checks that deleting a referenced sale runs).
    R"sql(
CREATE TABLE batches(
  id INTEGER PRIMARY KEY,
  first_seq INTEGER NOT NULL UNIQUE,
  last_seq INTEGER NOT NULL,
  object_key TEXT NOT NULL,
  format TEXT NOT NULL,
  gzip_level INTEGER NOT NULL,
  raw_bytes INTEGER NOT NULL,
  gz_bytes INTEGER NOT NULL,
  canonical_bytes INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  md5 TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'uploaded', 'quarantined')),
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  uploaded_at_ms INTEGER,
  CHECK (last_seq >= first_seq)
);
CREATE INDEX batches_unfinished ON batches(first_seq) WHERE state <> 'uploaded';
CREATE INDEX sales_unuploaded ON sales(seq) WHERE uploaded = 0;
CREATE INDEX sales_ref ON sales(ref) WHERE ref IS NOT NULL;
)sql",
    // v3: a sale is uploaded iff an uploaded batch covers its seq (derived from batches,
    // see kStoredColumns), so marking a batch uploaded writes one row instead of rewriting
    // every sale row of the batch. sales.uploaded stays (dropping a column rewrites the
    // whole table at upgrade) but is neither written nor read any more; its partial
    // index, which every insert maintained, goes.
    R"sql(
DROP INDEX IF EXISTS sales_unuploaded;
)sql",
    // v4: the id index (issue #8). Every stored id with its seq and hash, kept after its
    // sale row is pruned, for JournalOptions::id_horizon_ms, so that a retry of a pruned
    // sale is answered id_expired (never stored twice) and a refund of a pruned sale
    // ref_expired (never accepted against nothing).
    R"sql(
CREATE TABLE ids(
  id TEXT PRIMARY KEY,
  seq INTEGER NOT NULL,
  hash BLOB NOT NULL,
  received_at_ms INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO ids(id, seq, hash, received_at_ms) SELECT id, seq, hash, received_at_ms FROM sales;
)sql",
};
constexpr int kSchemaVersion = static_cast<int>(std::size(kMigrations));

// The single place where SQLite result codes become Status. sqlite3_errstr() is generic
// text ("disk I/O error"), never a path; errmsg() is used only for SQL bugs, where it
// names the statement's problem.
Status SqliteError(sqlite3* db, int rc, std::string_view what) {
  std::string prefix = "journal: " + std::string(what) + ": ";
  switch (rc & 0xff) {
    case SQLITE_ERROR:
    case SQLITE_MISUSE:
    case SQLITE_RANGE:
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
      return Status(ErrorCode::kInternal,
                    prefix + (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
    case SQLITE_NOTADB:
      return Status(ErrorCode::kInvalidArgument, prefix + "the file is not a SQLite database");
    default:
      return Status(ErrorCode::kStorageUnavailable, prefix + sqlite3_errstr(rc));
  }
}

// Resets a statement when the scope ends, so no connection keeps a read snapshot open
// (an open snapshot would stop checkpoints from completing).
class ResetOnExit {
 public:
  explicit ResetOnExit(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~ResetOnExit() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;

 private:
  sqlite3_stmt* stmt_;
};

int Exec(sqlite3* db, const char* sql) { return sqlite3_exec(db, sql, nullptr, nullptr, nullptr); }

void BindText(sqlite3_stmt* stmt, int index, std::string_view text) {
  sqlite3_bind_text(stmt, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
}

void BindBlob(sqlite3_stmt* stmt, int index, std::string_view bytes) {
  sqlite3_bind_blob(stmt, index, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
}

std::string ColumnText(sqlite3_stmt* stmt, int col) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, col));
  return text == nullptr ? std::string() : std::string(text, sqlite3_column_bytes(stmt, col));
}

std::string ColumnBlob(sqlite3_stmt* stmt, int col) {
  const auto* data = static_cast<const char*>(sqlite3_column_blob(stmt, col));
  return data == nullptr ? std::string() : std::string(data, sqlite3_column_bytes(stmt, col));
}

Result<int64_t> QueryInt(sqlite3* db, const char* sql, std::string_view what) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db, rc, what);
  rc = sqlite3_step(stmt);
  int64_t value = 0;
  if (rc == SQLITE_ROW) value = sqlite3_column_int64(stmt, 0);
  Status status =
      (rc == SQLITE_ROW || rc == SQLITE_DONE) ? Status::Ok() : SqliteError(db, rc, what);
  sqlite3_finalize(stmt);
  if (!status.ok()) return status;
  return value;
}

std::string ReceiptNo(const std::string& terminal_id, int64_t counter) {
  char digits[32];
  std::snprintf(digits, sizeof(digits), "%06" PRId64, counter);
  return terminal_id + "-" + digits;
}

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

void RaiseMax(std::atomic<int64_t>& max, int64_t value) {
  int64_t seen = max.load(std::memory_order_relaxed);
  while (value > seen && !max.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
  }
}

// A prepared statement finalized at scope end, for the rare statements (migrations, upload
// bookkeeping) that are not worth caching.
class Stmt {
 public:
  Stmt(sqlite3* db, std::string_view sql) {
    rc_ = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  int prepare_rc() const { return rc_; }
  sqlite3_stmt* get() const { return stmt_; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
};

// The chain anchor: the last pruned sale (seq 0 and the genesis hash when none was).
struct Anchor {
  int64_t seq = 0;
  std::string hash;
};

constexpr const char* kAnchorSeqKey = "chain_anchor_seq";

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
  anchor.hash = core::FromHex(hash_hex);
  if (anchor.seq <= 0 || anchor.hash.size() != 32) {
    return Status(ErrorCode::kInternal, "journal: the chain anchor in meta is malformed");
  }
  return anchor;
}

// Step a statement that returns no rows; SQLITE_DONE -> OK.
Status StepDone(sqlite3* db, sqlite3_stmt* stmt, std::string_view what) {
  int rc = sqlite3_step(stmt);
  return rc == SQLITE_DONE ? Status::Ok() : SqliteError(db, rc, what);
}

BatchState ParseBatchState(std::string_view text) {
  if (text == "uploaded") return BatchState::kUploaded;
  if (text == "quarantined") return BatchState::kQuarantined;
  return BatchState::kPending;
}

constexpr std::string_view kBatchColumns =
    "SELECT id, first_seq, last_seq, object_key, format, gzip_level, raw_bytes, gz_bytes, "
    "canonical_bytes, sha256, md5, created_at_ms, state, attempts, last_error, "
    "coalesce(uploaded_at_ms, 0) FROM batches ";

BatchRecord RowToBatch(sqlite3_stmt* stmt) {
  BatchRecord b;
  b.id = sqlite3_column_int64(stmt, 0);
  b.first_seq = sqlite3_column_int64(stmt, 1);
  b.last_seq = sqlite3_column_int64(stmt, 2);
  b.key = ColumnText(stmt, 3);
  b.format = ColumnText(stmt, 4);
  b.gzip_level = sqlite3_column_int(stmt, 5);
  b.raw_bytes = sqlite3_column_int64(stmt, 6);
  b.gz_bytes = sqlite3_column_int64(stmt, 7);
  b.canonical_bytes = sqlite3_column_int64(stmt, 8);
  b.sha256_hex = ColumnText(stmt, 9);
  b.md5_hex = ColumnText(stmt, 10);
  b.created_at_ms = sqlite3_column_int64(stmt, 11);
  b.state = ParseBatchState(ColumnText(stmt, 12));
  b.attempts = sqlite3_column_int64(stmt, 13);
  b.last_error = ColumnText(stmt, 14);
  b.uploaded_at_ms = sqlite3_column_int64(stmt, 15);
  return b;
}

// One row, first column as int64; `found` false when there is no row.
Result<int64_t> QueryOptionalInt(sqlite3* db, sqlite3_stmt* stmt, bool* found,
                                 std::string_view what) {
  int rc = sqlite3_step(stmt);
  *found = rc == SQLITE_ROW && sqlite3_column_type(stmt, 0) != SQLITE_NULL;
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return SqliteError(db, rc, what);
  return *found ? sqlite3_column_int64(stmt, 0) : 0;
}

}  // namespace

// ---- Statements and connections ----

struct SqliteJournal::WriterStatements {
  sqlite3_stmt* begin = nullptr;
  sqlite3_stmt* commit = nullptr;
  sqlite3_stmt* rollback = nullptr;
  sqlite3_stmt* find = nullptr;
  sqlite3_stmt* exists = nullptr;     // the original of a refund/void: its canonical bytes
  sqlite3_stmt* reversals = nullptr;  // refunds and voids already stored against a sale
  sqlite3_stmt* insert = nullptr;
  sqlite3_stmt* upsert_terminal = nullptr;
  sqlite3_stmt* id_find = nullptr;  // the id index (schema v4): ids of pruned rows too
  sqlite3_stmt* id_insert = nullptr;

  ~WriterStatements() {
    for (sqlite3_stmt* stmt : {begin, commit, rollback, find, exists, reversals, insert,
                               upsert_terminal, id_find, id_insert}) {
      sqlite3_finalize(stmt);
    }
  }
};

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

// ---- Open / Close ----

SqliteJournal::SqliteJournal(const JournalOptions& options)
    : options_(options),
      clock_(options.clock != nullptr ? options.clock : &core::SystemClock()),
      genesis_(core::GenesisHash(options.store_id)) {
  if (core::MetricsRegistry* m = options_.metrics; m != nullptr) {
    m_sales_committed_ = &m->GetCounter("machub_sales_committed_total",
                                        "Sales inserted into the journal (replays excluded).");
    m_commits_ = &m->GetCounter("machub_journal_commits_total", "Journal transactions committed.");
    m_commit_failures_ =
        &m->GetCounter("machub_journal_commit_failures_total",
                       "Journal groups rolled back because SQLite failed (disk full, I/O error).");
    m_checkpoints_ = &m->GetCounter("machub_journal_checkpoints_total",
                                    "PASSIVE WAL checkpoints run by the checkpointer.");
    m_group_size_ =
        &m->GetHistogram("machub_commit_group_size", "Sales per committed journal transaction.",
                         {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024});
    m_fsync_ = &m->GetHistogram("machub_fsync_seconds",
                                "Duration of the journal COMMIT call (WAL write + fsync).",
                                core::LatencyBuckets());
    m_commit_max_us_ = &m->GetGauge("machub_commit_max_microseconds",
                                    "Worst journal COMMIT call since start, in microseconds.");
  }
}

SqliteJournal::~SqliteJournal() { Close(); }

Result<std::unique_ptr<SqliteJournal>> SqliteJournal::Open(const JournalOptions& options) {
  if (options.path.empty()) {
    return Status(ErrorCode::kInvalidArgument, "journal: the database path is empty");
  }
  if (options.store_id.empty()) {
    return Status(ErrorCode::kInvalidArgument, "journal: the store_id is empty");
  }
  if (options.id_horizon_ms < int64_t{90} * 24 * 3600 * 1000) {
    return Status(ErrorCode::kInvalidArgument, "journal: id_horizon_ms must be at least 90 days");
  }
  if (options.max_group < 1) {
    return Status(ErrorCode::kInvalidArgument, "journal: max_group must be at least 1");
  }
  if (options.clock_skew_bound_ms < 0) {
    return Status(ErrorCode::kInvalidArgument, "journal: clock_skew_bound_ms is negative");
  }
  std::unique_ptr<SqliteJournal> journal(new SqliteJournal(options));
  RETURN_IF_ERROR(journal->OpenWriter());
  RETURN_IF_ERROR(journal->LoadState());
  if (options.checkpoint_interval_ms > 0) RETURN_IF_ERROR(journal->OpenCheckpointer());
  {
    // Fail at Open, not at the first read, when read-only connections cannot work.
    ASSIGN_OR_RETURN(ReadLease lease, journal->AcquireRead());
  }
  journal->writer_ = std::thread([j = journal.get()] { j->WriterLoop(); });
  if (journal->cdb_ != nullptr) {
    journal->checkpointer_ = std::thread([j = journal.get()] { j->CheckpointLoop(); });
  }
  return journal;
}

Status SqliteJournal::OpenWriter() {
  int rc =
      sqlite3_open_v2(options_.path.c_str(), &wdb_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status status = SqliteError(nullptr, rc, "open");
    CloseWriter();
    return status;
  }
  sqlite3_extended_result_codes(wdb_, 1);
  sqlite3_busy_timeout(wdb_, kBusyTimeoutMs);

  Status status = [&]() -> Status {
    // journal_mode answers the mode in effect; "wal" is not guaranteed (e.g. a VFS without
    // shared memory), and anything else would break the durability/concurrency design.
    sqlite3_stmt* stmt = nullptr;
    int mode_rc = sqlite3_prepare_v2(wdb_, "PRAGMA journal_mode=WAL", -1, &stmt, nullptr);
    if (mode_rc != SQLITE_OK) return SqliteError(wdb_, mode_rc, "set journal_mode");
    mode_rc = sqlite3_step(stmt);
    std::string mode = mode_rc == SQLITE_ROW ? ColumnText(stmt, 0) : "";
    Status mode_status =
        mode_rc == SQLITE_ROW ? Status::Ok() : SqliteError(wdb_, mode_rc, "set journal_mode");
    sqlite3_finalize(stmt);
    RETURN_IF_ERROR(mode_status);
    if (mode != "wal") {
      return Status(ErrorCode::kStorageUnavailable,
                    "journal: the database cannot use WAL mode (got \"" + mode + "\")");
    }
    std::string pragmas =
        "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; "
        "PRAGMA journal_size_limit=" +
        std::to_string(kJournalSizeLimit) + ";";
    // With a checkpointer thread, commits never checkpoint inline (that is the stall we
    // measure in docs/JOURNAL.md); without one, SQLite's default autocheckpoint stays.
    if (options_.checkpoint_interval_ms > 0) pragmas += " PRAGMA wal_autocheckpoint=0;";
    int prc = Exec(wdb_, pragmas.c_str());
    if (prc != SQLITE_OK) return SqliteError(wdb_, prc, "set pragmas");

    // Migrations. user_version is read inside BEGIN IMMEDIATE so two processes opening a
    // fresh file at once cannot both run a step.
    for (;;) {
      int brc = Exec(wdb_, "BEGIN IMMEDIATE");
      if (brc != SQLITE_OK) return SqliteError(wdb_, brc, "begin migration");
      auto rollback = [&](Status s) {
        Exec(wdb_, "ROLLBACK");
        return s;
      };
      Result<int64_t> version = QueryInt(wdb_, "PRAGMA user_version", "read user_version");
      if (!version.ok()) return rollback(version.status());
      if (*version > kSchemaVersion) {
        return rollback(Status(ErrorCode::kInvalidArgument,
                               "journal: the database has schema version " +
                                   std::to_string(*version) + ", newer than this binary's " +
                                   std::to_string(kSchemaVersion) + "; upgrade machub"));
      }
      if (*version == kSchemaVersion) {
        int crc = Exec(wdb_, "COMMIT");
        if (crc != SQLITE_OK) return rollback(SqliteError(wdb_, crc, "commit"));
        break;
      }
      int src = Exec(wdb_, kMigrations[*version]);
      if (src != SQLITE_OK) {
        return rollback(SqliteError(wdb_, src, "migration to v" + std::to_string(*version + 1)));
      }
      std::string set_version = "PRAGMA user_version=" + std::to_string(*version + 1);
      src = Exec(wdb_, set_version.c_str());
      if (src == SQLITE_OK) src = Exec(wdb_, "COMMIT");
      if (src != SQLITE_OK) {
        return rollback(SqliteError(wdb_, src, "migration to v" + std::to_string(*version + 1)));
      }
      core::LogInfo("journal_migrated", {{"schema_version", *version + 1}});
    }

    // The store binding: the chain's genesis depends on store_id, so a database created
    // for another store can never be continued here.
    int brc = Exec(wdb_, "BEGIN IMMEDIATE");
    if (brc != SQLITE_OK) return SqliteError(wdb_, brc, "begin");
    sqlite3_stmt* get = nullptr;
    int grc =
        sqlite3_prepare_v2(wdb_, "SELECT value FROM meta WHERE key='store_id'", -1, &get, nullptr);
    if (grc == SQLITE_OK) grc = sqlite3_step(get);
    std::string stored_store;
    bool found = grc == SQLITE_ROW;
    if (found) stored_store = ColumnText(get, 0);
    sqlite3_finalize(get);
    Status result;
    if (grc != SQLITE_ROW && grc != SQLITE_DONE) {
      result = SqliteError(wdb_, grc, "read store_id");
    } else if (found && stored_store != options_.store_id) {
      result = Status(ErrorCode::kInvalidArgument, "journal: the database belongs to store \"" +
                                                       stored_store + "\", not \"" +
                                                       options_.store_id + "\"");
    } else if (!found) {
      sqlite3_stmt* put = nullptr;
      int prc2 = sqlite3_prepare_v2(wdb_, "INSERT INTO meta(key, value) VALUES('store_id', ?1)", -1,
                                    &put, nullptr);
      if (prc2 == SQLITE_OK) {
        BindText(put, 1, options_.store_id);
        prc2 = sqlite3_step(put);
      }
      sqlite3_finalize(put);
      if (prc2 != SQLITE_DONE && prc2 != SQLITE_OK)
        result = SqliteError(wdb_, prc2, "write store_id");
    }
    if (result.ok()) {
      int crc = Exec(wdb_, "COMMIT");
      if (crc != SQLITE_OK) result = SqliteError(wdb_, crc, "commit");
    }
    if (!result.ok()) Exec(wdb_, "ROLLBACK");
    RETURN_IF_ERROR(result);
    return PrepareWriterStatements();
  }();
  if (!status.ok()) CloseWriter();
  return status;
}

Status SqliteJournal::PrepareWriterStatements() {
  auto stmts = std::make_unique<WriterStatements>();
  struct {
    sqlite3_stmt** slot;
    const char* sql;
  } const kStatements[] = {
      {&stmts->begin, "BEGIN IMMEDIATE"},
      {&stmts->commit, "COMMIT"},
      {&stmts->rollback, "ROLLBACK"},
      {&stmts->find,
       "SELECT canonical, seq, receipt_no, hash, received_at_ms, total, change, currency "
       "FROM sales WHERE id = ?1"},
      {&stmts->exists, "SELECT canonical FROM sales WHERE id = ?1"},
      {&stmts->reversals, "SELECT canonical FROM sales WHERE ref = ?1 ORDER BY seq"},
      {&stmts->id_find, "SELECT seq FROM ids WHERE id = ?1"},
      {&stmts->id_insert, "INSERT INTO ids(id, seq, hash, received_at_ms) VALUES(?1, ?2, ?3, ?4)"},
      {&stmts->insert,
       "INSERT INTO sales(seq, id, terminal_id, receipt_no, type, ref, created_at_ms, "
       "received_at_ms, clock_skew, currency, total, change, canonical, prev_hash, hash) "
       "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"},
      {&stmts->upsert_terminal,
       "INSERT INTO terminals(terminal_id, last_receipt) VALUES(?1, ?2) "
       "ON CONFLICT(terminal_id) DO UPDATE SET last_receipt = excluded.last_receipt"},
  };
  for (const auto& s : kStatements) {
    int rc = sqlite3_prepare_v3(wdb_, s.sql, -1, SQLITE_PREPARE_PERSISTENT, s.slot, nullptr);
    if (rc != SQLITE_OK) return SqliteError(wdb_, rc, "prepare");
  }
  wstmts_ = std::move(stmts);
  return Status::Ok();
}

void SqliteJournal::CloseWriter() {
  wstmts_.reset();
  if (wdb_ != nullptr) {
    sqlite3_close_v2(wdb_);
    wdb_ = nullptr;
  }
}

Status SqliteJournal::LoadState() {
  state_valid_ = false;
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(wdb_, "SELECT seq, hash FROM sales ORDER BY seq DESC LIMIT 1", -1,
                              &stmt, nullptr);
  if (rc == SQLITE_OK) rc = sqlite3_step(stmt);
  int64_t next_seq = 1;
  std::string last_hash = genesis_;
  if (rc == SQLITE_ROW) {
    next_seq = sqlite3_column_int64(stmt, 0) + 1;
    last_hash = ColumnBlob(stmt, 1);
  }
  sqlite3_finalize(stmt);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return SqliteError(wdb_, rc, "load last sale");
  if (rc == SQLITE_DONE) {
    // Prune keeps the newest sale, but should the table ever be empty after a prune, the
    // chain continues from its anchor, never from the genesis again.
    ASSIGN_OR_RETURN(Anchor anchor, ReadAnchor(wdb_, genesis_));
    next_seq = anchor.seq + 1;
    last_hash = anchor.hash;
  }

  std::map<std::string, int64_t> counters;
  rc = sqlite3_prepare_v2(wdb_, "SELECT terminal_id, last_receipt FROM terminals", -1, &stmt,
                          nullptr);
  if (rc == SQLITE_OK) {
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      counters[ColumnText(stmt, 0)] = sqlite3_column_int64(stmt, 1);
    }
  }
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) return SqliteError(wdb_, rc, "load terminal counters");

  next_seq_ = next_seq;
  last_hash_ = std::move(last_hash);
  terminal_counters_ = std::move(counters);
  state_valid_ = true;
  return Status::Ok();
}

Status SqliteJournal::OpenCheckpointer() {
  int rc = sqlite3_open_v2(options_.path.c_str(), &cdb_,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status status = SqliteError(nullptr, rc, "open checkpointer");
    sqlite3_close_v2(cdb_);
    cdb_ = nullptr;
    return status;
  }
  sqlite3_busy_timeout(cdb_, kBusyTimeoutMs);
  std::string pragmas =
      "PRAGMA wal_autocheckpoint=0; PRAGMA journal_size_limit=" + std::to_string(kJournalSizeLimit);
  rc = Exec(cdb_, pragmas.c_str());
  // A connection enters WAL mode only when it first reads the file; until then
  // sqlite3_wal_checkpoint_v2 is a silent no-op (it reports -1 frames). Reading the
  // journal mode opens the WAL here, and proves it is one.
  std::string mode;
  if (rc == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    rc = sqlite3_prepare_v2(cdb_, "PRAGMA journal_mode", -1, &stmt, nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
      mode = ColumnText(stmt, 0);
      rc = SQLITE_OK;
    }
    sqlite3_finalize(stmt);
  }
  Status status;
  if (rc != SQLITE_OK) {
    status = SqliteError(cdb_, rc, "open checkpointer");
  } else if (mode != "wal") {
    status = Status(ErrorCode::kStorageUnavailable,
                    "journal: the checkpointer does not see WAL mode (got \"" + mode + "\")");
  }
  if (!status.ok()) {
    sqlite3_close_v2(cdb_);
    cdb_ = nullptr;
  }
  return status;
}

void SqliteJournal::Close() {
  std::lock_guard<std::mutex> close_lock(close_mu_);
  if (closed_.load()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;
    paused_ = false;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  {
    std::lock_guard<std::mutex> lock(ckpt_mu_);
    ckpt_stop_ = true;
  }
  ckpt_cv_.notify_all();
  if (checkpointer_.joinable()) checkpointer_.join();
  if (cdb_ != nullptr) {
    sqlite3_close_v2(cdb_);
    cdb_ = nullptr;
  }
  CloseWriter();
  std::vector<std::unique_ptr<ReadConnection>> reads;
  {
    std::lock_guard<std::mutex> lock(read_mu_);
    reads_closed_ = true;
    reads.swap(idle_reads_);
  }
  reads.clear();
  closed_.store(true);
}

// ---- Writing ----

void SqliteJournal::Append(core::Sale sale, AppendCallback done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!closing_) {
      queue_.push_back(Pending{std::move(sale), std::move(done)});
      cv_.notify_one();
      return;
    }
  }
  if (done) done(Status(ErrorCode::kStorageUnavailable, "journal: closed"));
}

void SqliteJournal::WriterLoop() {
  for (;;) {
    std::vector<Pending> group;
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock,
               [&] { return !writer_tasks_.empty() || (!paused_ && !queue_.empty()) || closing_; });
      if (!writer_tasks_.empty()) {
        task = std::move(writer_tasks_.front());
        writer_tasks_.pop_front();
      } else if (!paused_ && !queue_.empty()) {
        size_t take = options_.group_commit
                          ? std::min(queue_.size(), static_cast<size_t>(options_.max_group))
                          : 1;
        group.reserve(take);
        for (size_t i = 0; i < take; ++i) {
          group.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      } else {
        return;  // closing_ and nothing left
      }
    }
    if (task) {
      task();
    } else {
      ProcessGroup(group);
    }
  }
}

void SqliteJournal::ProcessGroup(std::vector<Pending>& group) {
  const int64_t start_us = clock_->MonotonicUs();
  std::vector<Result<Receipt>> answers;
  answers.reserve(group.size());
  int64_t inserted = 0;
  int64_t commit_us = 0;
  int failed_rc = SQLITE_OK;

  Status status;
  // A previous failure may have left no connection or stale in-memory state.
  if (wdb_ == nullptr) status = OpenWriter();
  if (status.ok() && !state_valid_) status = LoadState();
  if (status.ok()) {
    status = RunGroup(group, answers, &inserted, &commit_us);
    if (!status.ok()) failed_rc = last_failed_rc_;
  }

  groups_.fetch_add(1, std::memory_order_relaxed);
  RaiseMax(max_group_us_, clock_->MonotonicUs() - start_us);
  if (status.ok()) {
    healthy_.store(true);
    commits_.fetch_add(1, std::memory_order_relaxed);
    RaiseMax(max_commit_us_, commit_us);
    if (m_commits_ != nullptr) {
      m_commits_->Inc();
      m_sales_committed_->Inc(inserted);
      m_group_size_->Observe(static_cast<double>(group.size()));
      m_fsync_->Observe(static_cast<double>(commit_us) / 1e6);
      m_commit_max_us_->Set(max_commit_us_.load(std::memory_order_relaxed));
    }
  } else {
    healthy_.store(false);
    failed_groups_.fetch_add(1, std::memory_order_relaxed);
    if (m_commit_failures_ != nullptr) m_commit_failures_->Inc();
    core::LogError("journal_commit_failed",
                   {{"error", status.ToString()}, {"sales", group.size()}});
    if (wdb_ != nullptr) RecoverAfterFailure(failed_rc);
    // Whatever the SQLite code, the terminal's answer is the same: not stored, retry.
    Status answer(ErrorCode::kStorageUnavailable, status.code() == ErrorCode::kStorageUnavailable
                                                      ? status.message()
                                                      : "journal: the sale could not be stored");
    answers.assign(group.size(), Result<Receipt>(answer));
  }
  // Only now, after COMMIT returned OK (or the group was rolled back), does anyone learn
  // the outcome: a 2xx can never precede durability.
  for (size_t i = 0; i < group.size(); ++i) {
    if (group[i].done) group[i].done(std::move(answers[i]));
  }
  if (status.ok()) MaybeCheckpointOnWriter();
}

void SqliteJournal::MaybeCheckpointOnWriter() {
  if (!catch_up_requested_.exchange(false)) return;
  int wal_frames = 0;
  int backfilled = 0;
  const int64_t t0 = clock_->MonotonicUs();
  int rc =
      sqlite3_wal_checkpoint_v2(wdb_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &wal_frames, &backfilled);
  RaiseMax(max_writer_checkpoint_us_, clock_->MonotonicUs() - t0);
  if (rc == SQLITE_OK) {
    writer_checkpoints_.fetch_add(1, std::memory_order_relaxed);
    checkpoints_.fetch_add(1, std::memory_order_relaxed);
    if (m_checkpoints_ != nullptr) m_checkpoints_->Inc();
  } else if ((rc & 0xff) == SQLITE_BUSY) {
    catch_up_requested_.store(true);  // the checkpointer is running; after the next group
  } else {
    core::LogWarn("journal_checkpoint_failed",
                  {{"error", SqliteError(wdb_, rc, "writer checkpoint").ToString()}});
  }
}

Status SqliteJournal::RunGroup(std::vector<Pending>& group, std::vector<Result<Receipt>>& answers,
                               int64_t* inserted, int64_t* commit_us) {
  WriterStatements& s = *wstmts_;
  staged_seq_ = next_seq_;
  staged_hash_ = last_hash_;
  staged_counters_.clear();
  last_failed_rc_ = SQLITE_OK;

  auto fail = [&](int rc, std::string_view what) {
    Status status = SqliteError(wdb_, rc, what);
    last_failed_rc_ = rc;
    if (sqlite3_get_autocommit(wdb_) == 0) {
      ResetOnExit reset(s.rollback);
      sqlite3_step(s.rollback);
    }
    return status;
  };

  {
    ResetOnExit reset(s.begin);
    int rc = sqlite3_step(s.begin);
    if (rc != SQLITE_DONE) return fail(rc, "begin");
  }
  for (Pending& pending : group) {
    bool created = false;
    int storage_rc = SQLITE_OK;
    answers.push_back(AppendOne(pending.sale, &created, &storage_rc));
    if (storage_rc != SQLITE_OK) return fail(storage_rc, "store sale");
    if (created) ++*inserted;
  }
  for (const auto& [terminal_id, counter] : staged_counters_) {
    ResetOnExit reset(s.upsert_terminal);
    BindText(s.upsert_terminal, 1, terminal_id);
    sqlite3_bind_int64(s.upsert_terminal, 2, counter);
    int rc = sqlite3_step(s.upsert_terminal);
    if (rc != SQLITE_DONE) return fail(rc, "update receipt counter");
  }
  {
    ResetOnExit reset(s.commit);
    const bool ckpt_before = checkpoint_running_.load();
    const int64_t ckpt_runs_before = checkpoint_runs_started_.load();
    const int64_t t0 = clock_->MonotonicUs();
    int rc = sqlite3_step(s.commit);
    *commit_us = clock_->MonotonicUs() - t0;
    if (rc != SQLITE_DONE) return fail(rc, "commit");
    // For the measurement in docs/JOURNAL.md: does a running checkpoint slow COMMIT?
    if (ckpt_before || checkpoint_running_.load() ||
        checkpoint_runs_started_.load() != ckpt_runs_before) {
      commits_during_checkpoint_.fetch_add(1, std::memory_order_relaxed);
      RaiseMax(max_commit_during_checkpoint_us_, *commit_us);
    }
  }
  next_seq_ = staged_seq_;
  last_hash_ = staged_hash_;
  for (const auto& [terminal_id, counter] : staged_counters_) {
    terminal_counters_[terminal_id] = counter;
  }
  return Status::Ok();
}

Result<Receipt> SqliteJournal::AppendOne(const core::Sale& sale, bool* created, int* storage_rc) {
  WriterStatements& s = *wstmts_;
  const std::string canonical = core::CanonicalSale(sale);
  static const Status kStorage(ErrorCode::kStorageUnavailable, "journal: storage failed");

  // Idempotency. The lookup runs inside the group's transaction, so it also sees the rows
  // inserted earlier in this same group: two copies of one id in a group are one insert
  // and one replay.
  {
    ResetOnExit reset(s.find);
    BindText(s.find, 1, sale.id);
    int rc = sqlite3_step(s.find);
    if (rc == SQLITE_ROW) {
      if (ColumnText(s.find, 0) != canonical) {
        return Status(ErrorCode::kIdConflict,
                      "a sale with this id is already stored with a different body", "id");
      }
      Receipt replay;
      replay.created = false;
      replay.id = sale.id;
      replay.seq = sqlite3_column_int64(s.find, 1);
      replay.receipt_no = ColumnText(s.find, 2);
      replay.hash = ColumnBlob(s.find, 3);
      replay.received_at_ms = sqlite3_column_int64(s.find, 4);
      replay.total = sqlite3_column_int64(s.find, 5);
      replay.change = sqlite3_column_int64(s.find, 6);
      replay.currency = ColumnText(s.find, 7);
      return replay;
    }
    if (rc != SQLITE_DONE) {
      *storage_rc = rc;
      return kStorage;
    }
  }
  // Not among the rows: an id whose row was pruned is still in the id index.
  {
    Result<bool> pruned = InIdIndex(sale.id, storage_rc);
    if (!pruned.ok()) return pruned.status();
    if (*pruned) {
      return Status(ErrorCode::kIdExpired,
                    "this id was stored earlier and its row was pruned after upload; it is "
                    "not stored again",
                    "id");
    }
  }

  if (sale.type != core::SaleType::kSale) {
    // The refund rules (core/refund_rules.h) against the original and every refund/void
    // already stored for it. Both reads run inside this group's transaction on the one
    // writer, so they also see what earlier members of the group inserted: of two racing
    // refunds the second one is judged with the first one counted.
    core::Sale original;
    {
      ResetOnExit reset(s.exists);
      BindText(s.exists, 1, sale.ref);
      int rc = sqlite3_step(s.exists);
      if (rc == SQLITE_DONE) {
        Result<bool> pruned = InIdIndex(sale.ref, storage_rc);
        if (!pruned.ok()) return pruned.status();
        if (*pruned) {
          return Status(ErrorCode::kRefExpired,
                        "the original sale was pruned after upload, so the refund rules "
                        "cannot be checked against it here",
                        "ref");
        }
        return Status(ErrorCode::kInvalidField,
                      std::string(core::SaleTypeName(sale.type)) +
                          " refers to a sale id that is not stored on this hub",
                      "ref");
      }
      if (rc != SQLITE_ROW) {
        *storage_rc = rc;
        return kStorage;
      }
      ASSIGN_OR_RETURN(original, core::DecodeStoredCanonical(ColumnText(s.exists, 0)));
    }
    std::vector<core::Sale> earlier;
    {
      ResetOnExit reset(s.reversals);
      BindText(s.reversals, 1, sale.ref);
      int rc;
      while ((rc = sqlite3_step(s.reversals)) == SQLITE_ROW) {
        ASSIGN_OR_RETURN(core::Sale reversal,
                         core::DecodeStoredCanonical(ColumnText(s.reversals, 0)));
        earlier.push_back(std::move(reversal));
      }
      if (rc != SQLITE_DONE) {
        *storage_rc = rc;
        return kStorage;
      }
    }
    RETURN_IF_ERROR(core::CheckReversal(original, earlier, sale));
  }

  int64_t counter = 1;
  if (auto it = staged_counters_.find(sale.terminal_id); it != staged_counters_.end()) {
    counter = it->second + 1;
  } else if (auto jt = terminal_counters_.find(sale.terminal_id); jt != terminal_counters_.end()) {
    counter = jt->second + 1;
  }
  Receipt receipt;
  receipt.created = true;
  receipt.id = sale.id;
  receipt.seq = staged_seq_;
  receipt.receipt_no = ReceiptNo(sale.terminal_id, counter);
  receipt.received_at_ms = clock_->NowMs();
  receipt.total = sale.total;
  receipt.change = sale.change;
  receipt.currency = sale.currency;
  const int64_t skew_ms = receipt.received_at_ms - sale.created_at_ms;
  const bool clock_skew = (skew_ms < 0 ? -skew_ms : skew_ms) > options_.clock_skew_bound_ms;
  const std::string record = core::CanonicalRecord(receipt.seq, receipt.receipt_no,
                                                   receipt.received_at_ms, clock_skew, canonical);
  receipt.hash = core::ChainHash(staged_hash_, record);

  {
    sqlite3_stmt* ins = s.insert;
    ResetOnExit reset(ins);
    sqlite3_bind_int64(ins, 1, receipt.seq);
    BindText(ins, 2, sale.id);
    BindText(ins, 3, sale.terminal_id);
    BindText(ins, 4, receipt.receipt_no);
    BindText(ins, 5, core::SaleTypeName(sale.type));
    if (sale.ref.empty()) {
      sqlite3_bind_null(ins, 6);
    } else {
      BindText(ins, 6, sale.ref);
    }
    sqlite3_bind_int64(ins, 7, sale.created_at_ms);
    sqlite3_bind_int64(ins, 8, receipt.received_at_ms);
    sqlite3_bind_int(ins, 9, clock_skew ? 1 : 0);
    BindText(ins, 10, sale.currency);
    sqlite3_bind_int64(ins, 11, sale.total);
    sqlite3_bind_int64(ins, 12, sale.change);
    BindText(ins, 13, canonical);
    BindBlob(ins, 14, staged_hash_);
    BindBlob(ins, 15, receipt.hash);
    int rc = sqlite3_step(ins);
    if (rc != SQLITE_DONE) {
      *storage_rc = rc;
      return kStorage;
    }
  }
  {
    sqlite3_stmt* ins = s.id_insert;
    ResetOnExit reset(ins);
    BindText(ins, 1, sale.id);
    sqlite3_bind_int64(ins, 2, receipt.seq);
    BindBlob(ins, 3, receipt.hash);
    sqlite3_bind_int64(ins, 4, receipt.received_at_ms);
    int rc = sqlite3_step(ins);
    if (rc != SQLITE_DONE) {
      *storage_rc = rc;
      return kStorage;
    }
  }
  staged_seq_ = receipt.seq + 1;
  staged_hash_ = receipt.hash;
  staged_counters_[sale.terminal_id] = counter;
  *created = true;
  return receipt;
}

Result<bool> SqliteJournal::InIdIndex(const std::string& id, int* storage_rc) {
  sqlite3_stmt* find = wstmts_->id_find;
  ResetOnExit reset(find);
  BindText(find, 1, id);
  const int rc = sqlite3_step(find);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  *storage_rc = rc;
  return Status(ErrorCode::kStorageUnavailable, "journal: storage failed");
}

void SqliteJournal::RecoverAfterFailure(int sqlite_code) {
  // After an I/O error the connection's file handles may be dead (a USB disk that came
  // back, a remount); a fresh connection opens them again.
  // Not after a failed fsync: the handles are fine, and the failed group's frames may sit
  // complete in the WAL. The old connection writes its next commit over them, so they
  // vanish; a fresh one, if it is the last connection, runs WAL recovery, which would
  // bring back a transaction whose fsync failed and trust bytes the disk may not hold.
  const int primary = sqlite_code & 0xff;
  const bool fsync_failed =
      sqlite_code == SQLITE_IOERR_FSYNC || sqlite_code == SQLITE_IOERR_DIR_FSYNC;
  if ((primary == SQLITE_IOERR && !fsync_failed) || primary == SQLITE_CORRUPT ||
      primary == SQLITE_CANTOPEN) {
    CloseWriter();
    reopens_.fetch_add(1, std::memory_order_relaxed);
    Status reopened = OpenWriter();
    if (!reopened.ok()) {
      core::LogError("journal_reopen_failed", {{"error", reopened.ToString()}});
      state_valid_ = false;
      return;  // the next group tries again
    }
  }
  // Memory may be ahead of or behind the file after a failed COMMIT; the database says
  // what the next seq, hash and receipt numbers are.
  Status loaded = LoadState();
  if (!loaded.ok()) core::LogError("journal_reload_failed", {{"error", loaded.ToString()}});
}

// ---- Checkpoints ----

void SqliteJournal::CheckpointLoop() {
  std::unique_lock<std::mutex> lock(ckpt_mu_);
  int64_t checkpointed_commits = 0;
  const auto interval = std::chrono::milliseconds(options_.checkpoint_interval_ms);
  while (!ckpt_cv_.wait_for(lock, interval, [&] { return ckpt_stop_; })) {
    const int64_t commits = commits_.load();
    if (commits == checkpointed_commits) continue;  // no new WAL frames since last time
    lock.unlock();
    int wal_frames = 0;
    int backfilled = 0;
    checkpoint_runs_started_.fetch_add(1);
    checkpoint_running_.store(true);
    int rc = sqlite3_wal_checkpoint_v2(cdb_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &wal_frames,
                                       &backfilled);
    checkpoint_running_.store(false);
    if (rc == SQLITE_OK && wal_frames < 0) {
      core::LogWarn("journal_checkpoint_failed", {{"error", "the connection is not in WAL mode"}});
    } else if (rc == SQLITE_OK) {
      checkpoints_.fetch_add(1, std::memory_order_relaxed);
      if (m_checkpoints_ != nullptr) m_checkpoints_->Inc();
      if (backfilled >= wal_frames) checkpointed_commits = commits;
      // wal_frames is the WAL's length when the run started; frames committed during the
      // run are left for the next one. If any were, or a reader's old snapshot stopped the
      // run short, the WAL cannot rewind; once it is long, the writer copies the tail
      // between two groups.
      const bool complete = backfilled >= wal_frames && commits_.load() == commits;
      if (!complete && wal_frames > wal_catch_up_frames_.load()) {
        catch_up_requested_.store(true);
      }
    } else if ((rc & 0xff) != SQLITE_BUSY) {
      core::LogWarn("journal_checkpoint_failed",
                    {{"error", SqliteError(cdb_, rc, "checkpoint").ToString()}});
    }
    lock.lock();
  }
}

// ---- Reading ----

Result<SqliteJournal::ReadLease> SqliteJournal::AcquireRead() {
  {
    std::lock_guard<std::mutex> lock(read_mu_);
    if (reads_closed_) return Status(ErrorCode::kStorageUnavailable, "journal: closed");
    if (!idle_reads_.empty()) {
      std::unique_ptr<ReadConnection> conn = std::move(idle_reads_.back());
      idle_reads_.pop_back();
      return ReadLease(this, std::move(conn));
    }
  }
  auto conn = std::make_unique<ReadConnection>();
  int rc = sqlite3_open_v2(options_.path.c_str(), &conn->db,
                           SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) return SqliteError(nullptr, rc, "open read connection");
  sqlite3_extended_result_codes(conn->db, 1);
  sqlite3_busy_timeout(conn->db, kBusyTimeoutMs);
  return ReadLease(this, std::move(conn));
}

void SqliteJournal::ReleaseRead(std::unique_ptr<ReadConnection> conn) {
  {
    std::lock_guard<std::mutex> lock(read_mu_);
    if (!reads_closed_ && idle_reads_.size() < kMaxIdleReads) {
      idle_reads_.push_back(std::move(conn));
      return;
    }
  }
  conn.reset();  // closed outside the lock
}

namespace {

// Schema v3: a sale is uploaded iff the batch that covers its seq is uploaded. Batches
// are disjoint ranges with first_seq UNIQUE, so the covering batch is the one with the
// greatest first_seq <= seq (one descending step of the first_seq index per row).
constexpr std::string_view kStoredColumns =
    "SELECT seq, receipt_no, received_at_ms, clock_skew, canonical, prev_hash, hash, "
    "coalesce((SELECT b.state = 'uploaded' AND b.last_seq >= s.seq FROM batches b "
    "WHERE b.first_seq <= s.seq ORDER BY b.first_seq DESC LIMIT 1), 0) "
    "FROM sales s ";

Result<core::StoredSale> RowToStored(sqlite3_stmt* stmt) {
  core::StoredSale stored;
  stored.seq = sqlite3_column_int64(stmt, 0);
  stored.receipt_no = ColumnText(stmt, 1);
  stored.received_at_ms = sqlite3_column_int64(stmt, 2);
  stored.clock_skew = sqlite3_column_int(stmt, 3) != 0;
  stored.canonical = ColumnText(stmt, 4);
  stored.prev_hash = ColumnBlob(stmt, 5);
  stored.hash = ColumnBlob(stmt, 6);
  stored.uploaded = sqlite3_column_int(stmt, 7) != 0;
  // The row was validated when it was written: the trusted decoder skips the request
  // checks (and falls back to DecodeCanonical on anything it does not expect).
  Result<core::Sale> sale = core::DecodeStoredCanonical(stored.canonical);
  if (!sale.ok()) {
    return Status(ErrorCode::kInternal, "journal: stored sale seq " + std::to_string(stored.seq) +
                                            " does not decode: " + sale.status().message());
  }
  stored.sale = std::move(sale).value();
  return stored;
}

}  // namespace

Result<std::optional<core::StoredSale>> SqliteJournal::Get(const std::string& id) {
  ASSIGN_OR_RETURN(ReadLease conn, AcquireRead());
  static const std::string kSql = std::string(kStoredColumns) + "WHERE id = ?1";
  ASSIGN_OR_RETURN(sqlite3_stmt * stmt, conn->Prepare(kSql));
  ResetOnExit reset(stmt);
  BindText(stmt, 1, id);
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_DONE) return std::optional<core::StoredSale>();
  if (rc != SQLITE_ROW) return SqliteError(conn->db, rc, "get sale");
  ASSIGN_OR_RETURN(core::StoredSale stored, RowToStored(stmt));
  return std::optional<core::StoredSale>(std::move(stored));
}

Result<std::vector<core::StoredSale>> SqliteJournal::List(int64_t after_seq, int limit) {
  std::vector<core::StoredSale> out;
  if (limit <= 0) return out;
  ASSIGN_OR_RETURN(ReadLease conn, AcquireRead());
  static const std::string kSql =
      std::string(kStoredColumns) + "WHERE seq > ?1 ORDER BY seq LIMIT ?2";
  ASSIGN_OR_RETURN(sqlite3_stmt * stmt, conn->Prepare(kSql));
  ResetOnExit reset(stmt);
  sqlite3_bind_int64(stmt, 1, after_seq);
  sqlite3_bind_int(stmt, 2, limit);
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    ASSIGN_OR_RETURN(core::StoredSale stored, RowToStored(stmt));
    out.push_back(std::move(stored));
  }
  if (rc != SQLITE_DONE) return SqliteError(conn->db, rc, "list sales");
  return out;
}

Result<JournalStats> SqliteJournal::Stats() {
  JournalStats stats;
  {
    ASSIGN_OR_RETURN(ReadLease conn, AcquireRead());
    ASSIGN_OR_RETURN(sqlite3_stmt * stmt,
                     conn->Prepare("SELECT coalesce(max(seq), 0), count(*) FROM sales"));
    ResetOnExit reset(stmt);
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) return SqliteError(conn->db, rc, "stats");
    stats.last_seq = sqlite3_column_int64(stmt, 0);
    stats.sales = sqlite3_column_int64(stmt, 1);
  }
  stats.size_bytes = FileSize(options_.path) + FileSize(options_.path + "-wal");
  struct statvfs vfs {};
  if (::statvfs(FolderOf(options_.path).c_str(), &vfs) == 0) {
    stats.free_disk_bytes = static_cast<int64_t>(vfs.f_bavail) * static_cast<int64_t>(vfs.f_frsize);
  }
  stats.commits = commits_.load();
  return stats;
}

Result<int64_t> SqliteJournal::VerifyChain() {
  ASSIGN_OR_RETURN(ReadLease conn, AcquireRead());
  // One read transaction: the anchor and the rows come from the same snapshot, so a prune
  // committed meanwhile cannot make the walk start at the wrong place.
  int brc = Exec(conn->db, "BEGIN");
  if (brc != SQLITE_OK) return SqliteError(conn->db, brc, "verify chain");
  struct EndRead {
    sqlite3* db;
    ~EndRead() { Exec(db, "COMMIT"); }
  } end_read{conn->db};
  ASSIGN_OR_RETURN(Anchor anchor, ReadAnchor(conn->db, genesis_));
  ASSIGN_OR_RETURN(sqlite3_stmt * stmt,
                   conn->Prepare("SELECT seq, receipt_no, received_at_ms, clock_skew, canonical, "
                                 "prev_hash, hash FROM sales ORDER BY seq"));
  ResetOnExit reset(stmt);
  std::string prev = anchor.hash;
  const int64_t first = anchor.seq + 1;
  int64_t expected = first;
  int rc;
  // One statement = one read snapshot, so a concurrent writer cannot tear the walk.
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    const int64_t seq = sqlite3_column_int64(stmt, 0);
    auto broken = [&](const std::string& why) {
      return Status(ErrorCode::kInternal,
                    "journal: chain broken at seq " + std::to_string(seq) + ": " + why);
    };
    if (seq != expected) return broken("expected seq " + std::to_string(expected));
    if (ColumnBlob(stmt, 5) != prev) return broken("prev_hash differs from the previous hash");
    const auto* canonical = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 4));
    const std::string record = core::CanonicalRecord(
        seq, ColumnText(stmt, 1), sqlite3_column_int64(stmt, 2), sqlite3_column_int(stmt, 3) != 0,
        std::string_view(canonical == nullptr ? "" : canonical,
                         static_cast<size_t>(sqlite3_column_bytes(stmt, 4))));
    std::string hash = ColumnBlob(stmt, 6);
    if (core::ChainHash(prev, record) != hash) return broken("hash does not match the record");
    prev = std::move(hash);
    ++expected;
  }
  if (rc != SQLITE_DONE) return SqliteError(conn->db, rc, "verify chain");
  return expected - first;
}

Status SqliteJournal::IntegrityCheck() {
  ASSIGN_OR_RETURN(ReadLease conn, AcquireRead());
  ASSIGN_OR_RETURN(sqlite3_stmt * stmt, conn->Prepare("PRAGMA integrity_check"));
  ResetOnExit reset(stmt);
  std::string problems;
  int rc;
  int rows = 0;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    std::string line = ColumnText(stmt, 0);
    if (line == "ok") continue;
    if (rows++ < 5) problems += (problems.empty() ? "" : "; ") + line;
  }
  if (rc != SQLITE_DONE) return SqliteError(conn->db, rc, "integrity check");
  if (rows > 0) {
    return Status(ErrorCode::kInternal, "journal: integrity check failed: " + problems);
  }
  return Status::Ok();
}

Status SqliteJournal::Health() const {
  if (closed_.load()) return Status(ErrorCode::kStorageUnavailable, "journal: closed");
  if (!healthy_.load()) {
    return Status(ErrorCode::kStorageUnavailable, "journal: the last commit failed");
  }
  return Status::Ok();
}

SqliteJournal::WriterStats SqliteJournal::GetWriterStats() const {
  WriterStats stats;
  stats.max_commit_us = max_commit_us_.load();
  stats.max_group_us = max_group_us_.load();
  stats.checkpoints = checkpoints_.load();
  stats.groups = groups_.load();
  stats.failed_groups = failed_groups_.load();
  stats.reopens = reopens_.load();
  stats.writer_checkpoints = writer_checkpoints_.load();
  stats.max_writer_checkpoint_us = max_writer_checkpoint_us_.load();
  stats.commits_during_checkpoint = commits_during_checkpoint_.load();
  stats.max_commit_during_checkpoint_us = max_commit_during_checkpoint_us_.load();
  return stats;
}

// ---- Upload bookkeeping ----

Status SqliteJournal::RunWriterTransaction(const std::function<Status(sqlite3* db)>& body,
                                           bool durable) {
  auto promise = std::make_shared<std::promise<Status>>();
  std::future<Status> future = promise->get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closing_) return Status(ErrorCode::kStorageUnavailable, "journal: closed");
    // `body` outlives the task: the caller waits for the future below.
    writer_tasks_.push_back([this, &body, promise, durable] {
      if (wdb_ == nullptr) {
        Status reopened = OpenWriter();
        if (!reopened.ok()) {
          promise->set_value(reopened);
          return;
        }
      }
      // Sale groups always commit with synchronous=FULL: whatever happens below, FULL is
      // back (or the connection closed) before this task returns.
      struct RestoreFull {
        SqliteJournal* journal;
        bool active;
        ~RestoreFull() {
          if (!active || journal->wdb_ == nullptr) return;
          if (Exec(journal->wdb_, "PRAGMA synchronous=FULL") != SQLITE_OK) {
            core::LogError("journal_restore_synchronous_failed");
            journal->CloseWriter();
            journal->state_valid_ = false;
          }
        }
      } restore{this, !durable};
      if (!durable) {
        int src = Exec(wdb_, "PRAGMA synchronous=NORMAL");
        if (src != SQLITE_OK) {
          promise->set_value(SqliteError(wdb_, src, "set synchronous"));
          return;
        }
      }
      int rc = Exec(wdb_, "BEGIN IMMEDIATE");
      if (rc != SQLITE_OK) {
        Status status = SqliteError(wdb_, rc, "begin");
        RecoverAfterFailure(rc);
        promise->set_value(status);
        return;
      }
      Status status = body(wdb_);
      if (status.ok()) {
        rc = Exec(wdb_, "COMMIT");
        if (rc != SQLITE_OK) status = SqliteError(wdb_, rc, "commit");
      } else {
        rc = sqlite3_extended_errcode(wdb_);
      }
      if (!status.ok()) {
        if (sqlite3_get_autocommit(wdb_) == 0) Exec(wdb_, "ROLLBACK");
        // A storage failure may have left the connection unusable; the same recovery as
        // for a failed group (reopen after an I/O error, reload the in-memory state).
        if (status.code() == ErrorCode::kStorageUnavailable) RecoverAfterFailure(rc);
      }
      promise->set_value(std::move(status));
    });
  }
  cv_.notify_all();
  return future.get();
}

Result<SyncBounds> SqliteJournal::GetSyncBounds() {
  SyncBounds bounds;
  {
    ASSIGN_OR_RETURN(ReadLease conn, AcquireRead());
    sqlite3* db = conn->db;
    int brc = Exec(db, "BEGIN");  // one snapshot for all the figures
    if (brc != SQLITE_OK) return SqliteError(db, brc, "sync bounds");
    struct EndRead {
      sqlite3* db;
      ~EndRead() { Exec(db, "COMMIT"); }
    } end_read{db};
    {
      ASSIGN_OR_RETURN(sqlite3_stmt * stmt,
                       conn->Prepare("SELECT seq, received_at_ms FROM sales ORDER BY seq DESC "
                                     "LIMIT 1"));
      ResetOnExit reset(stmt);
      int rc = sqlite3_step(stmt);
      if (rc == SQLITE_ROW) {
        bounds.last_seq = sqlite3_column_int64(stmt, 0);
        bounds.last_received_at_ms = sqlite3_column_int64(stmt, 1);
      } else if (rc != SQLITE_DONE) {
        return SqliteError(db, rc, "sync bounds");
      }
    }
    ASSIGN_OR_RETURN(Anchor anchor, ReadAnchor(db, genesis_));
    bounds.anchor_seq = anchor.seq;
    bounds.anchor_hash = anchor.hash;
    if (bounds.last_seq == 0) bounds.last_seq = anchor.seq;
    {
      ASSIGN_OR_RETURN(sqlite3_stmt * stmt,
                       conn->Prepare("SELECT last_seq FROM batches ORDER BY first_seq DESC "
                                     "LIMIT 1"));
      ResetOnExit reset(stmt);
      bool found = false;
      ASSIGN_OR_RETURN(int64_t batched, QueryOptionalInt(db, stmt, &found, "sync bounds"));
      bounds.batched_seq = std::max(batched, anchor.seq);
    }
    // The oldest sale not uploaded (schema v3: derived from the batches): the first sale
    // of the oldest batch not uploaded, else the first sale in no batch yet.
    int64_t oldest = bounds.batched_seq < bounds.last_seq ? bounds.batched_seq + 1 : 0;
    {
      ASSIGN_OR_RETURN(sqlite3_stmt * stmt,
                       conn->Prepare("SELECT first_seq FROM batches WHERE state <> 'uploaded' "
                                     "ORDER BY first_seq LIMIT 1"));
      ResetOnExit reset(stmt);
      bool found = false;
      ASSIGN_OR_RETURN(int64_t first, QueryOptionalInt(db, stmt, &found, "sync bounds"));
      if (found) oldest = first;
    }
    if (oldest > 0) {
      ASSIGN_OR_RETURN(sqlite3_stmt * stmt,
                       conn->Prepare("SELECT seq, received_at_ms FROM sales WHERE seq >= ?1 "
                                     "ORDER BY seq LIMIT 1"));
      ResetOnExit reset(stmt);
      sqlite3_bind_int64(stmt, 1, oldest);
      int rc = sqlite3_step(stmt);
      if (rc == SQLITE_ROW) {
        bounds.oldest_unuploaded_seq = sqlite3_column_int64(stmt, 0);
        bounds.oldest_unuploaded_received_at_ms = sqlite3_column_int64(stmt, 1);
      } else if (rc != SQLITE_DONE) {
        return SqliteError(db, rc, "sync bounds");
      }
    }
  }
  struct statvfs vfs {};
  if (::statvfs(FolderOf(options_.path).c_str(), &vfs) == 0) {
    bounds.free_disk_bytes =
        static_cast<int64_t>(vfs.f_bavail) * static_cast<int64_t>(vfs.f_frsize);
    bounds.total_disk_bytes =
        static_cast<int64_t>(vfs.f_blocks) * static_cast<int64_t>(vfs.f_frsize);
  }
  return bounds;
}

Result<int64_t> SqliteJournal::CanonicalBytes(int64_t after_seq, int64_t upto_seq) {
  if (upto_seq <= after_seq) return int64_t{0};
  ASSIGN_OR_RETURN(ReadLease conn, AcquireRead());
  // length() of TEXT counts characters; of a BLOB, bytes.
  ASSIGN_OR_RETURN(sqlite3_stmt * stmt,
                   conn->Prepare("SELECT coalesce(sum(length(CAST(canonical AS BLOB))), 0) "
                                 "FROM sales WHERE seq > ?1 AND seq <= ?2"));
  ResetOnExit reset(stmt);
  sqlite3_bind_int64(stmt, 1, after_seq);
  sqlite3_bind_int64(stmt, 2, upto_seq);
  bool found = false;
  return QueryOptionalInt(conn->db, stmt, &found, "canonical bytes");
}

Result<std::vector<BatchRecord>> SqliteJournal::ListBatches(bool unfinished_only,
                                                            int64_t after_first_seq, int limit) {
  std::vector<BatchRecord> out;
  if (limit <= 0) return out;
  ASSIGN_OR_RETURN(ReadLease conn, AcquireRead());
  static const std::string kUnfinished =
      std::string(kBatchColumns) +
      "WHERE state <> 'uploaded' AND first_seq > ?1 ORDER BY first_seq LIMIT ?2";
  static const std::string kAll =
      std::string(kBatchColumns) + "WHERE first_seq > ?1 ORDER BY first_seq LIMIT ?2";
  ASSIGN_OR_RETURN(sqlite3_stmt * stmt, conn->Prepare(unfinished_only ? kUnfinished : kAll));
  ResetOnExit reset(stmt);
  sqlite3_bind_int64(stmt, 1, after_first_seq);
  sqlite3_bind_int(stmt, 2, limit);
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) out.push_back(RowToBatch(stmt));
  if (rc != SQLITE_DONE) return SqliteError(conn->db, rc, "list batches");
  return out;
}

Result<BatchRecord> SqliteJournal::RecordBatch(const BatchRecord& batch) {
  if (batch.first_seq < 1 || batch.last_seq < batch.first_seq || batch.key.empty() ||
      batch.format.empty() || batch.sha256_hex.size() != 64 || batch.md5_hex.size() != 32) {
    return Status(ErrorCode::kInvalidArgument, "journal: malformed batch record");
  }
  BatchRecord recorded = batch;
  recorded.state = BatchState::kPending;
  recorded.attempts = 0;
  recorded.last_error.clear();
  recorded.uploaded_at_ms = 0;
  Status status = RunWriterTransaction([&](sqlite3* db) -> Status {
    {
      Stmt same(db, std::string(kBatchColumns) + "WHERE first_seq = ?1");
      if (same.prepare_rc() != SQLITE_OK) return SqliteError(db, same.prepare_rc(), "batch");
      sqlite3_bind_int64(same.get(), 1, batch.first_seq);
      int rc = sqlite3_step(same.get());
      if (rc == SQLITE_ROW) {
        BatchRecord found = RowToBatch(same.get());
        if (found.last_seq != batch.last_seq || found.key != batch.key) {
          return Status(ErrorCode::kInvalidArgument, "journal: another batch starting at seq " +
                                                         std::to_string(batch.first_seq) +
                                                         " is already recorded");
        }
        recorded = std::move(found);
        return Status::Ok();
      }
      if (rc != SQLITE_DONE) return SqliteError(db, rc, "batch");
    }
    ASSIGN_OR_RETURN(Anchor anchor, ReadAnchor(db, genesis_));
    int64_t batched = anchor.seq;
    int64_t last_sale = 0;
    {
      Stmt last(db, "SELECT last_seq FROM batches ORDER BY first_seq DESC LIMIT 1");
      bool found = false;
      ASSIGN_OR_RETURN(int64_t value, QueryOptionalInt(db, last.get(), &found, "batch"));
      if (found) batched = std::max(batched, value);
      Stmt max_seq(db, "SELECT max(seq) FROM sales");
      ASSIGN_OR_RETURN(last_sale, QueryOptionalInt(db, max_seq.get(), &found, "batch"));
    }
    if (batch.first_seq != batched + 1) {
      return Status(ErrorCode::kInvalidArgument, "journal: a new batch must start at seq " +
                                                     std::to_string(batched + 1) + ", not " +
                                                     std::to_string(batch.first_seq));
    }
    if (batch.last_seq > last_sale) {
      return Status(ErrorCode::kInvalidArgument,
                    "journal: the batch ends after the last stored sale");
    }
    Stmt insert(db,
                "INSERT INTO batches(first_seq, last_seq, object_key, format, gzip_level, "
                "raw_bytes, gz_bytes, canonical_bytes, sha256, md5, created_at_ms) "
                "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
    if (insert.prepare_rc() != SQLITE_OK) return SqliteError(db, insert.prepare_rc(), "batch");
    sqlite3_stmt* st = insert.get();
    sqlite3_bind_int64(st, 1, batch.first_seq);
    sqlite3_bind_int64(st, 2, batch.last_seq);
    BindText(st, 3, batch.key);
    BindText(st, 4, batch.format);
    sqlite3_bind_int(st, 5, batch.gzip_level);
    sqlite3_bind_int64(st, 6, batch.raw_bytes);
    sqlite3_bind_int64(st, 7, batch.gz_bytes);
    sqlite3_bind_int64(st, 8, batch.canonical_bytes);
    BindText(st, 9, batch.sha256_hex);
    BindText(st, 10, batch.md5_hex);
    sqlite3_bind_int64(st, 11, batch.created_at_ms);
    RETURN_IF_ERROR(StepDone(db, st, "record batch"));
    recorded.id = sqlite3_last_insert_rowid(db);
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return recorded;
}

namespace {

// Runs one UPDATE with (id, text) parameters; kNotFound when no row matched.
Status UpdateBatchRow(sqlite3* db, std::string_view sql, int64_t batch_id, const std::string& text,
                      std::string_view what) {
  Stmt stmt(db, sql);
  if (stmt.prepare_rc() != SQLITE_OK) return SqliteError(db, stmt.prepare_rc(), what);
  sqlite3_bind_int64(stmt.get(), 1, batch_id);
  BindText(stmt.get(), 2, text);
  RETURN_IF_ERROR(StepDone(db, stmt.get(), what));
  if (sqlite3_changes(db) == 0) {
    return Status(ErrorCode::kNotFound, "journal: " + std::string(what) + ": no batch " +
                                            std::to_string(batch_id) +
                                            " in a state that allows it");
  }
  return Status::Ok();
}

}  // namespace

Status SqliteJournal::RecordBatchFailure(int64_t batch_id, const std::string& error) {
  return RunWriterTransaction([&](sqlite3* db) {
    return UpdateBatchRow(
        db, "UPDATE batches SET attempts = attempts + 1, last_error = ?2 WHERE id = ?1", batch_id,
        error, "record batch failure");
  });
}

Status SqliteJournal::UpdateBatchObject(int64_t batch_id, int64_t raw_bytes, int64_t gz_bytes,
                                        const std::string& sha256_hex, const std::string& md5_hex) {
  if (sha256_hex.size() != 64 || md5_hex.size() != 32) {
    return Status(ErrorCode::kInvalidArgument, "journal: malformed batch hashes");
  }
  return RunWriterTransaction([&](sqlite3* db) -> Status {
    Stmt stmt(db,
              "UPDATE batches SET raw_bytes = ?2, gz_bytes = ?3, sha256 = ?4, md5 = ?5 "
              "WHERE id = ?1 AND state = 'pending'");
    if (stmt.prepare_rc() != SQLITE_OK) return SqliteError(db, stmt.prepare_rc(), "batch");
    sqlite3_bind_int64(stmt.get(), 1, batch_id);
    sqlite3_bind_int64(stmt.get(), 2, raw_bytes);
    sqlite3_bind_int64(stmt.get(), 3, gz_bytes);
    BindText(stmt.get(), 4, sha256_hex);
    BindText(stmt.get(), 5, md5_hex);
    RETURN_IF_ERROR(StepDone(db, stmt.get(), "update batch object"));
    if (sqlite3_changes(db) == 0) {
      return Status(ErrorCode::kNotFound, "journal: no pending batch " + std::to_string(batch_id));
    }
    return Status::Ok();
  });
}

Status SqliteJournal::MarkBatchUploaded(int64_t batch_id, int64_t uploaded_at_ms) {
  // Schema v3: the batch row is the only state; its sales count as uploaded from this
  // commit on (kStoredColumns, GetSyncBounds, Prune derive it), so this is one short
  // transaction whatever the batch size, and sale groups never wait behind a rewrite of
  // thousands of sale rows.
  return RunWriterTransaction(
      [&](sqlite3* db) -> Status {
        Stmt get(db, "SELECT state FROM batches WHERE id = ?1");
        if (get.prepare_rc() != SQLITE_OK) return SqliteError(db, get.prepare_rc(), "batch");
        sqlite3_bind_int64(get.get(), 1, batch_id);
        int rc = sqlite3_step(get.get());
        if (rc == SQLITE_DONE) {
          return Status(ErrorCode::kNotFound, "journal: no batch " + std::to_string(batch_id));
        }
        if (rc != SQLITE_ROW) return SqliteError(db, rc, "mark batch uploaded");
        const std::string state = ColumnText(get.get(), 0);
        if (state == "uploaded") return Status::Ok();  // idempotent
        if (state != "pending") {
          return Status(ErrorCode::kInvalidArgument,
                        "journal: batch " + std::to_string(batch_id) + " is " + state);
        }
        Stmt batch(db,
                   "UPDATE batches SET state = 'uploaded', uploaded_at_ms = ?2, last_error = '' "
                   "WHERE id = ?1 AND state = 'pending'");
        if (batch.prepare_rc() != SQLITE_OK) return SqliteError(db, batch.prepare_rc(), "batch");
        sqlite3_bind_int64(batch.get(), 1, batch_id);
        sqlite3_bind_int64(batch.get(), 2, uploaded_at_ms);
        return StepDone(db, batch.get(), "mark batch uploaded");
      },
      /*durable=*/false);
  // Not durable on its own: a power cut before the next durable commit (the next sale
  // group, batch record or prune, all fsync'd) may undo the mark. Harmless: the batch is
  // pending again, its upload is retried with the recorded bytes, the store answers 412
  // (or HEAD finds the object) with the recorded MD5, and the batch is marked again.
  // Nothing is pruned on the strength of a lost mark: Prune commits durably, which makes
  // the mark before it durable too (one WAL, written in order).
}

Status SqliteJournal::MarkBatchQuarantined(int64_t batch_id, const std::string& error) {
  return RunWriterTransaction([&](sqlite3* db) {
    return UpdateBatchRow(db,
                          "UPDATE batches SET state = 'quarantined', last_error = ?2 "
                          "WHERE id = ?1 AND state = 'pending'",
                          batch_id, error, "quarantine batch");
  });
}

Status SqliteJournal::RequeueBatch(int64_t batch_id) {
  return RunWriterTransaction([&](sqlite3* db) {
    return UpdateBatchRow(db,
                          "UPDATE batches SET state = 'pending', attempts = 0, last_error = ?2 "
                          "WHERE id = ?1 AND state = 'quarantined'",
                          batch_id, "", "requeue batch");
  });
}

Result<PruneResult> SqliteJournal::Prune(const PruneRequest& request) {
  PruneResult result;
  if (request.max_sales < 1) {
    return Status(ErrorCode::kInvalidArgument, "journal: prune max_sales must be at least 1");
  }
  Status status = RunWriterTransaction([&](sqlite3* db) -> Status {
    ASSIGN_OR_RETURN(Anchor anchor, ReadAnchor(db, genesis_));
    result.anchor_seq = anchor.seq;
    bool found = false;
    int64_t last_seq = 0;
    {
      Stmt stmt(db, "SELECT max(seq) FROM sales");
      ASSIGN_OR_RETURN(last_seq, QueryOptionalInt(db, stmt.get(), &found, "prune"));
    }
    // The newest sale stays: LoadState continues the chain and the seq from it.
    int64_t upto = std::min(anchor.seq + request.max_sales, last_seq - 1);
    {
      // Never past a sale that is not uploaded (schema v3: a sale is uploaded iff an
      // uploaded batch covers it): not past the last batched sale, nor into a batch not
      // uploaded (its rows are also needed to re-encode it).
      Stmt last(db, "SELECT last_seq FROM batches ORDER BY first_seq DESC LIMIT 1");
      ASSIGN_OR_RETURN(int64_t batched, QueryOptionalInt(db, last.get(), &found, "prune"));
      upto = std::min(upto, found ? std::max(batched, anchor.seq) : anchor.seq);
      Stmt batch(db,
                 "SELECT first_seq FROM batches WHERE state <> 'uploaded' ORDER BY first_seq "
                 "LIMIT 1");
      ASSIGN_OR_RETURN(int64_t first, QueryOptionalInt(db, batch.get(), &found, "prune"));
      if (found) upto = std::min(upto, first - 1);
    }
    if (!request.ignore_age && upto > anchor.seq) {
      // Stop at the first sale that is young enough to keep, even if later ones are older
      // (a clock that stepped back): the pruned part stays one prefix.
      Stmt stmt(db,
                "SELECT seq FROM sales WHERE seq > ?1 AND seq <= ?2 AND received_at_ms >= ?3 "
                "ORDER BY seq LIMIT 1");
      sqlite3_bind_int64(stmt.get(), 1, anchor.seq);
      sqlite3_bind_int64(stmt.get(), 2, upto);
      sqlite3_bind_int64(stmt.get(), 3, request.received_before_ms);
      ASSIGN_OR_RETURN(int64_t seq, QueryOptionalInt(db, stmt.get(), &found, "prune"));
      if (found) upto = seq - 1;
    }
    // A refund or void that stays must still find its original (ref REFERENCES sales(id)):
    // stop before the oldest sale that a kept one refers to. Lowering `upto` keeps more
    // sales, which may refer to older ones still, hence the loop.
    while (upto > anchor.seq) {
      Stmt stmt(db,
                "SELECT min(p.seq) FROM sales c JOIN sales p ON p.id = c.ref "
                "WHERE c.ref IS NOT NULL AND c.seq > ?1 AND p.seq <= ?1");
      sqlite3_bind_int64(stmt.get(), 1, upto);
      ASSIGN_OR_RETURN(int64_t seq, QueryOptionalInt(db, stmt.get(), &found, "prune"));
      if (!found) break;
      upto = seq - 1;
    }
    if (upto <= anchor.seq) return Status::Ok();

    std::string anchor_hash;
    {
      Stmt stmt(db, "SELECT hash FROM sales WHERE seq = ?1");
      sqlite3_bind_int64(stmt.get(), 1, upto);
      int rc = sqlite3_step(stmt.get());
      if (rc != SQLITE_ROW) {
        return rc == SQLITE_DONE
                   ? Status(ErrorCode::kInternal, "journal: prune: sale " + std::to_string(upto) +
                                                      " is missing (the journal has a gap)")
                   : SqliteError(db, rc, "prune");
      }
      anchor_hash = ColumnBlob(stmt.get(), 0);
    }
    {
      Stmt stmt(db, "DELETE FROM sales WHERE seq > ?1 AND seq <= ?2");
      sqlite3_bind_int64(stmt.get(), 1, anchor.seq);
      sqlite3_bind_int64(stmt.get(), 2, upto);
      RETURN_IF_ERROR(StepDone(db, stmt.get(), "prune sales"));
      result.pruned = sqlite3_changes(db);
    }
    {
      // The id index outlives the rows, for id_horizon_ms after each sale was received.
      Stmt stmt(db, "DELETE FROM ids WHERE seq <= ?1 AND received_at_ms < ?2");
      sqlite3_bind_int64(stmt.get(), 1, upto);
      sqlite3_bind_int64(stmt.get(), 2, clock_->NowMs() - options_.id_horizon_ms);
      RETURN_IF_ERROR(StepDone(db, stmt.get(), "prune ids"));
    }
    {
      Stmt stmt(db,
                "INSERT INTO meta(key, value) VALUES('chain_anchor_seq', ?1), "
                "('chain_anchor_hash', ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value");
      BindText(stmt.get(), 1, std::to_string(upto));
      BindText(stmt.get(), 2, core::ToHex(anchor_hash));
      RETURN_IF_ERROR(StepDone(db, stmt.get(), "prune anchor"));
    }
    {
      Stmt stmt(db, "DELETE FROM batches WHERE state = 'uploaded' AND last_seq <= ?1");
      sqlite3_bind_int64(stmt.get(), 1, upto);
      RETURN_IF_ERROR(StepDone(db, stmt.get(), "prune batches"));
    }
    result.anchor_seq = upto;
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return result;
}

// ---- Test hooks ----

Status SqliteJournal::ExecOnWriterForTest(const std::string& sql) {
  Result<int64_t> result = QueryIntOnWriterForTest(sql);
  return result.ok() ? Status::Ok() : result.status();
}

Result<int64_t> SqliteJournal::QueryIntOnWriterForTest(const std::string& sql) {
  auto promise = std::make_shared<std::promise<Result<int64_t>>>();
  std::future<Result<int64_t>> future = promise->get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closing_) return Status(ErrorCode::kStorageUnavailable, "journal: closed");
    writer_tasks_.push_back([this, sql, promise] {
      if (wdb_ == nullptr) {
        promise->set_value(Status(ErrorCode::kStorageUnavailable, "journal: no connection"));
        return;
      }
      promise->set_value(QueryInt(wdb_, sql.c_str(), "test statement"));
    });
  }
  cv_.notify_all();
  return future.get();
}

void SqliteJournal::PauseWriterForTest() {
  std::lock_guard<std::mutex> lock(mu_);
  paused_ = true;
}

void SqliteJournal::ResumeWriterForTest() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    paused_ = false;
  }
  cv_.notify_all();
}

void SqliteJournal::SetWalCatchUpFramesForTest(int64_t frames) {
  wal_catch_up_frames_.store(frames);
}

size_t SqliteJournal::QueuedForTest() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

}  // namespace machub::journal
