#pragma once
// Prometheus metrics: counters and histograms with labels, rendered as text exposition
// format (version 0.0.4). Thread-safe and lock-free on the hot path: a metric handle is
// looked up once (under a mutex) and then updated with relaxed atomics.

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace machub::core {

class Counter {
 public:
  void Inc(int64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  int64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

class Gauge {
 public:
  void Set(int64_t v) { value_.store(v, std::memory_order_relaxed); }
  int64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// Fixed upper bounds (inclusive, "le"), plus +Inf. Observations are doubles in the
// metric's unit (seconds for latencies, a count for sizes). The constructor sorts the
// bounds and drops duplicates, NaN and +Inf. NaN observations count in +Inf only. The
// sum is kept in millionths of the unit (finer detail is rounded away).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  // Cumulative counts per bound, then +Inf; sum; count.
  std::vector<int64_t> CumulativeCounts() const;
  double Sum() const;
  int64_t Count() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<int64_t>[]> buckets_;  // bounds_.size() + 1
  std::atomic<int64_t> count_{0};
  std::atomic<int64_t> sum_micro_{0};  // sum * 1e6, so it stays an integer atomic
};

// Default buckets for latencies in seconds: 100 us .. 10 s.
std::vector<double> LatencyBuckets();

// Labels are rendered in the given order: {{"route","/v1/sales"},{"status","201"}}.
using Labels = std::vector<std::pair<std::string, std::string>>;

class MetricsRegistry {
 public:
  // Returned references live as long as the registry. Same name+labels -> same metric.
  // `help` is recorded the first time a name is seen.
  Counter& GetCounter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& GetGauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram& GetHistogram(const std::string& name, const std::string& help,
                          const std::vector<double>& bounds, const Labels& labels = {});

  // Prometheus text exposition format: families sorted by name, each with "# HELP" and
  // "# TYPE", then its metrics sorted by rendered labels. Histograms as cumulative
  // name_bucket{...,le="0.005"} lines (le in plain decimal, last "+Inf"), name_sum and
  // name_count. Label values escape \\, \" and \n; help text escapes \\ and \n.
  // A name first registered with one type and later asked for with another returns a
  // working metric that is not rendered (a caller bug; one name has one type).
  std::string RenderText() const;

 private:
  struct Family {
    std::string help;
    std::string type;                                          // "counter" | "gauge" | "histogram"
    std::map<std::string, std::unique_ptr<Counter>> counters;  // key: rendered labels
    std::map<std::string, std::unique_ptr<Gauge>> gauges;
    std::map<std::string, std::unique_ptr<Histogram>> histograms;
  };
  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
};

}  // namespace machub::core
