#include "http/rate_limiter.h"

#include <algorithm>
#include <cmath>
#include <functional>

namespace machub::http {

RateLimiter::RateLimiter(double rate_per_s, double burst)
    : rate_per_s_(rate_per_s), burst_(std::max(1.0, burst)) {}

int64_t RateLimiter::Acquire(std::string_view key, int64_t now_us) {
  return Take(key, now_us, true);
}

int64_t RateLimiter::Peek(std::string_view key, int64_t now_us) { return Take(key, now_us, false); }

int64_t RateLimiter::Take(std::string_view key, int64_t now_us, bool take) {
  if (rate_per_s_ <= 0) return 0;
  Shard& shard = shards_[std::hash<std::string_view>{}(key) % kShards];
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.buckets.find(std::string(key));
  if (it == shard.buckets.end()) {
    if (!take) return 0;  // a full bucket
    if (shard.buckets.size() >= kMaxBucketsPerShard) {
      std::erase_if(shard.buckets, [&](const auto& entry) {
        const Bucket& b = entry.second;
        const double refilled =
            b.tokens +
            static_cast<double>(std::max<int64_t>(0, now_us - b.last_us)) / 1e6 * rate_per_s_;
        return refilled >= burst_;
      });
    }
    it = shard.buckets.emplace(std::string(key), Bucket{burst_, now_us}).first;
  }
  Bucket& bucket = it->second;
  // A clock that steps back (it is monotonic, but tests set it) must not drain the bucket.
  if (now_us > bucket.last_us) {
    const double elapsed_s = static_cast<double>(now_us - bucket.last_us) / 1e6;
    bucket.tokens = std::min(burst_, bucket.tokens + elapsed_s * rate_per_s_);
    bucket.last_us = now_us;
  }
  if (bucket.tokens >= 1.0) {
    if (take) bucket.tokens -= 1.0;
    return 0;
  }
  const double wait_s = (1.0 - bucket.tokens) / rate_per_s_;
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(wait_s)));
}

bool LogThrottle::Allow(int64_t now_us, int64_t* suppressed) {
  std::lock_guard<std::mutex> lock(mu_);
  if (logged_once_ && now_us - last_us_ < interval_us_) {
    ++suppressed_;
    return false;
  }
  logged_once_ = true;
  last_us_ = now_us;
  *suppressed = suppressed_;
  suppressed_ = 0;
  return true;
}

}  // namespace machub::http
