// The checkpointer thread and the writer's catch-up checkpoint (sqlite_journal.h has
// the design).

#include <sqlite3.h>

#include <chrono>
#include <mutex>
#include <string>

#include "core/log.h"
#include "journal/internal.h"

namespace machub::journal {

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

// Called by SQLite after every commit on the writer connection, on the committing thread
// (commits are serialised), with the WAL's length in frames. A length below the last one
// means the commit rewound the WAL and its frames are all new.
int SqliteJournal::WalHook(void* journal, sqlite3* /*db*/, const char* /*name*/, int frames) {
  auto* self = static_cast<SqliteJournal*>(journal);
  const int last = self->wal_frames_last_.exchange(frames, std::memory_order_relaxed);
  self->wal_frames_added_.fetch_add(frames >= last ? frames - last : frames,
                                    std::memory_order_relaxed);
  return SQLITE_OK;
}

bool SqliteJournal::DeferCheckpoint(int64_t wal_bytes, int64_t waited_us) const {
  if (options_.checkpoint_min_wal_bytes <= 0) return false;
  return wal_bytes < options_.checkpoint_min_wal_bytes &&
         waited_us < options_.checkpoint_max_age_ms * 1000;
}

void SqliteJournal::CheckpointLoop() {
  std::unique_lock<std::mutex> lock(ckpt_mu_);
  int64_t checkpointed_commits = 0;
  int64_t waiting_since_us = -1;  // when this tick's oldest uncopied commit was first seen
  const auto interval = std::chrono::milliseconds(options_.checkpoint_interval_ms);
  while (!ckpt_cv_.wait_for(lock, interval, [&] { return ckpt_stop_; })) {
    const int64_t commits = commits_.load();
    if (commits == checkpointed_commits) {  // no new WAL frames since last time
      waiting_since_us = -1;
      continue;
    }
    const int64_t now_us = clock_->MonotonicUs();
    if (waiting_since_us < 0) waiting_since_us = now_us;
    const int64_t added = wal_frames_added_.load(std::memory_order_relaxed);
    if (DeferCheckpoint(added * wal_frame_bytes_, now_us - waiting_since_us)) continue;
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
      // Frames appended during the run count towards the next one.
      wal_frames_added_.fetch_sub(added, std::memory_order_relaxed);
      waiting_since_us = commits_.load() == checkpointed_commits ? -1 : clock_->MonotonicUs();
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

}  // namespace machub::journal
