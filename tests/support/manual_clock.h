#pragma once
// ManualClock: a core::Clock that tests move by hand (test support, never in the hub).
// Wall and monotonic time move together: MonotonicUs() is NowMs() * 1000. Thread-safe.

#include <atomic>
#include <cstdint>

#include "core/clock.h"

namespace machub::testing {

class ManualClock final : public core::Clock {
 public:
  explicit ManualClock(int64_t now_ms) : now_ms_(now_ms) {}
  int64_t NowMs() const override { return now_ms_.load(); }
  int64_t MonotonicUs() const override { return now_ms_.load() * 1000; }
  void Set(int64_t now_ms) { now_ms_.store(now_ms); }
  void Advance(int64_t ms) { now_ms_.fetch_add(ms); }

 private:
  std::atomic<int64_t> now_ms_;
};

}  // namespace machub::testing
