#pragma once
// DynamoSink: the second sink of the journal. Copies every journal entry, in seq order,
// into the DynamoDB sales table (dynamo_items.h), exactly once, with its own progress,
// independent of the S3 uploader (docs/DYNAMODB.md).
//
// Progress (DynamoProgress, kept by a DynamoProgressStore, durable):
//   cursor    every entry with seq <= cursor is in the table;
//   inflight  >= cursor: entries in (cursor, inflight] may have been written already (a
//             batch was sent, its cursor move not yet recorded).
// One step: read up to `read_chunk` entries after the cursor; record inflight = the last
// of them (durable) BEFORE any write; write them with BatchWriteItem, 25 a request,
// retrying UnprocessedItems with full-jitter backoff; then record cursor = inflight.
// After a crash anywhere in between, the entries of (cursor, inflight] are rewritten with
// conditional PutItem ("attribute_not_exists(seq) OR entry_hash = :h"): an identical item
// is accepted (keys and items are deterministic: no duplicate), a different item under the
// same key fails the condition and raises an integrity alert: the sink stops (state
// "integrity_alert", the item is not overwritten) until an operator looks. No entry is ever
// skipped: the cursor only moves over entries known to be in the table.
//
// Failures: throttling and 5xx and network errors back off with full jitter (base
// backoff_base_ms, cap backoff_cap_ms) and retry forever; auth and validation errors are
// shown in status (state "error", last_error) and retried every error_retry_ms, nothing is
// dropped. The sink runs on its own thread and only reads the journal (List, Stats): it
// never blocks the journal writer.
//
// Pruning: the journal must keep every entry above cursor(); the wiring passes the sink's
// cursor to the pruner (PruneLimit).
//
// Threads: Start() runs the loop on an owned thread; Stop() ends it (a request in flight is
// cancelled through the client's cancel flag when the client was built with cancel_flag()).
// Step() runs one step on the calling thread (tests). status() is thread-safe.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "cloud/dynamodb_client.h"
#include "core/clock.h"
#include "core/status.h"
#include "journal/sale_journal.h"
#include "sync/backoff.h"

namespace machub::sync {

struct DynamoProgress {
  int64_t cursor = 0;
  int64_t inflight = 0;
};

class DynamoProgressStore {
 public:
  virtual ~DynamoProgressStore() = default;
  virtual Result<DynamoProgress> Load() = 0;
  // Durable when it returns OK.
  virtual Status Save(const DynamoProgress& progress) = 0;
};

// The progress in a small file ("<cursor> <inflight>\n"), replaced atomically: written to
// "<path>.tmp", fsync'd, renamed over `path`, the folder fsync'd. A missing file is {0, 0}.
// Kept beside the journal (the data folder) until the journal carries per-sink cursors.
class FileDynamoProgressStore final : public DynamoProgressStore {
 public:
  explicit FileDynamoProgressStore(std::string path) : path_(std::move(path)) {}
  Result<DynamoProgress> Load() override;
  Status Save(const DynamoProgress& progress) override;

 private:
  std::string path_;
};

struct DynamoSinkOptions {
  std::string store_id;
  std::string sales_table = "machub-sales";
  int read_chunk = 500;  // entries read from the journal per step
  int64_t max_item_bytes = 350 * 1024;
  int64_t backoff_base_ms = 100;
  int64_t backoff_cap_ms = 20000;
  int64_t error_retry_ms = 60000;      // auth/validation errors: next try after this
  int64_t idle_poll_ms = 1000;         // nothing to write: look again after this
  const core::Clock* clock = nullptr;  // null: the system clock
  RandomSource random;                 // empty: DefaultRandomSource()
};

struct DynamoSinkStatus {
  std::string state = "idle";  // idle | ok | retrying | error | integrity_alert
  int64_t cursor = 0;
  int64_t inflight = 0;
  int64_t last_seq = 0;          // the journal's, at the last step
  int64_t written = 0;           // items written since start (replays included)
  int64_t replayed = 0;          // items rewritten conditionally after a restart
  int64_t unprocessed = 0;       // UnprocessedItems sent again
  int64_t throttled = 0;         // throttling answers
  int64_t retryable_errors = 0;  // throttling, 5xx, network
  int64_t oversized = 0;         // items written with lines/payments omitted
  int64_t last_success_ms = 0;
  std::string last_error;  // never a secret
  int64_t backlog() const { return last_seq > cursor ? last_seq - cursor : 0; }
};

class DynamoSink {
 public:
  // None of the pointers is owned; all must outlive the sink.
  DynamoSink(DynamoSinkOptions options, journal::SaleJournal* journal,
             cloud::DynamoDbClient* client, DynamoProgressStore* progress);
  ~DynamoSink();  // Stop()

  // One step (see above). Returns the number of entries the cursor moved over (0: nothing
  // to do), or the error that stopped the step (retryable ones after the in-step retries
  // were exhausted: max_attempts per request).
  Result<int64_t> Step(int max_attempts = 8);

  void Start();
  void Stop();

  DynamoSinkStatus status() const;
  // Every entry above this seq must stay in the journal.
  int64_t PruneLimit() const;

 private:
  Status Load();
  Status WriteBatch(const std::vector<nlohmann::json>& items, int max_attempts);
  Status WriteConditional(const nlohmann::json& item, int max_attempts);
  void SleepMs(int64_t ms);
  void Fail(const Status& status, const cloud::DynamoError& error);
  void Run();

  DynamoSinkOptions options_;
  journal::SaleJournal* journal_;
  cloud::DynamoDbClient* client_;
  DynamoProgressStore* progress_store_;
  const core::Clock* clock_;
  bool loaded_ = false;
  DynamoProgress progress_;

  mutable std::mutex mutex_;  // guards status_, stop_
  std::condition_variable wake_;
  DynamoSinkStatus status_;
  bool stop_ = false;
  std::atomic<int64_t> prune_limit_{0};
  std::thread thread_;
};

}  // namespace machub::sync
