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

}  // namespace machub::core
