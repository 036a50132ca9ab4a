#pragma once
// Retry delays: exponential backoff with FULL jitter (the AWS Architecture Blog's
// "Exponential Backoff And Jitter"): after the n-th consecutive failure (n >= 1) wait a
// uniformly random time in [0, min(cap, base * 2^(n-1))]. Full jitter spreads the retries
// of many stores that lost the same link at the same moment.
//
// Pure and deterministic given the random source; thread-compatible.

#include <cstdint>
#include <functional>

namespace machub::sync {

// A source of uniformly distributed 64-bit values (tests pass a fixed sequence).
using RandomSource = std::function<uint64_t()>;

// The ceiling of the n-th delay: min(cap_ms, base_ms * 2^(failures-1)); 0 for failures <= 0.
int64_t BackoffCeilingMs(int64_t failures, int64_t base_ms, int64_t cap_ms);

// A delay drawn uniformly from [0, BackoffCeilingMs(...)] using one value of `random`.
int64_t FullJitterDelayMs(int64_t failures, int64_t base_ms, int64_t cap_ms,
                          const RandomSource& random);

// A RandomSource seeded from std::random_device (thread-safe).
RandomSource DefaultRandomSource();

}  // namespace machub::sync
