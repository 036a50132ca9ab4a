// SaleJournal reads (Get, List, Stats, VerifyChain, IntegrityCheck, Health) and the
// read-only connection pool they lease from.

#include <sqlite3.h>

#include <string>
#include <string_view>
#include <utility>

#include "core/chain.h"
#include "core/sale_codec.h"
#include "journal/canonical_pack.h"
#include "journal/internal.h"

namespace machub::journal {

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
  // A small page cache: reads walk the journal's tail once (uploads, list pages) or look
  // one id up, which SQLite's default 2 MiB per connection does not speed up.
  Exec(conn->db, "PRAGMA cache_size=-256");
  // No lookaside buffer (SQLite's default is 120 KB per connection, held while the
  // connection lives): a read allocates little, and the pool keeps several connections.
  sqlite3_db_config(conn->db, SQLITE_DBCONFIG_LOOKASIDE, nullptr, 0, 0);
  if (int frc = RegisterCanonicalSize(conn->db); frc != SQLITE_OK) {
    return SqliteError(conn->db, frc, "register canonical_size");
  }
  if (int frc = RegisterIdHash(conn->db); frc != SQLITE_OK) {
    return SqliteError(conn->db, frc, "register id_hash");
  }
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
    "WHERE b.first_seq <= s.seq ORDER BY b.first_seq DESC LIMIT 1), 0), s.type "
    "FROM sales s ";

Result<core::StoredSale> RowToStored(sqlite3_stmt* stmt) {
  core::StoredSale stored;
  stored.seq = sqlite3_column_int64(stmt, 0);
  stored.receipt_no = ColumnText(stmt, 1);
  stored.received_at_ms = sqlite3_column_int64(stmt, 2);
  const int clock_flags = sqlite3_column_int(stmt, 3);
  stored.clock_skew = (clock_flags & core::kClockSkew) != 0;
  stored.clock_untrusted = (clock_flags & core::kClockUntrusted) != 0;
  ASSIGN_OR_RETURN(stored.canonical, ColumnCanonical(stmt, 4));
  stored.prev_hash = ColumnBlob(stmt, 5);
  stored.hash = ColumnBlob(stmt, 6);
  stored.uploaded = sqlite3_column_int(stmt, 7) != 0;
  ASSIGN_OR_RETURN(auto body, DecodeEntryBody(ColumnText(stmt, 8), stored.canonical, stored.seq));
  if (auto* event = std::get_if<core::StoreEvent>(&body)) {
    stored.event = std::move(*event);
  } else {
    stored.sale = std::move(std::get<core::Sale>(body));
  }
  return stored;
}

}  // namespace

Result<std::optional<core::StoredSale>> SqliteJournal::Get(const std::string& id) {
  ASSIGN_OR_RETURN(ReadLease conn, AcquireRead());
  static const std::string kSql = std::string(kStoredColumns) + "WHERE s.seq = ?1 AND s.id = ?2";
  ASSIGN_OR_RETURN(sqlite3_stmt * keys,
                   conn->Prepare("SELECT seq FROM sale_ids WHERE id_hash = ?1"));
  ASSIGN_OR_RETURN(sqlite3_stmt * stmt, conn->Prepare(kSql));
  ResetOnExit reset(stmt);
  int rc = StepById(*recent_ids_, keys, stmt, id);
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

Result<SaleJournal::OpenDay> SqliteJournal::ReadOpenDay() {
  ASSIGN_OR_RETURN(ReadLease conn, AcquireRead());
  // One read transaction: the last Z, the entries after it and the open drawers all come
  // from the same snapshot.
  int brc = Exec(conn->db, "BEGIN");
  if (brc != SQLITE_OK) return SqliteError(conn->db, brc, "begin read");
  EndRead end{conn->db};
  OpenDay day;
  ASSIGN_OR_RETURN(LastZ last, ReadLastZ(conn->db));
  day.last_z_number = last.number;
  day.last_z_seq = last.seq;
  day.last_z_currency = last.currency;
  {
    ASSIGN_OR_RETURN(sqlite3_stmt * stmt,
                     conn->Prepare("SELECT seq, receipt_no, received_at_ms, type, canonical "
                                   "FROM sales WHERE seq > ?1 ORDER BY seq"));
    ResetOnExit reset(stmt);
    sqlite3_bind_int64(stmt, 1, last.seq);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      core::JournalEntry entry;
      entry.seq = sqlite3_column_int64(stmt, 0);
      entry.receipt_no = ColumnText(stmt, 1);
      entry.received_at_ms = sqlite3_column_int64(stmt, 2);
      ASSIGN_OR_RETURN(const std::string canonical, ColumnCanonical(stmt, 4));
      ASSIGN_OR_RETURN(entry.body, DecodeEntryBody(ColumnText(stmt, 3), canonical, entry.seq));
      day.entries.push_back(std::move(entry));
    }
    if (rc != SQLITE_DONE) return SqliteError(conn->db, rc, "read the open day");
  }
  {
    ASSIGN_OR_RETURN(sqlite3_stmt * stmt,
                     conn->Prepare("SELECT terminal_id, opened_seq FROM drawers ORDER BY "
                                   "terminal_id"));
    ResetOnExit reset(stmt);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      day.open_drawers.emplace_back(ColumnText(stmt, 0), sqlite3_column_int64(stmt, 1));
    }
    if (rc != SQLITE_DONE) return SqliteError(conn->db, rc, "read open drawers");
  }
  return day;
}

Result<std::vector<SaleJournal::OpenDrawerAt>> SqliteJournal::ReadOpenDrawers() {
  ASSIGN_OR_RETURN(ReadLease conn, AcquireRead());
  ASSIGN_OR_RETURN(
      sqlite3_stmt * stmt,
      conn->Prepare("SELECT d.terminal_id, d.opened_seq, "
                    "coalesce(s.received_at_ms, 0) FROM drawers d "
                    "LEFT JOIN sales s ON s.seq = d.opened_seq ORDER BY d.terminal_id"));
  ResetOnExit reset(stmt);
  std::vector<OpenDrawerAt> out;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    out.push_back(OpenDrawerAt{ColumnText(stmt, 0), sqlite3_column_int64(stmt, 1),
                               sqlite3_column_int64(stmt, 2)});
  }
  if (rc != SQLITE_DONE) return SqliteError(conn->db, rc, "read open drawers");
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
  stats.free_disk_bytes = DiskSpaceOf(options_.path).free_bytes;
  stats.commits = commits_.load();
  stats.newest_received_at_ms = newest_received_at_ms_.load();
  stats.clock_held = clock_held_.load();
  return stats;
}

Result<int64_t> SqliteJournal::VerifyChain() {
  ASSIGN_OR_RETURN(ReadLease conn, AcquireRead());
  // One read transaction: the anchor and the rows come from the same snapshot, so a prune
  // committed meanwhile cannot make the walk start at the wrong place.
  int brc = Exec(conn->db, "BEGIN");
  if (brc != SQLITE_OK) return SqliteError(conn->db, brc, "verify chain");
  EndRead end_read{conn->db};
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
    Result<std::string> canonical = ColumnCanonical(stmt, 4);
    if (!canonical.ok()) return broken(canonical.status().message());
    const std::string record =
        core::CanonicalRecord(seq, ColumnText(stmt, 1), sqlite3_column_int64(stmt, 2),
                              sqlite3_column_int(stmt, 3), *canonical);
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
  // Schema v8: every row up to ids_indexed_seq has its key in sale_ids, or a retry of it
  // would not be found (internal.h, "finding a row by its id").
  ASSIGN_OR_RETURN(const int64_t indexed, ReadIdsIndexedSeq(conn->db));
  ASSIGN_OR_RETURN(sqlite3_stmt * missing,
                   conn->Prepare("SELECT count(*) FROM sales s WHERE s.seq <= ?1 AND NOT EXISTS "
                                 "(SELECT 1 FROM sale_ids k WHERE k.id_hash = id_hash(s.id) AND "
                                 "k.seq = s.seq)"));
  ResetOnExit reset_missing(missing);
  sqlite3_bind_int64(missing, 1, indexed);
  rc = sqlite3_step(missing);
  if (rc != SQLITE_ROW) return SqliteError(conn->db, rc, "integrity check: sale_ids");
  if (const int64_t n = sqlite3_column_int64(missing, 0); n > 0) {
    return Status(ErrorCode::kInternal, "journal: integrity check failed: " + std::to_string(n) +
                                            " rows are missing from sale_ids");
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
}  // namespace machub::journal
