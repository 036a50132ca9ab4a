#include "http/rate_limiter.h"

#include <algorithm>
#include <cmath>
#include <functional>

namespace machub::http {

RateLimiter::RateLimiter(double rate_per_s, double burst)
    : rate_per_s_(rate_per_s), burst_(std::max(1.0, burst)) {}

int64_t RateLimiter::Acquire(std::string_view key, int64_t now_us) {
  if (rate_per_s_ <= 0) return 0;
  Shard& shard = shards_[std::hash<std::string_view>{}(key) % kShards];
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.buckets.find(std::string(key));
  if (it == shard.buckets.end()) {
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
    bucket.tokens -= 1.0;
    return 0;
  }
  const double wait_s = (1.0 - bucket.tokens) / rate_per_s_;
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(wait_s)));
}

}  // namespace machub::http
