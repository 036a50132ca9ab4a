// The Uploader's life and loop: options, start/stop, status, the loop that paces steps
// (backoff, probes, cloud state) and its stall watchdog. One batch's step is in
// uploader_batch.cc, pruning in uploader_prune.cc, `sync --once` in uploader_once.cc;
// what needs no uploader state: batch_cutter.cc, batch_format.cc, backlog.cc, verify.cc.
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

nlohmann::json TimeOrNull(int64_t ms) {
  return ms > 0 ? nlohmann::json(core::FormatRfc3339(ms)) : nlohmann::json(nullptr);
}

}  // namespace

void Uploader::NiceThisThread(int nice) {
  if (nice <= 0) return;
  const auto tid = static_cast<id_t>(syscall(SYS_gettid));
  (void)setpriority(PRIO_PROCESS, tid, std::min(nice, 19));
}

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
    const std::string_view prefix = core::TrimChars(options_.cut.prefix, "/");
    if (!prefix.empty()) target_.append("/").append(prefix);
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
        if (options_.after_batch) options_.after_batch();
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

}  // namespace machub::sync
