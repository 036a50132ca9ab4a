#pragma once
// The periodic thread of the fetchers of this module (catalog.json, store.json): one
// attempt at once, then one every interval, sooner after a failure, and at once when woken.
//
// Threads: Start/Stop are serialized with each other; Wake may be called from any thread.
// `attempt` runs on the loop's own thread only. Stop() waits for an attempt in flight.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "core/metrics.h"
#include "core/status.h"

namespace machub::catalog {

// What one fetch attempt of a polled object came to.
enum class FetchOutcome { kApplied, kNotModified, kInvalid, kError };

// The bookkeeping every fetcher does after an attempt: it counts the attempt by outcome
// (`<metric>{result="applied"|"not_modified"|"invalid"|"error"}`) and logs a change of
// error once: `<event>_rejected` for an invalid object, `<event>_fetch_failed` otherwise,
// `<event>_fetch_recovered` when an attempt succeeds after one was logged. A failed
// attempt always counts as kError unless it was kInvalid. Not thread-safe: the fetchers
// call it under their fetch lock.
class FetchReport {
 public:
  FetchReport(core::MetricsRegistry* metrics, const std::string& metric, const std::string& help,
              std::string event, std::string key);
  // The outcome counted (kError for a failure that was not kInvalid).
  FetchOutcome Record(FetchOutcome outcome, const Status& status);

 private:
  core::Counter* by_outcome_[4] = {};
  std::string event_;
  std::string key_;
  std::string logged_error_;  // the last error logged, so a repeated one is logged once
};

class PollLoop {
 public:
  PollLoop() = default;
  ~PollLoop() { Stop(); }
  PollLoop(const PollLoop&) = delete;
  PollLoop& operator=(const PollLoop&) = delete;

  // Runs `attempt` at once and then every interval_ms; after an attempt that returned
  // false, the next one comes after min(interval_ms, retry_after_error_ms) instead (a hub
  // that starts offline picks the object up soon after the link returns). kInvalidArgument
  // for interval_ms <= 0 or when already started.
  Status Start(int64_t interval_ms, int64_t retry_after_error_ms, std::function<bool()> attempt);
  // Stops and joins the thread. Idempotent; Start() may be called again afterwards.
  void Stop();
  // An attempt now (e.g. when the cloud comes back online). No-op when not started.
  void Wake();

 private:
  std::mutex control_mu_;  // serializes Start/Stop
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool wake_ = false;
  std::thread thread_;
};

}  // namespace machub::catalog
