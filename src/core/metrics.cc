#include "core/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

namespace machub::core {
namespace {

// Fixed notation with the shortest digits that round-trip: "0.00025", "2.5", "10". The
// default (shortest of fixed and scientific) would print "1e-04" as an "le" value, which
// parses but does not match the label other exporters use for the same bucket.
void AppendDouble(std::string* out, double v) {
  if (std::isnan(v)) {
    out->append("NaN");
    return;
  }
  if (std::isinf(v)) {
    out->append(v > 0 ? "+Inf" : "-Inf");
    return;
  }
  char buf[400];  // enough for any double in fixed notation
  const auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed);
  out->append(buf, res.ptr);
}

void AppendLabelValue(std::string* out, const std::string& value) {
  for (char c : value) {
    switch (c) {
      case '\\':
        out->append("\\\\");
        break;
      case '"':
        out->append("\\\"");
        break;
      case '\n':
        out->append("\\n");
        break;
      default:
        out->push_back(c);
    }
  }
}

void AppendHelp(std::string* out, const std::string& help) {
  for (char c : help) {
    switch (c) {
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      default:
        out->push_back(c);
    }
  }
}

// `a="x",b="y"`: the map key of a metric within its family and, in braces, its rendering.
std::string RenderLabels(const Labels& labels) {
  std::string out;
  for (const auto& [name, value] : labels) {
    if (!out.empty()) out.push_back(',');
    out.append(name);
    out.append("=\"");
    AppendLabelValue(&out, value);
    out.push_back('"');
  }
  return out;
}

void AppendSample(std::string* out, const std::string& name, std::string_view suffix,
                  const std::string& labels, std::string_view extra_label,
                  const std::string& value) {
  out->append(name);
  out->append(suffix);
  if (!labels.empty() || !extra_label.empty()) {
    out->push_back('{');
    out->append(labels);
    if (!labels.empty() && !extra_label.empty()) out->push_back(',');
    out->append(extra_label);
    out->push_back('}');
  }
  out->push_back(' ');
  out->append(value);
  out->push_back('\n');
}

template <typename T, typename Make>
T& GetOrCreate(std::map<std::string, std::unique_ptr<T>>& metrics, const std::string& key,
               const Make& make) {
  auto it = metrics.find(key);
  if (it == metrics.end()) it = metrics.emplace(key, make()).first;
  return *it->second;
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
  // NaN bounds would break the ordering the binary search needs.
  bounds_.erase(
      std::remove_if(bounds_.begin(), bounds_.end(), [](double b) { return std::isnan(b); }),
      bounds_.end());
  std::sort(bounds_.begin(), bounds_.end());
  bounds_.erase(std::unique(bounds_.begin(), bounds_.end()), bounds_.end());
  if (!bounds_.empty() && std::isinf(bounds_.back()) && bounds_.back() > 0) bounds_.pop_back();
  buckets_ = std::make_unique<std::atomic<int64_t>[]>(bounds_.size() + 1);
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double v) {
  size_t index = bounds_.size();  // +Inf, also where NaN goes
  if (!std::isnan(v)) {
    index =
        static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
    // Clamp instead of overflowing on absurd values; the sum is a diagnostic.
    const double micro = v * 1e6;
    const double limit = 9.0e18;
    const int64_t delta = micro >= limit    ? static_cast<int64_t>(limit)
                          : micro <= -limit ? -static_cast<int64_t>(limit)
                                            : static_cast<int64_t>(std::llround(micro));
    sum_micro_.fetch_add(delta, std::memory_order_relaxed);
  }
  buckets_[index].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

std::vector<int64_t> Histogram::CumulativeCounts() const {
  std::vector<int64_t> out(bounds_.size() + 1);
  int64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    out[i] = running;
  }
  return out;
}

double Histogram::Sum() const {
  return static_cast<double>(sum_micro_.load(std::memory_order_relaxed)) / 1e6;
}

int64_t Histogram::Count() const { return count_.load(std::memory_order_relaxed); }

std::vector<double> LatencyBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
}

Counter& MetricsRegistry::GetCounter(const std::string& name, const std::string& help,
                                     const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Family& family = families_[name];
  if (family.type.empty()) {
    family.type = "counter";
    family.help = help;
  }
  return GetOrCreate(family.counters, RenderLabels(labels),
                     [] { return std::make_unique<Counter>(); });
}

Gauge& MetricsRegistry::GetGauge(const std::string& name, const std::string& help,
                                 const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Family& family = families_[name];
  if (family.type.empty()) {
    family.type = "gauge";
    family.help = help;
  }
  return GetOrCreate(family.gauges, RenderLabels(labels), [] { return std::make_unique<Gauge>(); });
}

Histogram& MetricsRegistry::GetHistogram(const std::string& name, const std::string& help,
                                         const std::vector<double>& bounds, const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Family& family = families_[name];
  if (family.type.empty()) {
    family.type = "histogram";
    family.help = help;
  }
  return GetOrCreate(family.histograms, RenderLabels(labels),
                     [&bounds] { return std::make_unique<Histogram>(bounds); });
}

std::string MetricsRegistry::RenderText() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  out.reserve(4096);
  for (const auto& [name, family] : families_) {
    out.append("# HELP ");
    out.append(name);
    out.push_back(' ');
    AppendHelp(&out, family.help);
    out.append("\n# TYPE ");
    out.append(name);
    out.push_back(' ');
    out.append(family.type);
    out.push_back('\n');
    // Only the metrics of the family's declared type are rendered: a metric requested
    // under the same name with another type (a caller bug) still works but is not
    // exported, since one name cannot carry two types in the exposition format.
    if (family.type == "counter") {
      for (const auto& [labels, counter] : family.counters) {
        AppendSample(&out, name, "", labels, "", std::to_string(counter->Value()));
      }
    } else if (family.type == "gauge") {
      for (const auto& [labels, gauge] : family.gauges) {
        AppendSample(&out, name, "", labels, "", std::to_string(gauge->Value()));
      }
    } else {
      for (const auto& [labels, histogram] : family.histograms) {
        const std::vector<int64_t> counts = histogram->CumulativeCounts();
        const std::vector<double>& bounds = histogram->bounds();
        for (size_t i = 0; i <= bounds.size(); ++i) {
          std::string le = "le=\"";
          if (i < bounds.size()) {
            AppendDouble(&le, bounds[i]);
          } else {
            le.append("+Inf");
          }
          le.push_back('"');
          AppendSample(&out, name, "_bucket", labels, le, std::to_string(counts[i]));
        }
        std::string sum;
        AppendDouble(&sum, histogram->Sum());
        AppendSample(&out, name, "_sum", labels, "", sum);
        // _count from the same snapshot as the buckets, so that it always equals the
        // +Inf bucket even while other threads observe.
        AppendSample(&out, name, "_count", labels, "", std::to_string(counts.back()));
      }
    }
  }
  return out;
}

}  // namespace machub::core
