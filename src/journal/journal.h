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
#include <vector>

#include "core/clock.h"
#include "core/metrics.h"
#include "core/sale.h"
#include "core/status.h"

namespace machub::journal {

struct JournalOptions {
  std::string path;                 // the SQLite database file; its folder must exist
  std::string store_id = "S001";    // seeds the chain's genesis hash
  int64_t clock_skew_bound_ms = 5 * 60 * 1000;
  int max_group = 512;              // most sales in one commit
  bool group_commit = true;         // false: one transaction per sale (benchmark baseline)
  int64_t checkpoint_interval_ms = 1000;
  const core::Clock* clock = nullptr;         // null: the system clock
  core::MetricsRegistry* metrics = nullptr;   // null: no metrics
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
  std::string hash;    // 32 raw bytes
  int64_t received_at_ms = 0;
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
  // kStorageUnavailable when the commit failed or the journal is closed.
  virtual void Append(core::Sale sale, AppendCallback done) = 0;
  std::future<Result<Receipt>> Append(core::Sale sale);

  // Thread-safe reads from a read-only connection.
  virtual Result<std::optional<core::StoredSale>> Get(const std::string& id) = 0;
  virtual Result<std::vector<core::StoredSale>> List(int64_t after_seq, int limit) = 0;
  virtual Result<JournalStats> Stats() = 0;

  // Walks the whole chain from the genesis hash: seq gapless from 1, every hash equal to
  // SHA-256(prev || record). Returns the number of sales checked.
  virtual Result<int64_t> VerifyChain() = 0;
  // PRAGMA integrity_check == "ok".
  virtual Status IntegrityCheck() = 0;

  // OK while the last commit (or, before any, the open) succeeded; kStorageUnavailable
  // after a failed commit until one succeeds again. Cheap; for /healthz.
  virtual Status Health() const = 0;

  // Drains queued appends (each completes), stops the threads, closes connections.
  // Appends after Close complete with kStorageUnavailable. Idempotent.
  virtual void Close() = 0;
};

}  // namespace machub::journal
