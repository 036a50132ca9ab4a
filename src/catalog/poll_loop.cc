#include "catalog/poll_loop.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "core/log.h"

namespace machub::catalog {

FetchReport::FetchReport(core::MetricsRegistry* metrics, const std::string& metric,
                         const std::string& help, std::string event, std::string key)
    : event_(std::move(event)), key_(std::move(key)) {
  const char* kResults[] = {"applied", "not_modified", "invalid", "error"};
  for (int i = 0; i < 4; ++i) {
    by_outcome_[i] = &metrics->GetCounter(metric, help, {{"result", kResults[i]}});
  }
}

FetchOutcome FetchReport::Record(FetchOutcome outcome, const Status& status) {
  if (!status.ok() && outcome != FetchOutcome::kInvalid) outcome = FetchOutcome::kError;
  by_outcome_[static_cast<int>(outcome)]->Inc();
  if (status.ok()) {
    if (!logged_error_.empty()) {
      core::LogInfo(event_ + "_fetch_recovered", {{"key", key_}});
      logged_error_.clear();
    }
    return outcome;
  }
  std::string text = status.ToString();
  if (text != logged_error_) {
    core::LogWarn(event_ + (outcome == FetchOutcome::kInvalid ? "_rejected" : "_fetch_failed"),
                  {{"error", text}, {"key", key_}});
    logged_error_ = std::move(text);
  }
  return outcome;
}

Status PollLoop::Start(int64_t interval_ms, int64_t retry_after_error_ms,
                       std::function<bool()> attempt) {
  if (interval_ms <= 0) {
    return Status(ErrorCode::kInvalidArgument, "fetch interval must be positive");
  }
  std::lock_guard control(control_mu_);
  if (thread_.joinable()) {
    return Status(ErrorCode::kInvalidArgument, "fetcher already started");
  }
  {
    std::lock_guard lock(mu_);
    stop_ = false;
    wake_ = false;
  }
  const int64_t error_wait_ms =
      retry_after_error_ms > 0 ? std::min(interval_ms, retry_after_error_ms) : interval_ms;
  thread_ = std::thread([this, interval_ms, error_wait_ms, attempt = std::move(attempt)] {
    std::unique_lock lock(mu_);
    while (!stop_) {
      wake_ = false;
      lock.unlock();
      const bool ok = attempt();
      lock.lock();
      cv_.wait_for(lock, std::chrono::milliseconds(ok ? interval_ms : error_wait_ms),
                   [this] { return stop_ || wake_; });
    }
  });
  return Status::Ok();
}

void PollLoop::Stop() {
  std::lock_guard control(control_mu_);
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void PollLoop::Wake() {
  {
    std::lock_guard lock(mu_);
    wake_ = true;
  }
  cv_.notify_all();
}

}  // namespace machub::catalog
