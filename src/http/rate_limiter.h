#pragma once
// Per-key token buckets (the key is an authenticated terminal id, or a remote address for
// failed authentications), and LogThrottle, which keeps a refusal from flooding the log.
//
// Each key owns a bucket of `burst` tokens that refills at `rate_per_s`; a request takes
// one token. Buckets start full. Thread-safe: the keys are spread over a few mutex-guarded
// shards so terminals rarely contend. The number of buckets is bounded by the number of
// keys used; when a shard holds more than kMaxBucketsPerShard, buckets that are full again
// (they hold no state worth keeping) are dropped.
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

  // Like Acquire, but takes nothing: 0 when a token is available now.
  int64_t Peek(std::string_view key, int64_t now_us);

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
  static constexpr size_t kMaxBucketsPerShard = 1024;

  int64_t Take(std::string_view key, int64_t now_us, bool take);

  const double rate_per_s_;
  const double burst_;
  std::array<Shard, kShards> shards_;
};

// At most one log line per `interval_us` for one kind of event; the line reports how many
// events were not logged since the previous one. Thread-safe.
class LogThrottle {
 public:
  explicit LogThrottle(int64_t interval_us = 1'000'000) : interval_us_(interval_us) {}

  // True when the caller should log now; *suppressed is then the number of events that
  // were not logged since the last logged one.
  bool Allow(int64_t now_us, int64_t* suppressed);

 private:
  const int64_t interval_us_;
  std::mutex mu_;
  bool logged_once_ = false;
  int64_t last_us_ = 0;
  int64_t suppressed_ = 0;
};

}  // namespace machub::http
