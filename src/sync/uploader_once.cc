// `machub sync --once`: every sale up to the journal's end at the call, step by step on the
// calling thread, with a short backoff, until done or the deadline.
#include <algorithm>
#include <chrono>
#include <thread>

#include "core/log.h"
#include "sync/uploader.h"

namespace machub::sync {
namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int64_t kOnceBackoffCapMs = 5000;

}  // namespace

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
