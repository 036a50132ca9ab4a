#include "sync/backoff.h"

#include <algorithm>
#include <memory>
#include <mutex>
#include <random>

namespace machub::sync {

int64_t BackoffCeilingMs(int64_t failures, int64_t base_ms, int64_t cap_ms) {
  if (failures <= 0 || base_ms <= 0 || cap_ms <= 0) return 0;
  int64_t ceiling = base_ms;
  // Doubling stops at the cap, so there is no overflow however many failures.
  for (int64_t i = 1; i < failures && ceiling < cap_ms; ++i) ceiling *= 2;
  return std::min(ceiling, cap_ms);
}

int64_t FullJitterDelayMs(int64_t failures, int64_t base_ms, int64_t cap_ms,
                          const RandomSource& random) {
  const int64_t ceiling = BackoffCeilingMs(failures, base_ms, cap_ms);
  if (ceiling <= 0) return 0;
  // Modulo bias is below 2^-40 for ceilings under a day: irrelevant for a retry delay.
  return static_cast<int64_t>(random() % static_cast<uint64_t>(ceiling + 1));
}

RandomSource DefaultRandomSource() {
  struct State {
    std::mutex mu;
    std::mt19937_64 engine{std::random_device{}()};
  };
  auto state = std::make_shared<State>();
  return [state] {
    std::lock_guard<std::mutex> lock(state->mu);
    return state->engine();
  };
}

}  // namespace machub::sync
