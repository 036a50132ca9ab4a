#pragma once
// Time source, injectable so tests control "now".

#include <atomic>
#include <cstdint>
#include <optional>

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

// Whether the kernel considers its clock synchronized (adjtimex read-only: not
// STA_UNSYNC, not TIME_ERROR), as an NTP client such as systemd-timesyncd or chrony leaves
// it once it has set the time; nullopt when the kernel cannot be asked. No privilege
// needed. Some hosts never clear the flag (a container, a VM synced by its hypervisor):
// callers decide whether to trust it (config clock.require_sync).
std::optional<bool> KernelClockSynchronized();

}  // namespace machub::core
