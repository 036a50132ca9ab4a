#pragma once
// DynamoSink: the second sink of the journal. Copies every journal entry, in seq order,
// into the DynamoDB sales table (dynamo_items.h), exactly once, with its own progress,
// independent of the S3 uploader (docs/DYNAMODB.md).
//
// Progress: the sink's cursor in the journal's Ledger (sink "dynamodb"): every entry with
// seq <= cursor is in the table; Prune keeps every entry above it. One step: read up to
// `read_chunk` entries after the cursor, write them with BatchWriteItem, 25 a request,
// retrying UnprocessedItems with full-jitter backoff, then advance the cursor (durable).
// Entries that may already have been written (the first chunk after a start: a crash
// may have come between a write and its cursor move; and a chunk whose step failed half
// way) are written with conditional PutItem instead ("attribute_not_exists(seq) OR
// entry_hash = :h"): an identical item is accepted (keys and items are deterministic: no
// duplicate), a different item under the same key fails the condition and raises an
// integrity alert: the sink stops (state "integrity_alert", the item is not overwritten)
// until an operator looks. No entry is ever skipped: the cursor only moves over entries
// known to be in the table.
//
// Failures: throttling and 5xx and network errors back off with full jitter (base
// backoff_base_ms, cap backoff_cap_ms) and retry forever; auth and validation errors are
// shown in status (state "error", last_error) and retried every error_retry_ms, nothing is
// dropped. The sink runs on its own thread and only reads the journal (List, Stats): it
// never blocks the journal writer.
//
// Pruning: the Ledger's Prune keeps every entry above the cursor once Register() ran;
// call it before anything that prunes starts.
//
// Threads: Start() runs the loop on an owned thread; Stop() ends it (a request in flight is
// cancelled through the client's cancel flag when the client was built with cancel_flag()).
// Step() runs one step on the calling thread (tests). status() is thread-safe.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "cloud/dynamodb_client.h"
#include "core/clock.h"
#include "core/status.h"
#include "journal/ledger.h"
#include "sync/backoff.h"

namespace machub::sync {

inline constexpr char kDynamoSinkName[] = "dynamodb";

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
  // The stores table (one item per store, key store_id): updated by the sink's thread at
  // most every stores_interval_ms (empty table name: never). The item holds the sink's own
  // figures (last_seq, dynamodb_cursor, dynamodb_backlog, dynamodb_state,
  // dynamodb_last_success_ms, updated_at_ms, version) plus whatever store_attributes returns
  // (attribute name -> DynamoDB attribute value; the S3 side's state, today's totals, day
  // summaries once they exist: the hook of docs/DYNAMODB.md). Called on the sink's thread.
  std::string stores_table;
  int64_t stores_interval_ms = 60000;
  std::function<nlohmann::json()> store_attributes;
};

struct DynamoSinkStatus {
  std::string state = "idle";  // idle | ok | retrying | error | integrity_alert
  int64_t cursor = 0;
  int64_t last_seq = 0;          // the journal's, at the last step
  int64_t written = 0;           // items written since start (replays included)
  int64_t replayed = 0;          // items rewritten conditionally after a restart
  int64_t unprocessed = 0;       // UnprocessedItems sent again
  int64_t throttled = 0;         // throttling answers
  int64_t retryable_errors = 0;  // throttling, 5xx, network
  int64_t oversized = 0;         // items written with lines/payments omitted
  int64_t last_success_ms = 0;
  int64_t stores_updated_ms = 0;  // last successful stores item update
  std::string last_error;         // never a secret
  int64_t backlog() const { return last_seq > cursor ? last_seq - cursor : 0; }
};

class DynamoSink {
 public:
  // None of the pointers is owned; all must outlive the sink.
  DynamoSink(DynamoSinkOptions options, journal::Ledger* ledger, cloud::DynamoDbClient* client);
  ~DynamoSink();  // Stop()

  // One step (see above). Returns the number of entries the cursor moved over (0: nothing
  // to do), or the error that stopped the step (retryable ones after the in-step retries
  // were exhausted: max_attempts per request).
  Result<int64_t> Step(int max_attempts = 8);

  // Replaces options.store_attributes; call before Start().
  void SetStoreAttributes(std::function<nlohmann::json()> attributes) {
    options_.store_attributes = std::move(attributes);
  }

  void Start();
  void Stop();

  // The sink's figures as of its last step: last_seq is what the journal held then.
  DynamoSinkStatus status() const;
  // The same with last_seq read from the journal now, so backlog() is exact when read:
  // what /v1/status shows (status() can say 0 for up to idle_poll_ms after a sale, and a
  // drain check trusting it would stop too early). One read transaction.
  DynamoSinkStatus CurrentStatus() const;
  // Writes the stores item now (the thread calls it every stores_interval_ms).
  Status UpdateStoreItem();

  // Registers the sink in the ledger (durable, idempotent) and loads its cursor. Step()
  // does it too; wiring calls it before the S3 uploader (which prunes) starts.
  Status Register();

 private:
  Status WriteBatch(const std::vector<nlohmann::json>& items, int max_attempts);
  Status WriteConditional(const nlohmann::json& item, int max_attempts);
  void SleepMs(int64_t ms);
  void Fail(const Status& status, const cloud::DynamoError& error);
  void Run();

  DynamoSinkOptions options_;
  journal::Ledger* ledger_;
  cloud::DynamoDbClient* client_;
  const core::Clock* clock_;
  bool loaded_ = false;
  int64_t cursor_ = 0;
  // The next chunk may hold entries already written: conditional puts (see above).
  bool replay_ = true;

  mutable std::mutex mutex_;  // guards status_, stop_
  std::condition_variable wake_;
  DynamoSinkStatus status_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace machub::sync
