#pragma once
// The durable sale journal: SQLite in WAL mode with synchronous=FULL.
//
// Threads: one writer thread (owned by Journal) holds the only write connection. Append()
// may be called from any thread; it enqueues the sale and returns at once. The writer
// drains the queue, decides idempotency and runs the whole group in ONE transaction
// (one WAL fsync for many sales), and only after COMMIT returns calls every callback,
// on the writer thread. A callback must be quick (post the answer to an I/O thread).
// Reads (Get, List, Stats) use read-only connections, one per calling thread, and never
// wait for the writer. Checkpoints run on their own thread in PASSIVE mode so they do
// not stall commits (docs/JOURNAL.md has the measurement).
//
// Errors: SQLITE_FULL, SQLITE_IOERR and friends become ErrorCode::kStorageUnavailable and
// the whole group is rolled back: nothing half-written, every waiter gets the error.

#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/metrics.h"
#include "core/sale.h"
#include "core/status.h"

namespace machub::journal {

struct JournalOptions {
  std::string path;               // the SQLite database file; its folder must exist
  std::string store_id = "S001";  // seeds the chain's genesis hash
  int64_t clock_skew_bound_ms = 5 * 60 * 1000;
  int max_group = 512;       // most sales in one commit
  bool group_commit = true;  // false: one transaction per sale (benchmark baseline)
  int64_t checkpoint_interval_ms = 1000;
  // How long an id stays in the id index after its sale was received, even when its row
  // was pruned (uploaded and old, or low disk): a retry within it is answered id_expired,
  // a refund of it ref_expired. Independent of sync.retention_days. At least 90 days.
  int64_t id_horizon_ms = int64_t{90} * 24 * 3600 * 1000;
  const core::Clock* clock = nullptr;        // null: the system clock
  core::MetricsRegistry* metrics = nullptr;  // null: no metrics
};

// What POST /v1/sales answers for a stored sale.
struct Receipt {
  bool created = false;  // true: inserted now (201); false: idempotent replay (200)
  std::string id;
  int64_t seq = 0;
  std::string receipt_no;
  int64_t total = 0;   // minor units
  int64_t change = 0;  // minor units
  std::string currency;
  std::string hash;  // 32 raw bytes
  int64_t received_at_ms = 0;
};

// ---- Upload bookkeeping (schema v2, v3), written and read by sync/ ----

enum class BatchState { kPending, kUploaded, kQuarantined };
std::string_view BatchStateName(BatchState state);  // "pending" | "uploaded" | "quarantined"

// One S3 object's worth of consecutive sales, recorded before its first upload attempt
// so that a retry (after a crash too) sends the same bytes to the same key.
struct BatchRecord {
  int64_t id = 0;  // assigned by RecordBatch
  int64_t first_seq = 0;
  int64_t last_seq = 0;         // inclusive; sales = last_seq - first_seq + 1
  std::string key;              // the object key
  std::string format;           // "jsonl" | "csv"
  int gzip_level = 0;           // part of the format's determinism
  int64_t raw_bytes = 0;        // uncompressed object body
  int64_t gz_bytes = 0;         // the object's size
  int64_t canonical_bytes = 0;  // sum of the sales' canonical bytes (backlog accounting)
  std::string sha256_hex;       // of the object (gzip) bytes, lower-case hex
  std::string md5_hex;          // of the object bytes: the ETag of a single-part PUT
  int64_t created_at_ms = 0;
  BatchState state = BatchState::kPending;
  int64_t attempts = 0;  // failed upload attempts so far
  std::string last_error;
  int64_t uploaded_at_ms = 0;  // 0 unless uploaded

  int64_t sales() const { return last_seq - first_seq + 1; }
};

// Where the journal stands for the uploader; every field is cheap to compute.
struct SyncBounds {
  int64_t last_seq = 0;  // 0: no sale was ever stored
  int64_t last_received_at_ms = 0;
  // Sales up to anchor_seq were pruned (0: none); anchor_hash is the hash of sale
  // anchor_seq (32 raw bytes), or the genesis hash when anchor_seq is 0.
  int64_t anchor_seq = 0;
  std::string anchor_hash;
  // The next batch starts at batched_seq + 1: max(last_seq of any batch, anchor_seq).
  int64_t batched_seq = 0;
  // The oldest sale not uploaded (0: none) and its received_at.
  int64_t oldest_unuploaded_seq = 0;
  int64_t oldest_unuploaded_received_at_ms = 0;
  int64_t free_disk_bytes = 0;   // on the journal's filesystem
  int64_t total_disk_bytes = 0;  // size of that filesystem
};

// What Prune may delete: uploaded sales, oldest first, as one prefix of the journal.
struct PruneRequest {
  // Only sales received before this time (ms since the epoch); ignored with ignore_age.
  int64_t received_before_ms = 0;
  bool ignore_age = false;   // low disk: every uploaded sale is a candidate
  int64_t max_sales = 5000;  // at most this many in this call (one short transaction)
};

struct PruneResult {
  int64_t pruned = 0;      // sales deleted by this call
  int64_t anchor_seq = 0;  // the chain anchor after it
};

struct JournalStats {
  int64_t last_seq = 0;
  int64_t sales = 0;
  int64_t size_bytes = 0;       // database + WAL files
  int64_t free_disk_bytes = 0;  // on the journal's filesystem
  int64_t commits = 0;          // transactions committed since Open
};

class Journal {
 public:
  // Opens (creating if needed) and migrates the database, starts the writer and
  // checkpointer threads.
  static Result<std::unique_ptr<Journal>> Open(const JournalOptions& options);

  virtual ~Journal() = default;

  using AppendCallback = std::function<void(Result<Receipt>)>;

  // Thread-safe. `sale` must come from core::DecodeSale. The callback runs exactly once:
  // Receipt on success (created or replay); kIdConflict for the same id with a different
  // canonical body; kInvalidField (field "ref") when a refund/void names an unknown sale;
  // the refund rules' codes (core/refund_rules.h) when a refund/void breaks them;
  // kIdExpired when the id's row was pruned but the id is still in the id index, and
  // kRefExpired when a refund/void names such a sale (id_horizon_ms);
  // kStorageUnavailable when the commit failed or the journal is closed.
  virtual void Append(core::Sale sale, AppendCallback done) = 0;
  std::future<Result<Receipt>> Append(core::Sale sale);

  // Thread-safe reads from a read-only connection.
  virtual Result<std::optional<core::StoredSale>> Get(const std::string& id) = 0;
  virtual Result<std::vector<core::StoredSale>> List(int64_t after_seq, int limit) = 0;
  virtual Result<JournalStats> Stats() = 0;

  // Walks the whole chain from the genesis hash (or, after Prune, from the chain anchor):
  // seq gapless from 1 (or anchor + 1), every hash equal to SHA-256(prev || record).
  // Returns the number of sales checked.
  virtual Result<int64_t> VerifyChain() = 0;
  // PRAGMA integrity_check == "ok".
  virtual Status IntegrityCheck() = 0;

  // OK while the last commit (or, before any, the open) succeeded; kStorageUnavailable
  // after a failed commit until one succeeds again. Cheap; for /healthz.
  virtual Status Health() const = 0;

  // ---- Upload bookkeeping (used by sync/; schema v2). ----
  // Writes run on the writer thread between two groups, each in its own transaction, so
  // sale commits never meet a second writer; the call blocks the CALLING thread until that
  // transaction committed (never call them from an Append callback). Reads use read-only
  // connections. After Close every call returns kStorageUnavailable. The defaults below
  // answer kInternal ("not supported"): test fakes need not implement them.

  virtual Result<SyncBounds> GetSyncBounds();
  // Sum of the canonical bytes of the sales with after_seq < seq <= upto_seq.
  virtual Result<int64_t> CanonicalBytes(int64_t after_seq, int64_t upto_seq);
  // Batches in first_seq order: with unfinished_only, the pending and quarantined ones;
  // otherwise those with first_seq > after_first_seq, at most `limit`.
  virtual Result<std::vector<BatchRecord>> ListBatches(bool unfinished_only,
                                                       int64_t after_first_seq = 0,
                                                       int limit = 1000);
  // Records a new pending batch; returns it with its id. The batch must start right
  // after GetSyncBounds().batched_seq and end at a stored sale (kInvalidArgument
  // otherwise, e.g. when another process recorded one first). Recording the same range
  // and key again returns the existing record (idempotent).
  virtual Result<BatchRecord> RecordBatch(const BatchRecord& batch);
  // Counts one failed attempt and keeps its error (state unchanged).
  virtual Status RecordBatchFailure(int64_t batch_id, const std::string& error);
  // Replaces the recorded object hashes and sizes of a PENDING batch (the re-encoding
  // after an upgrade gave other gzip bytes and no object exists yet).
  virtual Status UpdateBatchObject(int64_t batch_id, int64_t raw_bytes, int64_t gz_bytes,
                                   const std::string& sha256_hex, const std::string& md5_hex);
  // The batch becomes "uploaded", and with it its sales: a sale is uploaded iff an
  // uploaded batch covers its seq (schema v3; no sale row is written). One short writer
  // transaction whatever the batch size, committed without an fsync of its own (the next
  // durable commit covers it; a mark lost in a power cut is redone on the retried upload).
  // Idempotent; kNotFound for an unknown batch, kInvalidArgument for a quarantined one.
  virtual Status MarkBatchUploaded(int64_t batch_id, int64_t uploaded_at_ms);
  // The batch becomes "quarantined" with `error`; its sales stay not uploaded (so they
  // are never pruned).
  virtual Status MarkBatchQuarantined(int64_t batch_id, const std::string& error);
  // Operator action after a quarantine was resolved (the foreign object removed or moved
  // away): the quarantined batch becomes pending again, attempts and error cleared, and the
  // uploader retries it. kNotFound when it is not quarantined.
  virtual Status RequeueBatch(int64_t batch_id);
  // Deletes a prefix of uploaded sales (see PruneRequest), never the newest sale, never a
  // sale that a kept refund/void refers to (nor anything after it), and the uploaded
  // batches that lie wholly inside the prefix. The hash of the last deleted sale becomes
  // the chain anchor (meta), where VerifyChain and the gapless check start. A pruned
  // sale's id is forgotten: a refund naming it is refused (unknown ref) and a retry with
  // its id would be stored anew, so retention must outlast any terminal's retry horizon.
  virtual Result<PruneResult> Prune(const PruneRequest& request);

  // Drains queued appends (each completes), stops the threads, closes connections.
  // Appends after Close complete with kStorageUnavailable. Idempotent.
  virtual void Close() = 0;
};

}  // namespace machub::journal
