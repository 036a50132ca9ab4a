#include "catalog/poll_loop.h"

#include <algorithm>
#include <chrono>
#include <utility>

namespace machub::catalog {

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
