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
#include <thread>

#include "core/status.h"

namespace machub::catalog {

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
