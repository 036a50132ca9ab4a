// The journal's writer thread: appends queue as Pending entries, the writer (or, when it is
// idle, the caller: an inline commit) takes them as one group, runs the group in one
// transaction with one COMMIT (one fsync), and answers every entry after it. Failure
// recovery and the upload ledger's writer transactions run here too (sqlite_journal.h has
// the design; append.cc is one sale inside a group).
#include <sqlite3.h>

#include <algorithm>
#include <future>
#include <string_view>
#include <utility>

#include "core/log.h"
#include "journal/internal.h"
#include "journal/sqlite_journal.h"

namespace machub::journal {

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
  const bool write_counters =
      !staged_counters_.empty() && commits_since_counter_flush_ + 1 >= kCounterFlushCommits;
  if (write_counters) {
    if (int rc = WriteCounters(staged_counters_, staged_seq_ - 1); rc != SQLITE_DONE) {
      return fail(rc, "update receipt counters");
    }
  }
  // sale_ids in bulk (internal.h): many sorted keys per page instead of a random index
  // page per sale, one part of the key range per commit.
  if (id_keys_through_ == 0 &&
      static_cast<int64_t>(recent_ids_->size()) >= options_.id_keys_flush_rows) {
    id_keys_through_ = staged_seq_ - 1;  // through this group's rows
    id_keys_part_ = 0;
  }
  const bool write_id_keys = id_keys_through_ > 0;
  if (write_id_keys) {
    if (int rc = WriteIdKeys(id_keys_through_, id_keys_part_, kIdKeyParts); rc != SQLITE_DONE) {
      return fail(rc, "write sale_ids");
    }
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
  if (write_id_keys && ++id_keys_part_ == kIdKeyParts) {
    recent_ids_->DropThrough(id_keys_through_);
    id_keys_through_ = 0;
  }
  if (write_counters) {
    commits_since_counter_flush_ = 0;
  } else if (!staged_counters_.empty()) {
    ++commits_since_counter_flush_;
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

int SqliteJournal::WriteCounters(const std::map<std::string, int64_t>& staged,
                                 int64_t through_seq) {
  WriterStatements& s = *wstmts_;
  auto upsert = [&](const std::string& terminal_id, int64_t counter) {
    ResetOnExit reset(s.upsert_terminal);
    BindText(s.upsert_terminal, 1, terminal_id);
    sqlite3_bind_int64(s.upsert_terminal, 2, counter);
    return sqlite3_step(s.upsert_terminal);
  };
  for (const auto& [terminal_id, counter] : terminal_counters_) {
    if (staged.count(terminal_id) != 0) continue;
    if (int rc = upsert(terminal_id, counter); rc != SQLITE_DONE) return rc;
  }
  for (const auto& [terminal_id, counter] : staged) {
    if (int rc = upsert(terminal_id, counter); rc != SQLITE_DONE) return rc;
  }
  ResetOnExit reset(s.meta_put);
  BindText(s.meta_put, 1, "counters_seq");
  BindText(s.meta_put, 2, std::to_string(through_seq));
  return sqlite3_step(s.meta_put);
}

int SqliteJournal::WriteIdKeys(int64_t through_seq, int part, int parts) {
  WriterStatements& s = *wstmts_;
  Result<int64_t> read = ReadIdsIndexedSeq(wdb_);
  if (!read.ok()) {
    const int rc = sqlite3_errcode(wdb_);
    return rc != SQLITE_OK ? rc : SQLITE_ERROR;
  }
  const int64_t indexed = *read;
  for (const auto& [hash, seq] : recent_ids_->Between(indexed, through_seq, part, parts)) {
    ResetOnExit reset(s.id_keys_insert);
    sqlite3_bind_int64(s.id_keys_insert, 1, hash);
    sqlite3_bind_int64(s.id_keys_insert, 2, seq);
    if (int rc = sqlite3_step(s.id_keys_insert); rc != SQLITE_DONE) return rc;
  }
  // Only the last part makes the keys count, and never backwards (a Prune since may have
  // written them all and moved it further).
  if (part != parts - 1 || through_seq <= indexed) return SQLITE_DONE;
  ResetOnExit reset(s.meta_put);
  BindText(s.meta_put, 1, kIdsIndexedSeqKey);
  BindText(s.meta_put, 2, std::to_string(through_seq));
  return sqlite3_step(s.meta_put);
}

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

}  // namespace machub::journal
