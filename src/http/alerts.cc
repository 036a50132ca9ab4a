#include "http/alerts.h"

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/time_format.h"

namespace machub::http {
namespace {

using json = nlohmann::json;

// An RFC 3339 member as ms, 0 when absent, null or malformed.
int64_t TimeOf(const json& block, const char* name) {
  if (!block.is_object() || !block.contains(name) || !block[name].is_string()) return 0;
  Result<int64_t> ms = core::ParseRfc3339(block[name].get<std::string>());
  return ms.ok() ? *ms : 0;
}

// A clock more than this behind the newest entry is "behind the journal" (entries of one
// group commit share a clock reading; a second covers scheduling noise).
constexpr int64_t kBehindToleranceMs = 1000;

std::vector<std::string> UntrustedReasons(const ClockInputs& in) {
  std::vector<std::string> reasons;
  if (in.newest_received_at_ms - in.now_ms > kBehindToleranceMs) {
    reasons.emplace_back("behind_journal");
  }
  if (in.require_sync && in.kernel_synchronized == std::optional<bool>(false)) {
    reasons.emplace_back("kernel_unsynchronized");
  }
  return reasons;
}

bool Skewed(const ClockInputs& in) {
  return in.cloud_offset_ms && std::llabs(*in.cloud_offset_ms) > in.skew_bound_ms;
}

json TimeOrNull(int64_t ms) { return ms > 0 ? json(core::FormatRfc3339(ms)) : json(nullptr); }

}  // namespace

json ClockStatusJson(const ClockInputs& in) {
  const std::vector<std::string> reasons = UntrustedReasons(in);
  json out;
  out["now"] = core::FormatRfc3339(in.now_ms);
  out["trusted"] = reasons.empty();
  out["reasons"] = reasons;
  out["kernel_synchronized"] = in.kernel_synchronized ? json(*in.kernel_synchronized) : json();
  out["require_sync"] = in.require_sync;
  out["newest_entry_at"] = TimeOrNull(in.newest_received_at_ms);
  out["held_entries"] = in.held_entries;
  out["cloud_offset_ms"] = in.cloud_offset_ms ? json(*in.cloud_offset_ms) : json();
  out["skewed"] = Skewed(in);
  return out;
}

json ServiceAlertsJson(const ServiceAlertInputs& in) {
  json alerts = json::array();
  const json& cloud = in.cloud_json;
  const json& backlog = in.backlog_json;

  const int64_t oldest = TimeOf(backlog, "oldest_sale_at");
  if (oldest > 0 && in.now_ms - oldest > in.backlog_max_age_ms) {
    alerts.push_back({{"code", "backlog_old"},
                      {"severity", "warning"},
                      {"oldest_sale_at", backlog["oldest_sale_at"]},
                      {"age_s", (in.now_ms - oldest) / 1000},
                      {"sales", backlog.value("sales", json(0))}});
  }

  if (cloud.is_object()) {
    const int64_t last_success = TimeOf(cloud, "last_success_at");
    const int64_t last_error = TimeOf(cloud, "last_error_at");
    const std::string state = cloud.value("state", "");
    const int64_t ok_since = std::max(last_success, in.started_at_ms);
    if (state != "disabled" && last_error > last_success &&
        in.now_ms - ok_since > in.uploads_failing_ms) {
      alerts.push_back({{"code", "uploads_failing"},
                        {"severity", "critical"},
                        {"state", state},
                        {"last_success_at", cloud.value("last_success_at", json(nullptr))},
                        {"last_error", cloud.value("last_error", json(nullptr))},
                        {"last_error_at", cloud["last_error_at"]}});
    }
    const json quarantined = cloud.value("quarantined", json(0));
    if (quarantined.is_number_integer() && quarantined.get<int64_t>() > 0) {
      alerts.push_back(
          {{"code", "batches_quarantined"}, {"severity", "critical"}, {"batches", quarantined}});
    }
  }

  if (in.free_disk_bytes && in.min_free_disk_bytes > 0 &&
      *in.free_disk_bytes < in.min_free_disk_bytes) {
    alerts.push_back({{"code", "disk_low"},
                      {"severity", "critical"},
                      {"free_disk_bytes", *in.free_disk_bytes},
                      {"threshold_bytes", in.min_free_disk_bytes}});
  }
  if (in.clock) {
    const ClockInputs& c = *in.clock;
    const std::vector<std::string> reasons = UntrustedReasons(c);
    if (!reasons.empty()) {
      alerts.push_back(
          {{"code", "clock_untrusted"},
           {"severity", "critical"},
           {"reasons", reasons},
           {"newest_entry_at", TimeOrNull(c.newest_received_at_ms)},
           {"behind_s", std::max<int64_t>(0, (c.newest_received_at_ms - c.now_ms) / 1000)},
           {"held_entries", c.held_entries}});
    }
    if (Skewed(c)) {
      alerts.push_back({{"code", "clock_skew"},
                        {"severity", "warning"},
                        {"offset_s", *c.cloud_offset_ms / 1000},
                        {"bound_s", c.skew_bound_ms / 1000}});
    }
  }
  return alerts;
}

}  // namespace machub::http
