#pragma once
// Per-key token buckets (the key is an authenticated terminal id).
//
// Each key owns a bucket of `burst` tokens that refills at `rate_per_s`; a request takes
// one token. Buckets start full. Thread-safe: the keys are spread over a few mutex-guarded
// shards so terminals rarely contend. The number of buckets is bounded by the number of
// keys used, which are configured terminal ids (never client-chosen strings).
// Rates are request counts, not money, so doubles are fine here.

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace machub::http {

class RateLimiter {
 public:
  // rate_per_s <= 0: unlimited (Acquire always allows). burst < 1 is treated as 1.
  RateLimiter(double rate_per_s, double burst);

  // Takes one token from `key`'s bucket at monotonic time `now_us`. Returns 0 when
  // allowed, otherwise the whole seconds (>= 1) after which a token will be available
  // (the Retry-After value). A refused request takes nothing.
  int64_t Acquire(std::string_view key, int64_t now_us);

 private:
  struct Bucket {
    double tokens = 0;
    int64_t last_us = 0;
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, Bucket> buckets;
  };
  static constexpr size_t kShards = 16;

  const double rate_per_s_;
  const double burst_;
  std::array<Shard, kShards> shards_;
};

}  // namespace machub::http
