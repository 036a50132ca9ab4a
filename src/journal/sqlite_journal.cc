// SqliteJournal from open to close: the writer connection and its statements, the state
// loaded at open (and again after a failed commit), and the test hooks. The other rooms:
// writer.cc (the group-commit loop and writer transactions), append.cc (one sale inside a
// group), events.cc, offline.cc, reads.cc, ledger_store.cc, checkpointer.cc, schema.cc.
#include "journal/sqlite_journal.h"

#include <sqlite3.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <future>
#include <string_view>
#include <utility>

#include "core/chain.h"
#include "core/log.h"
#include "core/refund_rules.h"
#include "core/sale_codec.h"
#include "journal/internal.h"

namespace machub::journal {

// ---- Open / Close ----

SqliteJournal::SqliteJournal(const JournalOptions& options)
    : options_(options),
      clock_(options.clock != nullptr ? options.clock : &core::SystemClock()),
      genesis_(core::GenesisHash(options.store_id)),
      recent_ids_(std::make_unique<RecentIds>()) {
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
  if (options.checkpoint_min_wal_bytes < 0 || options.checkpoint_max_age_ms < 0) {
    return Status(
        ErrorCode::kInvalidArgument,
        "journal: checkpoint_min_wal_bytes and checkpoint_max_age_ms must not be negative");
  }
  if (options.page_size < 512 || options.page_size > 65536 ||
      (options.page_size & (options.page_size - 1)) != 0) {
    return Status(ErrorCode::kInvalidArgument,
                  "journal: page_size must be a power of two from 512 to 65536");
  }
  if (options.id_keys_flush_rows < 1) {
    return Status(ErrorCode::kInvalidArgument, "journal: id_keys_flush_rows must be at least 1");
  }
  std::unique_ptr<SqliteJournal> journal(new SqliteJournal(options));
  ASSIGN_OR_RETURN(journal->limits_, ParseOfflineLimits(options.offline));
  journal->limits_text_ = options.offline;
  RETURN_IF_ERROR(journal->OpenWriter());
  {
    // The writer's catch-up threshold is 16 MiB of WAL, in frames of the file's page size
    // (a journal keeps the page size it was created with).
    sqlite3_stmt* stmt = nullptr;
    int64_t page_size = 4096;
    if (sqlite3_prepare_v2(journal->wdb_, "PRAGMA page_size", -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      page_size = std::max<int64_t>(512, sqlite3_column_int64(stmt, 0));
    }
    sqlite3_finalize(stmt);
    journal->wal_catch_up_frames_.store((int64_t{16} << 20) / page_size);
    journal->wal_frame_bytes_ = page_size + 24;  // each frame has a 24-byte header
  }
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
    // Only a database without tables takes a new page size; later it is a no-op.
    const std::string page_size = "PRAGMA page_size=" + std::to_string(options_.page_size);
    if (int prc = Exec(wdb_, page_size.c_str()); prc != SQLITE_OK) {
      return SqliteError(wdb_, prc, "set page_size");
    }
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
        // No foreign keys: since v8 the schema declares none, and the v8 step's DROP
        // TABLE must not check the v1 one (schema.cc).
        "PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF; "
        // 512 KiB of page cache instead of SQLite's 2 MiB: the writer's hot pages are the
        // right edges of its B-trees and their parents; the random id leaves miss either
        // way (the OS caches the file). docs/BENCHMARKS.md, "Memory at 8 terminals" (2 MiB
        // -> 1 MiB) and "Memory at 64 terminals" (-> 512 KiB, same sales/s).
        "PRAGMA cache_size=-512; "
        "PRAGMA journal_size_limit=" +
        std::to_string(kJournalSizeLimit) + ";";
    // With a checkpointer thread, commits never checkpoint inline (that is the stall we
    // measure in docs/JOURNAL.md); without one, SQLite's default autocheckpoint stays.
    if (options_.checkpoint_interval_ms > 0) pragmas += " PRAGMA wal_autocheckpoint=0;";
    int prc = Exec(wdb_, pragmas.c_str());
    if (prc != SQLITE_OK) return SqliteError(wdb_, prc, "set pragmas");
    // After the pragma: setting wal_autocheckpoint replaces the connection's WAL hook.
    if (options_.checkpoint_interval_ms > 0) sqlite3_wal_hook(wdb_, &SqliteJournal::WalHook, this);

    if (int frc = RegisterIdHash(wdb_); frc != SQLITE_OK) {
      return SqliteError(wdb_, frc, "register id_hash");
    }
    RETURN_IF_ERROR(MigrateSchema(wdb_));
    // The store binding: the chain's genesis depends on store_id, so a database created
    // for another store can never be continued here.
    RETURN_IF_ERROR(BindStore(wdb_, options_.store_id));
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
       "SELECT canonical, seq, receipt_no, hash, received_at_ms, total, change, currency, "
       "type FROM sales WHERE seq = ?1 AND id = ?2"},
      {&stmts->exists, "SELECT canonical, type FROM sales WHERE seq = ?1 AND id = ?2"},
      {&stmts->id_keys, "SELECT seq FROM sale_ids WHERE id_hash = ?1"},
      {&stmts->id_keys_insert, "INSERT OR IGNORE INTO sale_ids(id_hash, seq) VALUES(?1, ?2)"},
      {&stmts->reversals, "SELECT canonical FROM sales WHERE ref = ?1 ORDER BY seq"},
      {&stmts->id_find, "SELECT seq FROM ids WHERE id = ?1"},
      {&stmts->insert,
       "INSERT INTO sales(seq, id, terminal_id, receipt_no, type, ref, created_at_ms, "
       "received_at_ms, clock_skew, currency, total, change, canonical, prev_hash, hash) "
       "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"},
      {&stmts->upsert_terminal,
       "INSERT INTO terminals(terminal_id, last_receipt) VALUES(?1, ?2) "
       "ON CONFLICT(terminal_id) DO UPDATE SET last_receipt = excluded.last_receipt"},
      {&stmts->drawer_open, "INSERT INTO drawers(terminal_id, opened_seq) VALUES(?1, ?2)"},
      {&stmts->drawer_close, "DELETE FROM drawers WHERE terminal_id = ?1"},
      {&stmts->meta_put,
       "INSERT INTO meta(key, value) VALUES(?1, ?2) "
       "ON CONFLICT(key) DO UPDATE SET value = excluded.value"},
      {&stmts->offline_insert,
       "INSERT INTO offline_payments(sale_id, payment_index, terminal_id, amount, currency, "
       "sale_seq, received_at_ms, state) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, 'outstanding')"},
      {&stmts->offline_find,
       "SELECT state, terminal_id, amount FROM offline_payments "
       "WHERE sale_id = ?1 AND payment_index = ?2"},
      {&stmts->offline_resolve,
       "UPDATE offline_payments SET state = ?3, outcome_seq = ?4 "
       "WHERE sale_id = ?1 AND payment_index = ?2"},
      {&stmts->offline_of_sale,
       "SELECT payment_index, terminal_id, amount FROM offline_payments "
       "WHERE sale_id = ?1 AND state = 'outstanding'"},
      {&stmts->entries_after,
       "SELECT seq, receipt_no, received_at_ms, type, canonical FROM sales WHERE seq > ?1 "
       "ORDER BY seq"},
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
  int rc = sqlite3_prepare_v2(
      wdb_, "SELECT seq, hash, received_at_ms FROM sales ORDER BY seq DESC LIMIT 1", -1, &stmt,
      nullptr);
  if (rc == SQLITE_OK) rc = sqlite3_step(stmt);
  int64_t next_seq = 1;
  std::string last_hash = genesis_;
  int64_t last_received_at_ms = 0;
  if (rc == SQLITE_ROW) {
    next_seq = sqlite3_column_int64(stmt, 0) + 1;
    last_hash = ColumnBlob(stmt, 1);
    last_received_at_ms = sqlite3_column_int64(stmt, 2);
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
  // The table counts every receipt up to meta counters_seq (writer.cc, WriteCounters);
  // later ones are read from their rows, which Prune never deletes before writing the
  // table. A journal without counters_seq wrote the table at every commit.
  rc = sqlite3_prepare_v2(wdb_,
                          "SELECT terminal_id, receipt_no FROM sales WHERE seq > (SELECT "
                          "CAST(value AS INTEGER) FROM meta WHERE key = 'counters_seq') AND "
                          "type IN ('sale', 'refund', 'void')",
                          -1, &stmt, nullptr);
  if (rc == SQLITE_OK) {
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      const std::string terminal_id = ColumnText(stmt, 0);
      const std::string receipt_no = ColumnText(stmt, 1);
      const std::optional<int64_t> counter = ReceiptCounter(terminal_id, receipt_no);
      if (!counter) {
        sqlite3_finalize(stmt);
        return Status(ErrorCode::kInternal, "journal: receipt number \"" + receipt_no +
                                                "\" is not of terminal " + terminal_id);
      }
      int64_t& known = counters[terminal_id];
      known = std::max(known, *counter);
    }
  }
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) return SqliteError(wdb_, rc, "load receipt numbers");

  // The rows that sale_ids does not hold yet (internal.h, "finding a row by its id").
  std::unordered_multimap<int64_t, int64_t> recent;
  ASSIGN_OR_RETURN(const int64_t indexed, ReadIdsIndexedSeq(wdb_));
  rc = sqlite3_prepare_v2(wdb_, "SELECT id, seq FROM sales WHERE seq > ?1", -1, &stmt, nullptr);
  if (rc == SQLITE_OK) {
    sqlite3_bind_int64(stmt, 1, indexed);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      recent.emplace(IdHash(ColumnText(stmt, 0)), sqlite3_column_int64(stmt, 1));
    }
  }
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) return SqliteError(wdb_, rc, "load recent ids");

  next_seq_ = next_seq;
  last_hash_ = std::move(last_hash);
  recent_ids_->Reset(std::move(recent));
  id_keys_through_ = 0;
  last_received_at_ms_ = last_received_at_ms;
  newest_received_at_ms_.store(last_received_at_ms);
  terminal_counters_ = std::move(counters);
  RETURN_IF_ERROR(LoadStoreDayState());
  state_valid_ = true;
  return Status::Ok();
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
  // The writer closes last: SQLite copies the WAL into the database and deletes it only
  // when the last connection closes, and a read-only one cannot. With the checkpoint
  // thresholds (checkpointer.cc) the WAL may hold minutes of sales, which the next start
  // would otherwise copy.
  std::vector<std::unique_ptr<ReadConnection>> reads;
  {
    std::lock_guard<std::mutex> lock(read_mu_);
    reads_closed_ = true;
    reads.swap(idle_reads_);
  }
  reads.clear();
  if (cdb_ != nullptr) {
    sqlite3_close_v2(cdb_);
    cdb_ = nullptr;
  }
  CloseWriter();
  closed_.store(true);
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
    writer_tasks_.emplace_back([this, sql, promise] {
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
