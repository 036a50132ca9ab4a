#pragma once
// RequestWatch: lets another thread see whether the request a store client is performing
// still moves bytes, and abort that one request (a stalled link: connections accepted,
// nothing answered, or a kept-alive connection a middlebox forgot).
//
// The client (S3Client with S3Options::watch) calls Begin() before a request, Moved()
// whenever the bytes sent plus received grew, and End() after it; its progress callback
// asks ShouldAbort() (about once a second and on every transfer step) and fails the
// request when it is true. A watcher (the uploader's stall watchdog, uploader.h) reads
// InFlight()/IdleMs() and calls Abort(id) with the id it saw, so a request that ended in
// between is never confused with the next one.
//
// Thread-safe: every member is an atomic. Times are steady-clock milliseconds.

#include <atomic>
#include <chrono>
#include <cstdint>

namespace machub::cloud {

class RequestWatch {
 public:
  static int64_t SteadyMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  // Client side.
  uint64_t Begin() {
    const uint64_t id = next_.fetch_add(1) + 1;
    progress_ms_.store(SteadyMs());
    current_.store(id);
    return id;
  }
  void Moved() { progress_ms_.store(SteadyMs()); }
  void End() { current_.store(0); }
  bool ShouldAbort() const {
    const uint64_t id = current_.load();
    return id != 0 && abort_.load() == id;
  }
  // True when the request `id` was aborted through Abort (not by a timeout or cancel).
  bool WasAborted(uint64_t id) const { return id != 0 && abort_.load() == id; }

  // Watcher side. The request in flight (0: none).
  uint64_t InFlight() const { return current_.load(); }
  // How long the request in flight has moved no byte (0 when none is in flight).
  int64_t IdleMs() const {
    if (current_.load() == 0) return 0;
    return SteadyMs() - progress_ms_.load();
  }
  // Asks the client to abort request `id` if it is still the one in flight.
  bool Abort(uint64_t id) {
    if (id == 0 || current_.load() != id) return false;
    abort_.store(id);
    return true;
  }

 private:
  std::atomic<uint64_t> next_{0};
  std::atomic<uint64_t> current_{0};
  std::atomic<uint64_t> abort_{0};
  std::atomic<int64_t> progress_ms_{0};
};

}  // namespace machub::cloud
