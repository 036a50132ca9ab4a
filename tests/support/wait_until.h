#pragma once
// WaitUntil: polls `done` every 5 ms until it holds (true) or `timeout_ms` passes (false)
// (test support, never in the hub).

#include <chrono>
#include <cstdint>
#include <functional>
#include <thread>

namespace machub::testing {

inline bool WaitUntil(const std::function<bool()>& done, int64_t timeout_ms = 10000) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace machub::testing
