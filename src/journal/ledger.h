#pragma once
// Ledger: what a sink (a component that delivers the journal's entries somewhere else:
// sync/ to an object store today) needs from the journal: read the entries, keep its
// delivery progress, and let the journal prune what every sink has delivered.
//
// Two kinds of progress live here, both durable in the journal's own file:
//   - batches: an object-store sink cuts consecutive entries into batches (one object
//     each), records each batch before its first delivery attempt so a retry, after a
//     crash too, sends the same bytes under the same key, and marks it delivered. An
//     entry is "uploaded" iff a delivered batch covers its seq.
//   - sink progress cursors: any other sink keeps one number, the highest seq it has
//     durably delivered (RegisterSink, AdvanceSinkProgress). A new sink needs a folder
//     of its own and RegisterSink at wiring time; the journal does not change.
// Prune deletes a prefix of entries that the batches AND every active cursor have
// delivered (and nothing a kept entry still refers to).
//
// Threads: every method is thread-safe. Writes run on the journal's writer thread between
// two sale groups, each in its own transaction, so sale commits never meet a second
// writer; a write blocks the CALLING thread until its transaction committed (never call
// one from an Append callback). Reads use read-only connections.
// Errors: kStorageUnavailable when the storage failed or the journal is closed;
// kInvalidArgument / kNotFound as documented per method.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/sale.h"
#include "core/status.h"

namespace machub::journal {

enum class BatchState { kPending, kUploaded, kQuarantined };
std::string_view BatchStateName(BatchState state);  // "pending" | "uploaded" | "quarantined"

// One object's worth of consecutive entries, recorded before its first delivery attempt.
struct BatchRecord {
  int64_t id = 0;  // assigned by RecordBatch
  int64_t first_seq = 0;
  int64_t last_seq = 0;         // inclusive; entries = last_seq - first_seq + 1
  std::string key;              // the object key
  std::string format;           // the encoding, e.g. "jsonl" | "csv"
  int gzip_level = 0;           // part of the format's determinism
  int64_t raw_bytes = 0;        // uncompressed object body
  int64_t gz_bytes = 0;         // the object's size
  int64_t canonical_bytes = 0;  // sum of the entries' canonical bytes (backlog accounting)
  std::string sha256_hex;       // SHA-256 of the object's bytes, lower-case hex
  std::string md5_hex;          // MD5 content digest of the object's bytes, lower-case hex
  int64_t created_at_ms = 0;
  BatchState state = BatchState::kPending;
  int64_t attempts = 0;  // failed delivery attempts so far
  std::string last_error;
  int64_t uploaded_at_ms = 0;  // 0 unless delivered

  int64_t sales() const { return last_seq - first_seq + 1; }
};

// Where the journal stands for a sink; every field is cheap to compute.
struct SyncBounds {
  int64_t last_seq = 0;  // 0: no entry was ever stored
  int64_t last_received_at_ms = 0;
  // Entries up to anchor_seq were pruned (0: none); anchor_hash is the hash of entry
  // anchor_seq (32 raw bytes), or the genesis hash when anchor_seq is 0.
  int64_t anchor_seq = 0;
  std::string anchor_hash;
  // The next batch starts at batched_seq + 1: max(last_seq of any batch, anchor_seq).
  int64_t batched_seq = 0;
  // The oldest entry no delivered batch covers (0: none) and its received_at.
  int64_t oldest_unuploaded_seq = 0;
  int64_t oldest_unuploaded_received_at_ms = 0;
  int64_t free_disk_bytes = 0;   // on the journal's filesystem
  int64_t total_disk_bytes = 0;  // size of that filesystem
};

// What Prune may delete: delivered entries, oldest first, as one prefix of the journal.
struct PruneRequest {
  // Only entries received before this time (ms since the epoch); ignored with ignore_age.
  int64_t received_before_ms = 0;
  bool ignore_age = false;   // low disk: every delivered entry is a candidate
  int64_t max_sales = 5000;  // at most this many in this call (one short transaction)
};

struct PruneResult {
  int64_t pruned = 0;      // entries deleted by this call
  int64_t anchor_seq = 0;  // the chain anchor after it
};

// One sink's progress cursor.
struct SinkProgress {
  std::string sink;
  int64_t delivered_seq = 0;  // every entry with seq <= this was durably delivered
  bool active = true;         // false after RetireSink: Prune no longer waits for it
  int64_t updated_at_ms = 0;  // last RegisterSink/AdvanceSinkProgress that changed it
};

class Ledger {
 public:
  virtual ~Ledger() = default;

  // ---- Entries and bounds (reads) ----
  // Entries with seq > after_seq in seq order, at most `limit` (limit <= 0: none).
  virtual Result<std::vector<core::StoredSale>> List(int64_t after_seq, int limit) = 0;
  virtual Result<SyncBounds> GetSyncBounds() = 0;
  // Sum of the canonical bytes of the entries with after_seq < seq <= upto_seq.
  virtual Result<int64_t> CanonicalBytes(int64_t after_seq, int64_t upto_seq) = 0;

  // ---- Batches (an object-store sink's progress) ----
  // Batches in first_seq order: with unfinished_only, the pending and quarantined ones;
  // otherwise those with first_seq > after_first_seq, at most `limit`.
  virtual Result<std::vector<BatchRecord>> ListBatches(bool unfinished_only,
                                                       int64_t after_first_seq = 0,
                                                       int limit = 1000) = 0;
  // Records a new pending batch; returns it with its id. The batch must start right
  // after GetSyncBounds().batched_seq and end at a stored entry (kInvalidArgument
  // otherwise, e.g. when another process recorded one first). Recording the same range
  // and key again returns the existing record (idempotent).
  virtual Result<BatchRecord> RecordBatch(const BatchRecord& batch) = 0;
  // Counts one failed attempt and keeps its error (state unchanged).
  virtual Status RecordBatchFailure(int64_t batch_id, const std::string& error) = 0;
  // Replaces the recorded object digests and sizes of a PENDING batch (the re-encoding
  // after an upgrade gave other gzip bytes and no object exists yet).
  virtual Status UpdateBatchObject(int64_t batch_id, int64_t raw_bytes, int64_t gz_bytes,
                                   const std::string& sha256_hex, const std::string& md5_hex) = 0;
  // The batch becomes "uploaded", and with it its entries. One short transaction whatever
  // the batch size, committed without an fsync of its own (the next durable commit covers
  // it; a mark lost in a power cut is redone when the delivery is retried, which the sink
  // must recognise as the same object by its recorded digest). Idempotent; kNotFound for
  // an unknown batch, kInvalidArgument for a quarantined one.
  virtual Status MarkBatchUploaded(int64_t batch_id, int64_t uploaded_at_ms) = 0;
  // The batch becomes "quarantined" with `error`; its entries stay not delivered (so they
  // are never pruned).
  virtual Status MarkBatchQuarantined(int64_t batch_id, const std::string& error) = 0;
  // Operator action after a quarantine was resolved: the quarantined batch becomes
  // pending again, attempts and error cleared. kNotFound when it is not quarantined.
  virtual Status RequeueBatch(int64_t batch_id) = 0;

  // ---- Sink progress cursors (any other sink's progress) ----
  // A sink name is 1..64 characters of [a-z0-9_.-] (kInvalidArgument otherwise).
  // Registers `sink` as active (a durable write): a new sink starts at delivered_seq 0,
  // a known one keeps its cursor (a retired one becomes active again). From this commit
  // on Prune keeps every entry the sink has not delivered. Register before the sink or
  // anything that prunes starts. Returns the sink's progress.
  virtual Result<SinkProgress> RegisterSink(const std::string& sink) = 0;
  // Moves the cursor forward to delivered_seq (a durable write); a lower or equal value
  // changes nothing (monotonic). kNotFound for a sink never registered or retired,
  // kInvalidArgument past the last stored entry.
  virtual Status AdvanceSinkProgress(const std::string& sink, int64_t delivered_seq) = 0;
  // kNotFound for a sink never registered.
  virtual Result<SinkProgress> GetSinkProgress(const std::string& sink) = 0;
  // Every registered sink (active or retired), by name.
  virtual Result<std::vector<SinkProgress>> ListSinks() = 0;
  // The sink is no longer active: Prune stops waiting for it (its cursor is kept).
  // kNotFound for a sink never registered; idempotent.
  virtual Status RetireSink(const std::string& sink) = 0;

  // ---- Pruning ----
  // Deletes a prefix of entries (see PruneRequest) that a delivered batch covers and
  // every active sink cursor has passed; never the newest entry, never one that a kept
  // refund/void refers to (nor anything after it); and the delivered batches that lie
  // wholly inside the prefix. The hash of the last deleted entry becomes the chain anchor,
  // where VerifyChain and the gapless check start. A pruned entry's id is forgotten: a
  // refund naming it is refused (unknown ref) and a retry with its id would be stored
  // anew, so retention must outlast any terminal's retry horizon.
  virtual Result<PruneResult> Prune(const PruneRequest& request) = 0;
};

}  // namespace machub::journal
