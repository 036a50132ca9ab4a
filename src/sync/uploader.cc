// Why this file is long (about 900 lines): one state machine — the upload loop, its stall
// watchdog, one batch's step (cut, encode, PUT with If-None-Match, compare on 412, mark),
// the conditional-PUT probe, pruning and `sync --once` — around one shared state (cloud
// status, backoff, the request watch) that a split would have to expose. The parts with no
// such state are their own files: batch_format.cc, backlog.cc, verify.cc, service.cc.
#include "sync/uploader.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "core/log.h"
#include "core/strings.h"
#include "core/text.h"
#include "core/time_format.h"

namespace machub::sync {
namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int64_t kLogEveryMs = 60'000;  // repeated failures are logged at most this often
constexpr int64_t kBacklogRefreshMs = 1000;
constexpr int64_t kOnceBackoffCapMs = 5000;

std::string TrimSlashes(std::string_view prefix) {
  while (!prefix.empty() && prefix.front() == '/') prefix.remove_prefix(1);
  while (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
  return std::string(prefix);
}

std::string RandomHex(const RandomSource& random) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(random()));
  return buf;
}

// The test-only crash between a successful PUT and the journal mark (uploader.h).
void FailpointAfterPut() {
#ifdef MACHUB_FAILPOINTS
  const char* failpoint = std::getenv("MACHUB_FAILPOINT");
  if (failpoint != nullptr && std::string_view(failpoint) == "after_put_before_mark") {
    ::kill(::getpid(), SIGKILL);  // a real kill: no exit handlers, no sanitizer reports
  }
#endif
}

// Lowers the calling thread's CPU priority (Linux: nice is per thread). Best effort.
void NiceThisThread(int nice) {
  if (nice <= 0) return;
  const auto tid = static_cast<id_t>(syscall(SYS_gettid));
  (void)setpriority(PRIO_PROCESS, tid, std::min(nice, 19));
}

nlohmann::json TimeOrNull(int64_t ms) {
  return ms > 0 ? nlohmann::json(core::FormatRfc3339(ms)) : nlohmann::json(nullptr);
}

}  // namespace

// ---- Names and small helpers ----

Result<ConditionalPut> ParseConditionalPut(std::string_view text) {
  if (text == "auto") return ConditionalPut::kAuto;
  if (text == "on") return ConditionalPut::kOn;
  if (text == "off") return ConditionalPut::kOff;
  return Status(ErrorCode::kInvalidArgument, "conditional_put must be auto, on or off");
}

std::string_view ConditionalPutName(ConditionalPut mode) {
  switch (mode) {
    case ConditionalPut::kOn:
      return "on";
    case ConditionalPut::kOff:
      return "off";
    case ConditionalPut::kAuto:
      break;
  }
  return "auto";
}

std::string_view CloudStateName(CloudState state) {
  switch (state) {
    case CloudState::kOnline:
      return "online";
    case CloudState::kOffline:
      return "offline";
    case CloudState::kDegraded:
      return "degraded";
    case CloudState::kStalled:
      return "stalled";
    case CloudState::kDisabled:
      break;
  }
  return "disabled";
}

std::string_view FailureReason(const Status& status) {
  switch (status.code()) {
    case ErrorCode::kUnauthorized:
    case ErrorCode::kForbidden:
      return "auth";
    case ErrorCode::kUnavailable:
      return "network";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kInvalidArgument:
      return "invalid";
    case ErrorCode::kStorageUnavailable:
      return "journal";
    case ErrorCode::kIoError:
      return "io";
    default:
      return "internal";
  }
}

std::string ShortError(const Status& status) {
  // Cloud errors carry their facts as details (cloud::MapS3Error): the store's error code
  // and HTTP status, or the transport failure. Anything else: its message.
  const std::string_view http = status.detail("http_status");
  const std::string_view code = status.detail("cloud_code");
  const std::string_view transport = status.detail("transport");
  std::string detail;
  if (!http.empty()) {
    detail = code.empty() ? "HTTP " + std::string(http)
                          : std::string(code) + " (" + std::string(http) + ")";
  } else if (!transport.empty()) {
    detail = transport;
  } else {
    detail = status.message();
  }
  const std::string_view kept = core::Utf8Prefix(detail, 200);
  std::string out = std::string(FailureReason(status)) + ": " + std::string(kept);
  if (kept.size() < detail.size()) out += "...";
  return out;
}

Status ValidateUploaderOptions(const UploaderOptions& o) {
  RETURN_IF_ERROR(ValidateCutOptions(o.cut));
  auto bad = [](const std::string& what) {
    return Status(ErrorCode::kInvalidArgument, "sync: " + what);
  };
  if (o.poll_interval_ms < 1) return bad("poll_interval_ms must be positive");
  if (o.probe_interval_ms < 1) return bad("probe_interval_ms must be positive");
  if (o.idle_probe_interval_ms < 1) return bad("idle_probe_interval_ms must be positive");
  if (o.backoff_base_ms < 1 || o.backoff_cap_ms < o.backoff_base_ms) {
    return bad("backoff_base_ms must be positive and at most backoff_cap_ms");
  }
  if (o.degraded_retry_ms < 1) return bad("degraded_retry_ms must be positive");
  if (o.retention_ms < 0) return bad("retention must not be negative");
  if (o.min_free_disk_bytes < 0) return bad("min_free_disk_bytes must not be negative");
  if (o.min_free_disk_percent < 0 || o.min_free_disk_percent > 100) {
    return bad("min_free_disk_percent must be 0..100");
  }
  if (o.prune_interval_ms < 0) return bad("prune_interval_ms must not be negative");
  if (o.prune_chunk_sales < 1) return bad("prune_chunk_sales must be at least 1");
  if (o.thread_nice < 0 || o.thread_nice > 19) return bad("thread_nice must be 0..19");
  if (o.stall_after_ms < 0) return bad("stall_after_ms must not be negative");
  return Status::Ok();
}

nlohmann::json DisabledCloudStatusJson() {
  nlohmann::json j;
  j["state"] = "disabled";
  j["target"] = nullptr;
  j["last_success_at"] = nullptr;
  j["last_error"] = nullptr;
  j["next_attempt_at"] = nullptr;
  j["quarantined"] = 0;
  return j;
}

// ---- Uploader ----

Uploader::Uploader(UploaderOptions options, journal::Ledger* journal, cloud::ObjectStore* store)
    : options_(std::move(options)),
      journal_(journal),
      store_(store),
      clock_(options_.clock != nullptr ? options_.clock : &core::SystemClock()),
      random_(options_.random ? options_.random : DefaultRandomSource()),
      cutter_(journal, options_.cut, clock_),
      backlog_(journal, options_.metrics),
      metrics_(options_.metrics) {
  target_ = options_.target;
  if (target_.empty()) {
    target_ = store_->Describe();
    const std::string prefix = TrimSlashes(options_.cut.prefix);
    if (!prefix.empty()) target_ += "/" + prefix;
  }
  status_.target = target_;
  status_.conditional_put = std::string(ConditionalPutName(options_.conditional_put));
  if (metrics_ != nullptr) {
    m_attempts_ = &metrics_->GetCounter("machub_upload_attempts_total",
                                        "Batch upload attempts (one per try of a batch).");
    m_successes_ = &metrics_->GetCounter(
        "machub_upload_successes_total",
        "Batches that reached the store (uploaded, or found there from an earlier attempt).");
    m_bytes_ =
        &metrics_->GetCounter("machub_upload_bytes_total", "Object bytes sent by successful PUTs.");
    m_quarantined_ = &metrics_->GetCounter(
        "machub_batches_quarantined_total",
        "Batches whose key held an object with other content (never overwritten).");
    m_stall_aborts_ = &metrics_->GetCounter(
        "machub_upload_stall_aborts_total",
        "Requests aborted by the stall watchdog (no progress while the store answered a probe).");
    m_pruned_ = &metrics_->GetCounter("machub_sales_pruned_total",
                                      "Uploaded sales deleted from the journal (retention).");
  }
}

Uploader::~Uploader() { Stop(); }

Result<std::unique_ptr<Uploader>> Uploader::Create(UploaderOptions options,
                                                   journal::Ledger* journal,
                                                   cloud::ObjectStore* store) {
  if (journal == nullptr || store == nullptr) {
    return Status(ErrorCode::kInvalidArgument, "sync: the uploader needs a journal and a store");
  }
  RETURN_IF_ERROR(ValidateUploaderOptions(options));
  return std::unique_ptr<Uploader>(new Uploader(std::move(options), journal, store));
}

void Uploader::Start() {
  if (thread_.joinable() || stopping_.load()) return;
  thread_ = std::thread([this] { Loop(); });
  if (options_.watch != nullptr && options_.stall_after_ms > 0) {
    watchdog_ = std::thread([this] { Watchdog(); });
  }
}

void Uploader::Stop() {
  {
    std::lock_guard<std::mutex> lock(wake_mu_);
    stopping_.store(true);
    cancel_.store(true);
  }
  wake_cv_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
  if (thread_.joinable()) thread_.join();
}

void Uploader::Nudge() {
  {
    std::lock_guard<std::mutex> lock(wake_mu_);
    nudged_ = true;
  }
  wake_cv_.notify_all();
}

bool Uploader::WaitFor(int64_t ms) {
  std::unique_lock<std::mutex> lock(wake_mu_);
  if (ms > 0) {
    wake_cv_.wait_for(lock, milliseconds(ms), [&] { return nudged_ || stopping_.load(); });
  }
  nudged_ = false;
  return !stopping_.load();
}

CloudStatus Uploader::GetStatus() const {
  CloudStatus status;
  {
    std::lock_guard<std::mutex> lock(mu_);
    status = status_;
  }
  status.quarantined = backlog_.Snapshot().quarantined_batches;
  return status;
}

nlohmann::json Uploader::CloudStatusJson() const {
  CloudStatus s = GetStatus();
  nlohmann::json j;
  j["state"] = CloudStateName(s.state);
  j["target"] = s.target;
  j["last_success_at"] = TimeOrNull(s.last_success_at_ms);
  j["last_error"] = s.last_error.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.last_error);
  j["last_error_at"] = TimeOrNull(s.last_error_at_ms);
  j["next_attempt_at"] = TimeOrNull(s.next_attempt_at_ms);
  j["quarantined"] = s.quarantined;
  j["conditional_put"] = s.conditional_put;
  if (s.quarantined > 0) {
    j["alert"] = std::to_string(s.quarantined) +
                 " batch(es) quarantined: the store holds other content at their keys; "
                 "see docs/OPERATIONS.md";
  }
  return j;
}

Backlog Uploader::GetBacklog() const {
  // Exact when read: a sale answered 201 just before counts (a short incremental read of
  // the journal; the previous figures on an error).
  Result<Backlog> now = backlog_.Refresh();
  return now.ok() ? *now : backlog_.Snapshot();
}

nlohmann::json Uploader::BacklogJson() const { return BacklogTracker::ToJson(GetBacklog()); }

void Uploader::RefreshBacklog(bool force) {
  const auto now = SteadyClock::now();
  if (!force && now - last_backlog_refresh_ < milliseconds(kBacklogRefreshMs)) return;
  last_backlog_refresh_ = now;
  Result<Backlog> refreshed = backlog_.Refresh();
  if (!refreshed.ok()) {
    core::LogWarn("sync_backlog_failed", {{"error", refreshed.status().ToString()}});
  }
}

// ---- The loop ----

void Uploader::SetState(CloudState state, const Status& error, uint64_t only_while_request) {
  CloudState before;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // The watchdog's "stalled" only while the request it saw is still in flight (the
    // upload thread ends a request before it sets the state the answer means).
    if (only_while_request != 0 && options_.watch->InFlight() != only_while_request) return;
    before = status_.state;
    status_.state = state;
    if (!error.ok()) {
      status_.last_error = ShortError(error);
      status_.last_error_at_ms = NowMs();
    }
    if (state == CloudState::kOnline) status_.next_attempt_at_ms = 0;
  }
  if (before != state) {
    nlohmann::json fields = {
        {"from", CloudStateName(before)}, {"to", CloudStateName(state)}, {"target", target_}};
    if (!error.ok()) fields["error"] = ShortError(error);
    core::Log(state == CloudState::kOnline ? core::LogLevel::kInfo : core::LogLevel::kWarn,
              "sync_state", fields);
  }
}

void Uploader::Loop() {
  auto next_attempt = SteadyClock::now();
  auto next_probe = SteadyClock::now();  // offline: next Probe; online and idle: idle probe
  int64_t last_log_ms = 0;
  auto set_next_attempt = [&](SteadyClock::time_point when) {
    next_attempt = when;
    const int64_t in_ms =
        std::chrono::duration_cast<milliseconds>(when - SteadyClock::now()).count();
    std::lock_guard<std::mutex> lock(mu_);
    status_.next_attempt_at_ms = in_ms > 0 ? NowMs() + in_ms : 0;
  };
  auto set_state = [&](CloudState state, const Status& error) { SetState(state, error); };
  // A failed probe or upload: offline (retryable) or degraded, and when to try again.
  auto on_cloud_error = [&](const Status& error) {
    const auto now = SteadyClock::now();
    if (cloud::IsRetryable(error)) {
      ++failures_;
      set_state(CloudState::kOffline, error);
      set_next_attempt(now + milliseconds(FullJitterDelayMs(failures_, options_.backoff_base_ms,
                                                            options_.backoff_cap_ms, random_)));
      next_probe = now + milliseconds(options_.probe_interval_ms);
    } else {
      set_state(CloudState::kDegraded, error);
      set_next_attempt(now + milliseconds(options_.degraded_retry_ms));
      next_probe = next_attempt;
    }
  };

  NiceThisThread(options_.thread_nice);
  core::LogInfo("sync_started",
                {{"target", target_},
                 {"format", FormatExtension(options_.cut.format)},
                 {"conditional_put", ConditionalPutName(options_.conditional_put)}});
  while (!stopping_.load()) {
    MaybePrune();
    RefreshBacklog(false);
    auto now = SteadyClock::now();
    CloudState state;
    {
      std::lock_guard<std::mutex> lock(mu_);
      state = status_.state;
    }
    if (now < next_attempt) {
      const bool unreachable = state == CloudState::kOffline || state == CloudState::kStalled;
      if (unreachable && now >= next_probe) {
        Status probe = ProbeStore()->Probe();
        next_probe = SteadyClock::now() + milliseconds(options_.probe_interval_ms);
        // Any answer from the store means the path is back (a 403 to HeadBucket too: a
        // device policy may allow PutObject only): try the upload at once instead of
        // sleeping out the backoff; the upload's own answer sets the state.
        if (probe.ok()) set_state(CloudState::kOnline, Status::Ok());
        if (!cloud::IsRetryable(probe)) set_next_attempt(SteadyClock::now());
        continue;
      }
      auto until = next_attempt;
      if (unreachable) until = std::min(until, next_probe);
      // At most a second, so that the backlog block keeps following the journal.
      WaitFor(std::clamp<int64_t>(std::chrono::duration_cast<milliseconds>(until - now).count(), 1,
                                  kBacklogRefreshMs));
      continue;
    }

    StepResult step = Step(/*force=*/false, INT64_MAX);
    now = SteadyClock::now();
    switch (step.kind) {
      case StepKind::kDone:
        failures_ = 0;
        stall_aborts_.store(0);
        stall_aborted_.store(false);  // an abort that came too late to matter
        OnSuccess(step);
        set_state(CloudState::kOnline, Status::Ok());
        next_probe = now + milliseconds(options_.idle_probe_interval_ms);
        if (step.quarantined) RefreshBacklog(true);
        break;
      case StepKind::kIdle:
        if (now >= next_probe) {
          // Nothing to upload: a cheap probe keeps the state honest. Only a network-level
          // failure makes it offline; an auth or not-found answer to the probe (HeadBucket
          // needs s3:ListBucket, which a device policy may not grant) proves the store is
          // reachable, and only a real upload may declare the state degraded.
          Status probe = store_->Probe();  // watched: a stall here is the watchdog's
          if (cloud::IsRetryable(probe)) {
            on_cloud_error(probe);
            RecordFailure(StepResult{StepKind::kCloudError, probe, 0});
            if (stall_aborted_.exchange(false)) {
              // Aborted by the watchdog once the store answered it: probe again at once.
              next_probe = SteadyClock::now();
              set_next_attempt(next_probe);
            }
            break;
          }
          if (state != CloudState::kDegraded) {
            failures_ = 0;
            set_state(CloudState::kOnline, Status::Ok());
          }
          next_probe = SteadyClock::now() + milliseconds(options_.idle_probe_interval_ms);
        }
        WaitFor(std::min(options_.poll_interval_ms, kBacklogRefreshMs));
        break;
      case StepKind::kCloudError:
        RecordFailure(step);
        on_cloud_error(step.error);
        if (stall_aborted_.exchange(false)) {
          // The watchdog aborted a request that had stalled while the store answered its
          // probe: the link is back, so try again at once on a fresh connection.
          set_next_attempt(SteadyClock::now());
        }
        break;
      case StepKind::kLocalError: {
        RecordFailure(step);
        ++failures_;
        set_next_attempt(now + milliseconds(FullJitterDelayMs(failures_, options_.backoff_base_ms,
                                                              options_.backoff_cap_ms, random_)));
        const int64_t now_ms = NowMs();
        if (now_ms - last_log_ms >= kLogEveryMs) {
          last_log_ms = now_ms;
          core::LogError("sync_local_error", {{"error", step.error.ToString()}});
        }
        break;
      }
    }
  }
  if (prefetch_.valid()) prefetch_.wait();  // no journal read outlives the thread
  core::LogInfo("sync_stopped", {{"target", target_}});
}

// ---- The stall watchdog ----

void Uploader::Watchdog() {
  constexpr int64_t kTickMs = 250;
  int64_t next_probe_ms = 0;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(wake_mu_);
      wake_cv_.wait_for(lock, milliseconds(kTickMs), [&] { return stopping_.load(); });
      if (stopping_.load()) return;
    }
    cloud::RequestWatch* watch = options_.watch;
    const uint64_t id = watch->InFlight();
    const int64_t idle_ms = watch->IdleMs();
    if (id == 0 || idle_ms < options_.stall_after_ms) continue;
    CloudState state;
    {
      std::lock_guard<std::mutex> lock(mu_);
      state = status_.state;
    }
    if (state == CloudState::kOnline || state == CloudState::kOffline) {
      SetState(CloudState::kStalled,
               Status(ErrorCode::kUnavailable, "no progress for " + std::to_string(idle_ms / 1000) +
                                                   " s on the request in flight (stalled)"),
               id);
    }
    if (options_.probe_store == nullptr) continue;  // the request's own timeouts end it
    const int64_t now_ms = cloud::RequestWatch::SteadyMs();
    if (now_ms < next_probe_ms) continue;
    // A concurrent probe on its own connection (the request's client is busy).
    // Timed from its start: a probe that hangs until its timeout delays the next one no
    // more than probe_interval_ms.
    next_probe_ms = now_ms + options_.probe_interval_ms;
    Status probe = options_.probe_store->Probe();
    if (cloud::IsRetryable(probe)) {
      std::lock_guard<std::mutex> lock(mu_);
      status_.last_error = ShortError(probe);
      status_.last_error_at_ms = NowMs();
      continue;
    }
    // Any answer proves the path works while our request moves nothing: its connection is
    // dead (blackholed before the link healed, or forgotten by a middlebox). Abort it so
    // the upload thread retries at once; PUTs are conditional, so a retry never
    // duplicates. A store that is merely slow to answer gets a longer wait each time
    // (stall_after_ms doubled per abort without an upload in between, up to 8x).
    const int64_t needed = options_.stall_after_ms << std::min<int64_t>(stall_aborts_.load(), 3);
    if (watch->IdleMs() < needed) continue;
    stall_aborted_.store(true);
    if (watch->Abort(id)) {
      stall_aborts_.fetch_add(1);
      if (m_stall_aborts_ != nullptr) m_stall_aborts_->Inc();
      core::LogWarn("sync_stall_aborted", {{"target", target_},
                                           {"idle_ms", watch->IdleMs()},
                                           {"probe", probe.ok() ? "ok" : ShortError(probe)}});
    } else {
      stall_aborted_.store(false);
    }
  }
}

void Uploader::OnSuccess(const StepResult& step) {
  std::lock_guard<std::mutex> lock(mu_);
  status_.last_success_at_ms = NowMs();
  if (!step.quarantined) {
    ++status_.batches_uploaded;
    status_.sales_uploaded += step.sales;
  }
}

void Uploader::RecordFailure(const StepResult& step) {
  const bool local = step.kind == StepKind::kLocalError;
  const std::string reason = local ? "journal" : std::string(FailureReason(step.error));
  const std::string text = local ? "journal: " + step.error.message() : ShortError(step.error);
  {
    std::lock_guard<std::mutex> lock(mu_);
    status_.last_error = text;
    status_.last_error_at_ms = NowMs();
  }
  if (metrics_ != nullptr) {
    metrics_
        ->GetCounter("machub_upload_failures_total", "Failed batch uploads and probes, by reason.",
                     {{"reason", reason}})
        .Inc();
  }
  if (step.batch_id > 0) {
    Status recorded = journal_->RecordBatchFailure(step.batch_id, text);
    if (!recorded.ok()) {
      core::LogWarn("sync_record_failure_failed", {{"error", recorded.ToString()}});
    }
  }
}

// ---- One batch ----

Uploader::StepResult Uploader::Step(bool force, int64_t upto_seq) {
  auto local_error = [](Status s, int64_t batch_id = 0) {
    return StepResult{StepKind::kLocalError, std::move(s), batch_id};
  };
  auto cloud_error = [](Status s, int64_t batch_id) {
    return StepResult{StepKind::kCloudError, std::move(s), batch_id};
  };

  Result<std::vector<journal::BatchRecord>> unfinished = journal_->ListBatches(true);
  if (!unfinished.ok()) return local_error(unfinished.status());
  std::optional<journal::BatchRecord> batch;
  for (journal::BatchRecord& b : *unfinished) {
    if (b.state == journal::BatchState::kPending) {
      batch = std::move(b);
      break;
    }
  }

  // The bytes to upload, and what they hash to.
  std::string bytes;
  std::map<std::string, std::string> metadata;
  std::string fresh_sha256;
  journal::BatchRecord fresh_record;
  if (!batch) {
    Result<journal::SyncBounds> bounds = journal_->GetSyncBounds();
    if (!bounds.ok()) return local_error(bounds.status());
    std::optional<EncodedBatch> encoded;
    if (prefetch_.valid()) {
      Result<std::optional<EncodedBatch>> prefetched = prefetch_.get();
      if (prefetch_after_ == bounds->batched_seq && prefetched.ok() && prefetched->has_value()) {
        encoded = std::move(**prefetched);
      }
    }
    if (!encoded) {
      Result<std::optional<EncodedBatch>> cut = cutter_.Next(*bounds, force, upto_seq);
      if (!cut.ok()) return local_error(cut.status());
      if (!cut->has_value()) return StepResult{};  // idle
      encoded = std::move(**cut);
    }
    if (encoded->stop != EncodedBatch::Stop::kEnd) {
      // More sales are waiting: encode the next batch while this one is recorded and goes
      // up (started before RecordBatch, whose fsync would otherwise idle the encoder; if
      // the record fails, the next step discards the prefetch: prefetch_after_ no longer
      // matches batched_seq).
      journal::SyncBounds next = *bounds;
      next.batched_seq = encoded->record.last_seq;
      prefetch_after_ = next.batched_seq;
      prefetch_ = std::async(std::launch::async, [this, next, force, upto_seq] {
        NiceThisThread(options_.thread_nice);
        return cutter_.Next(next, force, upto_seq);
      });
    }
    Result<journal::BatchRecord> recorded = journal_->RecordBatch(encoded->record);
    if (!recorded.ok()) return local_error(recorded.status());
    batch = std::move(*recorded);
    fresh_record = std::move(encoded->record);
    bytes = std::move(encoded->bytes);
    metadata = std::move(encoded->metadata);
  } else if (cached_batch_id_ == batch->id && !cached_bytes_.empty()) {
    fresh_record = *batch;
    bytes = std::move(cached_bytes_);
    metadata = std::move(cached_metadata_);
  } else {
    Result<EncodedBatch> encoded = cutter_.Reencode(*batch);
    if (!encoded.ok()) return local_error(encoded.status(), batch->id);
    fresh_record = std::move(encoded->record);
    bytes = std::move(encoded->bytes);
    metadata = std::move(encoded->metadata);
  }
  cached_batch_id_ = 0;
  cached_bytes_.clear();
  const int64_t batch_id = batch->id;

  if (m_attempts_ != nullptr) m_attempts_->Inc();
  Status mode = ResolveConditionalPut();
  if (!mode.ok()) {
    // Keep the bytes for the next attempt.
    if (fresh_record.sha256_hex == batch->sha256_hex) {
      cached_batch_id_ = batch_id;
      cached_bytes_ = std::move(bytes);
      cached_metadata_ = std::move(metadata);
    }
    return cloud_error(mode, batch_id);
  }

  Result<Outcome> outcome = Status(ErrorCode::kInternal, "unset");
  if (fresh_record.sha256_hex == batch->sha256_hex) {
    outcome = Upload(*batch, &bytes, metadata);
    if (!outcome.ok()) {
      cached_batch_id_ = batch_id;
      cached_bytes_ = std::move(bytes);
      cached_metadata_ = std::move(metadata);
    }
  } else {
    // The rows encode to other bytes than recorded (another zlib, or another encoder):
    // the recorded hashes decide what is ours (uploader.h, step 2).
    core::LogWarn("sync_reencode_differs", {{"key", batch->key},
                                            {"recorded_sha256", batch->sha256_hex},
                                            {"fresh_sha256", fresh_record.sha256_hex}});
    Result<cloud::ObjectInfo> head = store_->Head(batch->key);
    if (head.ok()) {
      outcome = CompareExisting(*batch, *head);
    } else if (head.status().code() == ErrorCode::kNotFound) {
      Status updated =
          journal_->UpdateBatchObject(batch_id, fresh_record.raw_bytes, fresh_record.gz_bytes,
                                      fresh_record.sha256_hex, fresh_record.md5_hex);
      if (!updated.ok()) return local_error(updated, batch_id);
      batch->raw_bytes = fresh_record.raw_bytes;
      batch->gz_bytes = fresh_record.gz_bytes;
      batch->sha256_hex = fresh_record.sha256_hex;
      batch->md5_hex = fresh_record.md5_hex;
      outcome = Upload(*batch, &bytes, metadata);
      if (!outcome.ok()) {
        cached_batch_id_ = batch_id;
        cached_bytes_ = std::move(bytes);
        cached_metadata_ = std::move(metadata);
      }
    } else {
      outcome = head.status();
    }
  }
  if (!outcome.ok()) return cloud_error(outcome.status(), batch_id);

  StepResult done;
  done.kind = StepKind::kDone;
  done.batch_id = batch_id;
  done.sales = batch->sales();
  done.bytes = batch->gz_bytes;
  if (*outcome == Outcome::kQuarantined) {
    const std::string why =
        "the store holds another object at this key (etag differs from the "
        "recorded md5 " +
        batch->md5_hex + "); not overwritten";
    Status marked = journal_->MarkBatchQuarantined(batch_id, why);
    if (!marked.ok()) return local_error(marked, batch_id);
    done.quarantined = true;
    if (m_quarantined_ != nullptr) m_quarantined_->Inc();
    core::LogError("sync_batch_quarantined", {{"key", batch->key},
                                              {"first_seq", batch->first_seq},
                                              {"last_seq", batch->last_seq},
                                              {"recorded_md5", batch->md5_hex}});
    return done;
  }
  Status marked = journal_->MarkBatchUploaded(batch_id, NowMs());
  if (!marked.ok()) {
    // The object is in the store; the next attempt meets it (412 / HEAD, same MD5) and
    // marks the batch then.
    return local_error(marked, batch_id);
  }
  if (m_successes_ != nullptr) m_successes_->Inc();
  return done;
}

Result<Uploader::Outcome> Uploader::CompareExisting(const journal::BatchRecord& batch,
                                                    const cloud::ObjectInfo& info) {
  // A single-part PUT's ETag is the hex MD5 of the body; a multipart one ("...-N") never
  // equals an MD5, so it counts as other content.
  return core::AsciiLower(info.etag) == batch.md5_hex ? Outcome::kAlreadyThere
                                                      : Outcome::kQuarantined;
}

Result<Uploader::Outcome> Uploader::Upload(const journal::BatchRecord& batch, std::string* bytes,
                                           const std::map<std::string, std::string>& metadata) {
  const ConditionalPut mode = resolved_mode_.value_or(ConditionalPut::kOn);
  cloud::PutRequest put;
  put.key = batch.key;
  put.content_type = "application/gzip";
  put.metadata = metadata;
  put.body = std::move(*bytes);
  struct GiveBack {  // the body goes back to the caller for a retry, whatever happens
    std::string* bytes;
    cloud::PutRequest* put;
    ~GiveBack() { *bytes = std::move(put->body); }
  } give_back{bytes, &put};

  if (mode == ConditionalPut::kOff) {
    Result<cloud::ObjectInfo> head = store_->Head(batch.key);
    if (head.ok()) return CompareExisting(batch, *head);
    if (head.status().code() != ErrorCode::kNotFound) return head.status();
    put.if_none_match = false;
  } else {
    put.if_none_match = true;
  }
  ASSIGN_OR_RETURN(cloud::PutOutcome put_outcome, store_->Put(put));
  if (put_outcome == cloud::PutOutcome::kCreated) {
    FailpointAfterPut();
    if (m_bytes_ != nullptr) m_bytes_->Inc(static_cast<int64_t>(put.body.size()));
    return Outcome::kUploaded;
  }
  // 412: an object is there already. Ours (an earlier attempt's PUT landed, its answer
  // lost) exactly when its MD5 is the recorded one.
  Result<cloud::ObjectInfo> head = store_->Head(batch.key);
  if (!head.ok()) {
    if (head.status().code() == ErrorCode::kNotFound) {
      return Status(ErrorCode::kUnavailable,
                    "S3 HEAD " + batch.key + ": the object answered 412 and then vanished");
    }
    return head.status();
  }
  return CompareExisting(batch, *head);
}

Status Uploader::ResolveConditionalPut() {
  if (resolved_mode_) return Status::Ok();
  if (options_.conditional_put != ConditionalPut::kAuto) {
    resolved_mode_ = options_.conditional_put;
    return Status::Ok();
  }
  const std::string prefix = TrimSlashes(options_.cut.prefix);
  cloud::PutRequest probe;
  probe.key = (prefix.empty() ? "" : prefix + "/") + "_machub/probe-" + options_.cut.store_id +
              "-" + RandomHex(random_);
  probe.body = "machub conditional-put probe\n";
  probe.content_type = "text/plain";
  probe.if_none_match = true;
  ASSIGN_OR_RETURN(cloud::PutOutcome first, store_->Put(probe));
  ConditionalPut mode = ConditionalPut::kOn;
  if (first == cloud::PutOutcome::kCreated) {
    ASSIGN_OR_RETURN(cloud::PutOutcome second, store_->Put(probe));
    mode = second == cloud::PutOutcome::kAlreadyExists ? ConditionalPut::kOn : ConditionalPut::kOff;
  }
  resolved_mode_ = mode;
  {
    std::lock_guard<std::mutex> lock(mu_);
    status_.conditional_put = std::string(ConditionalPutName(mode));
  }
  if (mode == ConditionalPut::kOff) {
    core::LogWarn("sync_conditional_put_ignored",
                  {{"target", target_},
                   {"detail",
                    "the store overwrote an object despite If-None-Match: *; "
                    "checking with HEAD before every PUT"}});
  } else {
    core::LogInfo("sync_conditional_put", {{"target", target_}, {"mode", "on"}});
  }
  return Status::Ok();
}

// ---- Pruning ----

void Uploader::MaybePrune() {
  if (options_.prune_interval_ms <= 0) return;
  const auto now = SteadyClock::now();
  if (now < next_prune_) return;
  next_prune_ = now + milliseconds(options_.prune_interval_ms);
  Result<journal::SyncBounds> bounds = journal_->GetSyncBounds();
  if (!bounds.ok()) {
    core::LogWarn("sync_prune_failed", {{"error", bounds.status().ToString()}});
    return;
  }
  const int64_t free = bounds->free_disk_bytes;
  const int64_t total = bounds->total_disk_bytes;
  const bool low_disk =
      total > 0 && (free < options_.min_free_disk_bytes ||
                    (options_.min_free_disk_percent > 0 &&
                     free * 100 < total * static_cast<int64_t>(options_.min_free_disk_percent)));
  if (!low_disk && options_.retention_ms <= 0) return;
  journal::PruneRequest request;
  request.ignore_age = low_disk;
  request.received_before_ms = NowMs() - options_.retention_ms;
  request.max_sales = options_.prune_chunk_sales;
  int64_t pruned = 0;
  int64_t anchor = bounds->anchor_seq;
  // Chunks keep each writer transaction short; sale groups run between them.
  for (int chunk = 0; chunk < 1000 && !stopping_.load(); ++chunk) {
    Result<journal::PruneResult> result = journal_->Prune(request);
    if (!result.ok()) {
      core::LogWarn("sync_prune_failed", {{"error", result.status().ToString()}});
      break;
    }
    pruned += result->pruned;
    anchor = result->anchor_seq;
    if (result->pruned == 0) break;
  }
  if (pruned > 0) {
    if (m_pruned_ != nullptr) m_pruned_->Inc(pruned);
    core::LogInfo("sync_pruned", {{"sales", pruned},
                                  {"anchor_seq", anchor},
                                  {"low_disk", low_disk},
                                  {"free_disk_bytes", free}});
  }
}

// ---- sync --once ----

Result<OnceProgress> Uploader::RunOnce(const OnceOptions& once) {
  if (thread_.joinable()) {
    return Status(ErrorCode::kInvalidArgument, "sync: RunOnce while the upload thread runs");
  }
  bool expected = false;
  if (!running_once_.compare_exchange_strong(expected, true)) {
    return Status(ErrorCode::kInvalidArgument, "sync: RunOnce is already running");
  }
  struct Done {
    std::atomic<bool>* flag;
    std::future<Result<std::optional<EncodedBatch>>>* prefetch;
    ~Done() {
      if (prefetch->valid()) prefetch->wait();  // no journal read outlives RunOnce
      flag->store(false);
    }
  } done{&running_once_, &prefetch_};

  ASSIGN_OR_RETURN(journal::SyncBounds bounds, journal_->GetSyncBounds());
  ASSIGN_OR_RETURN(Backlog backlog, backlog_.Refresh());
  OnceProgress progress;
  progress.total_sales = backlog.sales;
  // Quarantined batches are not retried: their sales are not part of the work.
  {
    ASSIGN_OR_RETURN(std::vector<journal::BatchRecord> unfinished, journal_->ListBatches(true));
    for (const journal::BatchRecord& b : unfinished) {
      if (b.state == journal::BatchState::kQuarantined) progress.total_sales -= b.sales();
    }
  }
  auto last_progress = SteadyClock::now();
  int64_t failures = 0;
  while (!stopping_.load()) {
    StepResult step = Step(/*force=*/true, bounds.last_seq);
    if (step.kind == StepKind::kIdle) {
      RefreshBacklog(true);
      return progress;
    }
    if (step.kind == StepKind::kDone) {
      OnSuccess(step);
      failures = 0;
      last_progress = SteadyClock::now();
      ++progress.batches;
      progress.sales += step.sales;
      progress.bytes += step.bytes;
      if (step.quarantined) ++progress.quarantined;
      if (once.progress) once.progress(progress);
      continue;
    }
    RecordFailure(step);
    if (step.kind == StepKind::kCloudError && !cloud::IsRetryable(step.error)) {
      return Status(step.error.code(), ShortError(step.error));
    }
    const int64_t waited =
        std::chrono::duration_cast<milliseconds>(SteadyClock::now() - last_progress).count();
    if (waited >= once.give_up_after_ms) {
      return Status(step.error.code(), step.kind == StepKind::kLocalError
                                           ? "journal: " + step.error.message()
                                           : ShortError(step.error));
    }
    ++failures;
    const int64_t delay =
        FullJitterDelayMs(failures, options_.backoff_base_ms,
                          std::min(options_.backoff_cap_ms, kOnceBackoffCapMs), random_);
    WaitFor(std::min(delay, once.give_up_after_ms - waited));
  }
  return Status(ErrorCode::kUnavailable, "sync: stopped");
}

}  // namespace machub::sync
