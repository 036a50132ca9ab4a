// Why this file is long (about 850 lines): it is the journal's one writer from open to
// close — opening and recovering the database, the group-commit loop, the append path
// (idempotency, refund rules, counters, chain, offline exposure, in the order one
// transaction needs them), failure recovery and the writer transactions of the upload
// ledger. Those steps share the writer's staged state and must be read together; what
// could stand alone already does: schema.cc, reads.cc, ledger.cc, ledger_store.cc,
// events.cc, offline.cc, checkpointer.cc, internal.cc.
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
namespace {

std::string ReceiptNo(const std::string& terminal_id, int64_t counter) {
  char digits[32];
  std::snprintf(digits, sizeof(digits), "%06" PRId64, counter);
  return terminal_id + "-" + digits;
}

}  // namespace

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
  if (options.page_size < 512 || options.page_size > 65536 ||
      (options.page_size & (options.page_size - 1)) != 0) {
    return Status(ErrorCode::kInvalidArgument,
                  "journal: page_size must be a power of two from 512 to 65536");
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
        "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; "
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
       "type FROM sales WHERE id = ?1"},
      {&stmts->exists, "SELECT canonical, type FROM sales WHERE id = ?1"},
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

  next_seq_ = next_seq;
  last_hash_ = std::move(last_hash);
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
  Submit(Pending{std::move(sale), std::move(done)});
}

void SqliteJournal::AppendEvent(core::StoreEvent event, AppendCallback done) {
  Submit(Pending{std::move(event), std::move(done)});
}

void SqliteJournal::Submit(Pending entry) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (closing_) {
      lock.unlock();
      if (entry.done) entry.done(Status(ErrorCode::kStorageUnavailable, "journal: closed"));
      return;
    }
    const bool lead = options_.inline_commit && !writer_busy_ && !paused_ && queue_.empty() &&
                      writer_tasks_.empty();
    if (!lead) {
      queue_.push_back(std::move(entry));
      cv_.notify_one();
      return;
    }
    writer_busy_ = true;
  }
  // The writer is ours until writer_busy_ is cleared: what arrives meanwhile queues, and
  // the writer thread takes it afterwards, in order.
  std::vector<Pending> group;
  group.push_back(std::move(entry));
  ProcessGroup(group, /*on_writer_thread=*/false);
  {
    std::lock_guard<std::mutex> lock(mu_);
    writer_busy_ = false;
    if (catch_up_requested_.load()) {
      writer_tasks_.emplace_back([this] { MaybeCheckpointOnWriter(); });
    }
  }
  cv_.notify_all();
}

void SqliteJournal::WriterLoop() {
  for (;;) {
    std::vector<Pending> group;
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      // An inline commit holds the writer (writer_busy_): wait for it, even when closing.
      cv_.wait(lock, [&] {
        return !writer_busy_ &&
               (!writer_tasks_.empty() || (!paused_ && !queue_.empty()) || closing_);
      });
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
      writer_busy_ = true;
    }
    if (task) {
      task();
    } else {
      ProcessGroup(group);
    }
    std::lock_guard<std::mutex> lock(mu_);
    writer_busy_ = false;
  }
}

void SqliteJournal::ProcessGroup(std::vector<Pending>& group, bool on_writer_thread) {
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
  if (status.ok() && on_writer_thread) MaybeCheckpointOnWriter();
}

Status SqliteJournal::RunGroup(std::vector<Pending>& group, std::vector<Result<Receipt>>& answers,
                               int64_t* inserted, int64_t* commit_us) {
  WriterStatements& s = *wstmts_;
  staged_seq_ = next_seq_;
  staged_hash_ = last_hash_;
  staged_received_at_ms_ = last_received_at_ms_;
  staged_clock_held_ = 0;
  staged_clock_untrusted_ = options_.clock_untrusted && options_.clock_untrusted();
  staged_counters_.clear();
  staged_drawers_.clear();
  staged_offline_terminal_.clear();
  staged_offline_store_ = 0;
  staged_z_number_ = last_z_number_;
  staged_z_seq_ = last_z_seq_;
  staged_z_currency_ = last_z_currency_;
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
    if (core::Sale* sale = std::get_if<core::Sale>(&pending.entry)) {
      answers.push_back(AppendOne(*sale, &created, &storage_rc));
    } else {
      answers.push_back(
          AppendEventOne(std::get<core::StoreEvent>(pending.entry), &created, &storage_rc));
    }
    if (storage_rc != SQLITE_OK) return fail(storage_rc, "store entry");
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
  last_received_at_ms_ = staged_received_at_ms_;
  newest_received_at_ms_.store(last_received_at_ms_);
  if (staged_clock_held_ > 0) clock_held_.fetch_add(staged_clock_held_);
  for (const auto& [terminal_id, counter] : staged_counters_) {
    terminal_counters_[terminal_id] = counter;
  }
  for (const auto& [terminal_id, opened_seq] : staged_drawers_) {
    if (opened_seq == 0) {
      open_drawers_.erase(terminal_id);
    } else {
      open_drawers_[terminal_id] = opened_seq;
    }
  }
  for (const auto& [terminal_id, delta] : staged_offline_terminal_) {
    int64_t& outstanding = offline_terminal_[terminal_id];
    outstanding += delta;
    if (outstanding == 0) offline_terminal_.erase(terminal_id);
  }
  offline_store_ += staged_offline_store_;
  last_z_number_ = staged_z_number_;
  last_z_seq_ = staged_z_seq_;
  last_z_currency_ = staged_z_currency_;
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
      return ReplayReceipt(s.find, sale.id);
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
      return IdExpired();
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
      if (core::IsEventTypeName(ColumnText(s.exists, 1))) {
        return Status(
            ErrorCode::kInvalidField,
            std::string(core::SaleTypeName(sale.type)) + " refers to a store event, not a sale",
            "ref");
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

  if (options_.cash_requires_open_drawer && !DrawerOpen(sale.terminal_id)) {
    for (const core::Payment& payment : sale.payments) {
      if (payment.method == "cash") {
        return Status(ErrorCode::kDrawerClosed,
                      "cash on a terminal whose drawer is not open (drawer.required is on): open "
                      "the drawer first",
                      "payments");
      }
    }
  }

  if (sale.type == core::SaleType::kSale) RETURN_IF_ERROR(CheckOfflineLimits(sale));

  int64_t counter = 1;
  if (auto it = staged_counters_.find(sale.terminal_id); it != staged_counters_.end()) {
    counter = it->second + 1;
  } else if (auto jt = terminal_counters_.find(sale.terminal_id); jt != terminal_counters_.end()) {
    counter = jt->second + 1;
  }
  Receipt receipt;
  receipt.created = true;
  receipt.id = sale.id;
  receipt.receipt_no = ReceiptNo(sale.terminal_id, counter);
  receipt.total = sale.total;
  receipt.change = sale.change;
  receipt.currency = sale.currency;
  receipt.type = core::SaleTypeName(sale.type);
  const NewRow row{&sale.id,    sale.terminal_id,   receipt.receipt_no, receipt.type,
                   sale.ref,    sale.created_at_ms, sale.currency,      sale.total,
                   sale.change, &canonical};
  RETURN_IF_ERROR(InsertRow(row, &receipt, storage_rc));
  if (sale.type == core::SaleType::kSale) {
    RETURN_IF_ERROR(TrackOfflinePayments(sale, receipt.seq, receipt.received_at_ms, storage_rc));
  } else if (sale.type == core::SaleType::kVoid) {
    RETURN_IF_ERROR(ReleaseOnVoid(sale, receipt.seq, storage_rc));
  }
  staged_counters_[sale.terminal_id] = counter;
  *created = true;
  return receipt;
}

Status SqliteJournal::InsertRow(const NewRow& row, Receipt* receipt, int* storage_rc) {
  WriterStatements& s = *wstmts_;
  static const Status kStorage(ErrorCode::kStorageUnavailable, "journal: storage failed");
  receipt->seq = staged_seq_;
  receipt->received_at_ms = clock_->NowMs();
  bool untrusted = staged_clock_untrusted_;
  if (receipt->received_at_ms < staged_received_at_ms_) {
    // The clock is behind the journal's newest entry (a Pi without RTC that booted with a
    // stale clock, a step backwards): hold received_at at the newest so it never goes back,
    // and mark the entry.
    receipt->received_at_ms = staged_received_at_ms_;
    ++staged_clock_held_;
    untrusted = true;
  }
  const int64_t skew_ms = receipt->received_at_ms - row.created_at_ms;
  const int clock_flags =
      ((skew_ms < 0 ? -skew_ms : skew_ms) > options_.clock_skew_bound_ms ? core::kClockSkew : 0) |
      (untrusted ? core::kClockUntrusted : 0);
  const std::string record = core::CanonicalRecord(
      receipt->seq, receipt->receipt_no, receipt->received_at_ms, clock_flags, *row.canonical);
  receipt->hash = core::ChainHash(staged_hash_, record);
  {
    sqlite3_stmt* ins = s.insert;
    ResetOnExit reset(ins);
    sqlite3_bind_int64(ins, 1, receipt->seq);
    BindText(ins, 2, *row.id);
    BindText(ins, 3, row.terminal_id);
    BindText(ins, 4, row.receipt_no);
    BindText(ins, 5, row.type);
    if (row.ref.empty()) {
      sqlite3_bind_null(ins, 6);
    } else {
      BindText(ins, 6, row.ref);
    }
    sqlite3_bind_int64(ins, 7, row.created_at_ms);
    sqlite3_bind_int64(ins, 8, receipt->received_at_ms);
    sqlite3_bind_int(ins, 9, clock_flags);  // bits: core::kClockSkew, core::kClockUntrusted
    BindText(ins, 10, row.currency);
    sqlite3_bind_int64(ins, 11, row.total);
    sqlite3_bind_int64(ins, 12, row.change);
    BindText(ins, 13, *row.canonical);
    BindBlob(ins, 14, staged_hash_);
    BindBlob(ins, 15, receipt->hash);
    int rc = sqlite3_step(ins);
    if (rc != SQLITE_DONE) {
      *storage_rc = rc;
      return kStorage;
    }
  }
  {
    sqlite3_stmt* ins = s.id_insert;
    ResetOnExit reset(ins);
    BindText(ins, 1, *row.id);
    sqlite3_bind_int64(ins, 2, receipt->seq);
    BindBlob(ins, 3, receipt->hash);
    sqlite3_bind_int64(ins, 4, receipt->received_at_ms);
    int rc = sqlite3_step(ins);
    if (rc != SQLITE_DONE) {
      *storage_rc = rc;
      return kStorage;
    }
  }
  staged_seq_ = receipt->seq + 1;
  staged_hash_ = receipt->hash;
  staged_received_at_ms_ = receipt->received_at_ms;
  return Status::Ok();
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

// ---- Upload bookkeeping ----

Status SqliteJournal::RunWriterTransaction(const std::function<Status(sqlite3* db)>& body,
                                           bool durable) {
  auto promise = std::make_shared<std::promise<Status>>();
  std::future<Status> future = promise->get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closing_) return Status(ErrorCode::kStorageUnavailable, "journal: closed");
    // `body` outlives the task: the caller waits for the future below.
    writer_tasks_.emplace_back([this, &body, promise, durable] {
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
