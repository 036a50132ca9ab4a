// The Ledger side of SqliteJournal: bounds, batches, sink progress cursors, pruning.
// Writes go through RunWriterTransaction (writer.cc): the writer thread, between
// two sale groups.

#include <sqlite3.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>

#include "core/sha256.h"
#include "journal/internal.h"

namespace machub::journal {
namespace {

BatchState ParseBatchState(std::string_view text) {
  if (text == "uploaded") return BatchState::kUploaded;
  if (text == "quarantined") return BatchState::kQuarantined;
  return BatchState::kPending;
}

constexpr std::string_view kBatchColumns =
    "SELECT id, first_seq, last_seq, object_key, format, gzip_level, raw_bytes, gz_bytes, "
    "canonical_bytes, sha256, md5, created_at_ms, state, attempts, last_error, "
    "coalesce(uploaded_at_ms, 0) FROM batches ";

bool ValidSinkName(const std::string& sink) {
  if (sink.empty() || sink.size() > 64) return false;
  return std::all_of(sink.begin(), sink.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
  });
}

Status BadSinkName() {
  return Status(ErrorCode::kInvalidArgument,
                "journal: a sink name is 1 to 64 characters of a-z, 0-9, '_', '.', '-'");
}

constexpr std::string_view kSinkColumns =
    "SELECT sink, delivered_seq, active, updated_at_ms FROM sink_progress ";

SinkProgress RowToSink(sqlite3_stmt* stmt) {
  SinkProgress p;
  p.sink = ColumnText(stmt, 0);
  p.delivered_seq = sqlite3_column_int64(stmt, 1);
  p.active = sqlite3_column_int(stmt, 2) != 0;
  p.updated_at_ms = sqlite3_column_int64(stmt, 3);
  return p;
}

// One sink's row on `db`; kNotFound when it was never registered.
Result<SinkProgress> ReadSink(sqlite3* db, const std::string& sink) {
  Stmt stmt(db, std::string(kSinkColumns) + "WHERE sink = ?1");
  if (stmt.prepare_rc() != SQLITE_OK) return SqliteError(db, stmt.prepare_rc(), "sink progress");
  BindText(stmt.get(), 1, sink);
  int rc = sqlite3_step(stmt.get());
  if (rc == SQLITE_ROW) return RowToSink(stmt.get());
  if (rc != SQLITE_DONE) return SqliteError(db, rc, "sink progress");
  return Status(ErrorCode::kNotFound, "journal: no sink \"" + sink + "\" is registered");
}

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

}  // namespace

Result<SyncBounds> SqliteJournal::GetSyncBounds() {
  SyncBounds bounds;
  {
    ASSIGN_OR_RETURN(ReadLease conn, AcquireRead());
    sqlite3* db = conn->db;
    int brc = Exec(db, "BEGIN");  // one snapshot for all the figures
    if (brc != SQLITE_OK) return SqliteError(db, brc, "sync bounds");
    EndRead end_read{db};
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
  const DiskSpace disk = DiskSpaceOf(options_.path);
  bounds.free_disk_bytes = disk.free_bytes;
  bounds.total_disk_bytes = disk.total_bytes;
  return bounds;
}

Result<int64_t> SqliteJournal::CanonicalBytes(int64_t after_seq, int64_t upto_seq) {
  if (upto_seq <= after_seq) return int64_t{0};
  ASSIGN_OR_RETURN(ReadLease conn, AcquireRead());
  // canonical_size(): the header's length of a packed row, the bytes of a TEXT one.
  ASSIGN_OR_RETURN(sqlite3_stmt * stmt,
                   conn->Prepare("SELECT coalesce(sum(canonical_size(canonical)), 0) "
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

// ---- Sink progress cursors ----

Result<SinkProgress> SqliteJournal::RegisterSink(const std::string& sink) {
  if (!ValidSinkName(sink)) return BadSinkName();
  SinkProgress progress;
  const int64_t now_ms = clock_->NowMs();
  Status status = RunWriterTransaction([&](sqlite3* db) -> Status {
    Stmt upsert(db,
                "INSERT INTO sink_progress(sink, delivered_seq, active, updated_at_ms) "
                "VALUES(?1, 0, 1, ?2) ON CONFLICT(sink) DO UPDATE SET active = 1, "
                "updated_at_ms = CASE WHEN active = 1 THEN updated_at_ms ELSE ?2 END");
    if (upsert.prepare_rc() != SQLITE_OK) {
      return SqliteError(db, upsert.prepare_rc(), "register sink");
    }
    BindText(upsert.get(), 1, sink);
    sqlite3_bind_int64(upsert.get(), 2, now_ms);
    RETURN_IF_ERROR(StepDone(db, upsert.get(), "register sink"));
    ASSIGN_OR_RETURN(progress, ReadSink(db, sink));
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return progress;
}

Status SqliteJournal::AdvanceSinkProgress(const std::string& sink, int64_t delivered_seq) {
  if (!ValidSinkName(sink)) return BadSinkName();
  if (delivered_seq < 0) {
    return Status(ErrorCode::kInvalidArgument, "journal: a delivered seq is never negative");
  }
  const int64_t now_ms = clock_->NowMs();
  return RunWriterTransaction([&](sqlite3* db) -> Status {
    ASSIGN_OR_RETURN(SinkProgress current, ReadSink(db, sink));
    if (!current.active) {
      return Status(ErrorCode::kNotFound, "journal: sink \"" + sink + "\" is retired");
    }
    if (delivered_seq <= current.delivered_seq) return Status::Ok();  // monotonic
    bool found = false;
    Stmt last(db, "SELECT max(seq) FROM sales");
    ASSIGN_OR_RETURN(int64_t last_seq, QueryOptionalInt(db, last.get(), &found, "sink progress"));
    if (!found) {
      ASSIGN_OR_RETURN(Anchor anchor, ReadAnchor(db, genesis_));
      last_seq = anchor.seq;
    }
    if (delivered_seq > last_seq) {
      return Status(ErrorCode::kInvalidArgument,
                    "journal: sink \"" + sink + "\" cannot have delivered seq " +
                        std::to_string(delivered_seq) + ": the last stored entry is " +
                        std::to_string(last_seq));
    }
    Stmt update(db,
                "UPDATE sink_progress SET delivered_seq = ?2, updated_at_ms = ?3 "
                "WHERE sink = ?1 AND delivered_seq < ?2");
    if (update.prepare_rc() != SQLITE_OK) {
      return SqliteError(db, update.prepare_rc(), "advance sink");
    }
    BindText(update.get(), 1, sink);
    sqlite3_bind_int64(update.get(), 2, delivered_seq);
    sqlite3_bind_int64(update.get(), 3, now_ms);
    return StepDone(db, update.get(), "advance sink");
  });
}

Result<SinkProgress> SqliteJournal::GetSinkProgress(const std::string& sink) {
  if (!ValidSinkName(sink)) return BadSinkName();
  ASSIGN_OR_RETURN(ReadLease conn, AcquireRead());
  static const std::string kSql = std::string(kSinkColumns) + "WHERE sink = ?1";
  ASSIGN_OR_RETURN(sqlite3_stmt * stmt, conn->Prepare(kSql));
  ResetOnExit reset(stmt);
  BindText(stmt, 1, sink);
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) return RowToSink(stmt);
  if (rc != SQLITE_DONE) return SqliteError(conn->db, rc, "sink progress");
  return Status(ErrorCode::kNotFound, "journal: no sink \"" + sink + "\" is registered");
}

Result<std::vector<SinkProgress>> SqliteJournal::ListSinks() {
  std::vector<SinkProgress> out;
  ASSIGN_OR_RETURN(ReadLease conn, AcquireRead());
  static const std::string kSql = std::string(kSinkColumns) + "ORDER BY sink";
  ASSIGN_OR_RETURN(sqlite3_stmt * stmt, conn->Prepare(kSql));
  ResetOnExit reset(stmt);
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) out.push_back(RowToSink(stmt));
  if (rc != SQLITE_DONE) return SqliteError(conn->db, rc, "list sinks");
  return out;
}

Status SqliteJournal::RetireSink(const std::string& sink) {
  if (!ValidSinkName(sink)) return BadSinkName();
  const int64_t now_ms = clock_->NowMs();
  return RunWriterTransaction([&](sqlite3* db) -> Status {
    ASSIGN_OR_RETURN(SinkProgress current, ReadSink(db, sink));
    if (!current.active) return Status::Ok();
    Stmt update(db, "UPDATE sink_progress SET active = 0, updated_at_ms = ?2 WHERE sink = ?1");
    if (update.prepare_rc() != SQLITE_OK) {
      return SqliteError(db, update.prepare_rc(), "retire sink");
    }
    BindText(update.get(), 1, sink);
    sqlite3_bind_int64(update.get(), 2, now_ms);
    return StepDone(db, update.get(), "retire sink");
  });
}

// ---- Pruning ----

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
    {
      // Nor past what any active sink cursor has delivered.
      Stmt cursor(db, "SELECT min(delivered_seq) FROM sink_progress WHERE active = 1");
      ASSIGN_OR_RETURN(int64_t delivered, QueryOptionalInt(db, cursor.get(), &found, "prune"));
      if (found) upto = std::min(upto, delivered);
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
    // sale_ids takes every row (internal.h), for the refund check below and so that the
    // rows deleted here can be taken out of it. The in-memory recent ids stay: a stale
    // entry is harmless, and the next bulk write of a group drops them.
    if (upto > anchor.seq) {
      if (int rc = WriteIdKeys(last_seq, 0, 1); rc != SQLITE_DONE) {
        return SqliteError(db, rc, "prune: write sale_ids");
      }
    }
    // A refund or void that stays must still find its original (append.cc checks it):
    // stop before the oldest sale that a kept one refers to. Lowering `upto` keeps more
    // sales, which may refer to older ones still, hence the loop.
    while (upto > anchor.seq) {
      Stmt stmt(db,
                "SELECT min(p.seq) FROM sales c JOIN sale_ids k ON k.id_hash = id_hash(c.ref) "
                "JOIN sales p ON p.seq = k.seq AND p.id = c.ref "
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
      // The rows about to go may hold receipts the terminals table does not count yet
      // (WriteCounters): write it first, from the writer's state (this runs on the writer
      // thread, between groups).
      if (!state_valid_) RETURN_IF_ERROR(LoadState());
      if (int rc = WriteCounters({}, next_seq_ - 1); rc != SQLITE_DONE) {
        return SqliteError(db, rc, "prune: receipt counters");
      }
    }
    {
      // The id index takes over from the rows it outlives (the append path looks in
      // `sales` first): one insert per sale here, in one transaction with the delete, and
      // none on the hot path. Journals from before kept an ids row for every sale.
      Stmt stmt(db,
                "INSERT OR IGNORE INTO ids(id, seq, hash, received_at_ms) "
                "SELECT id, seq, hash, received_at_ms FROM sales "
                "WHERE seq > ?1 AND seq <= ?2 AND received_at_ms >= ?3");
      sqlite3_bind_int64(stmt.get(), 1, anchor.seq);
      sqlite3_bind_int64(stmt.get(), 2, upto);
      sqlite3_bind_int64(stmt.get(), 3, clock_->NowMs() - options_.id_horizon_ms);
      RETURN_IF_ERROR(StepDone(db, stmt.get(), "prune: keep ids"));
    }
    {
      Stmt stmt(db,
                "DELETE FROM sale_ids WHERE (id_hash, seq) IN "
                "(SELECT id_hash(id), seq FROM sales WHERE seq > ?1 AND seq <= ?2)");
      sqlite3_bind_int64(stmt.get(), 1, anchor.seq);
      sqlite3_bind_int64(stmt.get(), 2, upto);
      RETURN_IF_ERROR(StepDone(db, stmt.get(), "prune sale_ids"));
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

}  // namespace machub::journal
