#pragma once
// Time source, injectable so tests control "now".

#include <atomic>
#include <cstdint>

namespace machub::core {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock milliseconds since the Unix epoch (UTC).
  virtual int64_t NowMs() const = 0;
  // Monotonic microseconds, for latencies.
  virtual int64_t MonotonicUs() const = 0;
};

// The process's real clocks (CLOCK_REALTIME, CLOCK_MONOTONIC).
const Clock& SystemClock();

// A clock tests move by hand. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t now_ms) : now_ms_(now_ms) {}
  int64_t NowMs() const override { return now_ms_.load(); }
  int64_t MonotonicUs() const override { return now_ms_.load() * 1000; }
  void Set(int64_t now_ms) { now_ms_.store(now_ms); }
  void Advance(int64_t ms) { now_ms_.fetch_add(ms); }

 private:
  std::atomic<int64_t> now_ms_;
};

}  // namespace machub::core
