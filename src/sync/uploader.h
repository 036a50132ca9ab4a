#pragma once
// Uploader: moves the journal's sales to an ObjectStore (S3 or a local folder), exactly
// once, in order, on a thread of its own; also prunes uploaded sales (retention, low disk).
//
// One batch at a time (one upload in flight):
//   1. The oldest PENDING batch recorded in the journal, else a new one from BatchCutter
//      (batch_cutter.h), recorded with Journal::RecordBatch (key, range, sizes, SHA-256
//      and MD5 of the gzip bytes) BEFORE its first upload attempt.
//   2. Its bytes: those just encoded, or (after a restart) re-encoded from the rows. When
//      the re-encoding's SHA-256 differs from the recorded one (another zlib produced
//      other bytes for the same rows), the RECORDED hashes decide what is ours: HEAD the
//      key; an object whose ETag equals the recorded MD5 is ours (done); no object: the
//      record is updated to the fresh bytes (UpdateBatchObject) and those are uploaded;
//      any other object: quarantine.
//   3. Upload with conditional_put:
//        on   PUT If-None-Match: * -> 2xx done; 412 -> HEAD, ETag == recorded MD5 -> done
//             (a previous attempt's PUT landed), else quarantine.
//        off  HEAD first: found -> the same comparison; 404 -> plain PUT.
//        auto (default) probes once per start, before the first upload: PUTs
//             "<prefix>/_machub/probe-<store>-<random>" twice with If-None-Match; a 412 on
//             the second means "on", a 2xx means the store ignores the header: "off".
//             (The probe object stays; a lifecycle rule on _machub/ may expire it.)
//   4. Journal::MarkBatchUploaded in its own transaction (one batch row: its sales count as
//      uploaded from then on, schema v3).
//   Quarantine (an object at our key with other content — never overwritten) records the
//   batch as quarantined, counts machub_batches_quarantined_total, shows "quarantined":N
//   and an "alert" in the cloud status, logs sync_batch_quarantined, and goes on with the
//   next batch. Its sales stay not uploaded (so never pruned) until an operator acts
//   (docs/OPERATIONS.md).
//
// Connectivity state (cloud status "state"):
//   online    the last upload succeeded, or (nothing to upload) the last probe reached
//             the store;
//   offline   a retryable error (IsRetryable: network, 5xx, throttling, expired
//             credentials, clock skew): upload retried after a full-jitter backoff (base
//             backoff_base_ms, cap backoff_cap_ms) while ObjectStore::Probe runs every
//             probe_interval_ms; the first probe that succeeds triggers the upload at once
//             (so uploads resume within probe_interval_ms + one request of the endpoint
//             coming back);
//   degraded  a non-retryable error (kUnauthorized: an auth problem; kInvalidArgument,
//             kNotFound: e.g. a missing bucket; kInternal), retried every
//             degraded_retry_ms only;
//   stalled   a request in flight has moved no byte for stall_after_ms (a blackholed
//             path: connections accepted, nothing answered; a dead kept-alive
//             connection). Set by a watchdog thread (options.watch), which then probes
//             concurrently with options.probe_store every probe_interval_ms: while the
//             probes fail the state stays stalled (until the request's own timeouts end
//             it: offline); the first probe the store answers proves the path back, and
//             the stalled request is aborted and retried at once on a fresh connection
//             (so uploads resume within probe_interval_ms + a probe + about a second of
//             the link healing, not at the request's 30 s low-speed timeout).
//             A request that moves bytes slowly is never stalled.
//   Probes (HeadBucket for S3) decide only between online and offline: any answer, even
//   a 403 (a device policy may grant s3:PutObject and s3:GetObject but not
//   s3:ListBucket), proves the store reachable. IAM needs: s3:PutObject, and s3:GetObject
//   for the HEAD after a 412 (and for conditional_put=off); s3:ListBucket only for
//   `machub verify`.
//   journal errors (reading rows, recording a batch) keep the state, set last_error
//   "journal: ..." and are retried with the same backoff.
//   last_error is short and secret-free: "auth: SignatureDoesNotMatch (403)",
//   "network: Couldn't connect to server (...)".
//
// Never blocks selling: journal writes go through the journal's writer thread between
// two groups (small transactions), reads use read-only connections, and the network waits
// happen on this thread only. While a batch is PUT and marked, the next one (when more
// sales wait) is encoded on a short-lived helper thread (which compresses large batches
// on a second helper, batch_cutter.h), so a backlog drain uses two cores.
//
// Pruning (every prune_interval_ms, on this thread, in chunks of prune_chunk_sales through
// Journal::Prune): uploaded sales received more than retention_ms ago; when the journal's
// filesystem has less than min_free_disk_bytes or min_free_disk_percent free, every
// uploaded sale regardless of age. Sales not uploaded are never pruned. (SQLite reuses the
// freed pages; the file does not shrink.)
//
// Metrics (with a registry): machub_upload_attempts_total, machub_upload_successes_total,
// machub_upload_failures_total{reason="network|auth|not_found|invalid|internal|journal"},
// machub_upload_bytes_total (object bytes sent by successful PUTs),
// machub_batches_quarantined_total, machub_sales_pruned_total,
// machub_upload_stall_aborts_total (stalled requests the watchdog aborted), and the backlog gauges
// (backlog.h).
//
// Failpoint (builds with MACHUB_FAILPOINTS only): MACHUB_FAILPOINT=after_put_before_mark
// in the environment makes the process SIGKILL itself right after a PUT succeeded, before
// the batch is marked.
//
// Threads: Start() runs the loop on a new thread; Stop() (also the destructor) wakes it,
// cancels a request in flight when the store was built with the cancel flag
// (cancel_flag()), and joins. RunOnce() runs on the caller's thread and must not overlap
// Start(). CloudStatusJson/GetStatus are thread-safe and never block on I/O; BacklogJson/
// GetBacklog are thread-safe and read the journal (a few indexed reads, never the network).
// The journal, the store, the clock and the metrics registry must outlive the uploader.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "cloud/object_store.h"
#include "cloud/request_watch.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "core/status.h"
#include "journal/ledger.h"
#include "sync/backlog.h"
#include "sync/backoff.h"
#include "sync/batch_cutter.h"

namespace machub::sync {

enum class ConditionalPut { kAuto, kOn, kOff };
Result<ConditionalPut> ParseConditionalPut(std::string_view text);  // "auto" | "on" | "off"
std::string_view ConditionalPutName(ConditionalPut mode);

struct UploaderOptions {
  CutOptions cut;  // store_id, prefix, format, gzip level, batch limits
  ConditionalPut conditional_put = ConditionalPut::kAuto;
  int64_t poll_interval_ms = 1000;         // idle: how often the journal is looked at
  int64_t probe_interval_ms = 2000;        // offline: ObjectStore::Probe this often
  int64_t idle_probe_interval_ms = 30000;  // online with nothing to upload: Probe this often
  int64_t backoff_base_ms = 1000;
  int64_t backoff_cap_ms = 60000;
  int64_t degraded_retry_ms = 60000;
  int64_t retention_ms = 30LL * 24 * 3600 * 1000;  // 0: never prune by age
  int64_t min_free_disk_bytes = 256LL << 20;       // below: prune regardless of age
  int min_free_disk_percent = 5;                   // likewise (0: off)
  int64_t prune_interval_ms = 60000;               // 0: never prune
  int64_t prune_chunk_sales = 1000;                // per writer transaction
  // Nice value (0..19) of the upload thread and its encoding helper, so that under CPU
  // pressure the journal writer and the HTTP threads run first. 0: unchanged.
  int thread_nice = 10;
  // Called on the upload thread after each batch is done (uploaded or quarantined), when
  // the batch's buffers are freed; `serve` hands the freed pages back to the kernel here
  // (malloc_trim). Null: nothing.
  std::function<void()> after_batch;
  std::string target;                  // for status; empty: the store's Describe() + "/" + prefix
  RandomSource random;                 // null: DefaultRandomSource()
  const core::Clock* clock = nullptr;  // null: the system clock (wall-clock figures)
  core::MetricsRegistry* metrics = nullptr;  // null: no metrics
  // Stall detection (see "stalled" above). `watch`: the RequestWatch the store's client
  // reports to (S3Options::watch); null: no watchdog. `probe_store`: a second client on
  // the same target with short timeouts, for probes while the first one is busy (also
  // used for the offline and idle probes); null: the store itself, and a stalled request
  // is only reported, never aborted. Neither is owned; both must outlive the uploader.
  int64_t stall_after_ms = 4000;  // no byte moved this long: "stalled"; 0: no watchdog
  cloud::RequestWatch* watch = nullptr;
  cloud::ObjectStore* probe_store = nullptr;
};

// kInvalidArgument naming the first bad option.
Status ValidateUploaderOptions(const UploaderOptions& options);

enum class CloudState { kOnline, kOffline, kDegraded, kDisabled, kStalled };
// "online" | "offline" | "degraded" | "disabled" | "stalled"
std::string_view CloudStateName(CloudState state);

struct CloudStatus {
  CloudState state = CloudState::kOnline;
  std::string target;
  int64_t last_success_at_ms = 0;  // 0: never
  std::string last_error;          // empty: none since start
  int64_t last_error_at_ms = 0;
  int64_t next_attempt_at_ms = 0;  // 0: none scheduled (idle or working)
  int64_t quarantined = 0;         // batches in quarantine (journal), alert when > 0
  std::string conditional_put;     // "auto" (not probed yet) | "on" | "off"
  int64_t batches_uploaded = 0;    // since start
  int64_t sales_uploaded = 0;      // since start
};

// The cloud block when sync is not configured: {"state":"disabled",...}.
nlohmann::json DisabledCloudStatusJson();

// Progress of RunOnce, reported after every batch.
struct OnceProgress {
  int64_t batches = 0;      // uploaded (or found already uploaded) so far
  int64_t sales = 0;        // in those batches
  int64_t bytes = 0;        // object bytes of those batches
  int64_t total_sales = 0;  // backlog when RunOnce started (pending batches included)
  int64_t quarantined = 0;  // batches quarantined during this run
};

struct OnceOptions {
  // Retryable errors are retried (full jitter backoff, capped at 5 s) until this long has
  // passed without a batch done; then RunOnce returns the last error.
  int64_t give_up_after_ms = 60000;
  std::function<void(const OnceProgress&)> progress;  // may be empty
};

class Uploader {
 public:
  // `journal` and `store` must outlive the uploader.
  static Result<std::unique_ptr<Uploader>> Create(UploaderOptions options, journal::Ledger* journal,
                                                  cloud::ObjectStore* store);
  ~Uploader();  // Stop()
  Uploader(const Uploader&) = delete;
  Uploader& operator=(const Uploader&) = delete;

  // Starts the upload thread (once).
  void Start();
  // Wakes and joins the thread; a request in flight is cancelled if the store watches
  // cancel_flag(), otherwise Stop waits for it (its timeouts bound the wait). Idempotent.
  void Stop();
  // Wakes the thread now (e.g. after a burst of sales, or from tests).
  void Nudge();

  // Uploads everything stored when it is called (cutting batches regardless of age) and
  // returns: the summary, or the error that stopped it (a non-retryable one at once, a
  // retryable one after give_up_after_ms without progress). Quarantined batches are
  // counted, not errors. Not while Start()ed (kInvalidArgument).
  Result<OnceProgress> RunOnce(const OnceOptions& options);

  // A flag the store's requests may watch (cloud::S3Options::cancel): set by Stop().
  const std::atomic<bool>* cancel_flag() const { return &cancel_; }

  CloudStatus GetStatus() const;
  // {"state","target","last_success_at","last_error","last_error_at","next_attempt_at",
  //  "quarantined","conditional_put"[,"alert"]}; times RFC 3339 or null.
  nlohmann::json CloudStatusJson() const;
  // The backlog as of this call (BacklogTracker::Refresh, an incremental read of the
  // journal: exact, a sale acknowledged before the call counts), as ToJson / as figures.
  nlohmann::json BacklogJson() const;
  Backlog GetBacklog() const;

 private:
  // Lowers the calling thread's CPU priority to `nice` (Linux: nice is per thread; the
  // upload thread and the prefetch helper). Best effort; <= 0: unchanged.
  static void NiceThisThread(int nice);

  enum class StepKind { kIdle, kDone, kCloudError, kLocalError };
  struct StepResult {
    StepKind kind = StepKind::kIdle;
    Status error;
    int64_t batch_id = 0;  // the batch the error concerns, 0: none
    int64_t sales = 0;     // kDone: sales in the batch
    int64_t bytes = 0;     // kDone: object bytes
    bool quarantined = false;
  };
  enum class Outcome { kUploaded, kAlreadyThere, kQuarantined };

  Uploader(UploaderOptions options, journal::Ledger* journal, cloud::ObjectStore* store);

  void Loop();
  // One batch: pick or cut, encode, upload, mark.
  StepResult Step(bool force, int64_t upto_seq);
  // Moves *bytes into the request and back, so a failed attempt keeps them.
  Result<Outcome> Upload(const journal::BatchRecord& batch, std::string* bytes,
                         const std::map<std::string, std::string>& metadata);
  Result<Outcome> CompareExisting(const journal::BatchRecord& batch, const cloud::ObjectInfo& info);
  Status ResolveConditionalPut();
  void MaybePrune();
  void RecordFailure(const StepResult& step);
  void OnSuccess(const StepResult& step);
  void RefreshBacklog(bool force);
  // Sets the state (logging a change); with only_while_request != 0, only while that
  // request is still in flight on options_.watch.
  void SetState(CloudState state, const Status& error, uint64_t only_while_request = 0);
  void Watchdog();
  cloud::ObjectStore* ProbeStore() const {
    return options_.probe_store != nullptr ? options_.probe_store : store_;
  }
  bool WaitFor(int64_t ms);  // false when stopping
  int64_t NowMs() const { return clock_->NowMs(); }

  const UploaderOptions options_;
  journal::Ledger* journal_;
  cloud::ObjectStore* store_;
  const core::Clock* clock_;
  RandomSource random_;
  BatchCutter cutter_;
  mutable BacklogTracker backlog_;  // Refresh()ed by status readers too
  std::string target_;

  // Upload-thread state.
  std::optional<ConditionalPut> resolved_mode_;
  int64_t failures_ = 0;  // consecutive retryable failures
  std::chrono::steady_clock::time_point last_backlog_refresh_{};
  std::chrono::steady_clock::time_point next_prune_{};
  // The batch after the one being uploaded, encoded meanwhile on another thread when more
  // sales were waiting (a backlog drain overlaps encoding with PUT and mark); used only if
  // the journal's batched_seq is still the one it started from.
  std::future<Result<std::optional<EncodedBatch>>> prefetch_;
  int64_t prefetch_after_ = -1;
  // Bytes of the batch just cut, kept until it is uploaded (saves a re-encoding).
  int64_t cached_batch_id_ = 0;
  std::string cached_bytes_;
  std::map<std::string, std::string> cached_metadata_;

  // Shared with status readers.
  mutable std::mutex mu_;
  CloudStatus status_;

  std::mutex wake_mu_;
  std::condition_variable wake_cv_;
  bool nudged_ = false;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> cancel_{false};
  std::atomic<bool> running_once_{false};
  std::thread thread_;
  std::thread watchdog_;
  std::atomic<bool> stall_aborted_{false};  // the watchdog aborted the request in flight
  std::atomic<int64_t> stall_aborts_{0};    // such aborts since the last upload

  core::Counter* m_attempts_ = nullptr;
  core::Counter* m_successes_ = nullptr;
  core::Counter* m_bytes_ = nullptr;
  core::Counter* m_quarantined_ = nullptr;
  core::Counter* m_pruned_ = nullptr;
  core::Counter* m_stall_aborts_ = nullptr;
  core::MetricsRegistry* metrics_ = nullptr;
};

// "auth: SignatureDoesNotMatch (403)", "network: Couldn't connect to server (...)": the
// short, secret-free form of an ObjectStore error used in status, logs and the batch row.
std::string ShortError(const Status& status);
// The reason label of machub_upload_failures_total for an error ("network", "auth", ...).
std::string_view FailureReason(const Status& status);

}  // namespace machub::sync
